#!/usr/bin/env python3
"""Reference recovery: can `vdbforge match` find hidden parameters of a built-in preset from one rendered picture?

    .venv/bin/python scripts/bench_match.py --out /tmp/bench_match [--cases smoke_plume,cloud,nebula,splash]
        [--budget 32] [--resolution 24] [--frames 1:16] [--frame 10] [--workers 2] [--inner-budget 6] [--seed 0]
        [--nudges 3] [--init default]

Per case: hidden truth = the preset's simulation values moved to a seeded random point of [0.2, 0.8] (normalised);
the reference is `vdbforge render` of the truth at one frame and angle. `match` runs with CMA-ES and with
`--optimizer random` at the same budget; `best/preset.json` of each is re-rendered and judged by a subject-focused
similarity (SSIM of Gaussian-blurred RGB, σ = 2 px, inside the union of both images' subject boxes, a subject pixel
being one that differs from the image's border colour; best over the preview frames), the subject masks' IoU, and the
normalised parameter error. The chaos ceiling is the median similarity of the truth nudged by 1 % in `--nudges` random
directions. Prints one row per case, the error ratio ours ÷ random (1 − similarity), the comparison at equal wall
time, and bakes per minute with the workers used. Targets: similarity ≥ min(0.92, ceiling) on ≥ 80 % of cases; median
error ratio ≤ 0.5.
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


def run_case(preset_id: str, args: argparse.Namespace, rng: np.random.Generator, out: Path) -> dict:
    space = SearchSpace.of(resolve_preset(preset_id))
    truth_x = rng.uniform(0.2, 0.8, len(space.simulation)).tolist()
    truth = space.from_unit(space.simulation, truth_x)
    bake = ["--resolution", str(args.resolution), "--frames", args.frames, "--angles", "1"]
    sets = [a for path, value in truth.items() for a in ("--set", f"{path}={value}")]
    ref_dir = out / "reference"
    render("--preset", preset_id, "--out", str(ref_dir), *bake, "--preview-frames", str(args.frame), *sets)
    reference = ref_dir / "preview" / f"f{args.frame:04d}_a00.png"
    frames = f"{max(1, args.frame - 2)}:{args.frame + 2}:2"

    ceiling = []
    for k in range(args.nudges):
        direction = rng.normal(size=len(truth_x))
        x = np.clip(np.asarray(truth_x) + 0.01 * direction / np.linalg.norm(direction), 0, 1).tolist()
        nudged = [a for p, v in space.from_unit(space.simulation, x).items() for a in ("--set", f"{p}={v}")]
        render("--preset", preset_id, "--out", str(out / f"nudge{k}"), *bake, "--preview-frames", frames, *nudged)
        ceiling.append(best_over_frames(out / f"nudge{k}", reference)[0])

    row = {"case": preset_id, "family": space.preset.family, "ceiling": statistics.median(ceiling) if ceiling else 1}
    for optimizer in ("cma", "random"):
        run = out / optimizer
        started = time.perf_counter()
        summary = cli("match", "--preset", preset_id, "--reference", str(reference), "--out", str(run), *bake,
                      "--preview-frames", frames, "--budget", str(args.budget), "--workers", str(args.workers),
                      "--inner-budget", str(args.inner_budget), "--optimizer", optimizer, "--seed", str(args.seed),
                      "--threshold", "1.0", "--allow-missing-weights", "--init", args.init)  # fmt: skip
        wall = time.perf_counter() - started
        if not summary.get("best"):
            row[optimizer] = {"similarity": 0.0, "iou": 0.0, "param_error": 1.0, "wall": wall}
            continue
        render("--preset", str(Path(summary["best"]) / "preset.json"), "--out", str(run / "rerender"))
        similarity, iou = best_over_frames(run / "rerender", reference)
        history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
        best = max(history, key=lambda e: e["score"])
        error = float(np.linalg.norm(np.asarray(best["x"]) - truth_x) / np.sqrt(len(truth_x)))
        row[optimizer] = {"similarity": similarity, "iou": iou, "param_error": error, "wall": wall,
                          "history": history}  # fmt: skip
    return row


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
    parser.add_argument("--init", default="default", choices=("default", "memory", "inverse"))
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    rows = []
    for case in args.cases.split(","):
        print(f"case {case} …", file=sys.stderr, flush=True)
        rows.append(run_case(case, args, rng, args.out / case))

    print(f"budget {args.budget} bakes, resolution {args.resolution}, frames {args.frames}, reference frame "
          f"{args.frame}, workers {args.workers}, inner budget {args.inner_budget}, init {args.init}")  # fmt: skip
    print("case          family       ceiling  target  cma sim  IoU   p.err  random sim  IoU   p.err  err ratio  "
          "equal-time (cma/random objective)  bakes/min")  # fmt: skip
    ratios, hits = [], 0
    for r in rows:
        c, rnd = r["cma"], r["random"]
        target = min(0.92, r["ceiling"])
        hits += c["similarity"] >= target
        ratio = (1 - c["similarity"]) / max(1e-6, 1 - rnd["similarity"])
        ratios.append(ratio)
        cma_time = sum(e["timings"].get("total", 0.0) for e in c.get("history", []))
        eq = (equal_time_score(c.get("history", []), cma_time), equal_time_score(rnd.get("history", []), cma_time))
        per_min = args.budget / (c["wall"] / 60)
        print(f"{r['case']:<13} {r['family']:<12} {r['ceiling']:.3f}   {target:.3f}   {c['similarity']:.3f}  "
              f"{c['iou']:.2f}  {c['param_error']:.3f}  {rnd['similarity']:.3f}       {rnd['iou']:.2f}  "
              f"{rnd['param_error']:.3f}  {ratio:.2f}       {eq[0]:.3f} / {eq[1]:.3f}"
              f"                    {per_min:.1f}")  # fmt: skip
    print(f"cases at target: {hits}/{len(rows)} (target ≥ 80 %); median error ratio {statistics.median(ratios):.2f} "
          "(target ≤ 0.5)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
