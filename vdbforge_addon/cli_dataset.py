"""`vdbforge dataset` and `vdbforge train`: many bakes of one preset, and the image → parameters model learnt from
them (docs/INVERSE.md)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from .core.dataset_job import DatasetJob, DatasetSettings, DatasetState, clock_text, plan_for, probe
from .core.match_settings import default_workers
from .core.preset_library import resolve_preset
from .core.render_run import parse_frame_list, parse_frames
from .core.worker_pool import run_steps


def add_parsers(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("dataset", help="bake and preview N parameter samples of a preset (for vdbforge train)")
    data.add_argument("--preset", required=True, help="preset id or file")
    data.add_argument("--n", type=int, required=True, help="number of samples (a rerun with a larger N extends)")
    data.add_argument("--out", required=True, help="dataset folder (dataset.json, index.jsonl, samples/)")
    data.add_argument("--resolution", type=int, help="domain resolution of every bake (default: the preset's)")
    data.add_argument("--frames", help="bake frames A:B (default: the preset's)")
    data.add_argument("--preview-frames", help="frames previewed per sample: 8,12,16 or 6:16 (default: the preset's)")
    data.add_argument("--angles", type=int, default=1, help="preview angles per frame (default 1)")
    data.add_argument("--preview-size", type=int, default=128, help="longest side of the previews (default 128)")
    data.add_argument("--workers", type=int, help="worker processes at once (default: the cores, up to 4)")
    data.add_argument("--seed", type=int, default=0, help="Sobol scramble seed (default 0)")
    data.add_argument("--timeout", type=float, default=3600.0, help="seconds per sample before it counts as failed")
    data.add_argument("--keep-bakes", action="store_true", help="keep each sample's vdb/ (deleted by default)")
    data.add_argument("--retry-failed", action="store_true", help="redo samples recorded as failed")
    data.add_argument("--dry-run", action="store_true", help="print the plan and a time estimate from one probe bake")
    data.add_argument("--json", action="store_true", help="print the summary as JSON")

    train = sub.add_parser("train", help="learn an image -> parameters model from a dataset (used by match --init)")
    train.add_argument("--dataset", required=True, help="a folder made by vdbforge dataset")
    train.add_argument("--approach", choices=("auto", "knn", "cnn"), default="auto",
                       help="auto compares both on held-out samples and keeps the better one")  # fmt: skip
    train.add_argument("--out", help="model file (default: the user data folder's models/inverse/<preset>.pt)")
    train.add_argument("--seed", type=int, default=0, help="split and training seed (default 0)")
    train.add_argument("--max-epochs", type=int, default=300, help="CNN epochs at most (default 300)")
    train.add_argument("--backbone", action="store_true", help="add LPIPS-alex features to the atlas (needs weights)")
    train.add_argument("--json", action="store_true", help="print the report as JSON")


def _settings(args: argparse.Namespace) -> DatasetSettings:
    frames = parse_frames(args.frames)[:2] if args.frames else None
    return DatasetSettings(
        n=args.n,
        seed=args.seed,
        resolution=args.resolution,
        frames=frames,
        preview_frames=parse_frame_list(args.preview_frames) if args.preview_frames else None,
        angles=args.angles,
        preview_size=args.preview_size,
        workers=args.workers or default_workers(),
        timeout=args.timeout,
        keep_bakes=args.keep_bakes,
        retry_failed=args.retry_failed,
    )


def _progress():
    tty = sys.stderr.isatty()
    seen = {"message": "", "width": 0}

    def on_update(state: DatasetState) -> None:
        if tty:
            filled = int(30 * state.done / max(state.total, 1))
            line = (f"[{'#' * filled}{'.' * (30 - filled)}] {state.done}/{state.total}  ok {state.ok}  failed "
                    f"{state.failed}  running {len(state.running)}  {clock_text(state.elapsed)} elapsed, "
                    f"ETA {clock_text(state.eta) if not state.finished else '0:00'}")  # fmt: skip
            print("\r" + line.ljust(seen["width"]), end="", file=sys.stderr, flush=True)
            seen["width"] = len(line)
            if state.finished:
                print(file=sys.stderr)
        elif state.last_message and state.last_message != seen["message"]:
            seen["message"] = state.last_message
            print(f"[{state.done}/{state.total}] {state.last_message}; ETA {clock_text(state.eta)}", file=sys.stderr,
                  flush=True)  # fmt: skip

    return on_update


def cmd_dataset(args: argparse.Namespace, command=None) -> int:
    job = DatasetJob(args.out, resolve_preset(args.preset), _settings(args), command=command)
    if args.dry_run:
        return _dry_run(job, args.json)
    job.open()
    state = run_steps(job.step, _progress(), cancel=job.cancel)
    summary = {"ok": state.ok > 0 and not state.cancelled, "dataset": str(job.folder), "samples": state.total,
               "succeeded": state.ok, "failed": state.failed, "seconds": state.elapsed,
               "cancelled": state.cancelled}  # fmt: skip
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{job.folder}: {state.ok} of {state.total} samples ok, {state.failed} failed "
              f"({clock_text(state.elapsed)} this run)")  # fmt: skip
    if state.cancelled:
        return 130
    return 0 if state.ok else 1


def _dry_run(job: DatasetJob, as_json: bool) -> int:
    plan: dict[str, Any] = plan_for(job)
    result = probe(job)
    parallel = max(1, min(job.settings.workers, os.cpu_count() or 1))
    per_sample = result["preview_bytes"] + (result["bake_bytes"] if job.settings.keep_bakes else 0)
    plan.update(
        probe=result,
        estimate_seconds=result["seconds"] * plan["pending"] / parallel,
        estimate_bytes=per_sample * plan["pending"],
    )
    if as_json:
        print(json.dumps(plan, indent=2))
        return 0 if result["ok"] else 1
    s = plan["settings"]
    print(f"preset {plan['preset']}: {len(plan['simulation'])} simulation + {len(plan['render'])} render parameters, "
          f"Sobol (scrambled, seed {s['seed']})")  # fmt: skip
    print(f"  simulation: {', '.join(plan['simulation']) or '-'}")
    print(f"  render:     {', '.join(plan['render']) or '-'}")
    print(f"  bakes at resolution {s['resolution']}, frames {s['frames'][0]}:{s['frames'][1]}, previews of frames "
          f"{','.join(map(str, s['preview_frames']))} x {s['angles']} angle(s) at {s['preview_width']}x"
          f"{s['preview_height']}")  # fmt: skip
    print(f"  {job.settings.n} samples: {plan['finished']} already finished, {plan['pending']} to do, "
          f"{job.settings.workers} worker(s)")  # fmt: skip
    if not result["ok"]:
        print(f"probe sample #{result['index']} failed: {result['error']}")
        return 1
    print(f"probe sample #{result['index']}: {result['seconds']:.1f}s -> about {clock_text(plan['estimate_seconds'])} "
          f"for the rest on {parallel} core(s), {plan['estimate_bytes'] / 1e6:.1f} MB on disk")  # fmt: skip
    print("dry run: nothing was written")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .ml.inverse_model import train

    report = train(args.dataset, args.approach, args.out, seed=args.seed, max_epochs=args.max_epochs,
                   backbone=args.backbone)  # fmt: skip
    if args.json:
        print(json.dumps({"ok": True, **report}, indent=2))
        return 0
    print(f"{report['preset_id']}: {report['samples']} samples ({report['images']} images), "
          f"{report['test_samples']} held out")  # fmt: skip
    for name, figures in report["approaches"].items():
        mark = "  <- kept" if name == report["winner"] else ""
        calibrated = figures["coverage_1sigma_calibrated"]
        calibrated = "n/a" if calibrated is None else f"{calibrated:.0%}"
        print(f"  {name}: held-out MAE {figures['mae']:.4f} (predicting the mean: {figures['baseline_mae']:.4f}, "
              f"skill {figures['skill']:.2f}), within 1 sigma {figures['coverage_1sigma']:.0%} "
              f"({calibrated} calibrated), "
              f"{figures['seconds']:.1f}s{mark}")  # fmt: skip
    for path, item in report["approaches"][report["winner"]]["per_parameter"].items():
        print(f"    {path:<36} MAE {item['mae']:.3f}  (mean predictor {item['baseline_mae']:.3f})")
    print(f"model: {report['model']}")
    return 0
