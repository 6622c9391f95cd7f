#!/usr/bin/env python3
"""Reference recovery: can `vdbforge match` find hidden parameters of a built-in preset from one rendered picture?

    .venv/bin/python scripts/bench_match.py --out /tmp/bench_match [--cases smoke_plume,cloud,nebula,splash]
        [--budget 32] [--resolution 24] [--frames 1:16] [--frame 10] [--workers 2] [--inner-budget 6] [--seed 0]
        [--nudges 3] [--inits default,inverse] [--optimizers cma,random]

Per case: hidden truth = the preset's simulation values moved to a seeded random point of [0.2, 0.8] (normalised);
the reference is `vdbforge render` of the truth at one frame and angle. `match` runs with CMA-ES from each `--inits`
start and with plain `--optimizer random` at the same budget; `best/preset.json` of each is re-rendered and judged by
a subject-focused similarity (SSIM of Gaussian-blurred RGB, σ = 2 px, inside the union of both images' subject boxes,
a subject pixel being one that differs from the image's border colour; best over the preview frames), the subject
masks' IoU, and the normalised parameter error. The chaos ceiling is the median similarity of the truth nudged by 1 %
in `--nudges` random directions. The start of each run (the preset's values, or the inverse model's prediction with
its render-time values) is rendered and judged the same way. A rerun reuses finished runs (OUT/<case>/<search>.json).
Prints one row per case and search, the error ratio ours ÷ random (1 − similarity), the comparison at equal wall
time, and bakes per minute with the workers used. Targets: similarity ≥ min(0.92, ceiling) on ≥ 80 % of cases;
median error ratio ≤ 0.5.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vdbforge_addon.core.match_space import SearchSpace  # noqa: E402
from vdbforge_addon.core.preset_library import resolve_preset  # noqa: E402


def cli(*args: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "vdbforge_addon.cli", *args, "--json"], capture_output=True,
                          text=True, cwd=ROOT)  # fmt: skip
    if proc.returncode not in (0, 1):
        raise SystemExit(f"bench_match: {' '.join(args[:3])} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout)


def render(*args: str) -> dict:
    """`vdbforge render`; a render that fails must stop the benchmark, not pass for a similarity of 0."""
    result = cli("render", *args)
    if not result.get("ok"):
        raise SystemExit(f"bench_match: render {' '.join(args[:2])} failed: {result.get('error')}")
    return result


def subject_similarity(a_path: Path, b_path: Path) -> tuple[float, float]:
    """(blurred SSIM inside the union of the subject boxes, subject-mask IoU)."""
    import torch
    from PIL import Image
    from pytorch_msssim import ssim
    from scipy.ndimage import gaussian_filter

    def load(path: Path) -> tuple[np.ndarray, np.ndarray]:
        rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255.0
        border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
        mask = np.abs(rgb - np.median(border, axis=0)).max(axis=2) > 0.06
        return gaussian_filter(rgb, sigma=(2, 2, 0)), mask

    a, ma = load(a_path)
    b, mb = load(b_path)
    union = ma | mb
    iou = float((ma & mb).sum() / union.sum()) if union.any() else 1.0
    ys, xs = np.nonzero(union)
    if len(xs) == 0:
        return 1.0, iou
    y0, y1, x0, x1 = ys.min(), max(ys.max() + 1, ys.min() + 16), xs.min(), max(xs.max() + 1, xs.min() + 16)
    crop = [torch.from_numpy(np.ascontiguousarray(im[y0:y1, x0:x1])).permute(2, 0, 1)[None].float() for im in (a, b)]
    size = min(crop[0].shape[-2:])
    win = min(11, size - (1 - size % 2))
    return float(ssim(*crop, data_range=1.0, win_size=max(3, win)).clamp(0, 1)), iou


def best_over_frames(render_dir: Path, reference: Path) -> tuple[float, float]:
    scores = [subject_similarity(p, reference) for p in sorted((render_dir / "preview").glob("f*_a00.png"))]
    return max(scores) if scores else (0.0, 0.0)


def values_args(values: dict) -> list[str]:
    return [a for path, value in values.items() for a in ("--set", f"{path}={value}")]


def run_case(preset_id: str, args: argparse.Namespace, rng: np.random.Generator, out: Path) -> dict:
    space = SearchSpace.of(resolve_preset(preset_id))
    truth_x = rng.uniform(0.2, 0.8, len(space.simulation)).tolist()
    truth = space.from_unit(space.simulation, truth_x)
    bake = ["--resolution", str(args.resolution), "--frames", args.frames, "--angles", "1"]
    ref_dir = out / "reference"
    if not (ref_dir / "result.json").is_file():
        render("--preset", preset_id, "--out", str(ref_dir), *bake, "--preview-frames", str(args.frame),
               *values_args(truth))  # fmt: skip
    reference = ref_dir / "preview" / f"f{args.frame:04d}_a00.png"
    frames = f"{max(1, args.frame - 2)}:{args.frame + 2}:2"

    ceiling = []
    for k in range(args.nudges):
        direction = rng.normal(size=len(truth_x))
        x = np.clip(np.asarray(truth_x) + 0.01 * direction / np.linalg.norm(direction), 0, 1).tolist()
        if not (out / f"nudge{k}" / "result.json").is_file():
            render("--preset", preset_id, "--out", str(out / f"nudge{k}"), *bake, "--preview-frames", frames,
                   *values_args(space.from_unit(space.simulation, x)))  # fmt: skip
        ceiling.append(best_over_frames(out / f"nudge{k}", reference)[0])

    row = {"case": preset_id, "family": space.preset.family, "ceiling": statistics.median(ceiling) if ceiling else 1}
    context = {"space": space, "bake": bake, "frames": frames, "reference": reference, "truth_x": truth_x}
    for optimizer in args.optimizers:
        for init in args.inits if optimizer == "cma" else ["default"]:  # the random baseline: plain random search
            row[f"{optimizer}:{init}"] = run_search(
                preset_id, optimizer, init, args, context, out / f"{optimizer}_{init}"
            )
    return row


def run_search(preset_id: str, optimizer: str, init: str, args: argparse.Namespace, case: dict, run: Path) -> dict:
    """One match run (reused when finished), its best re-rendered and judged, and its start point rendered."""
    space, bake, frames, reference = case["space"], case["bake"], case["frames"], case["reference"]
    summary_file = run.with_suffix(".json")
    if summary_file.is_file():
        return json.loads(summary_file.read_text())
    started = time.perf_counter()
    summary = cli("match", "--preset", preset_id, "--reference", str(reference), "--out", str(run), *bake,
                  "--preview-frames", frames, "--budget", str(args.budget), "--workers", str(args.workers),
                  "--inner-budget", str(args.inner_budget), "--optimizer", optimizer, "--seed", str(args.seed),
                  "--threshold", "1.0", "--allow-missing-weights", "--init", init)  # fmt: skip
    wall = time.perf_counter() - started
    if not summary.get("best"):
        return {"similarity": 0.0, "iou": 0.0, "param_error": 1.0, "wall": wall, "history": []}
    render("--preset", str(Path(summary["best"]) / "preset.json"), "--out", str(run / "rerender"))
    similarity, iou = best_over_frames(run / "rerender", reference)
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    best = max(history, key=lambda e: e["score"])
    truth_x = np.asarray(case["truth_x"])
    error = lambda x: float(np.linalg.norm(np.asarray(x) - truth_x) / np.sqrt(len(truth_x)))  # noqa: E731
    # Where the search started (the preset's values, or the model's prediction with its render-time values).
    start = json.loads((run / "run.json").read_text())["init"]
    values = dict(start["mean"])
    if start.get("render_x"):
        values |= space.from_unit(space.render, start["render_x"])
    render("--preset", preset_id, "--out", str(run / "start"), *bake, "--preview-frames", frames,
           *values_args(values))  # fmt: skip
    start_similarity, start_iou = best_over_frames(run / "start", reference)
    result = {"similarity": similarity, "iou": iou, "param_error": error(best["x"]), "wall": wall,
              "start": {"kind": start["kind"], "similarity": start_similarity, "iou": start_iou,
                        "param_error": error(start["x"])},
              "history": history}  # fmt: skip
    summary_file.write_text(json.dumps(result, indent=2))
    return result


def equal_time_score(history: list[dict], seconds: float) -> float:
    """The best objective a run had reached after `seconds` of summed candidate time (one worker's view)."""
    spent, best = 0.0, 0.0
    for entry in sorted(history, key=lambda e: e["index"]):
        spent += entry["timings"].get("total", 0.0)
        if spent > seconds:
            break
        best = max(best, entry["score"])
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cases", default="smoke_plume,cloud,nebula,splash")
    parser.add_argument("--budget", type=int, default=32)
    parser.add_argument("--resolution", type=int, default=24)
    parser.add_argument("--frames", default="1:16")
    parser.add_argument("--frame", type=int, default=10, help="the reference frame")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--inner-budget", type=int, default=6)
    parser.add_argument("--nudges", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--inits", default="default", help="CMA-ES starts to compare: default,memory,inverse")
    parser.add_argument("--optimizers", default="cma,random", help="cma and/or random (random starts plainly)")
    args = parser.parse_args()
    args.inits = [i.strip() for i in args.inits.split(",") if i.strip()]
    args.optimizers = [o.strip() for o in args.optimizers.split(",") if o.strip()]
    if not set(args.inits) <= {"default", "memory", "inverse"} or not set(args.optimizers) <= {"cma", "random"}:
        parser.error("--inits takes default, memory, inverse; --optimizers takes cma, random")
    rng = np.random.default_rng(args.seed)
    rows = []
    for case in args.cases.split(","):
        print(f"case {case} …", file=sys.stderr, flush=True)
        rows.append(run_case(case, args, rng, args.out / case))
        (args.out / "rows.json").write_text(json.dumps(rows, indent=2))
    print_table(rows, args)
    return 0


def print_table(rows: list[dict], args: argparse.Namespace) -> None:
    print(f"budget {args.budget} bakes, resolution {args.resolution}, frames {args.frames}, reference frame "
          f"{args.frame}, workers {args.workers}, inner budget {args.inner_budget}")  # fmt: skip
    print("case          family       ceiling  target  search          start sim  sim    IoU   p.err  err ratio  "
          "equal-time (objective vs random)  bakes/min")  # fmt: skip
    per_search: dict[str, list] = {}
    for r in rows:
        target = min(0.92, r["ceiling"])
        rnd = r.get("random:default")
        for key, run in ((k, v) for k, v in r.items() if ":" in k):
            ratio = (1 - run["similarity"]) / max(1e-6, 1 - rnd["similarity"]) if rnd else None
            per_search.setdefault(key, []).append((run["similarity"] >= target, ratio))
            spent = sum(e["timings"].get("total", 0.0) for e in run["history"])
            eq = f"{equal_time_score(run['history'], spent):.3f} / "
            eq += f"{equal_time_score(rnd['history'], spent):.3f}" if rnd else "-"
            start = run.get("start", {})
            print(f"{r['case']:<13} {r['family']:<12} {r['ceiling']:.3f}   {target:.3f}   {key:<15} "
                  f"{start.get('similarity', float('nan')):.3f}      {run['similarity']:.3f}  {run['iou']:.2f}  "
                  f"{run['param_error']:.3f}  {'-' if ratio is None else f'{ratio:.2f}':<9}  {eq:<33} "
                  f"{args.budget / (run['wall'] / 60):.1f}")  # fmt: skip
    for key, results in per_search.items():
        ratios = [q for _, q in results if q is not None]
        median = f"{statistics.median(ratios):.2f}" if ratios else "-"
        print(f"{key}: cases at target {sum(h for h, _ in results)}/{len(results)} (target ≥ 80 %); median error "
              f"ratio vs random {median} (target ≤ 0.5)")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
