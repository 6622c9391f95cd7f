"""`vdbforge match`: fit a preset to reference images and/or a text target (docs/MATCH.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .core.errors import VDBForgeError
from .core.match_controller import MatchController
from .core.match_run import RunDir
from .core.match_settings import MatchSettings
from .core.match_setup import new_run, resume_run
from .core.preset_library import resolve_preset
from .core.render_run import parse_frame_list, parse_frames
from .core.scoring_settings import ScoringSettings, parse_metric_weights
from .core.worker_pool import run_steps
from .ml.start_point import start_point


def add_parsers(sub: argparse._SubParsersAction) -> None:
    match = sub.add_parser("match", help="fit a preset to reference images or a text target")
    match.add_argument("--preset", help="preset id or file (not needed with --resume)")
    match.add_argument("--reference", action="append", default=[], metavar="IMG", help="reference image (repeatable)")
    match.add_argument("--text", default="", help="text target, scored with CLIP")
    match.add_argument("--out", required=True, help="run folder (run.json, history.jsonl, candidates/, best/)")
    match.add_argument("--budget", type=int, help="number of bakes (default 32)")
    match.add_argument("--population", type=int, help="candidates per generation (default 6)")
    match.add_argument("--workers", type=int, help="worker processes baking at once (default: the cores, up to 4)")
    match.add_argument("--threshold", type=float, help="stop once a candidate scores this much (default 0.97)")
    match.add_argument("--patience", type=int, help="stop after this many generations without improvement")
    match.add_argument("--optimizer", choices=("cma", "random"), help="outer search (default cma)")
    match.add_argument("--seed", type=int, help="random seed (default 0)")
    match.add_argument(
        "--sigma0",
        type=float,
        help="initial step in normalised units (default 0.25); an informed start's opening covers start ± 2σ₀, "
        "the refinement steps 0.6σ₀",
    )
    match.add_argument("--inner-budget", type=int, help="renders for the render-time fit per candidate (default 10)")
    match.add_argument("--resolution", type=int, help="domain resolution of every bake")
    match.add_argument("--frames", help="bake frames A:B")
    match.add_argument("--angles", type=int, help="preview angles per frame")
    match.add_argument("--preview-frames", help="frames scored: 8,12,16 or 6:16")
    match.add_argument("--metrics", help="metric weights, e.g. lpips_alex=0.4,ssim=0.3,color")
    match.add_argument(
        "--allow-missing-weights", action="store_true", help="score without metrics whose weights are missing"
    )
    match.add_argument("--timeout", type=float, help="seconds per candidate (default 3600)")
    match.add_argument(
        "--init", choices=("default", "memory", "inverse"),
        help="where the search starts: the preset's values, the best past runs of this preset (technique memory), or "
        "the image → parameters model's prediction (vdbforge train); default: inverse when a model exists",
    )  # fmt: skip
    match.add_argument(
        "--snapshots", action="store_true", help="save each candidate's Blender scene as candidates/NNNN/scene.blend"
    )
    match.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped")
    match.add_argument("--json", action="store_true", help="print the summary as JSON")


def _settings(args: argparse.Namespace) -> MatchSettings:
    fields = {}
    for key in ("budget", "population", "workers", "threshold", "patience", "optimizer", "seed", "sigma0",
                "inner_budget", "resolution", "angles", "timeout"):  # fmt: skip
        if getattr(args, key) is not None:
            fields[key] = getattr(args, key)
    if args.frames:
        start, end, _ = parse_frames(args.frames)
        fields["frames"] = (start, end)
    if args.preview_frames:
        fields["preview_frames"] = parse_frame_list(args.preview_frames)
    fields["allow_missing_weights"] = args.allow_missing_weights
    fields["snapshots"] = args.snapshots
    try:
        return MatchSettings(**fields)
    except ValueError as exc:
        first = exc.errors()[0] if hasattr(exc, "errors") else {"loc": ("?",), "msg": str(exc)}
        raise VDBForgeError(f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']}") from None


def check_targets(references: list[Path], text: str, scoring: ScoringSettings, allow_missing: bool) -> None:
    """Fail before the first bake: unreadable references, or metrics whose weights are missing."""
    from .ml.images import load_rgba
    from .ml.scoring import ScoreRequest, plan_metrics

    for ref in references:
        load_rgba(ref, "reference image")
    plan_metrics(ScoreRequest([], references, text, scoring, allow_missing))


def cmd_match(args: argparse.Namespace, command=None) -> int:
    run = RunDir(args.out)
    if args.resume:
        config = resume_run(run, args.workers)
    else:
        if not args.preset:
            raise VDBForgeError("--preset is required (except with --resume)")
        preset = resolve_preset(args.preset)
        scoring = preset.scoring
        if args.metrics:
            scoring = ScoringSettings.model_validate(
                {**scoring.model_dump(), "weights": parse_metric_weights(args.metrics)}
            )
        references = [Path(p).expanduser() for p in args.reference]
        settings = _settings(args)
        check_targets(references, args.text, scoring, settings.allow_missing_weights)
        init = start_point(args.init, preset, references, note=_note, sigma0=args.sigma0)
        config = new_run(run, preset, references, args.text, settings, scoring, init)
    controller = MatchController(run, config, command=command)
    state = run_steps(controller.step, _printer(args.json, controller), cancel=controller.cancel)
    report = _write_report(run)
    summary = {
        "ok": state.best_index is not None,
        "best": str(run.best_dir) if state.best_index is not None else None,
        "best_score": state.best_score if state.best_index is not None else None,
        "best_index": state.best_index,
        "evaluations": state.evaluations,
        "stop_reason": state.stop_reason,
        "report": str(report) if report else None,
        "run": str(run.path),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    elif state.best_index is None:
        print(f"no candidate succeeded in {state.evaluations} evaluations; see {run.history_file}")
    else:
        print(f"best: {run.best_dir}  score {state.best_score:.4f} (candidate #{state.best_index}, "
              f"{state.evaluations} evaluations, stopped: {state.stop_reason})")  # fmt: skip
    if state.stop_reason == "cancelled":
        return 130
    return 0 if state.best_index is not None else 1


def _note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


def _write_report(run: RunDir) -> Path:
    from .core.run_report import write_report

    return write_report(run.path)


def _printer(as_json: bool, controller: MatchController):
    seen = {"message": ""}

    def on_update(state) -> None:
        if state.last_message and state.last_message != seen["message"]:
            seen["message"] = state.last_message
            best = (
                f"best {state.best_score:.4f} (#{state.best_index})" if state.best_index is not None else "no best yet"
            )
            print(f"[{state.evaluations}/{state.budget}] {state.last_message}; {best}", file=sys.stderr, flush=True)

    return on_update
