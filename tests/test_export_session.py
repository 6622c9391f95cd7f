"""ExportSession driven by its step function on a real kept cache: progress frame by frame to a published .vdb/.nvdb
sequence, a cancel mid-run that leaves the output folder as it was, one-line refusals of bad input; and the Export
panel's operator through `bpy.ops` in a freshly installed extension (its EXEC path: timers never fire without a
window, so the modal path is the same step loop exercised here)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vdbforge_addon.core.errors import VDBForgeError
from vdbforge_addon.core.export_session import ExportSession, export_overrides, settings_problem
from vdbforge_addon.core.staged_run import STAGING_PREFIX

from .conftest import run_cli
from .test_export import assert_nvdb_matches_vdb
from .test_extension import run_extension_session

CACHED_FRAMES = 40  # enough that a cancel after the first exported frame lands well before the last

# Reads every grid's name, value type and the file-level facts OpenVDB records, with Blender's openvdb module.
VDB_FACTS = """
import sys, json, bpy
from vdbforge_addon.blender.openvdb_import import import_openvdb
vdb = import_openvdb()
out = {}
for path in sys.argv[1:]:
    grids, meta = vdb.readAll(path)
    facts = {}
    for g in grids:
        half, compression = bool(g.metadata["is_saved_as_half_float"]), g.metadata["file_compression"]
        facts[g.name] = [g.valueTypeName, half, compression, int(g.activeVoxelCount())]
    out[path] = {"meta": {k: meta[k] for k in ("vdbforge_preset", "frame")}, "grids": facts}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def kept_cache(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("plume") / "out"
    proc = run_cli("render", "--preset", "smoke_plume", "--out", str(out), "--resolution", "16",
                   "--frames", f"1:{CACHED_FRAMES}", "--angles", "1", "--preview-size", "64", "--keep-cache")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out / "cache"


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _vdb_facts(paths: list[str]) -> dict:
    proc = subprocess.run([sys.executable, "-c", VDB_FACTS, *paths], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_overrides_follow_the_cli_rules():
    assert export_overrides() == {}
    assert export_overrides(grids=" density, flame ,", precision="float", compression="blosc") == {
        "grids": ["density", "flame"],
        "precision": "float",
        "compression": "blosc",
    }
    # NanoVDB settings count only with NanoVDB on, and a tolerance only for FpN.
    assert export_overrides(nanovdb=False, nanovdb_codec="none", quantize="fp8", tolerance=0.1) == {}
    assert export_overrides(nanovdb=True, nanovdb_codec="none", quantize="fp8", tolerance=0.1) == {
        "nanovdb": True,
        "nanovdb_codec": "none",
        "quantize": "fp8",
    }
    assert export_overrides(nanovdb=True, quantize="fpn", tolerance=0.1)["tolerance"] == 0.1
    assert "tolerance" not in export_overrides(nanovdb=True, quantize="fpn", tolerance=0.0)
    assert settings_problem(export_overrides(compression="blosc", nanovdb=True, quantize="fpn", tolerance=0.5)) == ""
    # Zip and none are re-encoded from the module's Blosc file (core/vdb_recompress.py), so nothing refuses them.
    assert settings_problem(export_overrides(compression="zip")) == ""
    assert settings_problem(export_overrides(compression="none", precision="float")) == ""
    for overrides, needle in [
        (export_overrides(grids="density,nonsense"), "grids.1: Input should be"),
    ]:
        problem = settings_problem(overrides)
        assert needle in problem and "\n" not in problem, problem


def test_step_loop_publishes_vdb_and_fp16_nanovdb(kept_cache: Path, tmp_path: Path):
    out = tmp_path / "out"
    overrides = export_overrides(grids="density,velocity", precision="float", nanovdb=True, quantize="fp16")
    session = ExportSession(kept_cache, out, overrides, (2, CACHED_FRAMES, 3))
    seen: list[tuple[int, int, float, str]] = []
    while (state := session.step()).running:
        seen.append((state.done, state.total, state.fraction, state.message))
        time.sleep(0.02)
    assert state.finished and not state.failed and not state.cancelled, state.error
    assert state.fraction == 1.0 and state.message == "finished"

    frames = list(range(2, CACHED_FRAMES + 1, 3))
    fractions = [s[2] for s in seen]
    assert fractions == sorted(fractions)
    progress = [s for s in seen if s[1]]
    assert progress and {s[1] for s in progress} == {len(frames)}
    assert all(message == f"frame {done}/{total}" for done, total, _, message in progress)

    result = state.result
    assert result is not None and result["cache"] == str(kept_cache) and result["frames"] == frames
    assert json.loads((out / "result.json").read_text(encoding="utf-8"))["frames"] == frames
    vdbs = sorted((out / "vdb").glob("*.vdb"))
    nvdbs = sorted((out / "nvdb").glob("*.nvdb"))
    assert [p.name for p in vdbs] == [f"smoke_plume_{f:04d}.vdb" for f in frames]
    assert [p.stem for p in nvdbs] == [p.stem for p in vdbs]
    assert all(p.read_bytes()[:7] == b"NanoVDB" for p in nvdbs)
    assert result["vdb_files"] == [str(p) for p in vdbs] and result["nanovdb_files"] == [str(p) for p in nvdbs]
    assert not [p for p in out.iterdir() if p.name.startswith(STAGING_PREFIX)]

    facts = _vdb_facts([str(p) for p in vdbs])
    for frame, path in zip(frames, vdbs, strict=True):
        info = facts[str(path)]
        assert info["meta"] == {"vdbforge_preset": "smoke_plume", "frame": frame}
        assert set(info["grids"]) <= {"density", "velocity"} and "density" in info["grids"]
        for name, (value_type, half, compression, count) in info["grids"].items():
            assert value_type == ("vec3s" if name == "velocity" else "float") and not half, (path.name, name)
            assert "blosc" in compression and count > 0
    # The official NanoVDB reader and validator on the last frame: fp16 within 2e-5 of the .vdb values.
    assert_nvdb_matches_vdb(nvdbs[-1], vdbs[-1], tmp_path, atol=2e-5)
    assert session.step() is state  # further steps are harmless


def test_cancel_mid_export_leaves_the_output_folder_as_it_was(kept_cache: Path, tmp_path: Path):
    out = tmp_path / "out"
    (out / "vdb").mkdir(parents=True)
    (out / "vdb" / "smoke_plume_0001.vdb").write_bytes(b"an earlier export")
    (out / "result.json").write_text("{}\n", encoding="utf-8")
    before = _snapshot(out)

    session = ExportSession(kept_cache, out, export_overrides(nanovdb=True, quantize="fpn"))
    deadline = time.monotonic() + 120
    while (state := session.step()).running and state.done < 1:
        assert time.monotonic() < deadline, state.message
        time.sleep(0.005)
    assert state.running, f"the export ended before it could be cancelled: {state.message}"
    staged = [p for p in session.worker.stage.rglob("*") if p.suffix in (".vdb", ".nvdb")]
    assert staged, "the worker should have written part of the sequence by now"

    state = session.cancel()
    assert state.cancelled and not state.finished and not state.failed
    assert state.message.startswith("export cancelled after ") and f"/{CACHED_FRAMES} frames" in state.message
    assert session.worker.handle.process.poll() is not None
    assert _snapshot(out) == before
    assert session.step() is state


def test_bad_input_is_one_line_and_writes_nothing(kept_cache: Path, tmp_path: Path):
    out = tmp_path / "out"
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    cases = [
        (tmp_path / "missing", out, {}, None, "does not exist"),
        (tmp_path, out, {}, None, "is not a VDBForge cache"),
        (kept_cache, Path("/proc/vdbforge"), {}, None, "cannot write"),
        (kept_cache, a_file, {}, None, "is not a folder"),
        (kept_cache, out, export_overrides(grids="density,nonsense"), None, "export.grids.1"),
        (kept_cache, out, {}, (9, 3, 1), "must satisfy 1 <= start <= end"),
    ]
    for cache, target, overrides, frames, needle in cases:
        with pytest.raises(VDBForgeError) as caught:
            ExportSession(cache, target, overrides, frames)
        message = str(caught.value)
        assert needle in message and "\n" not in message, message
        assert not out.exists()

    # Refused by the worker (the cache has no such frames): a failed state with one line, and still nothing written.
    session = ExportSession(kept_cache, out, {}, (100, 120, 1))
    state = session.run_to_end(interval=0.05)
    assert state.failed and "holds no frames in 100:120" in state.error and "\n" not in state.error
    assert not out.exists()


EXTENSION_SCRIPT = r"""
import json, shutil, sys
sys.path.insert(0, SITE)
import bpy

facts = {}
bpy.ops.extensions.package_install_files(filepath=ZIP, repo="user_default", enable_on_install=True)
props = bpy.context.scene.vdbforge
export = props.export
paths = sys.modules[MODULE + ".core.paths"]
panel = sys.modules[MODULE + ".panels.export_panel"]


def run(op, **kwargs):
    try:
        return sorted(op(**kwargs))
    except RuntimeError as exc:  # what bpy.ops raises for an operator that reported an error
        return ["RuntimeError", str(exc).strip()]


facts["poll"] = bpy.ops.vdbforge.export.poll()
facts["no_cache"] = run(bpy.ops.vdbforge.export)
# Where Bake & Preview keeps its cache (output folder/renders/<preset>/cache): the panel's default cache folder.
shutil.copytree(CACHE, paths.user_data_dir() / "scenes" / "renders" / "smoke_plume" / "cache")
export.grids, export.nanovdb, export.quantize = "density", True, "fp16"
export.use_frame_range, export.frame_start, export.frame_end, export.frame_step = True, 1, 10, 3
facts["export"] = run(bpy.ops.vdbforge.export)
facts["state"] = [export.progress, export.status_text, export.running]
facts["default_out"] = str(paths.user_data_dir() / "exports" / "smoke_plume")
export.compression = "zip"
facts["problem"] = panel.settings_problem(export)
facts["zip"] = run(bpy.ops.vdbforge.export)
facts["zip_state"] = [export.progress, export.status_text, export.running]

bpy.ops.preferences.addon_disable(module=MODULE)
facts["classes_after"] = [n for n in dir(bpy.types) if n.startswith(("VDBFORGE_", "VDBForge"))]
print(PREFIX + json.dumps(facts), flush=True)
"""


def test_export_operator_in_the_installed_extension(extension_zip: Path, kept_cache: Path, tmp_path: Path):
    script = f"CACHE = {str(kept_cache)!r}\n" + EXTENSION_SCRIPT
    facts, resources = run_extension_session(extension_zip, tmp_path, script)

    assert facts["poll"]
    kind, message = facts["no_cache"]
    assert kind == "RuntimeError" and "no kept bake in" in message and "\n" not in message

    assert facts["export"] == ["FINISHED"], facts["export"]
    out = Path(facts["default_out"])
    assert out.is_relative_to(resources / "extensions" / ".user" / "user_default" / "vdbforge")
    progress, status, running = facts["state"]
    assert progress == 1.0 and not running and status == f"Exported 4 VDB frames and 4 NanoVDB files to {out}"
    names = [f"smoke_plume_{f:04d}" for f in (1, 4, 7, 10)]
    assert [p.stem for p in sorted((out / "vdb").glob("*.vdb"))] == names
    assert [p.stem for p in sorted((out / "nvdb").glob("*.nvdb"))] == names
    result = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert result["export"]["grids"] == ["density"] and result["export"]["quantize"] == "fp16"

    # Zip is no longer refused: the same export again with Zip replaces the Blosc files with re-encoded ones.
    assert facts["problem"] == "" and facts["zip"] == ["FINISHED"], facts["zip"]
    assert facts["zip_state"][0] == 1.0 and not facts["zip_state"][2]
    vdbs = sorted((out / "vdb").glob("*.vdb"))
    assert [p.stem for p in vdbs] == names
    for info in _vdb_facts([str(p) for p in vdbs]).values():
        assert {name: fact[2] for name, fact in info["grids"].items()} == {"density": "zip + active values"}
    assert facts["classes_after"] == []
