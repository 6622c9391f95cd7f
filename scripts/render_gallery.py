"""Render every built-in preset (or the ones named) and tile their previews into one labelled contact sheet.

    .venv/bin/python scripts/render_gallery.py --out gallery --resolution 64 [--presets fire,cloud] [--skip-existing]

Each preset goes through the real `vdbforge render` (one worker per preset, sequentially: bakes use both cores).
Prints one line per preset with its timings and writes OUT/gallery.png (one row per preset, one column per angle).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vdbforge_addon.core.preset_library import list_presets  # noqa: E402

TILE = 192
LABEL = 150


def render_one(preset_id: str, out: Path, resolution: int, angles: int) -> dict:
    cmd = [sys.executable, "-m", "vdbforge_addon.cli", "render", "--preset", preset_id, "--out", str(out),
           "--resolution", str(resolution), "--angles", str(angles), "--json"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        return {"ok": False, "error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(proc.stdout)


def build_sheet(rows: list[tuple[str, list[str]]], path: Path, angles: int) -> None:
    sheet = Image.new("RGB", (LABEL + angles * TILE, len(rows) * TILE), (20, 20, 24))
    draw = ImageDraw.Draw(sheet)
    for r, (label, images) in enumerate(rows):
        draw.text((8, r * TILE + TILE // 2 - 6), label, fill=(230, 230, 230))
        for c, image_path in enumerate(images[:angles]):
            tile = Image.open(image_path).convert("RGB").resize((TILE, TILE))
            sheet.paste(tile, (LABEL + c * TILE, r * TILE))
    sheet.save(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gallery", type=Path)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--angles", type=int, default=4)
    parser.add_argument("--presets", help="comma-separated ids (default: every built-in preset)")
    parser.add_argument("--skip-existing", action="store_true", help="reuse OUT/<id>/result.json when present")
    args = parser.parse_args()
    ids = args.presets.split(",") if args.presets else [e.id for e in list_presets() if e.source == "builtin"]
    rows: list[tuple[str, list[str]]] = []
    failures = 0
    for preset_id in ids:
        out = args.out / preset_id
        started = time.perf_counter()
        existing = out / "result.json"
        if args.skip_existing and existing.is_file():
            result = {"ok": True, **json.loads(existing.read_text())}
        else:
            result = render_one(preset_id, out, args.resolution, args.angles)
        if not result.get("ok"):
            failures += 1
            print(f"{preset_id:<16} FAILED: {result['error']}", flush=True)
            continue
        t = result["timings"]
        print(
            f"{preset_id:<16} bake {t['bake']:6.1f}s  export {t['export']:5.1f}s  render {t['render']:5.1f}s  "
            f"wall {time.perf_counter() - started:6.1f}s  previews {out / 'preview'}",
            flush=True,
        )
        rows.append((f"{preset_id}\n({result['family']})", result["previews"]))
    if rows:
        sheet = args.out / "gallery.png"
        build_sheet(rows, sheet, args.angles)
        print(f"contact sheet: {sheet}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
