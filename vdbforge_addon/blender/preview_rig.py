"""Camera angles framed on the volume's active-voxel bounds, plus the preset's lights, world and Cycles settings."""

from __future__ import annotations

import math
from dataclasses import dataclass

import bpy
from mathutils import Vector

from ..core.preset_model import Light, RenderRig

RIG_PREFIX = "VDBForge_"


@dataclass(frozen=True)
class Angle:
    name: str
    azimuth: float  # degrees; 0 looks from -Y towards +Y (front)
    elevation: float


def default_angles(count: int, elevation: float) -> list[Angle]:
    """Front, side, back, top for four; otherwise evenly spaced around at the preset's elevation."""
    if count == 4:
        return [
            Angle("front", 0, elevation),
            Angle("side", 90, elevation),
            Angle("back", 180, elevation),
            Angle("top", 0, 89.0),
        ]
    return [Angle(f"az{round(360 * i / count):03d}", 360.0 * i / count, elevation) for i in range(count)]


def rig_angles(rig: RenderRig, count: int) -> list[Angle]:
    """The preset's explicit views when it lists any, else `count` default angles."""
    if rig.views:
        return [Angle(f"view{i}", v.azimuth, v.elevation) for i, v in enumerate(rig.views)]
    return default_angles(count, rig.elevation)


def configure_cycles(scene: bpy.types.Scene, rig: RenderRig) -> None:
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = rig.samples
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.seed = rig.seed
    scene.cycles.use_animated_seed = False
    scene.cycles.use_denoising = rig.denoise
    if rig.denoise:
        scene.cycles.denoiser = "OPENIMAGEDENOISE"
    scene.cycles.volume_step_rate = rig.volume_step_rate
    scene.cycles.volume_bounces = rig.volume_bounces
    scene.cycles.max_bounces = max(4, rig.volume_bounces)
    scene.render.resolution_x = rig.width
    scene.render.resolution_y = rig.height
    scene.render.resolution_percentage = 100
    scene.render.film_transparent = False
    # Angles of one frame differ only by the camera: keeping Cycles' scene data between renders skips re-loading the
    # volume grids and rebuilding the BVH for every angle.
    scene.render.use_persistent_data = True
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGB"
    scene.view_settings.view_transform = rig.view_transform
    scene.view_settings.look = "None"
    scene.view_settings.exposure = rig.exposure


def configure_world(scene: bpy.types.Scene, light: Light) -> None:
    world = scene.world or bpy.data.worlds.new(f"{RIG_PREFIX}World")
    scene.world = world
    world.use_nodes = True
    background = world.node_tree.nodes.get("Background") or world.node_tree.nodes.new("ShaderNodeBackground")
    background.inputs["Color"].default_value = (*light.world_color, 1.0)
    background.inputs["Strength"].default_value = light.world_strength
    sun = bpy.data.objects.get(f"{RIG_PREFIX}Sun")
    if sun is None:
        sun = bpy.data.objects.new(f"{RIG_PREFIX}Sun", bpy.data.lights.new(f"{RIG_PREFIX}Sun", "SUN"))
        scene.collection.objects.link(sun)
    sun.data.energy = light.sun_strength
    sun.data.color = light.sun_color
    sun.data.angle = math.radians(2.0)
    # A sun shines along its local -Z: tilt it so light arrives from the given elevation and azimuth.
    sun.rotation_euler = (math.radians(90.0 - light.sun_elevation), 0.0, math.radians(light.sun_azimuth))


def frame_camera(scene: bpy.types.Scene, lo: Vector, hi: Vector, angle: Angle, rig: RenderRig) -> bpy.types.Object:
    cam = bpy.data.objects.get(f"{RIG_PREFIX}Camera")
    if cam is None:
        cam = bpy.data.objects.new(f"{RIG_PREFIX}Camera", bpy.data.cameras.new(f"{RIG_PREFIX}Camera"))
        scene.collection.objects.link(cam)
    cam.data.lens = rig.lens
    cam.data.sensor_fit = "AUTO"
    scene.camera = cam
    center = (lo + hi) / 2
    az, el = math.radians(angle.azimuth), math.radians(angle.elevation)
    direction = Vector((math.sin(az) * math.cos(el), -math.cos(az) * math.cos(el), math.sin(el)))
    rotation = (-direction).to_track_quat("-Z", "Y")
    right, up = rotation @ Vector((1, 0, 0)), rotation @ Vector((0, 1, 0))
    # Sensor fit AUTO spans the longer image side; the other side's half-angle shrinks with the aspect.
    tan_long = cam.data.sensor_width / (2 * rig.lens) / rig.framing
    aspect = rig.width / rig.height
    tan_x, tan_y = (tan_long, tan_long / aspect) if aspect >= 1 else (tan_long * aspect, tan_long)
    distance = 0.0
    corners = [Vector((x, y, z)) - center for x in (lo.x, hi.x) for y in (lo.y, hi.y) for z in (lo.z, hi.z)]
    for p in corners:
        toward = p.dot(direction)  # how far the corner sits towards the camera from the centre
        distance = max(distance, toward + abs(p.dot(right)) / tan_x, toward + abs(p.dot(up)) / tan_y)
    radius = max((hi - lo).length / 2, 1e-3)
    distance = max(distance, radius * 1.05)
    cam.location = center + direction * distance
    cam.rotation_euler = rotation.to_euler()
    cam.data.clip_start = max(distance - radius * 2, 1e-3)
    cam.data.clip_end = distance + radius * 4
    return cam
