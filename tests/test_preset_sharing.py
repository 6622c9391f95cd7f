"""Preset files and packs: round trips, shadowing, and hostile input rejected before anything is written."""

from __future__ import annotations

import hashlib
import json
import zipfile

import pytest

from vdbforge_addon.core.errors import PresetError
from vdbforge_addon.core.paths import builtin_presets_dir, user_presets_dir
from vdbforge_addon.core.preset_library import list_presets, load_preset_file, resolve_preset
from vdbforge_addon.core.preset_sharing import (
    export_preset,
    import_pack,
    import_preset_file,
    read_pack,
    write_pack,
)

from .conftest import run_cli


def test_export_import_round_trip_is_lossless(tmp_path):
    path = export_preset("nebula", tmp_path)
    assert path.name == "nebula.vdbforge.json"
    assert load_preset_file(path) == resolve_preset("nebula")
    data = json.loads(path.read_text())
    data["id"], data["name"] = "my_nebula", "My nebula"
    path.write_text(json.dumps(data))
    preset, saved = import_preset_file(path)
    assert saved.parent == user_presets_dir() and resolve_preset("my_nebula") == preset
    with pytest.raises(PresetError, match="already exists"):
        import_preset_file(path)
    import_preset_file(path, overwrite=True)


def test_pack_round_trip_and_shadowing(tmp_path):
    pack = write_pack(["fire", "cloud", "star"], tmp_path / "lib.zip")
    presets = read_pack(pack)
    assert [p.id for p in presets] == ["fire", "cloud", "star"]
    assert presets[0] == resolve_preset("fire")
    import_pack(pack)
    shadowed = {e.id for e in list_presets() if e.shadows_builtin}
    assert shadowed == {"fire", "cloud", "star"}


def _pack(tmp_path, files: dict[str, bytes], manifest: dict | None = None, fix_hashes: bool = True):
    entries = []
    for name, data in files.items():
        preset_id = name.split("/")[-1].split(".")[0]
        entries.append({"id": preset_id, "file": name, "sha256": hashlib.sha256(data).hexdigest()})
    manifest = manifest or {"format": "vdbforge-preset-pack", "version": 1, "presets": entries}
    path = tmp_path / "hostile.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr("manifest.json", json.dumps(manifest))
    return path


def _fire_bytes(**changes) -> bytes:
    data = json.loads((builtin_presets_dir() / "fire.json").read_text())
    data.update(changes)
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("files", "manifest", "expected"),
    [
        ({"../../evil.vdbforge.json": _fire_bytes()}, None, "is not presets/<id>.vdbforge.json"),
        ({"presets/fire.vdbforge.json": _fire_bytes(id="other")}, None, "holds preset 'other'"),
        ({"presets/fire.vdbforge.json": _fire_bytes(schema_version=9)}, None, "schema_version 9 is not supported"),
        ({"presets/fire.vdbforge.json": _fire_bytes(run="__import__('os').system('x')")}, None, "run: unknown key"),
        ({"presets/fire.vdbforge.json": _fire_bytes()}, {"format": "zip-of-doom", "version": 1}, "not a vdbforge"),
        ({"presets/fire.vdbforge.json": _fire_bytes()}, {"format": "vdbforge-preset-pack", "version": 7}, "version 7"),
    ],
)
def test_hostile_packs_are_rejected_and_write_nothing(tmp_path, files, manifest, expected):
    with pytest.raises(PresetError, match=expected.replace("(", r"\(").replace("?", r"\?")):
        import_pack(_pack(tmp_path, files, manifest))
    assert not list(user_presets_dir().iterdir())


def test_tampered_pack_entry_fails_its_checksum(tmp_path):
    good = _fire_bytes()
    manifest = {"format": "vdbforge-preset-pack", "version": 1,
                "presets": [{"id": "fire", "file": "presets/fire.vdbforge.json",
                             "sha256": hashlib.sha256(good).hexdigest()}]}  # fmt: skip
    path = _pack(tmp_path, {"presets/fire.vdbforge.json": _fire_bytes(name="Tampered")}, manifest)
    with pytest.raises(PresetError, match="does not match its checksum"):
        import_pack(path)


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_duplicate_zip_entries_are_refused(tmp_path):
    path = _pack(tmp_path, {"presets/fire.vdbforge.json": _fire_bytes()})
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("presets/fire.vdbforge.json", _fire_bytes(name="Second"))
    with pytest.raises(PresetError, match="duplicate entries"):
        import_pack(path)


def test_not_a_zip_is_one_clear_line(tmp_path):
    bogus = tmp_path / "x.zip"
    bogus.write_text("hello")
    with pytest.raises(PresetError, match="not a zip file"):
        read_pack(bogus)


def test_cli_presets_show_export_import_pack(tmp_path):
    shown = run_cli("presets", "show", "fog")
    assert shown.returncode == 0 and json.loads(shown.stdout)["id"] == "fog"
    assert run_cli("presets", "export", "fog", "--out", str(tmp_path)).returncode == 0
    assert run_cli("presets", "pack", "fog", "storm", "--out", str(tmp_path / "p.zip")).returncode == 0
    imported = run_cli("presets", "import", str(tmp_path / "p.zip"))
    assert imported.returncode == 0 and "shadows the built-in preset" in imported.stdout
    listing = run_cli("presets")
    assert "fog" in listing.stdout and "(user preset shadows the built-in one)" in listing.stdout
    bad = run_cli("presets", "import", str(tmp_path / "missing.vdbforge.json"))
    assert bad.returncode == 1 and bad.stderr.strip().startswith("vdbforge: error: preset file")
