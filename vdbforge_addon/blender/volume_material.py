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


def build_volume_material(material: Material, grids: set[str]) -> bpy.types.Material:
    """A fresh material: scattering from density, emission = strength * source^gamma coloured per the preset."""
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
        links.new(strength, vol.inputs["Emission Strength"])
        color = _emission_color(nodes, links, material, clamped, grids)
        if color is not None:
            links.new(_output(color, "Result_Color"), vol.inputs["Emission Color"])
    return mat
