"""Parent side of a worker: start it in a clean process, stream its messages, turn any death into a failure dict."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .atomic import write_json
from .paths import user_data_dir
from .protocol import FD_ENV, PREFIX, classify_exit

OnMessage = Callable[[dict[str, Any]], None]
PACKAGE_DIR = Path(__file__).resolve().parent.parent


def die_with_parent() -> None:
    """Runs in the child before exec: if the parent is killed (kill -9 of a match run), the kernel kills the worker
    too, instead of leaving an orphan baking into a folder nobody will read."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def child_environment() -> dict[str, str]:
    """This process's environment for a child Python that sets its own sys.path (a worker, a NanoVDB helper): the
    variables that would put another interpreter's modules first are dropped."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}


@dataclass
class WorkerCommand:
    """How to start a worker: the pip-wheel interpreter (`python -m`) or a real Blender binary (`-b --python-expr`)."""

    argv_prefix: list[str]
    mode: str

    @classmethod
    def detect(cls, blender_binary: str | None = None) -> WorkerCommand:
        if blender_binary:
            return cls(
                [blender_binary, "-b", "--factory-startup", "--python-exit-code", "1", "--python-expr"], "blender"
            )
        return cls([sys.executable, "-s", "-u"], "module")


@dataclass
class WorkerOutcome:
    ok: bool
    result: dict[str, Any] | None
    failure: dict[str, Any] | None
    returncode: int | None
    seconds: float
    messages: list[dict[str, Any]] = field(default_factory=list)


class WorkerHandle:
    """One running worker. `poll()` is non-blocking so a modal operator can drive it; `wait()` blocks."""

    def __init__(
        self,
        job: dict[str, Any],
        job_path: Path,
        *,
        timeout: float | None = None,
        on_message: OnMessage | None = None,
        command: WorkerCommand | None = None,
        log_path: Path | None = None,
        extra_sys_path: list[str] | None = None,
    ) -> None:
        self.job_path = Path(job_path)
        write_json(self.job_path, job)
        self.timeout = timeout
        self.on_message = on_message
        self.messages: list[dict[str, Any]] = []
        self._tail: collections.deque[str] = collections.deque(maxlen=200)
        self._log = open(log_path, "w", encoding="utf-8") if log_path else None  # noqa: SIM115 - closed in _finish
        self._result: dict[str, Any] | None = None
        self._error: dict[str, Any] | None = None
        self._cancelled = False
        self._timed_out = False
        self._outcome: WorkerOutcome | None = None
        self._lock = threading.Lock()
        self.started = time.monotonic()

        command = command or WorkerCommand.detect()
        read_fd, write_fd = os.pipe()
        env = child_environment()
        env[FD_ENV] = str(write_fd)
        env.setdefault("PYTHONUNBUFFERED", "1")
        paths = [str(PACKAGE_DIR.parent), *(extra_sys_path or [])]
        package = PACKAGE_DIR.name
        if command.mode == "module":
            code = f"import sys; sys.path[:0] = {paths!r}; from {package}.worker import main; sys.exit(main([{str(self.job_path)!r}]))"
            argv = [*command.argv_prefix, "-c", code]
        else:
            code = f"import sys; sys.path[:0] = {paths!r}; from {package}.worker import main; main([{str(self.job_path)!r}])"
            argv = [*command.argv_prefix, code]
        # Mantaflow writes its wavelet noise tile (24 MB) into the working folder and reuses it from there.
        workdir = user_data_dir() / "worker"
        workdir.mkdir(parents=True, exist_ok=True)
        # A worker loads factory settings, and Blender then syncs the extension wheels to "nothing enabled": with the
        # user's own resources folder that deletes the wheels the running extension still imports from. Workers get
        # a private one.
        env["BLENDER_USER_RESOURCES"] = str(workdir / "blender_user")
        self.process = subprocess.Popen(
            argv,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            pass_fds=(write_fd,),
            start_new_session=True,
            preexec_fn=die_with_parent if sys.platform.startswith("linux") else None,
        )
        os.close(write_fd)
        self._protocol = os.fdopen(read_fd, "r", encoding="utf-8", errors="replace")
        self._threads = [
            threading.Thread(target=self._read_protocol, daemon=True),
            threading.Thread(target=self._read_output, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _handle(self, message: dict[str, Any]) -> None:
        with self._lock:
            self.messages.append(message)
            if message.get("type") == "result":
                self._result = message.get("result")
            elif message.get("type") == "error":
                self._error = message.get("failure")
        if self.on_message is not None:
            self.on_message(message)

    def _read_protocol(self) -> None:
        for line in self._protocol:
            try:
                self._handle(json.loads(line))
            except json.JSONDecodeError:
                self._tail.append(line)

    def _read_output(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode("utf-8", errors="replace")
            if PREFIX in line:
                try:
                    self._handle(json.loads(line.split(PREFIX, 1)[1]))
                    continue
                except json.JSONDecodeError:
                    pass
            self._tail.append(line)
            if self._log is not None:
                self._log.write(line)

    def cancel(self) -> None:
        self._cancelled = True
        self._kill()

    def _kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def poll(self) -> WorkerOutcome | None:
        """None while running; the outcome once the worker has ended (killing it first if it overran its time)."""
        if self._outcome is not None:
            return self._outcome
        if self.process.poll() is None:
            if self.timeout is not None and time.monotonic() - self.started > self.timeout:
                self._timed_out = True
                self._kill()
            else:
                return None
        self.process.wait()
        return self._finish()

    def wait(self, interval: float = 0.1) -> WorkerOutcome:
        while (outcome := self.poll()) is None:
            time.sleep(interval)
        return outcome

    def _finish(self) -> WorkerOutcome:
        for thread in self._threads:
            thread.join(timeout=5)
        if self._log is not None:
            self._log.close()
        rc = self.process.returncode
        tail = "".join(self._tail)
        failure = None
        if self._cancelled or self._timed_out:
            failure = classify_exit(rc, tail, timed_out=self._timed_out, cancelled=self._cancelled)
        elif self._error is not None:
            failure = {**self._error, "stderr_tail": tail[-4000:]}
        elif self._result is None or rc != 0:
            failure = classify_exit(rc, tail, timed_out=False, cancelled=False)
        ok = failure is None and self._result is not None
        self._outcome = WorkerOutcome(
            ok=ok,
            result=self._result if ok else None,
            failure=failure,
            returncode=rc,
            seconds=time.monotonic() - self.started,
            messages=self.messages,
        )
        return self._outcome


def run_worker(job: dict[str, Any], job_path: Path, **kwargs: Any) -> WorkerOutcome:
    return WorkerHandle(job, job_path, **kwargs).wait()
