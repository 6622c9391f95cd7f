"""Build a Mantaflow FLIP liquid scene (domain, liquid flows, pools, obstacles and paddles) from a resolved preset.

A pool is an ordinary liquid flow with `flow_behavior: geometry` (its volume becomes liquid on the first frame); a
blob is the same with an initial velocity; a jet is an `inflow`. Obstacles are collision effectors, optionally
keyframed from `location` to `move_to` so they push the liquid like a paddle.
"""

from __future__ import annotations

from pathlib import Path

import bpy

from ..core.preset_model import Liquid, Obstacle, Preset
from .gas_scene import add_flow, configure_scene_time, new_fluid_domain, vdbforge_collection
from .mesh_shapes import add_shape_object

SIDES = ("front", "back", "left", "right")


def liquid_settings(preset: Preset) -> Liquid:
    return preset.liquid or Liquid()


def build_liquid_domain(preset: Preset, cache_dir: Path, collection: bpy.types.Collection) -> bpy.types.Object:
    d, liquid = preset.domain, liquid_settings(preset)
    domain, ds = new_fluid_domain(preset, cache_dir, collection, "LIQUID")
    ds.simulation_method = "FLIP"
    ds.cache_mesh_format = "BOBJECT"
    ds.cfl_condition = liquid.cfl
    ds.timesteps_max = liquid.max_substeps
    ds.flip_ratio = liquid.flip_ratio
    ds.particle_radius = liquid.particle_radius
    ds.particle_randomness = liquid.particle_randomness
    ds.particle_number = liquid.particle_number
    # Blender's "Liquid" particle system only displays the FLIP particles; loading it on every frame_set is waste.
    ds.use_flip_particles = False
    ds.use_mesh = True
    ds.mesh_generator = "IMPROVED"
    ds.mesh_scale = liquid.mesh_upres
    ds.mesh_smoothen_pos = liquid.mesh_smoothen
    ds.mesh_smoothen_neg = liquid.mesh_smoothen_neg
    ds.mesh_particle_radius = liquid.mesh_particle_radius
    _configure_secondary(ds, liquid)
    # A basin: the floor and (unless open) the side walls hold the liquid; an open top lets splashes fly freely.
    ds.use_collision_border_bottom = True
    ds.use_collision_border_top = not d.open_top
    for side in SIDES:
        setattr(ds, f"use_collision_border_{side}", not liquid.open_sides)
    return domain


def _configure_secondary(ds: bpy.types.FluidDomainSettings, liquid: Liquid) -> None:
    s = liquid.secondary
    ds.use_spray_particles = s.spray
    ds.use_foam_particles = s.foam
    ds.use_bubble_particles = s.bubble
    if not (s.spray or s.foam or s.bubble):
        return
    # Mantaflow normalises each potential between its min and max: the minimum stays Blender's, only the max moves.
    ds.sndparticle_potential_max_wavecrest = max(s.wavecrest_max, ds.sndparticle_potential_min_wavecrest + 0.01)
    ds.sndparticle_potential_max_trappedair = max(s.trapped_air_max, ds.sndparticle_potential_min_trappedair + 0.01)
    ds.sndparticle_potential_max_energy = max(s.energy_max, ds.sndparticle_potential_min_energy + 0.01)
    ds.sndparticle_sampling_wavecrest = s.wavecrest_sampling
    ds.sndparticle_sampling_trappedair = s.trapped_air_sampling
    ds.sndparticle_life_min = s.life_min
    ds.sndparticle_life_max = s.life_max
    ds.sndparticle_bubble_buoyancy = s.bubble_buoyancy
    ds.sndparticle_bubble_drag = s.bubble_drag
    ds.sndparticle_boundary = "DELETE"
    # Separate spray / foam / bubble systems, so each becomes its own exported grid.
    ds.sndparticle_combined_export = "OFF"


def add_obstacle(
    scene: bpy.types.Scene, index: int, obstacle: Obstacle, collection: bpy.types.Collection
) -> bpy.types.Object:
    obj = add_shape_object(
        f"VDBForge_Obstacle_{index}", obstacle.shape, obstacle.location, obstacle.rotation, obstacle.scale, collection
    )
    obj.hide_render = True
    obj.display_type = "WIRE"
    mod = obj.modifiers.new("Fluid", "FLUID")
    mod.fluid_type = "EFFECTOR"
    es = mod.effector_settings
    es.effector_type = "COLLISION"
    es.use_effector = True
    es.surface_distance = obstacle.surface_distance
    es.subframes = obstacle.subframes
    # A plane has no inside: Mantaflow needs it flagged so it still blocks the liquid.
    es.use_plane_init = obstacle.shape == "plane"
    if obstacle.move_to is not None:
        first, last = obstacle.move_frames
        obj.keyframe_insert("location", frame=first)
        obj.location = obstacle.move_to
        obj.keyframe_insert("location", frame=last)
        obj.location = obstacle.location
        # Linear keys: a paddle that pushes at constant speed, so its speed is simply distance / frames.
        for curve in _fcurves(obj):
            for key in curve.keyframe_points:
                key.interpolation = "LINEAR"
        scene.frame_set(scene.frame_current)
    return obj


def _fcurves(obj: bpy.types.Object) -> list:
    action = obj.animation_data.action if obj.animation_data else None
    if action is None:
        return []
    curves = getattr(action, "fcurves", None)
    if curves is not None and len(curves):
        return list(curves)
    # Blender 4.4+ layered actions keep the curves in channelbags.
    found = []
    for layer in getattr(action, "layers", ()):
        for strip in layer.strips:
            for bag in getattr(strip, "channelbags", ()):
                found.extend(bag.fcurves)
    return found


def build_liquid_scene(scene: bpy.types.Scene, preset: Preset, cache_dir: Path) -> bpy.types.Object:
    """Create the liquid setup inside the VDBForge collection; returns the domain object (made active for baking)."""
    configure_scene_time(scene, preset)
    collection = vdbforge_collection(scene)
    domain = build_liquid_domain(preset, cache_dir, collection)
    for i, emitter in enumerate(preset.emitters):
        if emitter.flow_type != "liquid":
            raise ValueError(f"emitters.{i}.flow_type is '{emitter.flow_type}'; a liquid domain takes 'liquid' flows")
        add_flow(preset, i, emitter, collection)
    for i, obstacle in enumerate(liquid_settings(preset).obstacles):
        add_obstacle(scene, i, obstacle, collection)
    bpy.context.view_layer.objects.active = domain
    bpy.context.view_layer.update()
    return domain
