"""The worker's JSON-lines protocol and the classification of a dead worker into a structured failure.

Messages travel on a dedicated pipe (fd in $VDBFORGE_PROTOCOL_FD) because Mantaflow and Blender write freely to
stdout; without that fd (e.g. a user running the worker by hand) they go to stdout behind PREFIX.
"""

from __future__ import annotations

import json
import os
import re
import sys
import traceback
from typing import Any, Literal

PREFIX = "@@VDBFORGE@@ "
FD_ENV = "VDBFORGE_PROTOCOL_FD"

MessageType = Literal["status", "progress", "result", "error", "log"]
FailureKind = Literal["python", "blender", "mantaflow", "timeout", "killed", "cancelled"]

_MANTA_MARKERS = ("Manta::Error", "mantaflow", "Mantaflow", "can't clean grid cache", "manta_script")


class Emitter:
    """Worker side: writes one JSON object per line to the protocol channel."""

    def __init__(self) -> None:
        fd = os.environ.get(FD_ENV)
        self._stream = os.fdopen(int(fd), "w", buffering=1, encoding="utf-8", closefd=False) if fd else None

    def send(self, type_: MessageType, **fields: Any) -> None:
        line = json.dumps({"type": type_, **fields}, default=str)
        if self._stream is not None:
            self._stream.write(line + "\n")
            self._stream.flush()
        else:
            sys.stdout.write(PREFIX + line + "\n")
            sys.stdout.flush()

    def status(self, stage: str, message: str = "") -> None:
        self.send("status", stage=stage, message=message)

    def progress(self, stage: str, done: int, total: int, message: str = "") -> None:
        self.send("progress", stage=stage, done=done, total=total, message=message)


def failure_from_exception(exc: BaseException) -> dict[str, Any]:
    """The innermost frame that belongs to our package names the file and line; Blender operator errors are 'blender'."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "vdbforge" in f.filename] or frames
    where = ours[-1] if ours else None
    message = " ".join(str(exc).split()) or type(exc).__name__
    from .errors import VDBForgeError

    if isinstance(exc, VDBForgeError):  # already a complete one-line message for the user
        return {"kind": "python", "message": message, "user_error": True, "file": None, "line": None,
                "stderr_tail": ""}  # fmt: skip
    kind: FailureKind = "python"
    if isinstance(exc, RuntimeError) and message.startswith(("Error:", "Operator bpy.ops", "RuntimeError: Error")):
        kind = "blender"
    if any(marker in message for marker in ("Manta::Error", "mantaflow")):
        kind = "mantaflow"
    return {
        "kind": kind,
        "message": f"{type(exc).__name__}: {message}" if kind == "python" else message,
        "file": os.path.basename(where.filename) if where else None,
        "line": where.lineno if where else None,
        "stderr_tail": "",
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:],
    }


_MANTA_ERROR_RE = re.compile(r"(Manta::Error[^\n]*|Error: [^\n]*mantaflow[^\n]*|AttributeError: [^\n]*)")
_PY_ERROR_RE = re.compile(r'File "([^"]+)", line (\d+)')


def classify_exit(returncode: int | None, output_tail: str, *, timed_out: bool, cancelled: bool) -> dict[str, Any]:
    """A worker that died without sending an error message: decide why from its exit status and its last output."""
    tail = output_tail[-4000:]
    if cancelled:
        return _failure("cancelled", "cancelled by the user", tail)
    if timed_out:
        return _failure("timeout", "the worker exceeded its time limit and was stopped", tail)
    if returncode in (-9, 137):
        return _failure("killed", "the worker was killed (SIGKILL: out of memory or stopped from outside)", tail)
    if any(marker in tail for marker in _MANTA_MARKERS):
        match = _MANTA_ERROR_RE.search(tail)
        detail = match.group(1).strip() if match else f"process aborted with exit status {returncode}"
        return _failure("mantaflow", f"Mantaflow aborted the bake: {detail}", tail)
    if returncode is not None and returncode < 0:
        return _failure("blender", f"Blender crashed with signal {-returncode} ({_signal_name(-returncode)})", tail)
    last_line = next((ln for ln in reversed(tail.splitlines()) if ln.strip()), "no output")
    failure = _failure("python", f"the worker exited with status {returncode}: {last_line.strip()}", tail)
    files = _PY_ERROR_RE.findall(tail)
    if files:
        failure["file"], failure["line"] = os.path.basename(files[-1][0]), int(files[-1][1])
    return failure


def _failure(kind: FailureKind, message: str, tail: str) -> dict[str, Any]:
    return {"kind": kind, "message": message, "file": None, "line": None, "stderr_tail": tail}


def _signal_name(number: int) -> str:
    import signal

    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown signal"
