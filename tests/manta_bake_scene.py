"""Build and bake one tiny Mantaflow scene with the `bpy` module, in a process of its own.

Run by tests/test_manta_repair.py as `python tests/manta_bake_scene.py SCENE CACHE_DIR [--resolution N] [--frames N]`;
prints one JSON line (repair report, bake time, cache files) and then exits normally, so the clean-exit hook is part
of what is tested. `gaps` instead of a scene prints the gap count before and after the repair.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time
from pathlib import Path

import bpy

from vdbforge_addon.blender import manta_repair
from vdbforge_addon.blender.runtime import prepare_runtime

SCENES = ("gas_noise", "liquid_particles", "gas_guiding")
KNOWN_GRIDS = (
    "density",
    "flame",
    "temperature",
    "velocity",
    "shadow",
    "density_noise",
    "flame_noise",
    "particles",
    "particles_secondary",
    "velocity_guide",
)


def _mesh_object(name: str, shape: str, size: float, location: tuple[float, float, float]) -> bpy.types.Object:
    import bmesh  # only importable once bpy is

    mesh = bpy.data.meshes.new(name)
    bm = bmesh.new()
    if shape == "cube":
        bmesh.ops.create_cube(bm, size=size)
    else:
        bmesh.ops.create_icosphere(bm, subdivisions=2, radius=size)
    bm.to_mesh(mesh)
    bm.free()
    obj = bpy.data.objects.new(name, mesh)
    obj.location = location
    bpy.context.scene.collection.objects.link(obj)
    return obj


def _box(name: str, size: float, location: tuple[float, float, float]) -> bpy.types.Object:
    return _mesh_object(name, "cube", size, location)


def _sphere(name: str, radius: float, location: tuple[float, float, float]) -> bpy.types.Object:
    return _mesh_object(name, "sphere", radius, location)


def build(scene_name: str, cache_dir: Path, resolution: int, frames: int) -> bpy.types.Object:
    scene = bpy.context.scene
    scene.frame_start = 1
    scene.frame_end = frames

    domain = _box("Domain", 2.0, (0.0, 0.0, 1.0))
    settings = domain.modifiers.new("Fluid", type="FLUID")
    settings.fluid_type = "DOMAIN"
    ds = settings.domain_settings
    # bpy 4.2.0 intermittently fails depsgraph updates of a gas domain whose cache type is MODULAR/ALL; REPLAY while
    # building, ALL right before baking avoids it (and changes nothing on later versions).
    ds.cache_type = "REPLAY"
    ds.cache_directory = str(cache_dir)
    ds.cache_frame_start = 1
    ds.cache_frame_end = frames
    ds.resolution_max = resolution

    flow = _sphere("Flow", 0.3, (0.0, 0.0, 0.5))
    flow_mod = flow.modifiers.new("Fluid", type="FLUID")
    flow_mod.fluid_type = "FLOW"
    fs = flow_mod.flow_settings
    fs.flow_behavior = "INFLOW"
    fs.flow_source = "MESH"
    fs.surface_distance = 1.0

    if scene_name in ("gas_noise", "gas_guiding"):
        ds.domain_type = "GAS"
        fs.flow_type = "BOTH"
    if scene_name == "gas_noise":
        ds.use_noise = True
        ds.noise_scale = 2
    if scene_name == "gas_guiding":
        ds.use_guide = True
        ds.guide_source = "EFFECTOR"
        guide = _sphere("Guide", 0.35, (-0.5, 0.0, 1.0))
        guide_mod = guide.modifiers.new("Fluid", type="FLUID")
        guide_mod.fluid_type = "EFFECTOR"
        guide_mod.effector_settings.effector_type = "GUIDE"
        # A guide only produces velocities if it moves.
        guide.keyframe_insert("location", frame=1)
        guide.location.x = 0.5
        guide.keyframe_insert("location", frame=frames)
    if scene_name == "liquid_particles":
        ds.domain_type = "LIQUID"
        fs.flow_type = "LIQUID"
        fs.use_initial_velocity = True
        fs.velocity_coord = (0.0, 0.0, 2.0)
        ds.use_mesh = True
        ds.use_spray_particles = True
        ds.use_foam_particles = True
        ds.use_bubble_particles = True

    bpy.context.view_layer.objects.active = domain
    bpy.context.view_layer.update()
    return domain


def bake(domain: bpy.types.Object) -> float:
    domain.modifiers["Fluid"].domain_settings.cache_type = "ALL"
    start = time.perf_counter()
    with bpy.context.temp_override(object=domain, active_object=domain):
        result = bpy.ops.fluid.bake_all()
    if result != {"FINISHED"}:
        raise RuntimeError(f"fluid.bake_all returned {result}")
    return time.perf_counter() - start


def _voxel_counts_from_bytes(data: bytes) -> dict[str, int]:
    """Grid name → `file_voxel_count` metadata, found in the raw file.

    For the bpy 4.2.0 wheel, which ships no `openvdb` module. A VDB file writes each grid's descriptor (name as a
    little-endian uint32 length and the bytes) followed by that grid's metadata, uncompressed, where
    `file_voxel_count` is an int64; so the first count after a grid's name is that grid's.
    """
    count_key = b"file_voxel_count" + struct.pack("<I", 5) + b"int64" + struct.pack("<I", 8)
    counts = {}
    for name in KNOWN_GRIDS:
        at = data.find(struct.pack("<I", len(name)) + name.encode())
        if at < 0:
            continue
        key_at = data.find(count_key, at)
        if key_at < 0:
            raise ValueError(f"no file_voxel_count after grid {name!r}")
        counts[name] = struct.unpack_from("<q", data, key_at + len(count_key))[0]
    return counts


def grid_summary(cache_dir: Path, with_openvdb: bool) -> dict[str, dict[str, int]]:
    """Voxel count of each grid in the last `.vdb` of every cache folder.

    Read with Blender's bundled `openvdb`, importable only once prepare_runtime() has put it on sys.path, or from the
    raw file where the wheel has no `openvdb` (bpy 4.2.0).
    """
    summary: dict[str, dict[str, int]] = {}
    for folder in sorted(p for p in cache_dir.iterdir() if p.is_dir()):
        files = sorted(folder.glob("*.vdb"))
        if not files:
            continue
        if with_openvdb:
            import openvdb

            grids = openvdb.readAllGridMetadata(str(files[-1]))
            summary[folder.name] = {grid.name: int(grid.metadata["file_voxel_count"]) for grid in grids}
            # Keeps the raw reader, the only one on bpy 4.2.0, honest wherever openvdb can check it.
            raw = _voxel_counts_from_bytes(files[-1].read_bytes())
            if raw != summary[folder.name]:
                raise AssertionError(f"raw VDB reading {raw} differs from openvdb {summary[folder.name]}")
        else:
            summary[folder.name] = _voxel_counts_from_bytes(files[-1].read_bytes())
    return summary


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("scene", choices=(*SCENES, "gaps"))
    parser.add_argument("cache_dir", type=Path, nargs="?")
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--frames", type=int, default=6)
    args = parser.parse_args(argv)

    if args.scene == "gaps":
        before = manta_repair.mantaflow_gaps()
        report = prepare_runtime()
        print(json.dumps({"before": len(before), "after": len(manta_repair.mantaflow_gaps()), "report": report}))
        return 0

    report = prepare_runtime()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    domain = build(args.scene, args.cache_dir, args.resolution, args.frames)
    seconds = bake(domain)
    files = sorted(str(p.relative_to(args.cache_dir)) for p in args.cache_dir.rglob("*") if p.is_file())
    result = {
        "report": report,
        "bpy": bpy.app.version_string,
        "bake_seconds": round(seconds, 3),
        "files": files,
        "grids": grid_summary(args.cache_dir, with_openvdb=report["site_packages"] is not None),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
