"""Building a preset's image → parameters model from the Iterate panel: `vdbforge dataset` then `vdbforge train` as
one step-driven session (the panel's timer steps it, Esc cancels, headless code runs it to the end).

The dataset lives in `<user data>/datasets/<preset>-<kind key>`, one folder per kind of dataset (settings, preset
space, Blender), so building again continues it: a cancel keeps every finished sample. Training runs in a worker
process (a `train` job): minutes of CPU that must neither freeze Blender nor outlive a cancel. The model is written
atomically to the models folder by the worker, so a cancelled or failed training leaves the previous model in place.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .dataset_format import INDEX_FILE
from .dataset_job import DatasetJob, DatasetSettings, DatasetState, clock_text
from .preset_model import Preset
from .worker_client import WorkerCommand, WorkerHandle
from .worker_session import SessionState, run_until_done

DATASET_SHARE = 0.9  # of the progress bar; training has no steps to count


class InverseBuildSession:
    def __init__(
        self,
        preset: Preset,
        datasets_root: Path,
        settings: DatasetSettings,
        model_file: Path,
        *,
        command: WorkerCommand | None = None,
        extra_sys_path: list[str] | None = None,
        train_timeout: float = 3600.0,
    ) -> None:
        kind = DatasetJob(datasets_root, preset, settings).kind_key()
        self.job = DatasetJob(datasets_root / f"{preset.id}-{kind}", preset, settings, command, extra_sys_path)
        self.job.open()  # refuses (VDBForgeError) before anything starts
        self.model_file = model_file
        self.command, self.extra_sys_path, self.train_timeout = command, extra_sys_path, train_timeout
        self.trainer: WorkerHandle | None = None
        self.state = SessionState(stage="dataset", total=settings.n)
        self._mirror(self.job.state)

    @property
    def dataset_dir(self) -> Path:
        return self.job.folder

    def step(self) -> SessionState:
        if not self.state.running:
            return self.state
        if self.trainer is None:
            data = self.job.step()
            self._mirror(data)
            if data.finished:
                self._start_training()
            return self.state
        outcome = self.trainer.poll()
        if outcome is None:
            self.state.message = f"Training (atlas vs CNN) {clock_text(self.trainer_seconds())}"
        elif outcome.ok:
            report: dict[str, Any] = outcome.result or {}
            self.state.result = {**report, "dataset": str(self.dataset_dir)}
            self.state.finished, self.state.fraction, self.state.stage = True, 1.0, "done"
            mae = report.get("approaches", {}).get(report.get("winner"), {}).get("mae")
            error = f", held-out error {mae:.3f}" if isinstance(mae, float) else ""
            self.state.message = f"Model ready ({report.get('winner')}{error})"
        else:
            self.state.failed, self.state.stage = True, "train"
            message = " ".join(str((outcome.failure or {}).get("message", "training failed")).split())
            self.state.error = self.state.message = (
                f"training failed: {message} (log: {self.dataset_dir / 'train.log'})"
            )
        return self.state

    def trainer_seconds(self) -> float:
        return time.monotonic() - self.trainer.started if self.trainer else 0.0

    def cancel(self) -> SessionState:
        """Stop now: finished samples stay for the next build; a training in flight is killed, no model written."""
        if not self.state.running:
            return self.state
        if self.trainer is not None:
            self.trainer.cancel()
            self.trainer.wait()
        else:
            self.job.cancel()
            self._mirror(self.job.state)
        self.state.cancelled = True
        self.state.message = (
            f"Cancelled: {self.job.state.ok} samples kept in {self.dataset_dir}; Build Model continues from there"
        )
        return self.state

    def run_to_end(self) -> SessionState:
        return run_until_done(self.step, interval=0.2)

    def _mirror(self, data: DatasetState) -> None:
        state = self.state
        state.done, state.total = data.done, data.total
        state.fraction = DATASET_SHARE * data.done / max(data.total, 1)
        eta = f", ETA {clock_text(data.eta)}" if data.eta is not None and not data.finished else ""
        state.message = f"Dataset {data.done}/{data.total} samples (ok {data.ok}, failed {data.failed}){eta}"

    def _start_training(self) -> None:
        if self.job.state.ok == 0:
            self.state.failed = True
            self.state.error = self.state.message = (
                f"no sample of the dataset succeeded; see {self.dataset_dir / INDEX_FILE}"
            )
            return
        self.state.stage = "train"
        job = {"kind": "train", "dataset": str(self.dataset_dir), "out": str(self.model_file), "seed": 0}
        self.trainer = WorkerHandle(
            job,
            self.dataset_dir / "train_job.json",
            timeout=self.train_timeout,
            command=self.command,
            log_path=self.dataset_dir / "train.log",
            extra_sys_path=self.extra_sys_path,
        )
        self.state.message = "Training (atlas vs CNN)"
