"""The extension zip: built and validated with Blender's own tooling, installed and enabled through the extension
API in a fresh Blender (the `bpy` wheel), used for a real build & bake and a preview render, then disabled.

The Blender process sees only what a real Blender ships (bpy, numpy, requests, zstandard, Cython): pydantic and the
other dependencies must come from the wheels inside the zip, so a missing wheel fails here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULE = "bl_ext.user_default.vdbforge"
REPORT_PREFIX = "@@EXTENSION-TEST@@ "

# Prepended to extension-session scripts that call methods of registered classes (panels, operators): Blender's UI
# classes cannot be instantiated outside its UI, so their methods run on this stand-in `self`.
STANDIN_SELF = r"""
import inspect as _inspect, types as _types


class Standin:
    def __init__(self, cls, layout=None):
        self._cls, self.layout, self.reports = cls, layout, []

    def report(self, kind, text):
        self.reports.append([sorted(kind), text])

    def __getattr__(self, name):
        value = getattr(self._cls, name)
        bound = _inspect.isfunction(_inspect.getattr_static(self._cls, name))
        return _types.MethodType(value, self) if bound else value
"""

sys.path.insert(0, str(ROOT / "scripts"))
from build_extension import blender_tools  # noqa: E402

# What a real Blender's Python has besides the standard library (the wheel's own dependencies, bundled alike).
BLENDER_SHIPPED = ("bpy", "numpy", "numpy.libs", "requests", "urllib3", "idna", "certifi", "charset_normalizer")
BLENDER_SHIPPED_OPTIONAL = ("zstandard", "Cython", "cython.py")


def _validate(path: Path) -> subprocess.CompletedProcess:
    cli, tags = blender_tools()
    assert tags is not None, "the bpy wheel has no valid-tags list"
    return subprocess.run(
        [sys.executable, str(cli), "validate", f"--valid-tags={tags}", str(path)], capture_output=True, text=True
    )


def test_zip_validates_and_holds_package_manifest_and_wheels(extension_zip: Path):
    proc = _validate(extension_zip)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    with zipfile.ZipFile(extension_zip) as archive:
        names = archive.namelist()
        manifest = tomllib.loads(archive.read("blender_manifest.toml").decode("utf-8"))
    assert "__init__.py" in names and "blender_registration.py" in names and "presets/fire.json" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith("tests/")]
    assert manifest["id"] == "vdbforge" and manifest["type"] == "add-on"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert manifest["version"] == pyproject["project"]["version"]
    # Network only for the vision-language critic the user configures (and opt-in weight downloads).
    assert manifest["permissions"] == {
        "files": "Write baked volumes and previews to disk",
        "network": "Send previews to the vision-language critic you configure",
    }
    wheels = manifest["wheels"]
    assert all(w.startswith("./wheels/") and w.removeprefix("./") in names for w in wheels)
    packages = {Path(w).name.split("-")[0].lower() for w in wheels}
    assert packages == {
        "pydantic", "pydantic_core", "annotated_types", "typing_extensions", "typing_inspection", "cma", "pillow"
    }  # fmt: skip
    # Only this platform's wheels were fetched, so the zip must not promise the others.
    assert manifest["platforms"] == ["linux-x64"] if sys.platform == "linux" else len(manifest["platforms"]) == 1


def test_staged_source_validates_and_the_validator_rejects_a_bad_manifest(extension_zip: Path, tmp_path: Path):
    staged = extension_zip.parent.parent / "build" / "vdbforge"
    proc = _validate(staged)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    bad = tmp_path / "vdbforge"
    bad.mkdir()
    (bad / "__init__.py").write_text((staged / "__init__.py").read_text(encoding="utf-8"), encoding="utf-8")
    text = (staged / "blender_manifest.toml").read_text(encoding="utf-8")
    cases = (
        ('"Physics"', '"Fluids"', 'invalid tag "Fluids"'),
        ("to disk", "to disk.", "must not end with punctuation"),
    )
    for good, wrong, complaint in cases:
        assert good in text
        (bad / "blender_manifest.toml").write_text(text.replace(good, wrong), encoding="utf-8")
        proc = _validate(bad)
        assert proc.returncode != 0 and complaint in proc.stdout + proc.stderr, proc.stdout + proc.stderr


SCRIPT = r"""
import json, sys
sys.path.insert(0, SITE)
import bpy

facts = {}
scene = bpy.context.scene
facts["install"] = sorted(
    bpy.ops.extensions.package_install_files(filepath=ZIP, repo="user_default", enable_on_install=True)
)
facts["enabled"] = MODULE in bpy.context.preferences.addons
import pydantic
facts["pydantic_file"] = pydantic.__file__
facts["panels"] = {
    name: [cls.bl_category, cls.bl_space_type, cls.bl_region_type, getattr(cls, "bl_parent_id", "")]
    + [cls.poll(bpy.context)]
    for name in dir(bpy.types) if name.startswith("VDBFORGE_PT_") for cls in [getattr(bpy.types, name)]
}
registration = sys.modules[MODULE + ".blender_registration"]
facts["panel_order"] = [c.__name__ for c in registration.CLASSES if c.__name__.startswith("VDBFORGE_PT_")]
facts["operators"] = sorted(n for n in dir(bpy.types) if n.startswith("VDBFORGE_OT_"))
facts["op_polls"] = [bpy.ops.vdbforge.build_bake.poll(), bpy.ops.vdbforge.render_preview.poll()]
facts["has_prop"] = hasattr(scene, "vdbforge")
props = scene.vdbforge
facts["default_preset"] = props.preset
# What the Preset panel draws from (drawing itself needs a window, which the wheel has not).
ui_props = sys.modules[MODULE + ".panels.properties"]
facts["preset_items"] = [item[0] for item in ui_props.preset_items(props, bpy.context)]
facts["selected_preset"] = ui_props.selected_preset(props).id
facts["prefs"] = hasattr(bpy.context.preferences.addons[MODULE].preferences, "models_dir")


def orphans():
    kinds = ("objects", "meshes", "textures", "actions", "materials", "volumes", "particles")
    return sorted(f"{k}:{i.name}" for k in kinds for i in getattr(bpy.data, k) if i.users == 0)


def build(preset, start, end):
    props.preset, props.resolution, props.frame_start, props.frame_end = preset, 16, start, end
    try:
        return sorted(bpy.ops.vdbforge.build_bake())
    except RuntimeError as exc:
        return ["RuntimeError", str(exc).strip()]


facts["orphans_before"] = orphans()
facts["build_explosion"] = build("explosion", 1, 8)
facts["actions_after_explosion"] = [a.name for a in bpy.data.actions]
facts["build_splash"] = build("splash", 1, 4)
facts["splash_objects"] = sorted(o.name for o in bpy.data.collections["VDBForge"].objects)
facts["splash_particles"] = [p.name for p in bpy.data.particles]
facts["build_fire"] = build("fire", 1, 5)
collection = bpy.data.collections["VDBForge"]
domain = collection.objects["VDBForge_Domain"]
settings = domain.modifiers["Fluid"].domain_settings
facts["objects"] = sorted(o.name for o in collection.objects)
facts["domain"] = [domain.modifiers["Fluid"].fluid_type, settings.domain_type, settings.resolution_max]
facts["cache_dir"] = bpy.path.abspath(settings.cache_directory)
facts["orphans_after"] = orphans()
facts["textures"] = [t.name for t in bpy.data.textures]
facts["meshes"] = sorted(m.name for m in bpy.data.meshes if m.name.startswith("VDBForge"))
facts["actions"] = [a.name for a in bpy.data.actions]
facts["particles"] = [p.name for p in bpy.data.particles]
facts["bad_frames"] = build("fire", 9, 3)
facts["objects_after_bad"] = sorted(o.name for o in collection.objects)

props.preset, props.frame_start, props.frame_end, props.angles = "fire", 1, 5, 1
facts["render"] = sorted(bpy.ops.vdbforge.render_preview())

paths_module = sys.modules[MODULE + ".core.paths"]
facts["provider_before_disable"] = paths_module._user_dir_provider is not None
bpy.ops.preferences.addon_disable(module=MODULE)
facts["enabled_after"] = MODULE in bpy.context.preferences.addons
facts["has_prop_after"] = hasattr(bpy.context.scene, "vdbforge")
facts["rna_prop_after"] = "vdbforge" in bpy.types.Scene.bl_rna.properties
facts["classes_after"] = [n for n in dir(bpy.types) if n.startswith(("VDBFORGE_", "VDBForge"))]
facts["provider_after_disable"] = paths_module._user_dir_provider is not None

bpy.ops.wm.read_factory_settings(use_empty=True)
print(PREFIX + json.dumps(facts), flush=True)
"""


def _blender_like_site(folder: Path) -> Path:
    """A site folder with only the packages a real Blender bundles, linked from the environment running the tests."""
    site = Path(next(iter(importlib.util.find_spec("bpy").submodule_search_locations))).parent
    folder.mkdir()
    for name in (*BLENDER_SHIPPED, *BLENDER_SHIPPED_OPTIONAL):
        if (site / name).exists():
            (folder / name).symlink_to(site / name)
        else:
            assert name in BLENDER_SHIPPED_OPTIONAL, f"{name} is missing from {site}"
    return folder


def run_extension_session(extension_zip: Path, tmp_path: Path, script_body: str) -> tuple[dict, Path]:
    """Run `script_body` in a fresh `python -S` process that installs the zip into a temporary Blender user folder;
    returns the facts the script printed after REPORT_PREFIX and the user resources folder."""
    home = tmp_path / "home"
    resources = home / "blender"
    resources.mkdir(parents=True)
    script = tmp_path / "extension_session.py"
    header = (
        f"SITE = {str(_blender_like_site(tmp_path / 'site'))!r}\nZIP = {str(extension_zip)!r}\n"
        f"MODULE = {MODULE!r}\nPREFIX = {REPORT_PREFIX!r}\n"
    )
    script.write_text(header + script_body, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("VDBFORGE_HOME", "PYTHONPATH", "PYTHONHOME")}
    env.update(HOME=str(home), BLENDER_USER_RESOURCES=str(resources), XDG_DATA_HOME=str(home / "xdg"))
    # -S: no site-packages of this environment; the script adds the Blender-like folder itself.
    proc = subprocess.run(
        [sys.executable, "-S", str(script)], capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    report = [line for line in proc.stdout.splitlines() if line.startswith(REPORT_PREFIX)]
    assert report, output[-4000:]
    return json.loads(report[-1].removeprefix(REPORT_PREFIX)), resources


def test_install_enable_build_bake_render_and_disable(extension_zip: Path, tmp_path: Path):
    facts, resources = run_extension_session(extension_zip, tmp_path, SCRIPT)

    extensions = resources / "extensions"
    assert facts["install"] == ["FINISHED"] and facts["enabled"]
    assert Path(facts["pydantic_file"]).is_relative_to(extensions / ".local"), facts["pydantic_file"]
    sub_panels = ["preset", "build_bake", "preview", "references", "iterate", "export"]
    assert facts["panel_order"] == ["VDBFORGE_PT_main", *(f"VDBFORGE_PT_{n}" for n in sub_panels)]
    for name, (category, space, region, parent, polls) in facts["panels"].items():
        assert (category, space, region, polls) == ("VDBForge", "VIEW_3D", "UI", True), name
        assert parent == ("" if name == "VDBFORGE_PT_main" else "VDBFORGE_PT_main"), name
    assert {"VDBFORGE_OT_build_bake", "VDBFORGE_OT_render_preview", "VDBFORGE_OT_bake_modal"} <= set(facts["operators"])
    assert facts["op_polls"] == [True, True]
    assert facts["has_prop"] and facts["default_preset"] == facts["selected_preset"] == "smoke_plume" and facts["prefs"]
    with zipfile.ZipFile(extension_zip) as archive:
        shipped = [n for n in archive.namelist() if n.startswith("presets/") and n.endswith(".json")]
    assert len(facts["preset_items"]) == len(shipped)
    assert {"explosion", "fire", "smoke_plume", "splash"} <= set(facts["preset_items"])

    # Builds in a row (gas, liquid, gas): each replaces the last without leaving data-blocks or cache frames behind.
    assert facts["build_explosion"] == ["FINISHED"], facts["build_explosion"]
    assert facts["actions_after_explosion"], "the explosion's emission window should be keyframed"
    assert facts["build_splash"] == ["FINISHED"], facts["build_splash"]
    assert "VDBForge_Domain" in facts["splash_objects"] and facts["splash_particles"]
    assert facts["build_fire"] == ["FINISHED"], facts["build_fire"]
    assert facts["objects"] == ["VDBForge_Domain", "VDBForge_Emitter_0"]
    assert facts["domain"] == ["DOMAIN", "GAS", 16]
    assert facts["orphans_after"] == facts["orphans_before"]  # the factory scene has a few of its own
    assert facts["actions"] == [] and facts["particles"] == [] and len(facts["textures"]) == 1
    assert facts["meshes"] == ["VDBForge_Domain", "VDBForge_Emitter_0"]
    cache = Path(facts["cache_dir"])
    assert cache == extensions / ".user" / "user_default" / "vdbforge" / "scenes" / "cache"
    data_frames = sorted(int(p.stem.rsplit("_", 1)[1]) for p in (cache / "data").glob("*.vdb"))
    assert data_frames == [1, 2, 3, 4, 5], "frames 6-8 of the explosion bake must be gone"
    assert sorted((cache / "noise").glob("*.vdb")), "fire bakes noise too"

    # A bad setting is one reported line, and the existing build is left alone.
    kind, message = facts["bad_frames"]
    assert kind == "RuntimeError" and "frame_end (3) is before frame_start (9)" in message and "\n" not in message
    assert facts["objects_after_bad"] == facts["objects"]

    assert facts["render"] == ["FINISHED"]
    renders = cache.parent / "renders" / "fire"
    result = json.loads((renders / "result.json").read_text(encoding="utf-8"))
    assert result["frames"][:2] == [1, 5] and result["resolution"] == 16 and result["angles"] == 1
    assert [Path(p).is_file() for p in result["previews"]] == [True]

    assert facts["provider_before_disable"] and not facts["provider_after_disable"]
    assert not facts["enabled_after"] and not facts["has_prop_after"] and not facts["rna_prop_after"]
    assert facts["classes_after"] == []
