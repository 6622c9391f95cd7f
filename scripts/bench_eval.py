#!/usr/bin/env python3
"""What evaluating one candidate costs besides its bake: build, export, each preview render, scoring.

    .venv/bin/python scripts/bench_eval.py [--preset explosion] [--resolution 64] [--out /tmp/bench_eval]

Runs the real `vdbforge render` once (one worker: build → bake → export → previews), then scores its previews in this
process against one of them as the reference with the default metrics, twice (the first call loads the models, the
second is what every later candidate of a run pays). Prints each stage and the overhead ratio
(everything except the bake) ÷ bake. Target: ≤ 0.25. Model weights come from the usual places; when some are
missing, randomly initialised networks of the same architecture are timed instead (same cost, said in the output).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vdbforge_addon.core.scoring_settings import ScoringSettings  # noqa: E402
from vdbforge_addon.ml.model_weights import all_statuses  # noqa: E402


def run_render(preset: str, resolution: int, out: Path, extra: list[str]) -> tuple[dict, float]:
    cmd = [sys.executable, "-m", "vdbforge_addon.cli", "render", "--preset", preset, "--out", str(out),
           "--resolution", str(resolution), "--json", *extra]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"bench_eval: render failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout), wall


def ensure_weights() -> str:
    """The real weights when present; otherwise random ones in a temporary models folder (timing only)."""
    missing = [s.name for s in all_statuses() if not s.present and s.name != "lpips-vgg"]
    if not missing:
        return "real weights"
    from tests.ml_weights import write_lpips_backbone

    folder = Path(tempfile.mkdtemp(prefix="bench_eval_models_"))
    write_lpips_backbone(folder)
    import open_clip
    import torch

    model = open_clip.create_model("ViT-B-32", pretrained=None)
    (folder / "open_clip").mkdir(exist_ok=True)
    torch.save(model.state_dict(), folder / "open_clip" / "ViT-B-32_openai.pt")
    os.environ["VDBFORGE_MODELS"] = str(folder)
    return f"random weights of the same architectures (missing: {', '.join(missing)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="explosion")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "vdbforge_bench_eval")
    parser.add_argument("--render-args", default="", help="extra `vdbforge render` arguments, e.g. '--angles 2'")
    args = parser.parse_args()
    if args.out.exists():
        import shutil

        shutil.rmtree(args.out)
    result, wall = run_render(args.preset, args.resolution, args.out, args.render_args.split())
    t = result["timings"]
    weights = ensure_weights()
    from vdbforge_addon.ml.scoring import ScoreRequest, find_renders, score

    renders = find_renders(args.out)
    request = ScoreRequest(renders=renders, references=[renders[0]], settings=ScoringSettings())
    started = time.perf_counter()
    score(request)
    first_score = time.perf_counter() - started
    started = time.perf_counter()
    report = score(request)
    warm_score = time.perf_counter() - started

    bake = t["bake"]
    overhead = wall - bake + warm_score
    per_image = result.get("render_seconds_per_image", [])
    print(f"preset {args.preset}, resolution {args.resolution}, {len(renders)} previews, scoring with {weights}")
    staged = sum(t[k] for k in ("build", "bake", "export", "render"))
    print(
        f"  start + setup         {wall - staged:.2f} s (CLI and worker start, import bpy, Mantaflow repair, publish)"
    )
    for stage in ("build", "bake", "export", "render"):
        print(f"  {stage:<20}  {t[stage]:.2f} s")
    if per_image:
        images = ", ".join(f"{s:.2f}" for s in per_image)
        print(f"  per image             {images} s")
    print(f"  scoring (first call)  {first_score:.2f} s (loads the networks once per process)")
    print(f"  scoring (warm)        {warm_score:.2f} s  [{', '.join(report['metrics_used'])}]")
    print(f"  wall total            {wall + warm_score:.2f} s")
    print(
        f"overhead ÷ bake = ({wall:.2f} − {bake:.2f} + {warm_score:.2f}) / {bake:.2f} = {overhead / bake:.3f}  (target ≤ 0.25)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
