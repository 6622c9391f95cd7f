"""Volume shading for previews: Principled Volume driven by the exported grids, fire as blackbody emission."""

from __future__ import annotations

import bpy

from ..core.preset_model import Material

MATERIAL_NAME = "VDBForge_Volume"


def _attribute(nodes, name: str, location):
    node = nodes.new("ShaderNodeAttribute")
    node.attribute_name = name
    node.location = location
    return node


def _math(nodes, links, operation: str, a, b, location):
    node = nodes.new("ShaderNodeMath")
    node.operation = operation
    node.location = location
    for socket, value in ((node.inputs[0], a), (node.inputs[1], b)):
        if isinstance(value, (int, float)):
            socket.default_value = value
        else:
            links.new(value, socket)
    return node.outputs[0]


def _mix_rgb(nodes, links, a, b, factor, location, blend: str = "MIX"):
    mix = nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    mix.blend_type = blend
    mix.location = location
    # Mix has float, vector and colour sockets that share the names A/B/Result: address the colour ones by identifier.
    sockets = {socket.identifier: socket for socket in mix.inputs}
    for socket, value in ((sockets["A_Color"], a), (sockets["B_Color"], b), (sockets["Factor_Float"], factor)):
        if isinstance(value, tuple):
            socket.default_value = (*value, 1.0)
        elif isinstance(value, (int, float)):
            socket.default_value = value
        else:
            links.new(value, socket)
    return mix


def _output(node, identifier: str):
    return next(socket for socket in node.outputs if socket.identifier == identifier)


def _emission_color(nodes, links, material: Material, value, grids: set[str]):
    """Blackbody colour of the emission value, a flat colour, or a cold->hot gradient over the temperature grid."""
    if material.emission_color_mode == "color":
        return None
    if material.emission_color_mode == "gradient":
        if "temperature" not in grids:
            return None
        temperature = _attribute(nodes, "temperature", (-700, -600))
        t = _math(nodes, links, "DIVIDE", temperature.outputs["Fac"], material.gradient_range, (-500, -600))
        t = _math(nodes, links, "MINIMUM", _math(nodes, links, "MAXIMUM", t, 0.0, (-400, -600)), 1.0, (-300, -600))
        return _mix_rgb(nodes, links, material.emission_color, material.emission_color_hot, t, (-100, -600))
    kelvin = nodes.new("ShaderNodeMapRange")
    kelvin.location = (-300, -400)
    links.new(value, kelvin.inputs["Value"])
    kelvin.inputs["To Min"].default_value = material.temperature_min
    kelvin.inputs["To Max"].default_value = material.temperature_max
    blackbody = nodes.new("ShaderNodeBlackbody")
    blackbody.location = (-100, -400)
    links.new(kelvin.outputs["Result"], blackbody.inputs["Temperature"])
    return _mix_rgb(nodes, links, blackbody.outputs["Color"], material.emission_tint, 1.0, (100, -400), "MULTIPLY")


def _ramp(nodes, links, value, lo: float, hi: float, location):
    """0 below `lo`, rising smoothly to 1 at `hi`."""
    ramp = nodes.new("ShaderNodeMapRange")
    ramp.interpolation_type = "SMOOTHSTEP"
    ramp.location = location
    links.new(value, ramp.inputs["Value"])
    ramp.inputs["From Min"].default_value = lo
    ramp.inputs["From Max"].default_value = hi
    return ramp.outputs["Result"]


def _length(nodes, links, vector, location):
    node = nodes.new("ShaderNodeVectorMath")
    node.operation = "LENGTH"
    node.location = location
    links.new(vector, node.inputs[0])
    return node.outputs["Value"]


def _radial_mask(nodes, links, material: Material, center):
    """1 outside the core (horizontal distance from the vertical axis through `center`) and inside the edge (distance
    from `center`: a sphere, so a gas that fills its box reads round from every side), fading to 0 across each
    radius; None when neither radius is set.

    An accretion disk's black hole and round rim are cut in shading: outflow objects that would swallow the gas in
    the simulation make this Mantaflow bake every grid empty at some resolutions and layouts."""
    if not (material.core_radius or material.edge_radius):
        return None
    geometry = nodes.new("ShaderNodeNewGeometry")
    geometry.location = (-1100, 500)
    offset = nodes.new("ShaderNodeVectorMath")
    offset.operation = "SUBTRACT"
    offset.location = (-900, 500)
    links.new(geometry.outputs["Position"], offset.inputs[0])
    offset.inputs[1].default_value = tuple(center)
    mask = None
    if material.core_radius:
        flat = nodes.new("ShaderNodeVectorMath")
        flat.operation = "MULTIPLY"
        flat.location = (-700, 600)
        links.new(offset.outputs["Vector"], flat.inputs[0])
        flat.inputs[1].default_value = (1.0, 1.0, 0.0)
        r = _length(nodes, links, flat.outputs["Vector"], (-500, 600))
        mask = _ramp(nodes, links, r, 0.6 * material.core_radius, material.core_radius, (-300, 600))
    if material.edge_radius:
        r = _length(nodes, links, offset.outputs["Vector"], (-500, 400))
        outside = _ramp(nodes, links, r, 0.75 * material.edge_radius, material.edge_radius, (-300, 400))
        inside = _math(nodes, links, "SUBTRACT", 1.0, outside, (-100, 400))
        mask = inside if mask is None else _math(nodes, links, "MULTIPLY", mask, inside, (100, 500))
    return mask


def build_volume_material(
    material: Material, grids: set[str], center: tuple[float, float, float] = (0.0, 0.0, 0.0)
) -> bpy.types.Material:
    """A fresh material: scattering from density, emission = strength * source^gamma coloured per the preset,
    both faded out inside the core radius and beyond the edge radius around `center` when the preset sets them."""
    old = bpy.data.materials.get(MATERIAL_NAME)
    if old is not None:
        bpy.data.materials.remove(old)
    mat = bpy.data.materials.new(MATERIAL_NAME)
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    nodes.clear()
    out = nodes.new("ShaderNodeOutputMaterial")
    out.location = (600, 0)
    vol = nodes.new("ShaderNodeVolumePrincipled")
    vol.location = (300, 0)
    links.new(vol.outputs["Volume"], out.inputs["Volume"])

    density = _attribute(nodes, "density", (-500, 200))
    scaled = _math(nodes, links, "MULTIPLY", density.outputs["Fac"], material.density_scale, (-250, 200))
    mask = _radial_mask(nodes, links, material, center)
    if mask is not None:
        scaled = _math(nodes, links, "MULTIPLY", scaled, mask, (-100, 300))
    links.new(scaled, vol.inputs["Density"])
    vol.inputs["Density Attribute"].default_value = ""
    vol.inputs["Color"].default_value = (*material.color, 1.0)
    vol.inputs["Absorption Color"].default_value = (*material.absorption_color, 1.0)
    vol.inputs["Anisotropy"].default_value = material.anisotropy
    vol.inputs["Blackbody Intensity"].default_value = 0.0
    vol.inputs["Emission Strength"].default_value = 0.0
    vol.inputs["Emission Color"].default_value = (*material.emission_color, 1.0)

    if material.emission_source in grids and material.emission_strength > 0:
        source = _attribute(nodes, material.emission_source, (-700, -200))
        clamped = _math(nodes, links, "MAXIMUM", source.outputs["Fac"], 0.0, (-500, -200))
        shaped = _math(nodes, links, "POWER", clamped, material.emission_gamma, (-300, -200))
        strength = _math(nodes, links, "MULTIPLY", shaped, material.emission_strength, (-100, -200))
        if mask is not None:
            strength = _math(nodes, links, "MULTIPLY", strength, mask, (100, -200))
        links.new(strength, vol.inputs["Emission Strength"])
        color = _emission_color(nodes, links, material, clamped, grids)
        if color is not None:
            links.new(_output(color, "Result_Color"), vol.inputs["Emission Color"])
    return mat
