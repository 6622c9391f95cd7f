"""Mantaflow's Python class hierarchy, as its registry declares it.

Mantaflow's types do not use Python inheritance (every type's only base is `object`); the registry copies each base
class's methods and getsets into its subclasses instead. The table below is what that copy follows: Python type name
(the `tp_name` of the type) → Python type name of its direct base. It comes from the `Pb::Register(className, pyName,
baseClass)` lines of `extern/mantaflow/preprocessed/*.h.reg.cpp` and is the same in bpy 4.2, 4.5 and 5.0.
"""

from __future__ import annotations

MANTA_BASES: dict[str, str | None] = {
    "PbClass": None,
    "Solver": "PbClass",  # C++ FluidSolver
    "Timings": "PbClass",
    "MovingObstacle": "PbClass",
    "NoiseField": "PbClass",  # C++ WaveletNoiseField
    # grids
    "GridBase": "PbClass",
    "Grid_int": "GridBase",
    "Grid_Real": "GridBase",
    "Grid_Vec3": "GridBase",
    "FlagGrid": "Grid_int",
    "MACGrid": "Grid_Vec3",
    "LevelsetGrid": "Grid_Real",
    "Grid4dBase": "PbClass",
    "Grid4d_int": "Grid4dBase",
    "Grid4d_Real": "Grid4dBase",
    "Grid4d_Vec3": "Grid4dBase",
    "Grid4d_Vec4": "Grid4dBase",
    # particles
    "ParticleBase": "PbClass",
    "ParticleSystem_BasicParticleData": "ParticleBase",
    "ParticleSystem_ParticleIndexData": "ParticleBase",
    "ParticleSystem_VortexParticleData": "ParticleBase",
    "ParticleSystem_TurbulenceParticleData": "ParticleBase",
    "BasicParticleSystem": "ParticleSystem_BasicParticleData",
    "ParticleIndexSystem": "ParticleSystem_ParticleIndexData",
    "VortexParticleSystem": "ParticleSystem_VortexParticleData",
    "TurbulenceParticleSystem": "ParticleSystem_TurbulenceParticleData",
    "ParticleDataBase": "PbClass",
    "ParticleDataImpl_int": "ParticleDataBase",
    "ParticleDataImpl_Real": "ParticleDataBase",
    "ParticleDataImpl_Vec3": "ParticleDataBase",
    # meshes
    "Mesh": "PbClass",
    "VortexSheetMesh": "Mesh",
    "MeshDataBase": "PbClass",
    "MeshDataImpl_int": "MeshDataBase",
    "MeshDataImpl_Real": "MeshDataBase",
    "MeshDataImpl_Vec3": "MeshDataBase",
    # shapes
    "Shape": "PbClass",
    "Box": "Shape",
    "Sphere": "Shape",
    "Cylinder": "Shape",
    "Slope": "Shape",
    "NullShape": "Shape",
}

# Types in the module that are not registry classes, so nothing is inherited: the holder of the module-level
# functions and the two vector types defined in `pvec3.cpp`.
MANTA_OTHER_TYPES: frozenset[str] = frozenset({"__modclass__", "vec3", "vec4"})


def ancestors(name: str) -> list[str]:
    """Ancestors of a registry class, nearest first (the order in which the registry copies them)."""
    chain = []
    base = MANTA_BASES[name]
    while base is not None:
        chain.append(base)
        base = MANTA_BASES[base]
    return chain
