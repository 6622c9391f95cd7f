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


def build_volume_material(material: Material, has_flame: bool) -> bpy.types.Material:
    """A fresh material; flame emission = strength * flame^gamma with blackbody colour from flame's temperature."""
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
    links.new(
        _math(nodes, links, "MULTIPLY", density.outputs["Fac"], material.density_scale, (-250, 200)),
        vol.inputs["Density"],
    )
    vol.inputs["Density Attribute"].default_value = ""
    vol.inputs["Color"].default_value = (*material.color, 1.0)
    vol.inputs["Absorption Color"].default_value = (*material.absorption_color, 1.0)
    vol.inputs["Anisotropy"].default_value = material.anisotropy
    vol.inputs["Blackbody Intensity"].default_value = 0.0

    if has_flame and material.emission_strength > 0:
        flame = _attribute(nodes, "flame", (-700, -200))
        clamped = _math(nodes, links, "MAXIMUM", flame.outputs["Fac"], 0.0, (-500, -200))
        shaped = _math(nodes, links, "POWER", clamped, material.emission_gamma, (-300, -200))
        strength = _math(nodes, links, "MULTIPLY", shaped, material.emission_strength, (-100, -200))
        links.new(strength, vol.inputs["Emission Strength"])
        kelvin = nodes.new("ShaderNodeMapRange")
        kelvin.location = (-300, -400)
        links.new(clamped, kelvin.inputs["Value"])
        kelvin.inputs["To Min"].default_value = material.temperature_min
        kelvin.inputs["To Max"].default_value = material.temperature_max
        blackbody = nodes.new("ShaderNodeBlackbody")
        blackbody.location = (-100, -400)
        links.new(kelvin.outputs["Result"], blackbody.inputs["Temperature"])
        tint = nodes.new("ShaderNodeMix")
        tint.data_type = "RGBA"
        tint.blend_type = "MULTIPLY"
        tint.location = (100, -400)
        tint.inputs["Factor"].default_value = 1.0
        links.new(blackbody.outputs["Color"], tint.inputs["A"])
        tint.inputs["B"].default_value = (*material.emission_tint, 1.0)
        links.new(tint.outputs["Result"], vol.inputs["Emission Color"])
    else:
        vol.inputs["Emission Strength"].default_value = 0.0
    return mat
