"""Build a Mantaflow gas scene (domain, flows, force fields) from a resolved preset."""

from __future__ import annotations

import math
from pathlib import Path

import bpy

from ..core.preset_model import Emitter, ForceField, Preset
from .mesh_shapes import add_box_object, add_shape_object

COLLECTION_NAME = "VDBForge"
_FLOW_TYPES = {"smoke": "SMOKE", "fire": "FIRE", "both": "BOTH", "liquid": "LIQUID"}
_FLOW_BEHAVIOR = {"inflow": "INFLOW", "geometry": "GEOMETRY", "outflow": "OUTFLOW"}
_FIELD_TYPES = {"turbulence": "TURBULENCE", "vortex": "VORTEX", "wind": "WIND", "force": "FORCE"}


def vdbforge_collection(scene: bpy.types.Scene) -> bpy.types.Collection:
    collection = bpy.data.collections.get(COLLECTION_NAME)
    if collection is None:
        collection = bpy.data.collections.new(COLLECTION_NAME)
    if collection.name not in scene.collection.children:
        scene.collection.children.link(collection)
    return collection


def configure_scene_time(scene: bpy.types.Scene, preset: Preset) -> None:
    scene.render.fps = preset.domain.fps
    scene.frame_start = preset.domain.frame_start
    scene.frame_end = preset.domain.frame_end
    scene.frame_set(preset.domain.frame_start)


def new_fluid_domain(
    preset: Preset, cache_dir: Path, collection: bpy.types.Collection, domain_type: str
) -> tuple[bpy.types.Object, bpy.types.FluidDomainSettings]:
    """The domain box with what gas and liquid domains share: resolution, cache, frames, time scale, gravity."""
    d = preset.domain
    domain = add_box_object("VDBForge_Domain", d.center, d.size, collection)
    domain.display_type = "WIRE"
    domain.hide_render = True  # previews render the exported grids, not the live domain
    settings = domain.modifiers.new("Fluid", "FLUID")
    settings.fluid_type = "DOMAIN"
    ds = settings.domain_settings
    ds.domain_type = domain_type
    ds.resolution_max = d.resolution
    ds.cache_directory = str(cache_dir)
    # Built as REPLAY and switched to ALL right before baking: bpy 4.2.0 fails depsgraph updates of ALL domains.
    ds.cache_type = "REPLAY"
    ds.cache_data_format = "OPENVDB"
    ds.cache_frame_start = d.frame_start
    ds.cache_frame_end = d.frame_end
    ds.time_scale = d.time_scale
    ds.gravity = d.gravity
    return domain, ds


def build_gas_domain(preset: Preset, cache_dir: Path, collection: bpy.types.Collection) -> bpy.types.Object:
    d = preset.domain
    domain, ds = new_fluid_domain(preset, cache_dir, collection, "GAS")
    ds.cache_noise_format = "OPENVDB"
    ds.openvdb_data_depth = "32"
    ds.vorticity = d.vorticity
    ds.alpha = d.alpha
    ds.beta = d.beta
    ds.use_dissolve_smoke = d.dissolve_time is not None
    if d.dissolve_time is not None:
        ds.dissolve_speed = d.dissolve_time
        ds.use_dissolve_smoke_log = d.dissolve_log
    ds.burning_rate = d.flame.burning_rate
    ds.flame_smoke = d.flame.smoke
    ds.flame_vorticity = d.flame.vorticity
    ds.flame_ignition = d.flame.ignition
    ds.flame_max_temp = d.flame.max_temp
    ds.flame_smoke_color = d.flame.smoke_color
    ds.use_noise = d.noise.enabled
    if d.noise.enabled:
        ds.noise_scale = d.noise.upres
        ds.noise_strength = d.noise.strength
        ds.noise_pos_scale = d.noise.scale
        ds.noise_time_anim = d.noise.time_anim
    ds.use_adaptive_domain = False
    # Smoke leaves through open walls instead of pooling against them; the floor stays closed.
    ds.use_collision_border_bottom = not d.open_bottom
    ds.use_collision_border_top = not d.open_top
    for side in ("front", "back", "left", "right"):
        setattr(ds, f"use_collision_border_{side}", False)
    return domain


def add_flow(preset: Preset, index: int, emitter: Emitter, collection: bpy.types.Collection) -> bpy.types.Object:
    obj = add_shape_object(
        f"VDBForge_Emitter_{index}", emitter.shape, emitter.location, emitter.rotation, emitter.scale, collection
    )
    obj.hide_render = True
    obj.display_type = "WIRE"
    mod = obj.modifiers.new("Fluid", "FLUID")
    mod.fluid_type = "FLOW"
    fs = mod.flow_settings
    fs.flow_type = _FLOW_TYPES[emitter.flow_type]
    fs.flow_behavior = _FLOW_BEHAVIOR[emitter.flow_behavior]
    fs.flow_source = "MESH"
    fs.fuel_amount = emitter.fuel_amount
    fs.temperature = emitter.temperature
    fs.density = emitter.density
    fs.smoke_color = emitter.smoke_color
    fs.surface_distance = emitter.surface_distance
    fs.volume_density = emitter.volume_density
    fs.subframes = emitter.subframes
    if emitter.initial_velocity is not None or emitter.velocity_normal or emitter.velocity_random:
        fs.use_initial_velocity = True
        fs.velocity_coord = emitter.initial_velocity or (0.0, 0.0, 0.0)
        fs.velocity_normal = emitter.velocity_normal
        fs.velocity_random = emitter.velocity_random
    if emitter.noise_texture is not None:
        texture = bpy.data.textures.new(f"VDBForge_EmitterNoise_{index}", type="CLOUDS")
        texture.noise_scale = emitter.noise_texture
        fs.use_texture = True
        fs.noise_texture = texture
        fs.texture_map_type = "AUTO"
    if emitter.emit_frames is not None:
        first, last = emitter.emit_frames
        for frame, value in ((preset.domain.frame_start, first <= preset.domain.frame_start), (first, True)):
            fs.use_inflow = value
            fs.keyframe_insert("use_inflow", frame=frame)
        fs.use_inflow = False
        fs.keyframe_insert("use_inflow", frame=last + 1)
        fs.use_inflow = True
    return obj


def add_force_field(index: int, field: ForceField, collection: bpy.types.Collection) -> bpy.types.Object:
    # Only the operator creates an object's field settings (`obj.field` is None on a plain new empty).
    with bpy.context.temp_override(collection=collection):
        bpy.ops.object.effector_add(
            type=_FIELD_TYPES[field.type], location=field.location, rotation=[math.radians(a) for a in field.rotation]
        )
    obj = bpy.context.view_layer.objects.active
    obj.name = f"VDBForge_Field_{index}"
    for other in list(obj.users_collection):
        if other != collection:
            other.objects.unlink(obj)
    if collection not in obj.users_collection:
        collection.objects.link(obj)
    obj.field.strength = field.strength
    obj.field.flow = field.flow
    if field.type == "turbulence":
        obj.field.size = field.size
        obj.field.noise = field.noise
        obj.field.seed = field.seed
    obj.field.shape = field.shape.upper()
    obj.field.z_direction = field.z_direction.upper()
    if field.max_distance is not None:
        obj.field.use_max_distance = True
        obj.field.distance_max = field.max_distance
    return obj


def build_gas_scene(scene: bpy.types.Scene, preset: Preset, cache_dir: Path) -> bpy.types.Object:
    """Create the whole simulation setup inside the VDBForge collection; returns the domain object."""
    configure_scene_time(scene, preset)
    collection = vdbforge_collection(scene)
    domain = build_gas_domain(preset, cache_dir, collection)
    for i, emitter in enumerate(preset.emitters):
        add_flow(preset, i, emitter, collection)
    for i, field in enumerate(preset.force_fields):
        add_force_field(i, field, collection)
    bpy.context.view_layer.update()
    return domain
