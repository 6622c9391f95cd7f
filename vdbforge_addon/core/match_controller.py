"""`vdbforge match`: the outer search driven one non-blocking `step()` at a time over a pool of worker processes.

The CLI loops `step()`; the Iterate panel's modal operator calls it from a timer; tests call it directly. Each
candidate is one `evaluate` worker (bake → export → inner fit → score, blender/evaluate_job.py) in its own process,
so a crash costs one candidate: it gets the penalty score (`FAILED_SCORE`) and its parsed error is recorded.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .atomic import write_json
from .match_optimizer import make_optimizer
from .match_run import RunDir
from .match_settings import AVOID_RISK, FAILED_SCORE, MatchSettings
from .match_space import SearchSpace
from .parameters import current_values, validate_preset
from .render_run import RenderOptions, resolve_render_preset
from .worker_client import WorkerCommand
from .worker_pool import PoolWorker, collect_finished, stop_workers


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(kw_only=True)
class Running(PoolWorker):
    generation: int
    x: list[float]
    sim_params: dict[str, Any]


@dataclass
class MatchState:
    evaluations: int = 0
    budget: int = 0
    generation: int = 0
    best_score: float = 0.0
    best_index: int | None = None
    best_preview: str | None = None
    running: list[str] = field(default_factory=list)
    finished: bool = False
    stop_reason: str = ""
    last_message: str = ""


class MatchController:
    def __init__(
        self,
        run: RunDir,
        config: dict[str, Any],
        command: WorkerCommand | None = None,
        extra_sys_path: list[str] | None = None,
    ) -> None:
        self.run, self.config = run, config
        self.extra_sys_path = extra_sys_path
        self.settings = MatchSettings.model_validate(config["settings"])
        self.space = SearchSpace.of(validate_preset(config["preset"], "run.json preset"))
        self.references = [str(p) for p in run.reference_paths(config)]
        self.command = command
        start = config["init"]["x"]
        self.optimizer = make_optimizer(
            self.settings.optimizer, start, config["init"]["sigma0"], self.settings.seed, self.settings.population,
            informed=config["init"].get("kind", "default") != "default",
        )  # fmt: skip
        run.remove_stale_stages()
        self.done: dict[int, dict[str, Any]] = {e["index"]: e for e in run.read_history()}
        self.running: dict[int, Running] = {}
        self.queue: list[tuple[int, list[float]]] = []  # (index, x) of the current generation not yet launched
        self.generation = -1
        self.generation_points: list[list[float]] = []
        self.generation_start = 0
        # Inner-fit start for a generation: the last generation's best render values (the prediction's at first).
        self.render_start: list[float] | None = config["init"].get("render_x") or None
        self.stale_generations = 0
        # Without simulation parameters there is nothing to bake differently: one candidate, fitted by the inner fit.
        self.budget = self.settings.budget if self.space.simulation else 1
        self.state = MatchState(budget=self.budget)
        self.cancelled = False
        self._update_best_state()

    # ---- the loop -------------------------------------------------------------------------------------------------
    def step(self) -> MatchState:
        """Advance without blocking: collect finished workers, tell finished generations, launch queued candidates."""
        if self.state.finished:
            return self.state
        for item, outcome in collect_finished(self.running):
            self._record(item, outcome)
        if self._should_stop():
            return self._finish()
        if not self.queue and not self.running:
            if self.generation >= 0:
                self._close_generation()
                if self._should_stop():
                    return self._finish()
            self._next_generation()
        while self.queue and len(self.running) < self.settings.workers:
            index, x = self.queue.pop(0)
            self._launch(index, x)
        if not self.queue and not self.running and self._evaluations() >= self.budget:
            return self._finish()
        self.state.running = [r.label for r in self.running.values()]
        return self.state

    def cancel(self) -> None:
        """Stop every worker now; finished evaluations stay in history, in-flight ones are redone on --resume."""
        self.cancelled = True
        stop_workers(self.running)
        self.run.remove_stale_stages()
        self._finish("cancelled")

    # ---- generations ----------------------------------------------------------------------------------------------
    def _evaluations(self) -> int:
        return len(self.done)

    def _next_generation(self) -> None:
        self.generation += 1
        points = self.optimizer.ask() if self.space.simulation else [[]]
        self.generation_points = points
        self.generation_start = self.generation * len(points)
        room = self.budget - self.generation_start
        indices = range(self.generation_start, self.generation_start + min(len(points), max(room, 0)))
        self.queue = [(i, points[i - self.generation_start]) for i in indices if i not in self.done]
        self.state.generation = self.generation
        if not self.queue and not indices:
            self.state.stop_reason = "budget"

    def _close_generation(self) -> None:
        indices = range(self.generation_start, self.generation_start + len(self.generation_points))
        if all(i in self.done for i in indices):
            self.optimizer.tell(self.generation_points, [self.done[i]["score"] for i in indices])
        # From history alone, so a resumed run takes the same decisions as an uninterrupted one.
        ok = [e for e in self.done.values() if e["status"] == "ok"]
        gen_best = max((e for e in ok if e["index"] in indices), key=lambda e: e["score"], default=None)
        before = max((e["score"] for e in ok if e["index"] < self.generation_start), default=FAILED_SCORE)
        if gen_best and gen_best.get("render_u"):
            self.render_start = gen_best["render_u"]
        improved = gen_best is not None and gen_best["score"] > before + 1e-9
        self.stale_generations = 0 if improved else self.stale_generations + 1

    def _should_stop(self) -> bool:
        if self.cancelled:
            return True
        if self.state.best_index is not None and self.state.best_score >= self.settings.threshold:
            self.state.stop_reason = "threshold"
            return True
        if self.settings.patience and self.stale_generations >= self.settings.patience:
            self.state.stop_reason = "patience"
            return True
        if self._evaluations() >= self.budget and not self.running:
            self.state.stop_reason = self.state.stop_reason or "budget"
            return True
        return False

    def _finish(self, reason: str | None = None) -> MatchState:
        stop_workers(self.running)
        self.state.stop_reason = reason or self.state.stop_reason or "budget"
        self.state.finished = True
        self.state.running = []
        if self.state.best_index is not None and self.space.simulation:
            self._remember("success", self.done[self.state.best_index]["x"], None)
        return self.state

    def _remember(self, kind: str, x: list[float], failure: dict[str, Any] | None) -> None:
        """Technique memory: the run's best for warm starts, every failure to know where bakes crash. Memory is an aid:
        when its database is unusable the run goes on and says so."""
        from . import technique_memory as memory

        preset = self.space.preset
        try:
            if kind == "failure":
                memory.record_failure(
                    preset.id, self.space.simulation_paths, x, str(failure.get("kind")), str(failure.get("message"))
                )
                return
            best = self.done[self.state.best_index]
            fingerprint = None
            if self.references:
                from .image_fingerprint import image_fingerprint

                fingerprint = image_fingerprint(self.references[0])
            params = {**best["sim_params"], **best["render_params"]}
            memory.record_success(
                preset.id, preset.family, self.space.simulation_paths, x, params, best["score"], fingerprint,
                str(self.run.path),
            )  # fmt: skip
        except memory.MemoryDatabaseError as exc:
            self.state.last_message = f"technique memory not updated: {exc}"

    # ---- one candidate --------------------------------------------------------------------------------------------
    def _crash_risk(self, x: list[float]) -> float:
        """technique_memory's failure risk, from the crash cells frozen into run.json at the start."""
        from .technique_memory import region_of, risk_near

        return risk_near(region_of(x), ((e["region"], e["count"]) for e in self.config.get("crash_regions", [])))

    def _launch(self, index: int, x: list[float]) -> None:
        sim_params = self.space.from_unit(self.space.simulation, x) if self.space.simulation else {}
        risk = self._crash_risk(x) if x else 0.0
        if risk >= AVOID_RISK:
            self._record_avoided(index, x, sim_params, risk)
            return
        s = self.settings
        options = RenderOptions(
            overrides=sim_params,
            resolution=s.resolution,
            frames=(s.frames[0], s.frames[1], 1) if s.frames else None,
            angles=s.angles,
            export={"nanovdb": True},
            preview_frames=s.preview_frames or None,
        )
        resolved = resolve_render_preset(self.space.preset, options)
        stage = self.run.candidate_stage(index)
        job = {
            "kind": "evaluate",
            "preset": resolved.model_dump(mode="json"),
            "params": current_values(resolved),
            "out_dir": str(stage),
            "cache_dir": str(stage / "cache"),
            "angles": resolved.render.angles,
            "preview_frames": s.preview_frames,
            "references": self.references,
            "text": self.config.get("text", ""),
            "scoring": self.config["scoring"],
            "allow_missing_weights": s.allow_missing_weights,
            "inner_budget": s.inner_budget,
            "fit_size": s.fit_size,
            "fit_samples": s.fit_samples,
            "render_start": self.render_start,
            "snapshot": s.snapshots,
        }
        item = Running(index=index, stage=stage, generation=self.generation, x=list(x), sim_params=sim_params)
        item.start(job, timeout=s.timeout, command=self.command, extra_sys_path=self.extra_sys_path)
        self.running[index] = item

    def _record(self, item: Running, outcome) -> None:
        candidate = self.run.finish_candidate(item.stage, item.index)
        result = _rebase(outcome.result or {}, str(item.stage), str(candidate))
        ok = outcome.ok
        failure = outcome.failure or {}
        entry: dict[str, Any] = {
            "index": item.index,
            "generation": item.generation,
            "candidate": self.run.relative(candidate),
            "status": "ok" if ok else ("timeout" if failure.get("kind") == "timeout" else "failed"),
            "sim_params": item.sim_params,
            "render_params": result.get("render_params", {}),
            "x": item.x,
            "score": float(result["score"]) if ok else FAILED_SCORE,
            "breakdown": self._relative(result.get("breakdown")),
            "inner": result.get("inner"),
            "previews": [self.run.relative(p) for p in result.get("previews", [])],
            "timings": {**result.get("timings", {}), "total": outcome.seconds},
            "error": None if ok else {k: failure.get(k) for k in ("kind", "message", "file", "line")},
            "finished": _now(),
        }
        best_target = (entry["breakdown"] or {}).get("references") or [(entry["breakdown"] or {}).get("text") or {}]
        entry["best_frame"], entry["best_angle"] = best_target[0].get("frame"), best_target[0].get("angle")
        if ok and self.space.render:
            entry["render_u"] = self.space.to_unit(
                self.space.render, {**self.space.start_values(), **entry["render_params"]}
            )
        improved = ok and (self.state.best_index is None or entry["score"] > self.state.best_score)
        entry["best_so_far"] = max(entry["score"], self.state.best_score) if ok else self.state.best_score
        if ok:
            (candidate / "job.json").unlink(missing_ok=True)
            write_json(candidate / "result.json", self._relative(result))
        if improved:
            preset = self._best_preset(result)
            self.run.publish_best(candidate, preset, {k: entry[k] for k in ("index", "score", "breakdown")})
        self.run.append_history(entry)
        self.done[item.index] = entry
        if not ok and self.space.simulation:
            self._remember("failure", item.x, failure)
        self._prune_assets(candidate, keep=improved)
        self._update_best_state()
        self.state.last_message = f"#{item.index} {entry['status']} score {entry['score']:.4f}" + (
            f" ({entry['error']['message']})" if entry["error"] else ""
        )

    def _record_avoided(self, index: int, x: list[float], sim_params: dict[str, Any], risk: float) -> None:
        """A candidate where past bakes of this preset crashed repeatedly is not baked: it gets the penalty, so the
        search moves away, and costs an evaluation but no bake time."""
        entry = {
            "index": index, "generation": self.generation, "candidate": None, "status": "avoided",
            "sim_params": sim_params, "render_params": {}, "x": list(x), "score": FAILED_SCORE, "breakdown": None,
            "inner": None, "previews": [], "timings": {"total": 0.0}, "best_frame": None, "best_angle": None,
            "error": {"kind": "avoided", "message": f"known crash region (risk {risk:.2f})",
                      "file": None, "line": None},
            "best_so_far": self.state.best_score, "finished": _now(),
        }  # fmt: skip
        self.run.append_history(entry)
        self.done[index] = entry
        self._update_best_state()
        self.state.last_message = f"#{index} avoided: known crash region"

    def _best_preset(self, result: dict[str, Any]) -> dict[str, Any]:
        """The candidate's preset as `vdbforge render --preset` should read it: same frames, angles, resolution."""
        preset = dict(result["preset"])
        preset["render"] = {**preset["render"], "preview_frames": result.get("preview_frames", [])}
        preset["name"] = f"{preset['name']} (matched)"[:80]
        return preset

    def _prune_assets(self, candidate: Path, keep: bool) -> None:
        # Only the best candidate's volumes are kept (a res-64 sequence is hundreds of MB); previews stay for all.
        if keep:
            for entry in self.done.values():
                older = self.run.path / (entry["candidate"] or ".")
                if entry["candidate"] and older != candidate:
                    for name in ("vdb", "nvdb"):
                        shutil.rmtree(older / name, ignore_errors=True)
            return
        for name in ("vdb", "nvdb"):
            shutil.rmtree(candidate / name, ignore_errors=True)

    def _update_best_state(self) -> None:
        ok = [e for e in self.done.values() if e["status"] == "ok"]
        self.state.evaluations = len(self.done)
        if ok:
            best = max(ok, key=lambda e: (e["score"], -e["index"]))
            self.state.best_score, self.state.best_index = best["score"], best["index"]
            self.state.best_preview = str(self.run.path / best["previews"][0]) if best["previews"] else None

    def _relative(self, value: Any) -> Any:
        if isinstance(value, str) and value.startswith(str(self.run.path)):
            return self.run.relative(value)
        if isinstance(value, list):
            return [self._relative(v) for v in value]
        if isinstance(value, dict):
            return {k: self._relative(v) for k, v in value.items()}
        return value


def _rebase(value: Any, old: str, new: str) -> Any:
    """Paths the worker reported inside its staging folder, rewritten to the candidate folder it was renamed to."""
    if isinstance(value, str):
        return new + value[len(old) :] if value.startswith(old) else value
    if isinstance(value, list):
        return [_rebase(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: _rebase(v, old, new) for k, v in value.items()}
    return value
