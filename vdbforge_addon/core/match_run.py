"""The run directory of `vdbforge match` (docs/MATCH.md): run.json, history.jsonl, candidates/, best/.

Written so that a kill at any moment loses at most the evaluations in flight: run.json and best/ are replaced
atomically, history lines are appended with one write and an fsync, and a candidate's folder appears (by rename)
only once its worker has ended.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .atomic import append_line, check_writable_dir, staged_dir, write_json
from .errors import VDBForgeError

FORMAT = 1
CANDIDATE_STAGING = ".staging-"
SNAPSHOT = "scene.blend"  # written by the worker when the run's settings ask for snapshots


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


class RunDir:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path).expanduser().absolute()

    @property
    def run_file(self) -> Path:
        return self.path / "run.json"

    @property
    def history_file(self) -> Path:
        return self.path / "history.jsonl"

    @property
    def best_dir(self) -> Path:
        return self.path / "best"

    def exists(self) -> bool:
        return self.run_file.is_file()

    def create(self, config: dict[str, Any], references: list[Path]) -> dict[str, Any]:
        """A new run: references copied in (a run must not depend on files elsewhere), run.json written."""
        if self.path.exists() and not self.path.is_dir():
            raise VDBForgeError(f"output path '{self.path}' exists and is not a folder")
        if self.exists():
            raise VDBForgeError(f"{self.path} already holds a run: use --resume to continue it, or another --out")
        check_writable_dir(self.path)
        copies = []
        if references:
            folder = self.path / "references"
            folder.mkdir(exist_ok=True)
            for i, ref in enumerate(references):
                target = folder / f"ref_{i:02d}{ref.suffix.lower()}"
                shutil.copyfile(ref, target)
                copies.append(str(target.relative_to(self.path)))
        config = {"format": FORMAT, **config, "references": copies, "resumes": []}
        write_json(self.run_file, config)
        return config

    def load(self) -> dict[str, Any]:
        if not self.exists():
            raise VDBForgeError(f"no run to resume in {self.path} (run.json missing)")
        try:
            config = json.loads(self.run_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise VDBForgeError(f"cannot read {self.run_file}: {exc}") from exc
        if config.get("format") != FORMAT:
            raise VDBForgeError(f"{self.run_file} has run format {config.get('format')}; this VDBForge reads {FORMAT}")
        return config

    def save(self, config: dict[str, Any]) -> None:
        write_json(self.run_file, config)

    def reference_paths(self, config: dict[str, Any]) -> list[Path]:
        return [self.path / p for p in config.get("references", [])]

    def append_history(self, entry: dict[str, Any]) -> None:
        append_line(self.history_file, json.dumps(entry, sort_keys=True))

    def read_history(self) -> list[dict[str, Any]]:
        """Every complete line; a line torn by a kill mid-write is ignored (and its evaluation is redone)."""
        if not self.history_file.is_file():
            return []
        entries = []
        for line in self.history_file.read_text(encoding="utf-8").splitlines():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return entries

    def candidate_dir(self, index: int) -> Path:
        return self.path / "candidates" / f"{index:04d}"

    def candidate_stage(self, index: int) -> Path:
        folder = self.path / "candidates"
        folder.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=folder, prefix=f"{CANDIDATE_STAGING}{index:04d}-"))

    def finish_candidate(self, stage: Path, index: int) -> Path:
        target = self.candidate_dir(index)
        if target.exists():
            shutil.rmtree(target)  # a previous attempt that was killed after its rename but before its history line
        os.replace(stage, target)
        return target

    def remove_stale_stages(self) -> None:
        """Evaluations that were in flight when a run was killed leave staging folders; they are redone."""
        folder = self.path / "candidates"
        if folder.is_dir():
            for stage in folder.glob(f"{CANDIDATE_STAGING}*"):
                shutil.rmtree(stage, ignore_errors=True)

    def relative(self, path: str | os.PathLike) -> str:
        try:
            return str(Path(path).relative_to(self.path))
        except ValueError:
            return str(path)

    def publish_best(self, candidate: Path, preset: dict[str, Any], score: dict[str, Any]) -> None:
        """best/ = the candidate's vdb/, nvdb/, preview/ + preset.json + score.json, replaced as a whole."""
        with staged_dir(self.best_dir) as stage:
            for name in ("vdb", "nvdb", "preview"):
                if (candidate / name).is_dir():
                    # Hard links: best/ shares the candidate's files instead of copying hundreds of MB.
                    shutil.copytree(candidate / name, stage / name, copy_function=_link_or_copy)
            if (candidate / SNAPSHOT).is_file():
                _link_or_copy(candidate / SNAPSHOT, stage / SNAPSHOT)
            write_json(stage / "preset.json", preset)
            write_json(stage / "score.json", score)
            # Items of an older best that this one lacks (e.g. nvdb/) must not survive the swap.
            for stale in ("vdb", "nvdb", "preview"):
                if not (stage / stale).exists() and (self.best_dir / stale).exists():
                    shutil.rmtree(self.best_dir / stale)
