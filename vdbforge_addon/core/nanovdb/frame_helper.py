"""The helper process of `frame_pool.FrameConverter`: converts the .vdb frames it is sent to .nvdb, one at a time.

Protocol: one JSON task per line on stdin ({"src", "dst", "codec", "quantize", "tolerance"}), one JSON reply per line
on the original stdout ({"ok": true, "bytes": n} or {"ok": false, "error": "one line"}). Anything else the libraries
print goes to stderr, so it cannot corrupt a reply. The helper ends when stdin closes. It converts with the same
openvdb module file as its parent.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from types import ModuleType

from ..errors import VDBForgeError


def load_module(name: str, path: str) -> ModuleType:
    """The VDB module the parent converts with, loaded from its file: like `convert_vdb_file`, core code is handed
    that module by its caller and never imports a Blender module by name."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise VDBForgeError(f"cannot load the VDB module '{name}' from '{path}'")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def serve(module_name: str, module_path: str) -> None:
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    vdb = load_module(module_name, module_path)

    from .codec import single_threaded_blosc
    from .openvdb_io import convert_vdb_file

    single_threaded_blosc()

    for line in sys.stdin:
        task = json.loads(line)
        try:
            # one grid at a time: the other cores are busy with the other frames
            info = convert_vdb_file(
                task["src"], task["dst"], vdb, codec=task["codec"], quantize=task["quantize"],
                tolerance=task["tolerance"], workers=1,
            )  # fmt: skip
            reply = {"ok": True, "bytes": info["bytes"]}
        except VDBForgeError as exc:
            reply = {"ok": False, "error": str(exc)}
        except Exception as exc:  # the parent raises it as this frame's error
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
