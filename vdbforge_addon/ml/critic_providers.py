"""The two wire protocols of the vision-language critic: OpenAI-compatible chat completions and Anthropic Messages.

A conversation is a provider-neutral list of turns; this module turns it into one HTTP request, sends it with
`requests` (imported on first use, so importing the critic never needs it) and returns the assistant's text.
Every failure becomes a `ProviderError` whose message has already been passed through `redact`.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Literal

from ..core.errors import VDBForgeError

Provider = Literal["openai", "anthropic"]
ANTHROPIC_VERSION = "2023-06-01"
_ERROR_BODY_CHARS = 200


def redact(text: str, secrets: list[str | None] | tuple[str | None, ...]) -> str:
    """`text` with every non-empty secret replaced by `***` (applied to every message the critic emits)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


@dataclass(frozen=True)
class EncodedImage:
    """A PNG ready to send: base64 text plus its pixel size (for logs and tests, never the path)."""

    png_base64: str
    width: int
    height: int


@dataclass
class Turn:
    """One message: `parts` are text strings and images, in the order the model should read them."""

    role: Literal["user", "assistant"]
    parts: list[str | EncodedImage] = field(default_factory=list)


@dataclass(frozen=True)
class Request:
    url: str
    headers: dict[str, str]
    body: dict


class ProviderError(Exception):
    """A failed exchange. `kind`: transport, timeout, http, auth or protocol; `message` is one redacted line."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def build_request(
    provider: Provider,
    *,
    base_url: str,
    model: str,
    system: str,
    turns: list[Turn],
    api_key: str | None,
    max_tokens: int,
    temperature: float | None,
    json_mode: bool = False,
) -> Request:
    """The URL, headers and JSON body of one request (no network)."""
    base = base_url.rstrip("/")
    if provider == "openai":
        messages: list[dict] = [{"role": "system", "content": system}]
        messages += [{"role": t.role, "content": _openai_content(t)} for t in turns]
        body: dict = {"model": model, "messages": messages, "max_tokens": max_tokens}
        if json_mode:
            body["response_format"] = {"type": "json_object"}
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        url = f"{base}/chat/completions"
    elif provider == "anthropic":
        messages = [{"role": t.role, "content": _anthropic_content(t)} for t in turns]
        body = {"model": model, "system": system, "messages": messages, "max_tokens": max_tokens}
        headers = {"Content-Type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
        if api_key:
            headers["x-api-key"] = api_key
        url = f"{base}/v1/messages"
    else:
        raise VDBForgeError(f"unknown critic provider {provider!r} (expected openai or anthropic)")
    if temperature is not None:
        body["temperature"] = temperature
    return Request(url=url, headers=headers, body=body)


def _openai_content(turn: Turn) -> str | list[dict]:
    # Assistant turns stay plain strings: some OpenAI-compatible servers accept content parts only from the user.
    if turn.role == "assistant":
        return "".join(p for p in turn.parts if isinstance(p, str))
    parts: list[dict] = []
    for part in turn.parts:
        if isinstance(part, EncodedImage):
            url = f"data:image/png;base64,{part.png_base64}"
            parts.append({"type": "image_url", "image_url": {"url": url}})
        else:
            parts.append({"type": "text", "text": part})
    return parts


def _anthropic_content(turn: Turn) -> list[dict]:
    blocks: list[dict] = []
    for part in turn.parts:
        if isinstance(part, EncodedImage):
            source = {"type": "base64", "media_type": "image/png", "data": part.png_base64}
            blocks.append({"type": "image", "source": source})
        else:
            blocks.append({"type": "text", "text": part})
    return blocks


def send(request: Request, *, timeout_s: float, secrets: list[str | None]) -> dict:
    """POST the request and return the decoded JSON envelope, or raise a redacted `ProviderError`."""
    try:
        import requests
    except ImportError as exc:
        raise VDBForgeError("the vision critic needs the 'requests' package (pip install requests)") from exc

    try:
        response = requests.post(request.url, json=request.body, headers=request.headers, timeout=timeout_s)
    except requests.Timeout:
        raise ProviderError("timeout", f"no reply from {_origin(request.url)} within {timeout_s:g} s") from None
    except requests.RequestException as exc:
        # requests' messages carry the URL, never the headers; redact anyway in case a key sits in the URL.
        raise ProviderError("transport", redact(_one_line(f"{type(exc).__name__}: {exc}"), secrets)) from None
    if response.status_code != 200:
        snippet = redact(_one_line(response.text)[:_ERROR_BODY_CHARS], secrets)
        kind = "auth" if response.status_code in (401, 403) else "http"
        raise ProviderError(kind, f"HTTP {response.status_code} from {_origin(request.url)}: {snippet}")
    try:
        payload = response.json()
    except ValueError:
        snippet = redact(_one_line(response.text)[:_ERROR_BODY_CHARS], secrets)
        raise ProviderError("protocol", f"reply is not JSON: {snippet}") from None
    if not isinstance(payload, dict):
        raise ProviderError("protocol", "reply is not a JSON object")
    return payload


def reply_text(provider: Provider, payload: dict) -> tuple[str, bool]:
    """The assistant's text from a reply envelope and whether the model stopped at the token limit."""
    try:
        if provider == "openai":
            choice = payload["choices"][0]
            content = choice["message"].get("content")
            truncated = choice.get("finish_reason") == "length"
            if isinstance(content, list):  # some compatible servers answer with content parts
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
            if content is None:
                refusal = choice["message"].get("refusal")
                content = f"(no content; refusal: {refusal})" if refusal else ""
            return str(content), truncated
        blocks = payload["content"]
        text = "".join(b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text")
        return text, payload.get("stop_reason") == "max_tokens"
    except (KeyError, IndexError, TypeError, AttributeError):
        keys = ", ".join(sorted(payload)[:8])
        raise ProviderError("protocol", f"unexpected {provider} reply shape (keys: {keys})") from None


def decode_png_base64(data: str) -> bytes:
    """Inverse of the encoding used in requests (tests use it to check what the server received)."""
    if data.startswith("data:"):
        data = data.split(",", 1)[1]
    return base64.b64decode(data)


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def dumps_size(body: dict) -> int:
    """Size of the JSON body in bytes (logged so users see what large images cost)."""
    return len(json.dumps(body, separators=(",", ":")).encode())
