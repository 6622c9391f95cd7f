"""`core/` never imports bpy: checked on the source (any form of import) and at runtime in a clean interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "vdbforge_addon" / "core"
FORBIDDEN = {"bpy", "bmesh", "mathutils", "openvdb", "_bpy"}


def test_core_sources_do_not_import_blender_modules():
    offenders = []
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.name}:{node.lineno} {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert not offenders


def test_importing_every_core_module_leaves_bpy_unloaded():
    modules = [f"vdbforge_addon.core.{p.stem}" for p in CORE.glob("*.py") if p.stem != "__init__"]
    code = f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\nprint('bpy' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"
