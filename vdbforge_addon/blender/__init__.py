"""Everything that talks to bpy: scene builders, bake, cache reading, export, preview renders, runtime fixes."""
