"""Vision-language critic: a multimodal chat model rates renders against references and a target description.

`critique()` sends the images and the text to an OpenAI-compatible or Anthropic endpoint, asks for one JSON object,
validates it into a `CriticVerdict` and retries a malformed reply once. Network and reply failures come back as an
error `CriticResult` so a fitting loop never stops because of the critic; only configuration mistakes raise. The API
key is taken at call time (argument or environment) and is never stored in the config, a result, a log or an error.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from ..core.errors import VDBForgeError
from .critic_providers import EncodedImage, ProviderError, Turn, build_request, dumps_size, redact, reply_text, send

__all__ = [
    "CriticConfig",
    "CriticResult",
    "CriticVerdict",
    "SpecificFix",
    "critique",
    "encode_image",
    "extract_json",
    "parse_verdict",
    "rating_similarity",
    "redact",
    "resolve_api_key",
    "weighted_score",
]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}
DEFAULT_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
MAX_ATTEMPTS = 2  # the first request plus one corrective retry for a malformed reply
_REPLY_KEEP_CHARS = 4000  # raw replies kept in the result (for reports); enough for any sane verdict
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

SYSTEM_PROMPT = """\
You are a visual-effects supervisor judging renders of a volumetric effect (smoke, fire, explosions, clouds, \
liquids, nebulae) made in Blender. Compare the candidate render(s) with the reference image(s) and/or the target \
description: overall shape and silhouette, scale and framing, density and opacity, colour and emission, lighting, \
small-scale detail (turbulence, wisps, edges) and plausibility. Do not penalise what a simulation cannot control: \
background stars or objects, grain, image resolution or aspect ratio.

Reply with one JSON object and nothing else (no prose, no code fences), with exactly these keys:
{
  "rating": integer 1-10 (10 = indistinguishable from the target, 7 = same effect with clear differences, \
4 = same kind of effect but wrong in most respects, 1 = unrelated),
  "matches_reference": true if a viewer would accept the render as the target, otherwise false,
  "differences": [short strings, the most important visible differences first],
  "suggestions": [short strings, general changes that would bring the render closer],
  "specific_fixes": [{"area": "part of the image or effect", "problem": "what is wrong", \
"fix": "one concrete change, e.g. more vorticity, lower density, warmer flame colour"}]
}"""

CORRECTION_PROMPT = (
    "Your previous reply could not be used ({problem}). Reply again with only the JSON object described in the "
    "instructions, with the keys rating, matches_reference, differences, suggestions and specific_fixes: no prose, "
    "no code fences."
)


class CriticConfig(BaseModel):
    """Where and how to ask. Holds no secret: the key is read at call time from `api_key_env` or passed in."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    provider: Literal["openai", "anthropic"] = "openai"
    model: str = Field(min_length=1, description="model name as the endpoint knows it")
    base_url: str | None = Field(None, validate_default=True, description="None: the provider's public API")
    api_key_env: str | None = Field(
        None, validate_default=True, description="environment variable holding the key; '' = send no key (local)"
    )
    timeout_s: float = Field(60.0, gt=0, le=600)
    max_tokens: int = Field(1024, ge=16, le=32768)
    temperature: float | None = Field(0.0, ge=0, le=2, description="None: leave it to the server")
    max_image_px: int = Field(768, ge=16, le=8192, description="longest side of each image as sent")
    json_mode: bool = Field(False, description="OpenAI only: ask for response_format json_object")
    weight: float = Field(0.0, ge=0, le=1, description="weight of the rating in the objective; 0 = off")

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None, info: ValidationInfo) -> str:
        value = (value or DEFAULT_BASE_URL[info.data.get("provider", "openai")]).strip().rstrip("/")
        if not re.match(r"^https?://", value):
            raise ValueError("base_url must start with http:// or https://")
        if "@" in value.split("://", 1)[1].split("/", 1)[0]:
            # Credentials in the URL would end up in run files; the key belongs in the environment.
            raise ValueError("base_url must not contain credentials; put the key in the environment")
        return value

    @field_validator("api_key_env")
    @classmethod
    def _api_key_env(cls, value: str | None, info: ValidationInfo) -> str:
        if value is None:
            return DEFAULT_KEY_ENV[info.data.get("provider", "openai")]
        # Only a variable *name* is accepted, so a key pasted here by mistake is refused rather than saved.
        if value and not _ENV_NAME.match(value):
            raise ValueError("api_key_env must be the name of an environment variable (letters, digits, _) or ''")
        return value

    def public_dict(self) -> dict:
        """The config as written to run files and reports (it never contains a key)."""
        return self.model_dump(mode="json")


class SpecificFix(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    area: str
    problem: str
    fix: str


class CriticVerdict(BaseModel):
    """The model's judgement. Unknown extra keys are ignored (models like to add "reasoning"); the five keys are
    typed, `rating` must be a whole number 1-10, and the three lists may be omitted (empty)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    rating: int = Field(ge=1, le=10)
    matches_reference: bool
    differences: list[str] = Field(default_factory=list)
    suggestions: list[str] = Field(default_factory=list)
    specific_fixes: list[SpecificFix] = Field(default_factory=list)

    @field_validator("rating", mode="before")
    @classmethod
    def _rating_not_bool(cls, value: object) -> object:
        # pydantic would read true as 1; a boolean rating means the model misunderstood the schema.
        if isinstance(value, bool):
            raise ValueError("rating must be an integer 1-10, not a boolean")
        return value


class CriticResult(BaseModel):
    """One critique: a verdict, or a one-line `error` with its `error_kind` (timeout, transport, http, auth,
    protocol, malformed). `attempts` counts HTTP requests made; `replies` keeps the raw texts received."""

    provider: str
    model: str
    verdict: CriticVerdict | None = None
    error: str | None = None
    error_kind: str | None = None
    attempts: int = 0
    latency_s: float = 0.0
    replies: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.verdict is not None

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")


def resolve_api_key(config: CriticConfig, api_key: str | None = None) -> str | None:
    """The key to send: `api_key` (add-on preferences) if given, else `$api_key_env`; None when auth is off."""
    if api_key:
        return api_key.strip()
    if not config.api_key_env:
        return None
    value = os.environ.get(config.api_key_env, "").strip()
    if not value:
        raise VDBForgeError(
            f"vision critic: no API key; set the environment variable {config.api_key_env} or enter a key in the "
            "add-on preferences (api_key_env '' sends no key, for local servers)"
        )
    return value


def encode_image(path: str | os.PathLike, max_px: int) -> EncodedImage:
    """Read an image, shrink it so its longest side is at most `max_px`, and encode it as base64 PNG."""
    import base64

    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise VDBForgeError(f"vision critic: image not found: {path}")
    try:
        with Image.open(path) as opened:
            opened.load()
            alpha = opened.mode in ("RGBA", "LA", "PA") or "transparency" in opened.info
            image = opened.convert("RGBA" if alpha else "RGB")
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise VDBForgeError(f"vision critic: cannot read image {path}: {exc}") from None
    if max(image.size) > max_px:
        image.thumbnail((max_px, max_px), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return EncodedImage(base64.b64encode(buffer.getvalue()).decode("ascii"), image.width, image.height)


def extract_json(text: str) -> dict | None:
    """The first JSON object in `text`: the whole reply, inside ```json fences, or embedded in prose."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def parse_verdict(text: str) -> tuple[CriticVerdict | None, str]:
    """(verdict, "") or (None, a short reason fit to send back to the model)."""
    data = extract_json(text)
    if data is None:
        return None, "no JSON object found in the reply" if text.strip() else "the reply was empty"
    try:
        return CriticVerdict.model_validate(data), ""
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or 'object'}: {err['msg']}"
            for err in exc.errors(include_url=False, include_input=False)
        ]
        return None, "invalid JSON fields: " + "; ".join(problems[:4])


def _user_parts(renders: list[EncodedImage], references: list[EncodedImage], text: str | None) -> list:
    parts: list[str | EncodedImage] = []
    for i, image in enumerate(references, 1):
        parts += [f"Reference image {i} of {len(references)}:", image]
    for i, image in enumerate(renders, 1):
        parts += [f"Candidate render {i} of {len(renders)}:", image]
    if text and text.strip():
        parts.append(f"Target description: {text.strip()}")
    target = "the reference image(s)" if references else "the target description"
    if references and text and text.strip():
        target = "the reference image(s) and the target description"
    parts.append(f"Judge how well the candidate render(s) match {target}. Reply with the JSON object only.")
    return parts


def critique(
    renders: list[str | os.PathLike],
    references: list[str | os.PathLike],
    text: str | None,
    config: CriticConfig,
    api_key: str | None = None,
) -> CriticResult:
    """Ask the configured model to judge `renders` against `references` and/or `text`.

    Raises `VDBForgeError` only for configuration mistakes (no renders, nothing to compare with, missing image,
    missing key). Everything that can go wrong on the wire or in the reply returns a `CriticResult` with `error`.
    """
    if not renders:
        raise VDBForgeError("vision critic: no render images given")
    if not references and not (text and text.strip()):
        raise VDBForgeError("vision critic: give at least one reference image or a target description")
    key = resolve_api_key(config, api_key)
    secrets = [key]
    encoded_renders = [encode_image(p, config.max_image_px) for p in renders]
    encoded_refs = [encode_image(p, config.max_image_px) for p in references]
    first = Turn("user", _user_parts(encoded_renders, encoded_refs, text))

    result = CriticResult(provider=config.provider, model=config.model)
    turns = [first]
    started = time.monotonic()
    problem = ""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        request = build_request(
            config.provider,
            base_url=config.base_url,
            model=config.model,
            system=SYSTEM_PROMPT,
            turns=turns,
            api_key=key,
            max_tokens=config.max_tokens,
            temperature=config.temperature,
            json_mode=config.json_mode and config.provider == "openai",
        )
        result.attempts = attempt
        sent_at = time.monotonic()
        try:
            payload = send(request, timeout_s=config.timeout_s, secrets=secrets)
            reply, truncated = reply_text(config.provider, payload)
        except ProviderError as exc:
            return _finish(result, started, error=redact(exc.message, secrets), kind=exc.kind)
        reply = redact(reply, secrets)
        result.replies.append(reply[:_REPLY_KEEP_CHARS])
        verdict, problem = parse_verdict(reply)
        log.info(
            "critic %s/%s attempt %d: %s (%.2f s, %d KB sent)",
            config.provider,
            config.model,
            attempt,
            f"rating {verdict.rating}" if verdict else f"malformed: {problem}",
            time.monotonic() - sent_at,
            dumps_size(request.body) // 1024,
        )
        if verdict is not None:
            result.verdict = verdict
            return _finish(result, started)
        if truncated:
            problem += "; the reply was cut off at max_tokens"
        turns = [
            first,
            Turn("assistant", [reply[:_REPLY_KEEP_CHARS].strip() or "(empty reply)"]),
            Turn("user", [CORRECTION_PROMPT.format(problem=problem)]),
        ]
    message = f"critic reply unusable after {MAX_ATTEMPTS} attempts: {problem}"
    return _finish(result, started, error=redact(message, secrets), kind="malformed")


def _finish(result: CriticResult, started: float, error: str | None = None, kind: str | None = None) -> CriticResult:
    result.latency_s = round(time.monotonic() - started, 3)
    if error is not None:
        result.error = " ".join(error.split())
        result.error_kind = kind
        log.warning("critic %s/%s failed (%s): %s", result.provider, result.model, kind, result.error)
    return result


def rating_similarity(verdict: CriticVerdict) -> float:
    """The rating as a similarity in [0, 1]: 1 -> 0.0, 10 -> 1.0."""
    return (verdict.rating - 1) / 9.0


def weighted_score(image_score: float, result: CriticResult | None, weight: float) -> float:
    """Blend an image similarity in [0, 1] (higher is better) with the critic's rating.

    `(1 - weight) * image_score + weight * rating_similarity`; with weight 0, no result, or a failed critique the
    image score is returned unchanged, so a critic outage never moves the objective.
    """
    if weight <= 0 or result is None or result.verdict is None:
        return image_score
    weight = min(weight, 1.0)
    return (1.0 - weight) * image_score + weight * rating_similarity(result.verdict)
