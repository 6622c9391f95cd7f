"""`vdbforge dataset`: N parameter vectors over a preset's whole space, each baked and previewed by a worker.

Points come from a scrambled Sobol sequence (scipy.stats.qmc) over every tunable, simulation and render, in
`SearchSpace` order and units. The job is driven one non-blocking `step()` at a time over a pool of `render` workers,
like `match`. Crash safety (docs/INVERSE.md): a sample's folder appears by rename from a staging folder only once it
holds its previews, sample.json and the `done` marker; its record is then appended to index.jsonl with one write and an
fsync. A killed job resumes with the same command: finished samples are skipped, staging folders are removed, and a
sample renamed into place whose record the kill cut off gets its record back from its own sample.json.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import dataset_format as fmt
from .atomic import append_line, check_writable_dir, write_json, write_text
from .errors import VDBForgeError
from .match_space import SearchSpace
from .preset_model import Preset
from .render_run import RenderOptions, build_render_job, resolve_render_preset
from .worker_client import WorkerCommand, WorkerHandle
from .worker_pool import PoolWorker, collect_finished, stop_workers

_PREVIEW_NAME = re.compile(r"f(\d+)_a(\d+)")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class DatasetSettings:
    n: int
    seed: int = 0
    resolution: int | None = None
    frames: tuple[int, int] | None = None
    preview_frames: list[int] | None = None
    angles: int = 1
    preview_size: int = 128
    workers: int = 2
    timeout: float = 3600.0
    keep_bakes: bool = False
    retry_failed: bool = False

    def check(self) -> None:
        if not 1 <= self.n <= 1_000_000:
            raise VDBForgeError(f"--n {self.n} is outside [1, 1000000]")
        if not 1 <= self.workers <= 64:
            raise VDBForgeError(f"--workers {self.workers} is outside [1, 64]")
        if self.timeout <= 0:
            raise VDBForgeError("--timeout must be positive")


def clock_text(seconds: float | None) -> str:
    """Elapsed time or an ETA as m:ss, or h:mm:ss from an hour on; "--:--" when not known yet."""
    if seconds is None:
        return "--:--"
    seconds = int(round(seconds))
    return (
        f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else f"{seconds // 60}:{seconds % 60:02d}"
    )


def sobol_points(dimensions: int, n: int, seed: int) -> list[list[float]]:
    """The first n points of one scrambled Sobol sequence: a larger n extends a dataset with the same seed."""
    from scipy.stats import qmc

    sampler = qmc.Sobol(d=dimensions, scramble=True, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # scipy's note that n is not a power of two
        points = sampler.random_base2(max(0, math.ceil(math.log2(n)))) if n > 1 else sampler.random(1)
    return [[float(v) for v in row] for row in points[:n]]


@dataclass
class DatasetState:
    total: int = 0
    ok: int = 0
    failed: int = 0
    running: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    eta: float | None = None
    finished: bool = False
    cancelled: bool = False
    last_message: str = ""

    @property
    def done(self) -> int:
        return self.ok + self.failed


class DatasetJob:
    def __init__(
        self,
        folder: str | os.PathLike,
        preset: Preset,
        settings: DatasetSettings,
        command: WorkerCommand | None = None,
        extra_sys_path: list[str] | None = None,
    ) -> None:
        settings.check()
        self.folder = Path(folder).expanduser().absolute()
        self.space = SearchSpace.of(preset)
        self.settings = settings
        self.command, self.extra_sys_path = command, extra_sys_path
        self.dims = (*self.space.simulation, *self.space.render)
        self.points = sobol_points(len(self.dims), settings.n, settings.seed)
        # Resolving the settings up front turns bad --resolution / --frames values into an error before anything starts.
        self.description = fmt.describe_dataset(self.space, self._identity(), _now())
        self.records: dict[int, dict[str, Any]] = {}
        self.running: dict[int, PoolWorker] = {}
        self.queue: list[int] = []
        self.state = DatasetState(total=settings.n)
        self.started = time.monotonic()
        self.finished_here = 0
        self.cancelled = False

    # ---- settings -------------------------------------------------------------------------------------------------
    def options(self, index: int | None) -> RenderOptions:
        """The render options of sample `index`; None: the preset's own values (for what all samples share)."""
        s = self.settings
        return RenderOptions(
            overrides=self.space.from_unit(self.dims, self.points[index]) if index is not None else {},
            resolution=s.resolution,
            frames=(s.frames[0], s.frames[1], 1) if s.frames else None,
            angles=s.angles,
            preview_size=s.preview_size,
            export={"nanovdb": False},
            preview_frames=s.preview_frames,
            keep_cache=False,
        )

    def _identity(self) -> dict[str, Any]:
        resolved = resolve_render_preset(self.space.preset, self.options(None))
        return {
            "n": self.settings.n,
            "seed": self.settings.seed,
            "sampler": "sobol-scrambled",
            "resolution": resolved.domain.resolution,
            "frames": [resolved.domain.frame_start, resolved.domain.frame_end],
            "preview_frames": list(self.settings.preview_frames or resolved.render.preview_frames),
            "angles": resolved.render.angles,
            "preview_size": self.settings.preview_size,
            "preview_width": resolved.render.width,
            "preview_height": resolved.render.height,
            "keep_bakes": self.settings.keep_bakes,
        }

    def kind_key(self) -> str:
        """A short hash of what a rerun must share to extend this dataset (everything but N): names one folder per
        kind of dataset, so a build with other settings starts its own instead of being refused."""
        d = self.description
        same = {k: d[k] for k in ("preset_id", "space_hash", "scene_hash")}
        same["settings"] = {k: d["settings"][k] for k in fmt.IDENTITY_SETTINGS}
        same["blender"] = d["versions"].get("blender")
        return hashlib.sha256(json.dumps(same, sort_keys=True).encode()).hexdigest()[:10]

    def pending(self, records: dict[int, dict[str, Any]]) -> list[int]:
        """Sample indices still to do: not recorded yet, or recorded as failed when --retry-failed asks again."""
        done = {i for i, r in records.items() if r["status"] == "ok" or not self.settings.retry_failed}
        return [i for i in range(self.settings.n) if i not in done]

    # ---- opening and resuming -------------------------------------------------------------------------------------
    def check_existing(self) -> None:
        """Raise if DIR holds a dataset this command would not continue (read-only: safe for --dry-run)."""
        if (self.folder / fmt.DATASET_FILE).is_file():
            fmt.check_same_dataset(fmt.load_dataset(self.folder), self.description, self.folder)
        elif self.folder.exists() and (not self.folder.is_dir() or any(self.folder.iterdir())):
            raise VDBForgeError(f"{self.folder} exists and is not a dataset folder: use an empty or new --out")

    def open(self) -> None:
        self.check_existing()
        check_writable_dir(self.folder)
        path = self.folder / fmt.DATASET_FILE
        if path.is_file():
            stored = fmt.load_dataset(self.folder)
            stored["settings"]["n"] = max(stored["settings"]["n"], self.settings.n)
            stored.setdefault("resumes", []).append(_now())
            write_json(path, stored)
        else:
            write_json(path, self.description)
        self._repair_index()
        samples = self.folder / fmt.SAMPLES
        samples.mkdir(exist_ok=True)
        for stage in samples.glob(f"{fmt.STAGING_PREFIX}*"):
            shutil.rmtree(stage, ignore_errors=True)  # samples in flight when the job was killed: redone
        self.records = fmt.read_index(self.folder)
        self._recover_orphans(samples)
        self.queue = self.pending(self.records)
        self._update_state()

    def _repair_index(self) -> None:
        """A kill mid-append leaves a torn last line; end it so the next record starts on its own line."""
        path = self.folder / fmt.INDEX_FILE
        if path.is_file() and path.stat().st_size:
            with open(path, "rb") as handle:
                handle.seek(-1, os.SEEK_END)
                torn = handle.read(1) != b"\n"
            if torn:
                self._append_line("")

    def _recover_orphans(self, samples: Path) -> None:
        for folder in sorted(samples.iterdir()):
            if not folder.name.isdigit():
                continue
            index = int(folder.name)
            record = self.records.get(index)
            if record is not None and record["status"] == "ok":
                continue
            marker, info = folder / fmt.DONE_MARKER, folder / fmt.SAMPLE_FILE
            if marker.is_file() and info.is_file():
                # Renamed into place, then killed before its index line: complete, so its record is restored.
                self._append_record(json.loads(info.read_text(encoding="utf-8")))
            else:
                shutil.rmtree(folder)

    # ---- the loop -------------------------------------------------------------------------------------------------
    def step(self) -> DatasetState:
        if self.state.finished:
            return self.state
        for item, outcome in collect_finished(self.running):
            self._record(item, outcome)
        while self.queue and len(self.running) < self.settings.workers and not self.cancelled:
            self._launch(self.queue.pop(0))
        if not self.queue and not self.running:
            self.state.finished = True
        self._update_state()
        return self.state

    def cancel(self) -> None:
        """Stop every worker now; finished samples stay, those in flight are redone by the next run."""
        self.cancelled = True
        self.queue.clear()
        stop_workers(self.running)
        self.state.cancelled = self.state.finished = True
        self._update_state()

    def _update_state(self) -> None:
        wanted = [self.records[i] for i in range(self.settings.n) if i in self.records]
        self.state.ok = sum(r["status"] == "ok" for r in wanted)
        self.state.failed = len(wanted) - self.state.ok
        self.state.elapsed = time.monotonic() - self.started
        remaining = len(self.queue) + len(self.running)
        if self.finished_here:
            self.state.eta = self.state.elapsed / self.finished_here * remaining
        self.state.running = [r.label for r in self.running.values()]

    # ---- one sample -----------------------------------------------------------------------------------------------
    def _launch(self, index: int) -> None:
        samples = self.folder / fmt.SAMPLES
        stage = Path(tempfile.mkdtemp(dir=samples, prefix=f"{fmt.STAGING_PREFIX}{index:05d}-"))
        try:
            job = build_sample_job(self.space, self.options(index), stage)
        except VDBForgeError as exc:  # parameters the preset's validation refuses: a failed sample, not a failed job
            shutil.rmtree(stage, ignore_errors=True)
            self._append_record(self._base_record(index) | _failure("invalid", str(exc)))
            self.finished_here += 1
            return
        item = PoolWorker(index=index, stage=stage)
        item.start(job, timeout=self.settings.timeout, command=self.command, extra_sys_path=self.extra_sys_path)
        self.running[index] = item

    def _base_record(self, index: int) -> dict[str, Any]:
        x = self.points[index]
        ns = len(self.space.simulation)
        return {
            "index": index,
            "x_sim": x[:ns],
            "x_render": x[ns:],
            "params": self.space.from_unit(self.dims, x),
        }

    def _record(self, item: PoolWorker, outcome) -> None:
        self.finished_here += 1
        record = self._base_record(item.index)
        if not outcome.ok:
            failure = outcome.failure or {}
            failures = self.folder / fmt.FAILURES
            failures.mkdir(exist_ok=True)
            if (item.stage / "worker.log").is_file():
                os.replace(item.stage / "worker.log", failures / f"{item.index:05d}.log")
            shutil.rmtree(item.stage, ignore_errors=True)
            kind = "timeout" if failure.get("kind") == "timeout" else "failed"
            record |= _failure(kind, str(failure.get("message")), failure, outcome.seconds)
            self._append_record(record)
            self.state.last_message = f"#{item.index} {kind}: {record['error']['message']}"
            return
        result = outcome.result or {}
        for name in ("job.json", "worker.log", "preview/contact_sheet.png"):
            (item.stage / name).unlink(missing_ok=True)
        if not self.settings.keep_bakes:
            shutil.rmtree(item.stage / "vdb", ignore_errors=True)
        final = fmt.sample_dir(self.folder, item.index)
        relative = final.relative_to(self.folder)
        previews = []
        for path in result.get("previews", []):
            name = Path(path).name
            match = _PREVIEW_NAME.search(name)
            frame, angle = (int(match[1]), int(match[2])) if match else (None, None)
            previews.append({"frame": frame, "angle": angle, "path": str(relative / "preview" / name)})
        record |= {
            "status": "ok",
            "sample": str(relative),
            "previews": previews,
            "timings": {**result.get("timings", {}), "total": outcome.seconds},
            "error": None,
            "finished": _now(),
        }
        write_json(item.stage / fmt.SAMPLE_FILE, record)
        write_text(item.stage / fmt.DONE_MARKER, "ok\n")
        if final.exists():
            shutil.rmtree(final)  # a failed sample retried with --retry-failed never has one; defensive
        os.replace(item.stage, final)
        self._append_record(record)
        self.state.last_message = f"#{item.index} ok in {outcome.seconds:.1f}s"

    def _append_record(self, record: dict[str, Any]) -> None:
        self._append_line(json.dumps(record, sort_keys=True))
        self.records[record["index"]] = record

    def _append_line(self, line: str) -> None:
        append_line(self.folder / fmt.INDEX_FILE, line)


def _failure(kind: str, message: str, failure: dict | None = None, seconds: float = 0.0) -> dict[str, Any]:
    failure = failure or {}
    return {
        "status": kind if kind == "timeout" else "failed",
        "sample": None,
        "previews": [],
        "timings": {"total": seconds},
        "error": {
            "kind": failure.get("kind", kind),
            "message": message,
            **{k: failure.get(k) for k in ("file", "line")},
        },
        "finished": _now(),
    }


def build_sample_job(space: SearchSpace, options: RenderOptions, stage: Path) -> dict[str, Any]:
    return build_render_job(resolve_render_preset(space.preset, options), stage, options)


def probe(job: DatasetJob) -> dict[str, Any]:
    """Bake and render the first pending sample in a temporary folder outside the dataset (for --dry-run)."""
    index = job.queue[0] if job.queue else 0
    stage = Path(tempfile.mkdtemp(prefix="vdbforge-dataset-probe-"))
    try:
        handle = WorkerHandle(
            build_sample_job(job.space, job.options(index), stage), stage / "job.json",
            timeout=job.settings.timeout, command=job.command, extra_sys_path=job.extra_sys_path,
        )  # fmt: skip
        outcome = handle.wait()
        previews = sum(p.stat().st_size for p in (stage / "preview").glob("f*_a*.png"))
        bakes = sum(p.stat().st_size for p in (stage / "vdb").rglob("*") if p.is_file())
        return {
            "index": index,
            "ok": outcome.ok,
            "seconds": outcome.seconds,
            "error": None if outcome.ok else (outcome.failure or {}).get("message"),
            "preview_bytes": previews,
            "bake_bytes": bakes,
        }
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def plan_for(job: DatasetJob) -> dict[str, Any]:
    """What a run would do, read from DIR without writing to it."""
    job.check_existing()
    records = fmt.read_index(job.folder) if (job.folder / fmt.INDEX_FILE).is_file() else {}
    job.queue = job.pending(records)
    return {
        "preset": job.space.preset.id,
        "simulation": job.space.simulation_paths,
        "render": job.space.render_paths,
        "settings": job.description["settings"],
        "finished": job.settings.n - len(job.queue),
        "pending": len(job.queue),
        "workers": job.settings.workers,
    }
