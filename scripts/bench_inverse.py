#!/usr/bin/env python3
"""Benchmark of the image → parameters start (docs/INVERSE.md): what learning a preset once buys a match.

    flock /tmp/vdbforge_heavy.lock .venv/bin/python scripts/bench_inverse.py --out /tmp/bench_inverse \
        [--presets smoke_plume,cloud,nebula] [--n 512] [--resolution 16] [--frames 1:12] [--frame 8] \
        [--budget 32] [--inner-budget 4] [--nudges 2] [--workers 2] [--inits inverse,default] [--optimizers cma,random]

Per preset (three families by default): a dataset of N samples (`vdbforge dataset`, resumable) baked and previewed
exactly as `scripts/bench_match.py` bakes its references (same resolution, frames, reference frame, one angle), then
`vdbforge train` (held-out error per parameter of the atlas, the CNN and predicting the mean), with the model placed
in the benchmark's own user data folder. Then `scripts/bench_match.py` runs its reference-recovery cases on the same
presets with every `--inits` entry, against that folder, so `--init inverse` starts from these models: subject
similarity, IoU, chaos ceiling, the similarity of the start point itself (the prediction rendered), and the error
ratio against random search. The one-off cost (dataset and training minutes) is recorded. Results: OUT/bench.json and
tables on stdout. A rerun resumes datasets, keeps trained models and finished match runs.

`--tiny` is an end-to-end check of the script itself (8 samples, budget 2): its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cli(env: dict, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "vdbforge_addon.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env)  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"vdbforge {args[0]} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc, time.monotonic() - started


def learn(preset_id: str, args: argparse.Namespace, env: dict, out: Path) -> dict:
    """Dataset and model of one preset; both reused when a rerun finds them."""
    folder = out / preset_id
    folder.mkdir(parents=True, exist_ok=True)
    summary_file = folder / "learn.json"
    if summary_file.is_file():
        return json.loads(summary_file.read_text())
    print(f"== {preset_id}: dataset of {args.n}", file=sys.stderr, flush=True)
    data = folder / "dataset"
    _, dataset_seconds = cli(env, "dataset", "--preset", preset_id, "--n", str(args.n), "--out", str(data),
                             "--resolution", str(args.resolution), "--frames", args.frames, "--preview-frames",
                             str(args.frame), "--angles", "1", "--preview-size", "128", "--workers", str(args.workers),
                             "--seed", str(args.seed), "--json")  # fmt: skip
    print(f"== {preset_id}: train", file=sys.stderr, flush=True)
    model = Path(env["VDBFORGE_HOME"]) / "models" / "inverse" / f"{preset_id}.pt"
    proc, train_seconds = cli(env, "train", "--dataset", str(data), "--out", str(model), "--json")
    report = json.loads(proc.stdout)
    result = {
        "preset": preset_id,
        "dataset_minutes": dataset_seconds / 60,
        "train_minutes": train_seconds / 60,
        "samples": report["samples"],
        "test_samples": report["test_samples"],
        "winner": report["winner"],
        "approaches": {
            name: {
                "mae": f["mae"],
                "baseline_mae": f["baseline_mae"],
                "coverage_1sigma": f["coverage_1sigma"],
                "coverage_1sigma_calibrated": f.get("coverage_1sigma_calibrated"),
                "per_parameter": {p: x["mae"] for p, x in f["per_parameter"].items()},
                "baseline_per_parameter": {p: x["baseline_mae"] for p, x in f["per_parameter"].items()},
            }
            for name, f in report["approaches"].items()
        },  # fmt: skip
    }
    summary_file.write_text(json.dumps(result, indent=2))
    return result


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def learn_table(results: list[dict]) -> str:
    rows = ["| preset | samples (held out) | dataset min | train min | kept | held-out MAE atlas / CNN / mean | "
            "1σ coverage (kept): raw / calibrated |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        a = r["approaches"]
        mae = " / ".join(f"{a[k]['mae']:.3f}" if k in a else "-" for k in ("knn", "cnn"))
        rows.append(f"| {r['preset']} | {r['samples']} ({r['test_samples']}) | {r['dataset_minutes']:.1f} | "
                    f"{r['train_minutes']:.1f} | {r['winner']} | {mae} / {a[r['winner']]['baseline_mae']:.3f} | "
                    f"{a[r['winner']]['coverage_1sigma']:.0%} / {_share(a[r['winner']].get('coverage_1sigma_calibrated'))} |")  # fmt: skip
    rows += ["", "| preset | parameter | atlas | CNN | mean |", "|---|---|---|---|---|"]
    for r in results:
        a = r["approaches"]
        any_fit = next(iter(a.values()))
        for p, base in any_fit["baseline_per_parameter"].items():
            fits = " | ".join(f"{a[k]['per_parameter'][p]:.3f}" if k in a else "-" for k in ("knn", "cnn"))
            rows.append(f"| {r['preset']} | {p} | {fits} | {base:.3f} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="benchmark folder (datasets, models, matches)")
    parser.add_argument("--presets", default="smoke_plume,cloud,nebula", help="comma-separated, of different families")
    parser.add_argument("--n", type=int, default=512, help="dataset samples per preset")
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--frames", default="1:12")
    parser.add_argument("--frame", type=int, default=8, help="the reference frame, and the frame every sample previews")
    parser.add_argument("--budget", type=int, default=32)
    parser.add_argument("--inner-budget", type=int, default=4)
    parser.add_argument("--nudges", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--inits", default="inverse,default", help="match starts to compare")
    parser.add_argument("--optimizers", default="cma,random", help="bench_match's searches (random runs once)")
    parser.add_argument("--skip-match", action="store_true", help="datasets and models only")
    parser.add_argument("--tiny", action="store_true", help="a minutes-long check of the script, not a benchmark")
    args = parser.parse_args()
    if args.tiny:
        args.n, args.budget, args.inner_budget, args.nudges, args.frames, args.frame = 8, 2, 1, 1, "1:8", 6
    out = args.out.absolute()
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "VDBFORGE_HOME": str(out / "home")}  # models and memory of the benchmark stay in it
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    learnt = [learn(p, args, env, out) for p in presets]
    (out / "bench.json").write_text(json.dumps({"args": vars(args) | {"out": str(out)}, "learn": learnt}, indent=2))
    print(learn_table(learnt), flush=True)
    if args.skip_match:
        return 0
    match = [sys.executable, str(ROOT / "scripts" / "bench_match.py"), "--out", str(out / "match"), "--cases",
             ",".join(presets), "--budget", str(args.budget), "--resolution", str(args.resolution), "--frames",
             args.frames, "--frame", str(args.frame), "--workers", str(args.workers), "--inner-budget",
             str(args.inner_budget), "--nudges", str(args.nudges), "--seed", str(args.seed), "--inits", args.inits,
             "--optimizers", args.optimizers]  # fmt: skip
    print(f"== bench_match --inits {args.inits}", file=sys.stderr, flush=True)
    return subprocess.run(match, cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
