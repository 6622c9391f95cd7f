"""Liquid presets end to end through the real `vdbforge render`: bake, level-set export read back by OpenVDB's own
`vdb_print`, previews that show something. Resolution 24 and 12 frames keep each preset to a few seconds of baking."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vdbforge_addon.core.preset_library import resolve_preset

from .conftest import run_cli

VDB_PRINT = shutil.which("vdb_print")
LIQUID_PRESETS = ("splash", "wave", "droplets")
RESOLUTION = 24


def _render(out: Path, preset_id: str, *extra: str) -> dict:
    proc = run_cli(
        "render", "--preset", preset_id, "--out", str(out), "--resolution", str(RESOLUTION), "--frames", "1:12",
        "--angles", "1", "--json", *extra,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="module", params=LIQUID_PRESETS)
def liquid_render(request, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp(request.param) / "out"
    result = _render(out, request.param)
    result["_out"], result["_id"] = out, request.param
    return result


def _grids(path: Path) -> dict[str, dict]:
    """Per grid: class, active voxel count, index bbox and voxel size / translation, as `vdb_print -l` reports them."""
    text = subprocess.run([VDB_PRINT, "-l", str(path)], capture_output=True, text=True, check=True).stdout
    grids = {}
    for block in text.split("Name: ")[1:]:
        name = block.split("\n", 1)[0].strip()
        bbox = re.search(r"Bounding box of active voxels: \[(.*?)\] -> \[(.*?)\]", block)
        origin = re.search(r"index to world:(?:\s*\[.*?\]){3}\s*\[(.*?)\]", block)
        grids[name] = {
            "class": re.search(r"class: (.+)", block).group(1).strip(),
            "active": int(re.search(r"Number of active voxels:\s+([\d,]+)", block).group(1).replace(",", "")),
            "bbox": [[int(v) for v in bbox.group(i).split(",")] for i in (1, 2)] if bbox else None,
            "voxel": float(re.search(r"voxel size: ([\d.e-]+)", block).group(1)),
            "origin": [float(v) for v in origin.group(1).split(",")[:3]],
        }
    return grids


@pytest.mark.skipif(VDB_PRINT is None, reason="vdb_print (Debian libopenvdb-tools) is installed by scripts/setup.sh")
def test_liquid_vdb_holds_a_level_set_inside_the_domain(liquid_render):
    out, preset = liquid_render["_out"], resolve_preset(liquid_render["_id"])
    files = sorted((out / "vdb").glob(f"{preset.id}_*.vdb"))
    assert [p.name for p in files] == [f"{preset.id}_{f:04d}.vdb" for f in range(1, 13)]
    lo = np.array(preset.domain.center) - np.array(preset.domain.size) / 2
    hi = lo + np.array(preset.domain.size)
    cell = max(preset.domain.size) / RESOLUTION
    for path in files:
        grids = _grids(path)
        levelset = grids["levelset"]
        assert levelset["class"] == "level set" and levelset["active"] > 0, path.name
        assert levelset["voxel"] == pytest.approx(cell, rel=1e-3)
        assert "velocity" in grids
        # The narrow band may reach 3 voxels past the surface; the surface itself stays in the domain.
        world = [np.array(levelset["origin"]) + np.array(c) * levelset["voxel"] for c in levelset["bbox"]]
        assert np.all(world[0] >= lo - 3.5 * cell) and np.all(world[1] <= hi + 3.5 * cell), path.name
    box_lo, box_hi = (np.array(b) for b in liquid_render["bounds"])
    assert np.all(box_lo >= lo - 1e-4) and np.all(box_hi <= hi + 1e-4), liquid_render["bounds"]
    assert np.all(box_hi - box_lo > cell), "the liquid has volume"


def test_liquid_previews_are_not_blank(liquid_render):
    out = liquid_render["_out"]
    previews = sorted((out / "preview").glob("f*_a*.png"))
    assert len(previews) == 1 and (out / "preview" / "contact_sheet.png").is_file()
    for path in previews:
        pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
        assert pixels.std() > 8, f"{path.name} is flat"
        # Water is tinted: some pixels must lean blue-green, which neither the grey floor nor the sky edge does alone.
        tint = pixels[..., 2] - pixels[..., 0]
        assert (tint > 25).mean() > 0.02, f"{path.name}: no water in view"


def test_liquid_result_reports_stages(liquid_render):
    timings = liquid_render["timings"]
    for stage in ("build", "bake", "export", "render", "total"):
        assert timings[stage] > 0
    assert liquid_render["baked_frames"] == list(range(1, 13))
    assert not (liquid_render["_out"] / "cache").exists()


@pytest.mark.skipif(VDB_PRINT is None, reason="vdb_print (Debian libopenvdb-tools) is installed by scripts/setup.sh")
@pytest.mark.parametrize("liquid_render", ["droplets"], indirect=True)
def test_droplets_export_whitewater_grids(liquid_render):
    seen: set[str] = set()
    for path in sorted((liquid_render["_out"] / "vdb").glob("*.vdb")):
        seen |= {name for name, g in _grids(path).items() if g["class"] == "fog volume" and g["active"] > 0}
    assert seen & {"spray", "foam", "bubble"}, f"no whitewater grid in any frame (found {seen})"


def test_whitewater_kinds_switched_off_are_not_exported(tmp_path):
    """Blender keeps a particle system for every whitewater kind once one is on; the preset's switches decide."""
    data = json.loads(resolve_preset("droplets").model_dump_json())
    data["liquid"]["secondary"]["foam"] = False
    preset = tmp_path / "no_foam.json"
    preset.write_text(json.dumps(data))
    result = _render(tmp_path / "out", str(preset))
    exported = {name for grids in result["grids_per_frame"].values() for name in grids}
    assert "foam" not in exported and exported & {"spray", "bubble"}, exported


MAPPING_SCRIPT = """
import json, sys
from pathlib import Path
import bpy, numpy as np
from vdbforge_addon.blender.bake import bake_domain
from vdbforge_addon.blender.liquid_export import bobj_to_world, export_liquid_frames, mesh_file, read_bobj
from vdbforge_addon.blender.openvdb_import import import_openvdb
from vdbforge_addon.blender.liquid_scene import build_liquid_scene
from vdbforge_addon.blender.runtime import prepare_runtime
from vdbforge_addon.blender.scene_reset import reset_to_empty_scene
from vdbforge_addon.core.parameters import validate_preset
from vdbforge_addon.core.preset_library import resolve_preset

prepare_runtime()
data = resolve_preset("splash").model_dump(mode="json")
# Off-centre, non-cubic domain: any mix-up of centre, corner or per-axis scale shows.
data["domain"].update(center=[0.3, -0.2, 1.1], size=[2.2, 1.6, 2.0], resolution=16, frame_end=4)
preset = validate_preset(data, "mapping test")
cache = Path(sys.argv[1])
domain = build_liquid_scene(reset_to_empty_scene(), preset, cache)
bake_domain(domain)
scene = bpy.context.scene
scene.frame_set(3)
mesh = domain.evaluated_get(bpy.context.evaluated_depsgraph_get()).data
blender = np.array([(domain.matrix_world @ v.co)[:] for v in mesh.vertices])
ours = bobj_to_world(read_bobj(mesh_file(cache, 3))[0], preset)
report = export_liquid_frames(preset, {}, cache, cache.parent / "vdb", [3])
vdb = import_openvdb()
grid = vdb.read(report.files[0], "levelset")
acc = grid.getConstAccessor()
def phi(p):
    return acc.getValue(tuple(int(round(v)) for v in grid.transform.worldToIndex(p)))
# Deep in the pool (far from the drop) must read inside, high in the air outside, whatever the narrow band holds.
signs = [phi((1.0, 0.5, 0.25)), phi((0.3, -0.2, 2.0))]
print(json.dumps({"n": [len(blender), len(ours)], "max_diff": float(np.abs(blender - ours).max()), "phi": signs}))
reset_to_empty_scene()
"""


def test_bobj_mapping_matches_blenders_own_liquid_mesh(tmp_path):
    """Our reading of the mesh cache puts every vertex exactly where Blender's evaluated liquid mesh has it."""
    proc = subprocess.run(
        [sys.executable, "-c", MAPPING_SCRIPT, str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["n"][0] == report["n"][1] > 0
    assert report["max_diff"] < 1e-4
    inside, outside = report["phi"]
    assert inside < 0 < outside, report["phi"]


# What makes each preset read as what it is at its own resolution, in numbers: the splash crown rises well above the
# 0.3 m pool, the wave reaches the far ramp and climbs it, the jet throws whitewater. (Thresholds sit well inside
# what bpy 4.5.15 gives; the bake is deterministic per Blender version.)
FULL_RES_CHECKS = {
    "splash": lambda lo, hi, voxels: hi[2] > 0.5,
    "wave": lambda lo, hi, voxels: hi[0] > 1.2 and hi[2] > 0.45,
    "droplets": lambda lo, hi, voxels: voxels.get("spray", 0) > 0 and voxels.get("foam", 0) > 0,
}


@pytest.mark.slow
@pytest.mark.parametrize("preset_id", LIQUID_PRESETS)
def test_full_resolution_preset_shows_its_subject(tmp_path, preset_id):
    out = tmp_path / "out"
    proc = run_cli("render", "--preset", preset_id, "--out", str(out), "--angles", "1", "--json", timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["resolution"] == 64
    frame = result["preview_frames"][0]
    lo, hi = result["bounds"]
    assert FULL_RES_CHECKS[preset_id](lo, hi, result["active_voxels"][str(frame)]), (result["bounds"], frame)
