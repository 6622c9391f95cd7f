"""Primitive mesh objects built with bmesh, so scene building needs no operator context."""

from __future__ import annotations

import math

import bmesh
import bpy


def _fill(bm: bmesh.types.BMesh, shape: str) -> None:
    if shape == "sphere":
        bmesh.ops.create_uvsphere(bm, u_segments=32, v_segments=16, radius=1.0)
    elif shape == "cube":
        bmesh.ops.create_cube(bm, size=2.0)
    elif shape == "cylinder":
        bmesh.ops.create_cone(bm, cap_ends=True, segments=32, radius1=1.0, radius2=1.0, depth=2.0)
    elif shape == "plane":
        bmesh.ops.create_grid(bm, x_segments=1, y_segments=1, size=1.0)
    elif shape == "torus":
        _torus(bm, major=1.0, minor=0.25, major_segments=48, minor_segments=12)
    else:
        raise ValueError(f"unknown shape '{shape}'")


def _torus(bm: bmesh.types.BMesh, major: float, minor: float, major_segments: int, minor_segments: int) -> None:
    rings = []
    for i in range(major_segments):
        a = 2 * math.pi * i / major_segments
        ring = []
        for j in range(minor_segments):
            b = 2 * math.pi * j / minor_segments
            r = major + minor * math.cos(b)
            ring.append(bm.verts.new((r * math.cos(a), r * math.sin(a), minor * math.sin(b))))
        rings.append(ring)
    for i in range(major_segments):
        for j in range(minor_segments):
            a, b = rings[i], rings[(i + 1) % major_segments]
            bm.faces.new((a[j], b[j], b[(j + 1) % minor_segments], a[(j + 1) % minor_segments]))


def add_shape_object(name: str, shape: str, location, rotation_deg, scale, collection=None) -> bpy.types.Object:
    """A mesh object of unit size (radius 1 / half-extent 1) placed with the given transform."""
    mesh = bpy.data.meshes.new(name)
    bm = bmesh.new()
    try:
        _fill(bm, shape)
        bm.to_mesh(mesh)
    finally:
        bm.free()
    obj = bpy.data.objects.new(name, mesh)
    (collection or bpy.context.scene.collection).objects.link(obj)
    obj.location = location
    obj.rotation_euler = [math.radians(a) for a in rotation_deg]
    obj.scale = scale
    return obj


def add_box_object(name: str, center, size, collection=None) -> bpy.types.Object:
    return add_shape_object(name, "cube", center, (0, 0, 0), [s / 2 for s in size], collection)
