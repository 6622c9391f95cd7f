"""Vision-language critic against a real local HTTP server that speaks both wire protocols (no bpy, no internet)."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image
from pydantic import ValidationError

from vdbforge_addon.core.errors import VDBForgeError
from vdbforge_addon.ml.critic import (
    CriticConfig,
    CriticResult,
    CriticVerdict,
    critique,
    extract_json,
    rating_similarity,
    redact,
    weighted_score,
)
from vdbforge_addon.ml.critic_providers import decode_png_base64

KEY = "sk-test-SECRET-7f3a9c2e41d8b605"
WRONG_KEY = "sk-wrong-SECRET-00112233445566"
GOOD = {
    "rating": 7,
    "matches_reference": False,
    "differences": ["plume too thin"],
    "suggestions": ["raise density"],
    "specific_fixes": [{"area": "top", "problem": "wisps missing", "fix": "more vorticity"}],
    "reasoning": "extra keys are ignored",
}


class FakeLLMServer(ThreadingHTTPServer):
    """Answers /v1/chat/completions (OpenAI) and /v1/messages (Anthropic) from a script of actions, one per
    request (the last repeats): ("reply", text), ("status", code) or ("sleep", seconds)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.expected_key: str | None = KEY
        self.script: list[tuple] = [("reply", json.dumps(GOOD))]
        self.received: list[dict] = []
        self.lock = threading.Lock()

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeLLMServer

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/v1/chat/completions":
            protocol, auth = "openai", (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        elif self.path == "/v1/messages":
            protocol, auth = "anthropic", self.headers.get("x-api-key") or ""
        else:
            return self._send(404, {"error": "no such endpoint"})
        with self.server.lock:
            self.server.received.append({"protocol": protocol, "headers": dict(self.headers), "body": body})
            action = self.server.script[min(len(self.server.received), len(self.server.script)) - 1]
        if self.server.expected_key is not None and auth != self.server.expected_key:
            # Like real APIs, echo what was received: the client must redact it.
            return self._send(401, {"error": {"message": f"Incorrect API key provided: {auth}"}})
        if action[0] == "status":
            return self._send(action[1], {"error": {"message": "internal error"}})
        if action[0] == "sleep":
            time.sleep(action[1])
            return self._send(200, _envelope(protocol, json.dumps(GOOD)))
        return self._send(200, _envelope(protocol, action[1]))

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
            pass


def _envelope(protocol: str, text: str) -> dict:
    if protocol == "openai":
        message = {"role": "assistant", "content": text}
        return {"object": "chat.completion", "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}
    half = len(text) // 2  # two text blocks: the client must join them
    blocks = [{"type": "text", "text": text[:half]}, {"type": "text", "text": text[half:]}]
    return {"type": "message", "role": "assistant", "content": blocks, "stop_reason": "end_turn"}


def _user_parts(record: dict) -> tuple[list[str], list[tuple[int, int]]]:
    """Texts and decoded image sizes of the first user message, whichever protocol."""
    first = next(m for m in record["body"]["messages"] if m["role"] == "user")
    texts, sizes = [], []
    for part in first["content"]:
        if part["type"] == "text":
            texts.append(part["text"])
        elif part["type"] == "image_url":
            assert part["image_url"]["url"].startswith("data:image/png;base64,")
            sizes.append(Image.open(io.BytesIO(decode_png_base64(part["image_url"]["url"]))).size)
        elif part["type"] == "image":
            assert part["source"]["type"] == "base64" and part["source"]["media_type"] == "image/png"
            sizes.append(Image.open(io.BytesIO(decode_png_base64(part["source"]["data"]))).size)
    return texts, sizes


@pytest.fixture
def server():
    srv = FakeLLMServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def images(tmp_path):
    render = tmp_path / "render.png"
    Image.new("RGB", (80, 40), (200, 90, 20)).save(render)
    reference = tmp_path / "reference.png"
    Image.new("RGBA", (30, 20), (40, 40, 40, 255)).save(reference)
    return [render], [reference]


@pytest.fixture(autouse=True)
def keys(monkeypatch, caplog):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    caplog.set_level(logging.DEBUG)


def _config(server: FakeLLMServer, provider: str = "openai", **kw) -> CriticConfig:
    base = server.root + ("/v1" if provider == "openai" else "")
    return CriticConfig(provider=provider, model="test-vlm", base_url=base, max_image_px=32, **kw)


def _assert_no_key(result: CriticResult, caplog, *keys: str) -> None:
    for key in keys or (KEY,):
        assert key not in json.dumps(result.to_dict())
        assert key not in repr(result)
        assert key not in (result.error or "")
        assert key not in caplog.text


def test_openai_valid_reply_sends_images_text_and_bearer_key(server, images, caplog):
    result = critique(*images, "a dense black smoke column", _config(server))
    assert result.ok and result.error is None and result.attempts == 1 and result.latency_s > 0
    assert result.verdict.rating == 7 and result.verdict.specific_fixes[0].fix == "more vorticity"
    [record] = server.received
    assert record["headers"]["Authorization"] == f"Bearer {KEY}"
    body = record["body"]
    assert body["model"] == "test-vlm" and body["temperature"] == 0 and body["max_tokens"] == 1024
    assert body["messages"][0]["role"] == "system" and '"rating"' in body["messages"][0]["content"]
    texts, sizes = _user_parts(record)
    assert sizes == [(30, 20), (32, 16)]  # reference first (under the cap), render shrunk to 32 px
    assert "Target description: a dense black smoke column" in texts
    _assert_no_key(result, caplog)


def test_anthropic_fenced_json_with_prose_and_x_api_key(server, images, caplog):
    server.script = [("reply", "Here is my assessment:\n```json\n" + json.dumps(GOOD) + "\n```\nHope it helps {}")]
    result = critique(*images, "smoke", _config(server, "anthropic"))
    assert result.ok and result.verdict.matches_reference is False and result.attempts == 1
    [record] = server.received
    headers = {k.lower(): v for k, v in record["headers"].items()}
    assert headers["x-api-key"] == KEY and headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in headers
    assert "rating" in record["body"]["system"] and record["body"]["max_tokens"] == 1024
    texts, sizes = _user_parts(record)
    assert sizes == [(30, 20), (32, 16)] and "Target description: smoke" in texts
    _assert_no_key(result, caplog)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_malformed_then_valid_retries_once_with_correction(server, images, caplog, provider):
    server.script = [("reply", "The render looks quite good, I'd say 7/10."), ("reply", json.dumps(GOOD))]
    result = critique(*images, None, _config(server, provider))
    assert result.ok and result.attempts == 2 and len(server.received) == 2
    retry = server.received[1]["body"]["messages"]
    assert [m["role"] for m in retry][-2:] == ["assistant", "user"]
    correction = json.dumps(retry[-1]["content"])
    assert "could not be used" in correction and "no JSON object" in correction
    assert _user_parts(server.received[1])[1] == [(30, 20), (32, 16)]  # the images are sent again
    _assert_no_key(result, caplog)


def test_malformed_twice_is_an_error_result_and_loop_safe(server, images, caplog):
    server.script = [("reply", "not json at all")]
    results = [critique(*images, "smoke", _config(server)) for _ in range(3)]
    for result in results:
        assert not result.ok and result.error_kind == "malformed" and result.attempts == 2
        assert "after 2 attempts" in result.error and "\n" not in result.error
        assert result.replies == ["not json at all", "not json at all"]
        _assert_no_key(result, caplog)
    assert len(server.received) == 6


def test_invalid_schema_rating_11_is_retried_then_reported(server, images, caplog):
    server.script = [("reply", json.dumps({**GOOD, "rating": 11}))]
    result = critique(*images, "smoke", _config(server, "anthropic"))
    assert not result.ok and result.attempts == 2 and result.error_kind == "malformed"
    assert "rating" in result.error and "less than or equal to 10" in result.error
    _assert_no_key(result, caplog)


def test_http_500_is_an_error_result_without_retry(server, images, caplog):
    server.script = [("status", 500)]
    result = critique(*images, "smoke", _config(server))
    assert not result.ok and result.error_kind == "http" and result.attempts == 1
    assert result.error.startswith("HTTP 500 from http://127.0.0.1:") and "internal error" in result.error
    assert len(server.received) == 1
    _assert_no_key(result, caplog)


def test_slow_server_times_out(server, images, caplog):
    server.script = [("sleep", 2.0)]
    started = time.monotonic()
    result = critique(*images, "smoke", _config(server, timeout_s=0.3))
    assert time.monotonic() - started < 1.5
    assert not result.ok and result.error_kind == "timeout" and "0.3 s" in result.error
    _assert_no_key(result, caplog)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_wrong_key_gets_401_and_is_redacted(server, images, caplog, provider):
    result = critique(*images, "smoke", _config(server, provider), api_key=WRONG_KEY)
    assert not result.ok and result.error_kind == "auth" and result.error.startswith("HTTP 401")
    assert "Incorrect API key provided: ***" in result.error  # the server echoed it; we redacted it
    _assert_no_key(result, caplog, KEY, WRONG_KEY)


def test_local_server_without_auth_sends_no_key(server, images, monkeypatch, caplog):
    monkeypatch.delenv("OPENAI_API_KEY")
    server.expected_key = None
    result = critique(*images, "smoke", _config(server, api_key_env=""))
    assert result.ok
    assert "Authorization" not in server.received[0]["headers"]


def test_connection_refused_is_a_transport_error(images, caplog):
    with FakeLLMServer() as probe:  # bind then close: a port nobody listens on
        port = probe.server_address[1]
    config = CriticConfig(model="m", base_url=f"http://127.0.0.1:{port}/v1", timeout_s=2)
    result = critique(*images, "smoke", config)
    assert not result.ok and result.error_kind == "transport" and result.attempts == 1
    _assert_no_key(result, caplog)


def test_configuration_mistakes_raise_one_line_errors(server, images, monkeypatch, tmp_path):
    config = _config(server)
    with pytest.raises(VDBForgeError, match="no render images"):
        critique([], images[1], "smoke", config)
    with pytest.raises(VDBForgeError, match="reference image or a target description"):
        critique(images[0], [], "  ", config)
    with pytest.raises(VDBForgeError, match="image not found: .*missing.png"):
        critique([tmp_path / "missing.png"], images[1], "smoke", config)
    (tmp_path / "junk.png").write_text("not an image")
    with pytest.raises(VDBForgeError, match="cannot read image"):
        critique([tmp_path / "junk.png"], [], "smoke", config)
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(VDBForgeError, match="ANTHROPIC_API_KEY") as info:
        critique(*images, "smoke", _config(server, "anthropic"))
    assert "\n" not in str(info.value)
    assert critique(*images, "smoke", _config(server, "anthropic"), api_key=KEY).ok  # key from preferences
    assert server.received[-1]["headers"]["x-api-key"] == KEY


def test_config_defaults_public_dict_and_refused_secrets():
    openai = CriticConfig(model="gpt-x")
    assert openai.base_url == "https://api.openai.com/v1" and openai.api_key_env == "OPENAI_API_KEY"
    anthropic = CriticConfig(provider="anthropic", model="claude-x")
    assert anthropic.base_url == "https://api.anthropic.com" and anthropic.api_key_env == "ANTHROPIC_API_KEY"
    assert anthropic.temperature == 0 and anthropic.weight == 0
    public = anthropic.public_dict()
    assert public["api_key_env"] == "ANTHROPIC_API_KEY" and "api_key" not in public
    assert set(public) == set(CriticConfig.model_fields)  # every field is public because none is a secret
    assert CriticConfig.model_validate(json.loads(json.dumps(public))) == anthropic
    with pytest.raises(ValidationError) as info:  # a key pasted where the variable name belongs
        CriticConfig(model="m", api_key_env=KEY)
    assert KEY not in str(info.value) and KEY not in repr(info.value)
    with pytest.raises(ValidationError) as info:
        CriticConfig(model="m", base_url=f"https://user:{KEY}@example.com/v1")
    assert KEY not in str(info.value)


def test_extract_json_from_prose_fences_and_nested_braces():
    assert extract_json('{"a": 1}') == {"a": 1}
    assert extract_json('Sure! ```json\n{"a": {"b": "}{"}}\n``` done') == {"a": {"b": "}{"}}
    assert extract_json('Set {x} first, then {"rating": 3} and {"rating": 4}') == {"rating": 3}
    assert extract_json("[1, 2]") is None and extract_json("") is None and extract_json("{broken") is None


def test_verdict_validation_rating_similarity_and_weighted_score():
    verdict = CriticVerdict.model_validate({"rating": "4", "matches_reference": True})
    assert verdict.differences == [] and verdict.specific_fixes == []
    with pytest.raises(ValidationError):
        CriticVerdict.model_validate({"rating": 7.5, "matches_reference": True})
    for bad in (0, True, "seven"):
        with pytest.raises(ValidationError):
            CriticVerdict.model_validate({"rating": bad, "matches_reference": True})
    assert rating_similarity(CriticVerdict(rating=1, matches_reference=False)) == 0.0
    assert rating_similarity(CriticVerdict(rating=10, matches_reference=True)) == 1.0
    assert rating_similarity(verdict) == pytest.approx(1 / 3)
    ok = CriticResult(provider="openai", model="m", verdict=verdict)
    failed = CriticResult(provider="openai", model="m", error="HTTP 500", error_kind="http")
    assert weighted_score(0.8, ok, 0.0) == 0.8
    assert weighted_score(0.8, ok, 0.25) == pytest.approx(0.75 * 0.8 + 0.25 / 3)
    assert weighted_score(0.8, failed, 0.5) == 0.8 and weighted_score(0.8, None, 0.5) == 0.8


def test_redact_replaces_every_secret():
    assert redact(f"x {KEY} y {KEY}", [KEY, None, ""]) == "x *** y ***"


def test_importing_the_critic_loads_no_bpy_requests_or_pil():
    code = (
        "import sys, vdbforge_addon.ml.critic\n"
        "print(sorted(m for m in ('bpy', 'requests', 'PIL', 'torch') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"
