"""The N-panel workflow through `bpy.ops` in a freshly installed extension: choose a preset, edit a tunable, save it
as a user preset (+), remove it (−), refuse to remove a built-in, reject an out-of-range value, and run the modal
bake's EXEC path to the end (timers never fire without a window, so EXEC is what headless use gets)."""

from __future__ import annotations

from pathlib import Path

from .test_extension import run_extension_session

SCRIPT = r"""
import json, os, sys
sys.path.insert(0, SITE)
import bpy

facts = {}
bpy.ops.extensions.package_install_files(filepath=ZIP, repo="user_default", enable_on_install=True)
props = bpy.context.scene.vdbforge
ui_props = sys.modules[MODULE + ".panels.properties"]
paths = sys.modules[MODULE + ".core.paths"]


def run(op, **kwargs):
    try:
        return sorted(op(**kwargs))
    except RuntimeError as exc:  # what bpy.ops raises for an operator that reported an error
        return ["RuntimeError", str(exc).strip()]


props.preset = "fire"
props.preset = "smoke_plume"  # the update callback refills the tunables
facts["tunables"] = {t.path: [t.value, t.min, t.max] for t in props.tunables}
facts["tunables_preset"] = props.tunables_preset
item = next(t for t in props.tunables if t.path == "domain.vorticity")
item.factor = 0.5  # the slider: halfway through the tunable's own range
facts["edited_value"] = item.value
facts["add"] = run(bpy.ops.vdbforge.preset_add, name="My Plume")
user_file = paths.user_presets_dir() / "my_plume.vdbforge.json"
facts["user_file"] = str(user_file)
facts["saved"] = json.loads(user_file.read_text(encoding="utf-8")) if user_file.is_file() else None
facts["selected_after_add"] = props.preset
facts["items_after_add"] = [i[0] for i in ui_props.preset_items(props, bpy.context)]
facts["remove"] = run(bpy.ops.vdbforge.preset_remove)
facts["file_after_remove"] = user_file.exists()
facts["items_after_remove"] = [i[0] for i in ui_props.preset_items(props, bpy.context)]
facts["selected_after_remove"] = props.preset
facts["remove_builtin"] = run(bpy.ops.vdbforge.preset_remove)

props.resolution, props.frame_start, props.frame_end, props.angles = 16, 1, 6, 1
next(t for t in props.tunables if t.path == "domain.vorticity").value = 99.0
facts["bad_value"] = run(bpy.ops.vdbforge.bake_modal)
bpy.ops.vdbforge.tunables_reset()
facts["bake"] = run(bpy.ops.vdbforge.bake_modal)
facts["progress"] = [props.progress, props.status_text, props.running]
facts["contact_sheet"] = props.contact_sheet
facts["preview_image"] = props.preview_image in bpy.data.images

bpy.ops.preferences.addon_disable(module=MODULE)
facts["images_after"] = [i.name for i in bpy.data.images if i.name.startswith("VDBForge")]
facts["classes_after"] = [n for n in dir(bpy.types) if n.startswith(("VDBFORGE_", "VDBForge"))]
print(PREFIX + json.dumps(facts), flush=True)
"""


def test_preset_add_remove_tunables_and_modal_bake(extension_zip: Path, tmp_path: Path):
    facts, resources = run_extension_session(extension_zip, tmp_path, SCRIPT)

    assert facts["tunables_preset"] == "smoke_plume"
    low, high = facts["tunables"]["domain.vorticity"][1:]
    assert abs(facts["edited_value"] - (low + high) / 2) < 1e-5

    assert facts["add"] == ["FINISHED"], facts["add"]
    assert (
        Path(facts["user_file"]).parent == resources / "extensions" / ".user" / "user_default" / "vdbforge" / "presets"
    )
    saved = facts["saved"]
    assert saved["id"] == "my_plume" and saved["name"] == "My Plume"
    assert abs(saved["domain"]["vorticity"] - facts["edited_value"]) < 1e-5
    assert facts["selected_after_add"] == "my_plume" and "my_plume" in facts["items_after_add"]

    assert facts["remove"] == ["FINISHED"] and not facts["file_after_remove"]
    assert "my_plume" not in facts["items_after_remove"] and facts["selected_after_remove"] == "smoke_plume"
    kind, message = facts["remove_builtin"]
    assert kind == "RuntimeError" and "built-in preset" in message and "\n" not in message

    kind, message = facts["bad_value"]
    assert kind == "RuntimeError" and "domain.vorticity" in message and "outside its range" in message

    assert facts["bake"] == ["FINISHED"], facts["bake"]
    assert facts["progress"] == [1.0, "finished", False]
    sheet = Path(facts["contact_sheet"])
    assert sheet.is_file() and sheet.is_relative_to(resources / "extensions" / ".user")
    assert facts["preview_image"]
    assert facts["images_after"] == [] and facts["classes_after"] == []
