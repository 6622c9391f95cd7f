"""Preset schema, library and parameter space: plain pytest, no Blender."""

from __future__ import annotations

import json

import pytest

from vdbforge_addon.core.errors import PresetError
from vdbforge_addon.core.parameters import (
    apply_overrides,
    current_values,
    denormalise,
    normalise,
    parse_assignments,
    tunable_map,
)
from vdbforge_addon.core.paths import builtin_presets_dir, user_presets_dir
from vdbforge_addon.core.preset_library import list_presets, load_preset_file, resolve_preset

PYRO = ("explosion", "fire", "smoke_plume")


def test_builtin_pyro_presets_validate_and_describe_themselves():
    entries = {e.id: e for e in list_presets()}
    for preset_id in PYRO:
        assert entries[preset_id].family == "pyro"
        preset = resolve_preset(preset_id)
        assert preset.description and preset.text_target
        assert preset.parameters, "every preset has a tunable parameter space"
        stages = {t.stage for t in preset.parameters}
        assert stages == {"simulation", "render"}


def test_builtin_preset_files_are_named_by_their_id():
    for path in builtin_presets_dir().glob("*.json"):
        assert json.loads(path.read_text())["id"] == path.stem


def test_user_preset_shadows_builtin_visibly():
    data = json.loads((builtin_presets_dir() / "fire.json").read_text())
    data["name"] = "My fire"
    (user_presets_dir() / "fire.vdbforge.json").write_text(json.dumps(data))
    entry = next(e for e in list_presets() if e.id == "fire")
    assert entry.source == "user" and entry.shadows_builtin
    assert resolve_preset("fire").name == "My fire"


def _write(tmp_path, data, name="p.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _explosion():
    return json.loads((builtin_presets_dir() / "explosion.json").read_text())


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.update(unknown_key=1), "unknown_key: unknown key"),
        (
            lambda d: d["domain"].update(resolution=100000),
            "domain.resolution: Input should be less than or equal to 512",
        ),
        (lambda d: d["domain"].update(resolution="big"), "domain.resolution: Input should be a valid integer"),
        (lambda d: d["domain"].update(vorticity=-1), "domain.vorticity: Input should be greater than or equal to 0"),
        (lambda d: d["emitters"][0].update(shape="__import__('os')"), "emitters.0.shape: Input should be"),
        (lambda d: d.update(schema_version=2), "schema_version 2 is not supported"),
        (lambda d: d.update(id="../../etc/passwd"), "id: String should match pattern"),
        (
            lambda d: d["parameters"].append({"path": "domain.nope", "stage": "simulation", "min": 0, "max": 1}),
            "'domain.nope' does not name a setting",
        ),
        (
            lambda d: d["parameters"].append(
                {"path": "domain.resolution", "stage": "simulation", "min": 8, "max": 9000}
            ),
            "bound 9000 is outside what the setting allows",
        ),
        (lambda d: d["domain"].update(frame_start=20, frame_end=10), "frame_end (10) is before frame_start (20)"),
        (lambda d: d.update(force_fields=[{"shape": "donut"}]), "force_fields.0.shape: Input should be"),
        (
            lambda d: d.update(force_fields=[{"max_distance": 0}]),
            "force_fields.0.max_distance: Input should be greater",
        ),
        (
            lambda d: d["material"].update(core_radius=2.0, edge_radius=1.0),
            "edge_radius (1.0) must be larger than core_radius (2.0)",
        ),
    ],
)
def test_bad_presets_fail_with_one_line_naming_the_key(tmp_path, mutate, expected):
    data = _explosion()
    mutate(data)
    with pytest.raises(PresetError) as info:
        load_preset_file(_write(tmp_path, data))
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [("{not json", "not valid JSON"), ("[1, 2]", "must be a JSON object"), ("", "not valid JSON")],
)
def test_malformed_preset_text(tmp_path, text, expected):
    with pytest.raises(PresetError, match=expected):
        load_preset_file(_write(tmp_path, text))


def test_oversized_and_missing_preset_files(tmp_path):
    with pytest.raises(PresetError, match="larger than"):
        load_preset_file(_write(tmp_path, " " * 1_000_001))
    with pytest.raises(PresetError, match="does not exist"):
        load_preset_file(tmp_path / "nope.json")
    with pytest.raises(PresetError, match="unknown preset 'nope' \\(available: .*explosion"):
        resolve_preset("nope")


def test_overrides_accept_tunables_within_bounds_only():
    preset = resolve_preset("explosion")
    changed = apply_overrides(preset, parse_assignments(["domain.vorticity=0.9"]))
    assert changed.domain.vorticity == 0.9 and preset.domain.vorticity != 0.9
    with pytest.raises(PresetError, match="'domain.resolution' is not a tunable parameter"):
        apply_overrides(preset, {"domain.resolution": 16})
    with pytest.raises(PresetError, match="outside its range"):
        apply_overrides(preset, {"domain.vorticity": 99})
    with pytest.raises(PresetError, match="needs a number"):
        apply_overrides(preset, {"domain.vorticity": "fast"})
    with pytest.raises(PresetError, match="expects key=value"):
        parse_assignments(["domain.vorticity"])


def test_normalisation_round_trips_linear_log_and_choices():
    preset = resolve_preset("explosion")
    tunables = tunable_map(preset)
    values = current_values(preset)
    for path, tunable in tunables.items():
        u = normalise(tunable, values[path])
        assert 0.0 <= u <= 1.0
        assert denormalise(tunable, u, values[path]) == pytest.approx(values[path], rel=1e-9)
    density = tunables["material.density_scale"]
    assert density.scale == "log"
    assert denormalise(density, 0.5) == pytest.approx((density.min * density.max) ** 0.5)
    from vdbforge_addon.core.preset_model import Tunable

    choice = Tunable(path="render.view_transform", stage="render", choices=["Standard", "Filmic", "AgX"])
    for value in choice.choices:
        assert denormalise(choice, normalise(choice, value)) == value
