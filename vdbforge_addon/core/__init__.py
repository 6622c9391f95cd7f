"""Pure-Python core of VDBForge. Nothing below this package may import bpy (a test enforces it)."""
