#!/usr/bin/env python3
"""Benchmark of the image → parameters start (docs/INVERSE.md): what learning a preset once buys a match.

Per preset (three families by default): a dataset of N samples (`vdbforge dataset`, resumable), `vdbforge train`,
then reference-recovery cases: a hidden parameter vector (a Sobol point of another seed, so never in the dataset) is
rendered as the reference, and
  - the model's prediction is rendered once and scored against it (render similarity of the predicted parameters),
    next to the preset's own values rendered the same way, with the per-parameter error of the prediction;
  - `vdbforge match --init inverse` and `--init default` run at the same bake budget (32 by default).
Every step is the real CLI in a subprocess; wall times are recorded (the one-off cost: dataset and training minutes).
Results: OUT/bench.json and a Markdown table on stdout. Rerunning resumes datasets and skips finished cases.

Heavy: run it under the shared lock, e.g. `flock /tmp/vdbforge_heavy.lock .venv/bin/python scripts/bench_inverse.py
--out /tmp/bench_inverse`. `--tiny` is an end-to-end check of the script itself (8 samples, resolution 16, budget 2).
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
sys.path.insert(0, str(ROOT))

from vdbforge_addon.core.dataset_job import sobol_points  # noqa: E402
from vdbforge_addon.core.match_space import SearchSpace  # noqa: E402
from vdbforge_addon.core.preset_library import resolve_preset  # noqa: E402

FULL = {"n": 512, "resolution": 32, "frames": "1:16", "preview_frames": "12", "preview_size": 128, "cases": 3,
        "budget": 32, "population": 6, "inner_budget": 10}  # fmt: skip
TINY = {"n": 8, "resolution": 16, "frames": "1:8", "preview_frames": "6", "preview_size": 64, "cases": 1,
        "budget": 2, "population": 2, "inner_budget": 1}  # fmt: skip
METRICS = "ssim=0.4,silhouette=0.3,color=0.3"  # no downloadable weights needed; --metrics to change


def cli(env: dict, *args: str, check: bool = True) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "vdbforge_addon.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env)  # fmt: skip
    if check and proc.returncode != 0:
        raise SystemExit(f"vdbforge {' '.join(args[:1])} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc, time.monotonic() - started


def bake_args(cfg: dict) -> list[str]:
    return ["--resolution", str(cfg["resolution"]), "--frames", cfg["frames"], "--preview-frames",
            cfg["preview_frames"], "--angles", "1"]  # fmt: skip


def render(env: dict, cfg: dict, preset: str, values: dict, out: Path) -> Path:
    """A preview of `preset` with `values` at the benchmark's settings (reused when already rendered)."""
    image = out / "preview" / f"f{int(cfg['preview_frames']):04d}_a00.png"
    if not image.is_file():
        sets = [item for path, value in values.items() for item in ("--set", f"{path}={json.dumps(value)}")]
        cli(env, "render", "--preset", preset, "--out", str(out), *bake_args(cfg), "--preview-size",
            str(cfg["preview_size"]), *sets)  # fmt: skip
    return image


def score(env: dict, renders: Path, reference: Path, metrics: str) -> float:
    proc, _ = cli(env, "score", "--renders", str(renders), "--reference", str(reference), "--metrics", metrics,
                  "--allow-missing-weights", "--json")  # fmt: skip
    return float(json.loads(proc.stdout)["objective"])


def match(env: dict, cfg: dict, preset: str, reference: Path, out: Path, init: str, args) -> dict:
    summary_file = out.with_suffix(".json")
    if summary_file.is_file():
        return json.loads(summary_file.read_text())
    proc, seconds = cli(env, "match", "--preset", preset, "--reference", str(reference), "--out", str(out),
                        *bake_args(cfg), "--budget", str(cfg["budget"]), "--population", str(cfg["population"]),
                        "--inner-budget", str(cfg["inner_budget"]), "--metrics", args.metrics, "--threshold", "1.0",
                        "--workers", str(args.workers), "--seed", str(args.seed), "--init", init, "--json",
                        check=False)  # fmt: skip
    if proc.returncode != 0:
        result = {"ok": False, "error": proc.stderr.strip().splitlines()[-1:] or [""], "seconds": seconds}
    else:
        summary = json.loads(proc.stdout)
        history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
        curve = [max([e["score"] for e in history if e["index"] < k and e["status"] == "ok"], default=0.0)
                 for k in (8, 16, cfg["budget"])]  # fmt: skip
        result = {"ok": True, "best_score": summary["best_score"], "best_after_8_16_all": curve, "seconds": seconds}
    summary_file.write_text(json.dumps(result, indent=2))
    return result


def match_supports_inverse(env: dict) -> bool:
    proc, _ = cli(env, "match", "--help")
    return "inverse" in proc.stdout


def bench_preset(preset_id: str, cfg: dict, args, env: dict, out: Path) -> dict:
    from vdbforge_addon.ml.inverse_model import predict
    from vdbforge_addon.ml.inverse_store import read_model

    folder = out / preset_id
    folder.mkdir(parents=True, exist_ok=True)
    space = SearchSpace.of(resolve_preset(preset_id))
    dims = (*space.simulation, *space.render)
    _, dataset_seconds = cli(env, "dataset", "--preset", preset_id, "--n", str(cfg["n"]), "--out",
                             str(folder / "dataset"), *bake_args(cfg), "--preview-size", str(cfg["preview_size"]),
                             "--workers", str(args.workers), "--seed", str(args.seed), "--json", check=False)  # fmt: skip
    model_file = folder / "model.pt"
    proc, train_seconds = cli(env, "train", "--dataset", str(folder / "dataset"), "--out", str(model_file), "--json")
    report = json.loads(proc.stdout)
    model = read_model(model_file)
    inverse = match_supports_inverse(env)
    # The model in the user data folder too, where `match --init inverse` looks for it.
    (Path(env["VDBFORGE_HOME"]) / "models" / "inverse").mkdir(parents=True, exist_ok=True)
    (Path(env["VDBFORGE_HOME"]) / "models" / "inverse" / f"{preset_id}.pt").write_bytes(model_file.read_bytes())
    default = render(env, cfg, preset_id, {}, folder / "default_render")
    cases = []
    for case, truth in enumerate(sobol_points(len(dims), cfg["cases"], args.seed + 1000)):
        case_dir = folder / f"case{case}"
        reference = render(env, cfg, preset_id, space.from_unit(dims, truth), case_dir / "reference")
        mean, sigma = predict(model, reference)
        predicted = render(env, cfg, preset_id, space.from_unit(dims, mean), case_dir / "predicted")
        entry = {
            "truth": truth,
            "predicted": mean,
            "sigma": sigma,
            "abs_error": [abs(a - b) for a, b in zip(mean, truth, strict=True)],
            "score_predicted": score(env, predicted.parent, reference, args.metrics),
            "score_default": score(env, default.parent, reference, args.metrics),
            "match_default": match(env, cfg, preset_id, reference, case_dir / "match_default", "default", args),
        }
        if inverse:
            entry["match_inverse"] = match(env, cfg, preset_id, reference, case_dir / "match_inverse", "inverse", args)
        cases.append(entry)
    return {
        "preset": preset_id,
        "family": space.preset.family,
        "parameters": [t.path for t in dims],
        "dataset_minutes": dataset_seconds / 60,
        "train_minutes": train_seconds / 60,
        "train": {k: report[k] for k in ("samples", "test_samples", "winner")}
        | {
            "approaches": {
                a: {k: v for k, v in f.items() if k != "per_parameter"}
                | {"per_parameter_mae": {p: x["mae"] for p, x in f["per_parameter"].items()}}
                for a, f in report["approaches"].items()
            }
        },  # fmt: skip
        "match_inverse_available": inverse,
        "cases": cases,
    }


def table(results: list[dict]) -> str:
    rows = ["| preset | family | dataset min | train min | kept | held-out MAE knn / cnn / mean | score default / "
            "predicted | match default / inverse |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        a = r["train"]["approaches"]
        mae = " / ".join(f"{a[k]['mae']:.3f}" if k in a else "-" for k in ("knn", "cnn"))
        mean_mae = next(iter(a.values()))["baseline_mae"]
        for c in r["cases"]:
            md, mi = c["match_default"], c.get("match_inverse")
            fmt = lambda m: f"{m['best_score']:.3f}" if m and m.get("ok") else "-"  # noqa: E731
            rows.append(f"| {r['preset']} | {r['family']} | {r['dataset_minutes']:.1f} | {r['train_minutes']:.1f} | "
                        f"{r['train']['winner']} | {mae} / {mean_mae:.3f} | {c['score_default']:.3f} / "
                        f"{c['score_predicted']:.3f} | {fmt(md)} / {fmt(mi)} |")  # fmt: skip
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="benchmark folder (datasets, models, cases, bench.json)")
    parser.add_argument("--presets", default="smoke_plume,cloud,star", help="comma-separated, of different families")
    parser.add_argument("--tiny", action="store_true", help="a minutes-long check of the script, not a benchmark")
    parser.add_argument("--n", type=int, help="dataset samples per preset (default 512)")
    parser.add_argument("--cases", type=int, help="reference-recovery cases per preset (default 3)")
    parser.add_argument("--budget", type=int, help="bakes per match (default 32)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--metrics", default=METRICS, help=f"score and match metrics (default {METRICS})")
    args = parser.parse_args()
    cfg = dict(TINY if args.tiny else FULL)
    cfg.update({k: getattr(args, k) for k in ("n", "cases", "budget") if getattr(args, k) is not None})
    out = Path(args.out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "VDBFORGE_HOME": str(out / "home")}  # models and memory of the benchmark stay in it
    results = []
    for preset_id in [p.strip() for p in args.presets.split(",") if p.strip()]:
        print(f"== {preset_id}", file=sys.stderr, flush=True)
        results.append(bench_preset(preset_id, cfg, args, env, out))
        (out / "bench.json").write_text(json.dumps({"config": cfg, "results": results}, indent=2))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
