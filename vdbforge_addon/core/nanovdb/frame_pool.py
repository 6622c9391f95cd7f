"""Convert a sequence of .vdb frames to .nvdb with helper processes beside this one.

The conversion is many mid-size numpy operations and holds the GIL for much of its time, so threads inside one frame
buy only 1.15-1.2x on two cores (measured on 128^3 frames). Frames are independent, so whole frames go to helper
processes (plain Python with numpy and the caller's own openvdb module; no bpy), while this process goes on writing
the next .vdb, takes a queued frame itself whenever more are waiting than there are helpers, and converts what is
left at the end. With helpers running, blosc compresses on one thread per process (the cores are already busy).

Helpers start only when they pay for themselves: frames are converted here and timed until one shows that the frames
still to come would keep this process busy for HELPER_WORTH_SECONDS; then helpers (one per other core) start. Memory
stays bounded by one frame per process; every output appears under its final name only when complete
(writer.write_built); a helper is killed with this process, and on an error or a cancel.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from ..errors import VDBForgeError
from ..worker_client import child_environment, die_with_parent
from .codec import restore_blosc_threads, single_threaded_blosc
from .openvdb_io import convert_vdb_file
from .writer import check_options

PACKAGE_DIR = Path(__file__).resolve().parents[2]
# a helper's start (interpreter, numpy and openvdb imports) costs about 0.3 s of one core
HELPER_WORTH_SECONDS = 1.0
STOP_SECONDS = 10.0
HELPERS_ENV = "VDBFORGE_NVDB_HELPERS"


def helpers_from_environment() -> int | None:
    """`$VDBFORGE_NVDB_HELPERS`: a fixed number of helper processes (0: convert everything in this process); unset
    means one per other core, started only when the sequence is worth it."""
    raw = os.environ.get(HELPERS_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise VDBForgeError(f"${HELPERS_ENV} must be a whole number of helper processes, got '{raw}'")
    return int(raw)


@dataclass
class _Task:
    index: int
    src: str
    dst: str


class FrameConverter:
    """`submit(src, dst)` each frame as its .vdb is written, then `finish()` for the .nvdb paths in submission order.

    Use as a context manager: leaving it (normally or by an exception) stops the helpers. A failed frame raises its
    one-line error from the next `submit()` or from `finish()`."""

    def __init__(
        self,
        openvdb: ModuleType,
        *,
        frames: int,
        codec: str = "none",
        quantize: str | None = None,
        tolerance: float | None = None,
        helpers: int | None = None,
    ) -> None:
        self._openvdb = openvdb
        self._options = {"codec": codec, "quantize": check_options(codec, quantize, tolerance), "tolerance": tolerance}
        self._frames = frames
        if helpers is None:
            helpers = helpers_from_environment()
        self._max_helpers = max((os.cpu_count() or 1) - 1, 0) if helpers is None else helpers
        self._force = helpers is not None
        self._cond = threading.Condition()
        self._queue: deque[_Task] = deque()
        self._running = 0
        self._closing = False
        self._done: dict[int, str] = {}
        self._errors: dict[int, str] = {}
        self._helpers: list[_Helper] = []
        self._submitted = 0
        self._started = 0
        self._blosc_threads: int | None = None

    @property
    def helper_pids(self) -> list[int]:
        return [h.process.pid for h in self._helpers]

    @property
    def helpers_used(self) -> int:
        """How many helper processes this sequence started (they are gone after finish())."""
        return self._started

    @property
    def queued(self) -> int:
        """Frames submitted that no process has started yet."""
        with self._cond:
            return len(self._queue)

    def submit(self, src: str | os.PathLike, dst: str | os.PathLike) -> None:
        self._raise_failure()
        task = _Task(self._submitted, str(src), str(dst))
        self._submitted += 1
        if self._helpers:
            with self._cond:
                self._queue.append(task)
                self._cond.notify()
                # frames arrive faster than the helpers convert them: take one here, so the backlog (and the wait in
                # finish(), which progress reports cannot show) stays short
                backlog = self._queue.popleft() if len(self._queue) > len(self._helpers) else None
            if backlog is not None:
                self._convert_here(backlog)
            return
        seconds = self._convert_here(task)
        # judged again after every frame: a simulation's first frames are nearly empty and later ones far larger
        if self._max_helpers > 0 and (
            self._force or seconds * (self._frames - self._submitted) >= HELPER_WORTH_SECONDS
        ):
            self._start_helpers()

    def finish(self) -> list[str]:
        while True:
            self._raise_failure()
            with self._cond:
                task = self._queue.popleft() if self._queue else None
            if task is None:
                break
            self._convert_here(task)
        with self._cond:
            while self._running and not self._errors:
                self._cond.wait()
        self._raise_failure()
        self.close()
        return [self._done[i] for i in range(self._submitted)]

    def close(self, kill: bool = False) -> None:
        with self._cond:
            self._closing = True
            self._queue.clear()
            self._cond.notify_all()
        for helper in self._helpers:
            helper.stop(kill)
        self._helpers = []
        restore_blosc_threads(self._blosc_threads)
        self._blosc_threads = None

    def __enter__(self) -> FrameConverter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(kill=exc_type is not None)

    def _convert_here(self, task: _Task) -> float:
        start = time.perf_counter()
        workers = 1 if self._helpers else None
        convert_vdb_file(task.src, task.dst, self._openvdb, **self._options, workers=workers)
        self._done[task.index] = task.dst
        return time.perf_counter() - start

    def _raise_failure(self) -> None:
        with self._cond:
            if self._errors:
                raise VDBForgeError(self._errors[min(self._errors)])

    def _start_helpers(self) -> None:
        # this process's own path too: inside Blender the extension's wheels (blosc) live on an added site folder
        paths = [str(PACKAGE_DIR.parent), *sys.path]
        module = (self._openvdb.__name__, str(Path(self._openvdb.__file__).resolve()))
        code = (
            f"import sys; sys.path[:0] = {paths!r}; "
            f"from {PACKAGE_DIR.name}.core.nanovdb.frame_helper import serve; serve(*{module!r})"
        )
        env = child_environment()
        for _ in range(self._max_helpers):
            self._helpers.append(_Helper(self, [sys.executable, "-s", "-c", code], env))
        self._started = len(self._helpers)
        self._blosc_threads = single_threaded_blosc()

    def _take(self) -> _Task | None:
        with self._cond:
            while not self._queue and not self._closing:
                self._cond.wait()
            if self._closing:
                return None
            self._running += 1
            return self._queue.popleft()

    def _report(self, task: _Task, ok: bool, error: str) -> None:
        with self._cond:
            self._running -= 1
            if ok:
                self._done[task.index] = task.dst
            elif not self._closing:
                self._errors[task.index] = error
            self._cond.notify_all()


class _Helper:
    """One helper process and the thread that feeds it tasks and waits for its replies."""

    def __init__(self, owner: FrameConverter, argv: list[str], env: dict[str, str]) -> None:
        self._owner = owner
        # started from the caller's thread: the parent-death signal follows the thread that forked
        self.process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True, encoding="utf-8",
            preexec_fn=die_with_parent if sys.platform.startswith("linux") else None,
        )  # fmt: skip
        self._thread = threading.Thread(target=self._serve, name="nvdb-helper", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while (task := self._owner._take()) is not None:
            try:
                ok, error = self._convert(task)
            except Exception as exc:  # whatever it is, it fails this frame; finish() must not wait for it forever
                ok, error = False, f"the NanoVDB helper failed on '{task.src}': {type(exc).__name__}: {exc}"
            self._owner._report(task, ok, error)
            if not ok and self.process.poll() is not None:
                return

    def _convert(self, task: _Task) -> tuple[bool, str]:
        line = ""
        try:
            self.process.stdin.write(json.dumps({"src": task.src, "dst": task.dst, **self._owner._options}) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        except (OSError, ValueError):  # its pipe broke, or close() shut stdin under us
            pass
        if not line:
            code = self.process.wait()
            return False, f"the NanoVDB helper process died (exit code {code}) on '{task.src}'"
        reply = json.loads(line)
        return reply["ok"], reply.get("error", "")

    def stop(self, kill: bool) -> None:
        if kill:
            self.process.kill()
        with contextlib.suppress(BrokenPipeError):  # a dead helper; its exit code was reported with its frame
            self.process.stdin.close()
        try:
            self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._thread.join()
        self.process.stdout.close()
