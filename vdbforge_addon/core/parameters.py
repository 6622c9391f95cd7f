"""A preset's tunable parameter space: dotted-path access, overrides, and the [0, 1] normalisation the optimizers use."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from pydantic import ValidationError

from .errors import PresetError
from .preset_model import Preset, Tunable


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line naming the first offending key, e.g. `preset 'x': domain.resolution: Input should be ...`."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("function-after",))
    message = first.get("msg", "invalid value").removeprefix("Value error, ")
    if first.get("type") == "extra_forbidden":
        message = "unknown key"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{source}: {where + ': ' if where else ''}{message}{more}"


def validate_preset(data: Mapping[str, Any], source: str) -> Preset:
    try:
        preset = Preset.model_validate(data)
    except ValidationError as exc:
        raise PresetError(format_validation_error(exc, source)) from None
    for tunable in preset.parameters:
        _check_tunable_resolves(preset, tunable, source)
    return preset


def _split(path: str) -> list[str | int]:
    return [int(part) if part.isdigit() else part for part in path.split(".")]


def get_path(data: Any, path: str) -> Any:
    node = data
    for part in _split(path):
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            raise PresetError(f"'{path}' does not name a setting of this preset") from None
    return node


def set_path(data: Any, path: str, value: Any) -> None:
    parts = _split(path)
    parent = get_path(data, ".".join(str(p) for p in parts[:-1])) if len(parts) > 1 else data
    last = parts[-1]
    try:
        parent[last]
    except (KeyError, IndexError, TypeError):
        raise PresetError(f"'{path}' does not name a setting of this preset") from None
    parent[last] = value


def _check_tunable_resolves(preset: Preset, tunable: Tunable, source: str) -> None:
    data = preset.model_dump(mode="json")
    try:
        current = get_path(data, tunable.path)
    except PresetError as exc:
        raise PresetError(f"{source}: parameters: {exc}") from None
    if tunable.choices is None and (isinstance(current, bool) or not isinstance(current, (int, float))):
        raise PresetError(f"{source}: parameters: '{tunable.path}' is not a number, so it needs choices")
    probes = tunable.choices if tunable.choices is not None else [tunable.min, tunable.max]
    for probe in probes:
        if isinstance(current, int) and not isinstance(current, bool) and tunable.choices is None:
            probe = int(round(probe))
        trial = copy.deepcopy(data)
        set_path(trial, tunable.path, probe)
        try:
            Preset.model_validate(trial)
        except ValidationError as exc:
            raise PresetError(
                f"{source}: parameters: '{tunable.path}' bound {probe!r} is outside what the setting allows "
                f"({format_validation_error(exc, 'value').removeprefix('value: ')})"
            ) from None


def tunable_map(preset: Preset) -> dict[str, Tunable]:
    return {t.path: t for t in preset.parameters}


def parse_value(text: str) -> Any:
    """`--set` values are JSON when they parse as JSON (numbers, booleans, lists), else plain strings."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_assignments(items: Iterable[str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise PresetError(f"--set expects key=value, got '{item}'")
        result[key.strip()] = parse_value(value.strip())
    return result


def apply_overrides(preset: Preset, overrides: Mapping[str, Any], *, tunable_only: bool = True) -> Preset:
    """A new preset with `overrides` applied; each key must be a tunable and each value inside its bounds."""
    tunables = tunable_map(preset)
    data = preset.model_dump(mode="json")
    for path, value in overrides.items():
        tunable = tunables.get(path)
        if tunable_only and tunable is None:
            known = ", ".join(sorted(tunables)) or "none"
            raise PresetError(f"'{path}' is not a tunable parameter of preset '{preset.id}' (tunables: {known})")
        if tunable is not None:
            value = check_in_bounds(tunable, value)
        set_path(data, path, value)
    return validate_preset(data, f"preset '{preset.id}'")


def check_in_bounds(tunable: Tunable, value: Any) -> Any:
    if tunable.choices is not None:
        if value not in tunable.choices:
            raise PresetError(f"'{tunable.path}' must be one of {tunable.choices}, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PresetError(f"'{tunable.path}' needs a number, got {value!r}")
    if not tunable.min <= value <= tunable.max:
        raise PresetError(f"'{tunable.path}' = {value} is outside its range [{tunable.min}, {tunable.max}]")
    return value


def current_values(preset: Preset) -> dict[str, Any]:
    data = preset.model_dump(mode="json")
    return {t.path: get_path(data, t.path) for t in preset.parameters}


def normalise(tunable: Tunable, value: Any) -> float:
    """Map a value to [0, 1]. Categorical tunables map choice k of n to the centre of the k-th of n equal bins."""
    if tunable.choices is not None:
        return (tunable.choices.index(value) + 0.5) / len(tunable.choices)
    lo, hi, v = float(tunable.min), float(tunable.max), float(value)
    if tunable.scale == "log":
        lo, hi, v = math.log(lo), math.log(hi), math.log(max(v, float(tunable.min)))
    return float(np.clip((v - lo) / (hi - lo), 0.0, 1.0))


def denormalise(tunable: Tunable, u: float, template: Any = None) -> Any:
    u = float(np.clip(u, 0.0, 1.0))
    if tunable.choices is not None:
        return tunable.choices[min(int(u * len(tunable.choices)), len(tunable.choices) - 1)]
    lo, hi = float(tunable.min), float(tunable.max)
    value = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))) if tunable.scale == "log" else lo + u * (hi - lo)
    if isinstance(template, int) and not isinstance(template, bool):
        return int(round(value))
    return value
