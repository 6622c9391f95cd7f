"""Render preview angles of the exported liquid: the `levelset` grid re-read and meshed, shaded as water on a floor.

What the user takes away is what we look at: the surface comes from the exported level set (not Blender's liquid
mesh), and whitewater from the exported `spray` / `foam` / `bubble` grids, rendered as a white volume.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import bpy
import numpy as np
from mathutils import Vector

from ..core.preset_model import Light, Obstacle, Preset
from .contact_sheet import write_contact_sheet
from .liquid_export import SECONDARY_KINDS
from .liquid_scene import liquid_settings
from .mesh_shapes import add_shape_object
from .openvdb_import import import_openvdb
from .preview_render import PreviewReport, render_angles
from .preview_rig import RIG_PREFIX, configure_cycles, configure_world, rig_angles

ProgressFn = Callable[[int, int], None]
WATER_IOR = 1.333
WATER_ROUGHNESS = 0.05
FLOOR_TILE = 0.25  # metres per checker square: gives the refraction something to bend
WHITEWATER_COLOR = (0.92, 0.95, 1.0)
HORIZON_WHITENING = 0.6  # how much lighter than the preset's world colour the horizon is


def _nodes(material: bpy.types.Material):
    material.use_nodes = True
    nodes, links = material.node_tree.nodes, material.node_tree.links
    nodes.clear()
    out = nodes.new("ShaderNodeOutputMaterial")
    out.location = (600, 0)
    return nodes, links, out


def _depth_tint(nodes, links, tint: tuple[float, float, float], absorption: float):
    """tint ** (absorption x distance travelled inside the water): Beer-Lambert absorption, applied on the way out.

    A surface hit from inside (backfacing) ends a path segment through the water whose length is the ray length; a
    real absorbing volume gives the same colour but costs a volume stack per path (about 2x the render time).
    """
    ray = nodes.new("ShaderNodeLightPath")
    geometry = nodes.new("ShaderNodeNewGeometry")
    depth = nodes.new("ShaderNodeMath")
    depth.operation = "MULTIPLY"
    links.new(ray.outputs["Ray Length"], depth.inputs[0])
    links.new(geometry.outputs["Backfacing"], depth.inputs[1])
    combine = nodes.new("ShaderNodeCombineColor")
    for channel, value in zip(("Red", "Green", "Blue"), tint, strict=True):
        power = nodes.new("ShaderNodeMath")
        power.operation = "POWER"
        power.inputs[0].default_value = max(value, 1e-4)
        exponent = nodes.new("ShaderNodeMath")
        exponent.operation = "MULTIPLY"
        exponent.inputs[1].default_value = absorption
        links.new(depth.outputs[0], exponent.inputs[0])
        links.new(exponent.outputs[0], power.inputs[1])
        links.new(power.outputs[0], combine.inputs[channel])
    return combine.outputs["Color"]


def water_material(tint: tuple[float, float, float], absorption: float) -> bpy.types.Material:
    """Clear water tinted by depth (absorption per metre), so a thin sheet is clear and a deep pool is coloured.

    Shadow rays pass the surface straight through (tinted likewise), so the floor under the water stays lit without
    slow, noisy caustics.
    """
    mat = bpy.data.materials.new(f"{RIG_PREFIX}Water")
    nodes, links, out = _nodes(mat)
    color = _depth_tint(nodes, links, tint, absorption)
    bsdf = nodes.new("ShaderNodeBsdfPrincipled")
    links.new(color, bsdf.inputs["Base Color"])
    bsdf.inputs["Transmission Weight"].default_value = 1.0
    bsdf.inputs["IOR"].default_value = WATER_IOR
    bsdf.inputs["Roughness"].default_value = WATER_ROUGHNESS
    transparent = nodes.new("ShaderNodeBsdfTransparent")
    links.new(color, transparent.inputs["Color"])
    light_path = nodes.new("ShaderNodeLightPath")
    mix = nodes.new("ShaderNodeMixShader")
    links.new(light_path.outputs["Is Shadow Ray"], mix.inputs["Fac"])
    links.new(bsdf.outputs["BSDF"], mix.inputs[1])
    links.new(transparent.outputs["BSDF"], mix.inputs[2])
    links.new(mix.outputs["Shader"], out.inputs["Surface"])
    return mat


def floor_material() -> bpy.types.Material:
    mat = bpy.data.materials.new(f"{RIG_PREFIX}Floor")
    nodes, links, out = _nodes(mat)
    coords = nodes.new("ShaderNodeTexCoord")
    checker = nodes.new("ShaderNodeTexChecker")
    checker.inputs["Color1"].default_value = (0.75, 0.75, 0.72, 1.0)
    checker.inputs["Color2"].default_value = (0.45, 0.45, 0.43, 1.0)
    checker.inputs["Scale"].default_value = 1.0 / FLOOR_TILE
    links.new(coords.outputs["Object"], checker.inputs["Vector"])
    bsdf = nodes.new("ShaderNodeBsdfDiffuse")
    links.new(checker.outputs["Color"], bsdf.inputs["Color"])
    links.new(bsdf.outputs["BSDF"], out.inputs["Surface"])
    return mat


def whitewater_material(grids: list[str], density: float) -> bpy.types.Material:
    """White scattering volume: density x (1 - exp(-particles per voxel)) over the whitewater grids (absent ones are 0).

    The saturation keeps a lone spray droplet visible while a voxel packed with a hundred foam particles is merely
    opaque instead of a solid white block.
    """
    mat = bpy.data.materials.new(f"{RIG_PREFIX}Whitewater")
    nodes, links, out = _nodes(mat)
    volume = nodes.new("ShaderNodeVolumePrincipled")
    volume.inputs["Color"].default_value = (*WHITEWATER_COLOR, 1.0)
    volume.inputs["Density Attribute"].default_value = ""
    total = None
    for name in grids:
        attribute = nodes.new("ShaderNodeAttribute")
        attribute.attribute_name = name
        if total is None:
            total = attribute.outputs["Fac"]
            continue
        add = nodes.new("ShaderNodeMath")
        add.operation = "ADD"
        links.new(total, add.inputs[0])
        links.new(attribute.outputs["Fac"], add.inputs[1])
        total = add.outputs[0]
    negate = nodes.new("ShaderNodeMath")
    negate.operation = "MULTIPLY"
    negate.inputs[1].default_value = -1.0
    links.new(total, negate.inputs[0])
    exp = nodes.new("ShaderNodeMath")
    exp.operation = "EXPONENT"
    links.new(negate.outputs[0], exp.inputs[0])
    coverage = nodes.new("ShaderNodeMath")
    coverage.operation = "SUBTRACT"
    coverage.inputs[0].default_value = 1.0
    links.new(exp.outputs[0], coverage.inputs[1])
    scale = nodes.new("ShaderNodeMath")
    scale.operation = "MULTIPLY"
    scale.inputs[1].default_value = density
    links.new(coverage.outputs[0], scale.inputs[0])
    links.new(scale.outputs[0], volume.inputs["Density"])
    links.new(volume.outputs["Volume"], out.inputs["Volume"])
    return mat


def mesh_from_polygons(name: str, points: np.ndarray, triangles: np.ndarray, quads: np.ndarray) -> bpy.types.Mesh:
    """A smooth-shaded mesh from OpenVDB's (points, triangles, quads), filled in bulk (from_pydata is too slow)."""
    mesh = bpy.data.meshes.new(name)
    corners = np.concatenate([triangles.reshape(-1), quads.reshape(-1)]).astype(np.int32)
    sizes = np.concatenate([np.full(len(triangles), 3), np.full(len(quads), 4)]).astype(np.int32)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int32) if len(sizes) else sizes
    mesh.vertices.add(len(points))
    mesh.vertices.foreach_set("co", points.astype(np.float32).reshape(-1))
    mesh.loops.add(len(corners))
    mesh.loops.foreach_set("vertex_index", corners)
    mesh.polygons.add(len(sizes))
    mesh.polygons.foreach_set("loop_start", starts)
    mesh.update(calc_edges=True)
    mesh.polygons.foreach_set("use_smooth", np.ones(len(sizes), dtype=bool))
    return mesh


def _signed_volume(points: np.ndarray, triangles: np.ndarray, quads: np.ndarray) -> float:
    tris = np.concatenate([triangles, quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]]).astype(np.int64)
    p = points.astype(np.float64)[tris]
    return float(np.einsum("ij,ij->i", p[:, 0], np.cross(p[:, 1], p[:, 2])).sum() / 6.0)


def surface_mesh(vdb_file: str) -> bpy.types.Mesh | None:
    """The zero isosurface of the file's `levelset`, wound so normals point out of the liquid (glass needs that)."""
    vdb = import_openvdb()
    names = {m.name for m in vdb.readAllGridMetadata(vdb_file)}
    if "levelset" not in names:
        return None
    grid = vdb.read(vdb_file, "levelset")
    points, triangles, quads = grid.convertToPolygons(isovalue=0.0, adaptivity=0.0)
    triangles, quads = triangles.reshape(-1, 3), quads.reshape(-1, 4)
    if len(triangles) + len(quads) == 0:
        return None
    if _signed_volume(points, triangles, quads) < 0:
        triangles, quads = triangles[:, ::-1].copy(), quads[:, ::-1].copy()
    return mesh_from_polygons(f"{RIG_PREFIX}LiquidSurface", points, triangles, quads)


def _remove(objects: list[bpy.types.Object]) -> None:
    for obj in objects:
        data = obj.data
        bpy.data.objects.remove(obj)
        (bpy.data.meshes if isinstance(data, bpy.types.Mesh) else bpy.data.volumes).remove(data)


def _link(scene: bpy.types.Scene, name: str, data) -> bpy.types.Object:
    obj = bpy.data.objects.new(name, data)
    scene.collection.objects.link(obj)
    return obj


def _floor(scene: bpy.types.Scene, preset: Preset, lowest: float) -> bpy.types.Object:
    d = preset.domain
    bottom = d.center[2] - d.size[2] / 2
    cell = max(d.size) / d.resolution
    # Mantaflow keeps the surface a cell or two above a closed floor: rest the floor under the liquid, not below it.
    z = lowest if bottom <= lowest <= bottom + 3 * cell else bottom
    half = 3.0 * max(d.size[0], d.size[1])
    mesh = bpy.data.meshes.new(f"{RIG_PREFIX}Floor")
    mesh.from_pydata([(-half, -half, 0), (half, -half, 0), (half, half, 0), (-half, half, 0)], [], [(0, 1, 2, 3)])
    obj = _link(scene, f"{RIG_PREFIX}Floor", mesh)
    obj.location = (d.center[0], d.center[1], z)
    mesh.materials.append(floor_material())
    return obj


def obstacle_location(obstacle: Obstacle, frame: int) -> tuple[float, float, float]:
    """Where a (linearly keyframed) obstacle stands at `frame`, as liquid_scene animates it."""
    if obstacle.move_to is None:
        return obstacle.location
    first, last = obstacle.move_frames
    t = min(max((frame - first) / (last - first), 0.0), 1.0)
    return tuple(a + (b - a) * t for a, b in zip(obstacle.location, obstacle.move_to, strict=True))  # type: ignore[return-value]


def _obstacles(scene: bpy.types.Scene, preset: Preset, frame: int, material: bpy.types.Material) -> list:
    """Obstacles are not part of the asset, but a wave without its paddle or ramp reads as water moving by itself."""
    objects = []
    for i, obstacle in enumerate(liquid_settings(preset).obstacles):
        name = f"{RIG_PREFIX}PreviewObstacle_{i}"
        obj = add_shape_object(
            name,
            obstacle.shape,
            obstacle_location(obstacle, frame),
            obstacle.rotation,
            obstacle.scale,
            scene.collection,
        )
        obj.data.materials.append(material)
        objects.append(obj)
    return objects


def obstacle_material() -> bpy.types.Material:
    mat = bpy.data.materials.new(f"{RIG_PREFIX}Obstacle")
    nodes, links, out = _nodes(mat)
    bsdf = nodes.new("ShaderNodeBsdfPrincipled")
    bsdf.inputs["Base Color"].default_value = (0.55, 0.5, 0.45, 1.0)
    bsdf.inputs["Roughness"].default_value = 0.6
    links.new(bsdf.outputs["BSDF"], out.inputs["Surface"])
    return mat


def sky_gradient(scene: bpy.types.Scene, light: Light) -> None:
    """Brighten the preset's flat world towards the horizon: water is seen by what it reflects, and a flat sky leaves
    a surface nothing to reflect but itself."""
    tree = scene.world.node_tree
    nodes, links = tree.nodes, tree.links
    background = nodes.get("Background")
    coords = nodes.new("ShaderNodeTexCoord")
    split = nodes.new("ShaderNodeSeparateXYZ")
    links.new(coords.outputs["Generated"], split.inputs["Vector"])
    ramp = nodes.new("ShaderNodeMapRange")
    ramp.inputs["From Min"].default_value = 0.0
    ramp.inputs["From Max"].default_value = 0.5
    links.new(split.outputs["Z"], ramp.inputs["Value"])
    mix = nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    sockets = {socket.identifier: socket for socket in mix.inputs}
    horizon = tuple(c + (1.0 - c) * HORIZON_WHITENING for c in light.world_color)
    sockets["A_Color"].default_value = (*horizon, 1.0)
    sockets["B_Color"].default_value = (*light.world_color, 1.0)
    links.new(ramp.outputs["Result"], sockets["Factor_Float"])
    result = next(socket for socket in mix.outputs if socket.identifier == "Result_Color")
    links.new(result, background.inputs["Color"])


def _configure_light_paths(scene: bpy.types.Scene) -> None:
    # Looking through a splash takes several refractions; caustics only add noise at preview sample counts.
    scene.cycles.max_bounces = 8
    scene.cycles.transmission_bounces = 8
    scene.cycles.transparent_max_bounces = 8
    scene.cycles.glossy_bounces = 4
    scene.cycles.caustics_reflective = False
    scene.cycles.caustics_refractive = False


def render_liquid_previews(
    preset: Preset,
    vdb_by_frame: dict[int, str],
    bounds: tuple[list[float], list[float]],
    preview_frames: list[int],
    angles: int,
    out_dir: Path,
    on_progress: ProgressFn | None = None,
) -> PreviewReport:
    """`preview/f####_a##.png` for each preview frame and angle, plus `contact_sheet.png`."""
    scene = bpy.context.scene
    rig = preset.render
    configure_cycles(scene, rig)
    _configure_light_paths(scene)
    configure_world(scene, rig.light)
    sky_gradient(scene, rig.light)
    lo, hi = Vector(bounds[0]), Vector(bounds[1])
    _floor(scene, preset, lo.z)
    water = water_material(preset.material.color, preset.material.density_scale)
    whitewater_mat = whitewater_material(
        list(SECONDARY_KINDS.values()), liquid_settings(preset).secondary.preview_density
    )
    vdb = import_openvdb()
    report = PreviewReport(bounds=(list(lo), list(hi)))
    out_dir.mkdir(parents=True, exist_ok=True)
    views = rig_angles(rig, angles)
    total = len(preview_frames) * len(views)
    solid = obstacle_material()
    per_frame: list[bpy.types.Object] = []
    for frame in preview_frames:
        vdb_file = vdb_by_frame[frame]
        _remove(per_frame)
        per_frame = _obstacles(scene, preset, frame, solid)
        mesh = surface_mesh(vdb_file)
        if mesh is not None:
            mesh.materials.append(water)
            per_frame.append(_link(scene, f"{RIG_PREFIX}LiquidSurface", mesh))
        whitewater = [m.name for m in vdb.readAllGridMetadata(vdb_file) if m.name in SECONDARY_KINDS.values()]
        if whitewater:
            volume = bpy.data.volumes.new(f"{RIG_PREFIX}Whitewater")
            volume.filepath = vdb_file
            volume.materials.append(whitewater_mat)
            per_frame.append(_link(scene, f"{RIG_PREFIX}Whitewater", volume))
            volume.grids.load()
        render_angles(
            scene, rig, views, (lo, hi), frame, out_dir, report, on_progress and (lambda n: on_progress(n, total))
        )
    report.contact_sheet = str(write_contact_sheet(report.images, out_dir / "contact_sheet.png", columns=len(views)))
    return report
