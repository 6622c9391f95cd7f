"""Trading presets as files: single `.vdbforge.json` files and preset packs (a zip of presets with a manifest).

Everything that arrives is validated in full before anything is written, so a bad pack changes nothing. File names
inside a pack come from the manifest and must match the preset ids (which cannot contain a path separator), so no
entry can land outside the user's preset folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

from .atomic import write_bytes, write_text
from .errors import PresetError
from .paths import builtin_presets_dir, user_presets_dir
from .preset_library import MAX_PRESET_BYTES, parse_preset_text, resolve_preset
from .preset_model import Preset

PACK_FORMAT = "vdbforge-preset-pack"
PACK_VERSION = 1
MAX_PACK_PRESETS = 256
MAX_PACK_BYTES = 64 * 1024 * 1024
_ENTRY_RE = re.compile(r"^presets/([a-z][a-z0-9_]{0,63})\.vdbforge\.json$")


def preset_json(preset: Preset) -> str:
    return json.dumps(preset.model_dump(mode="json", exclude_defaults=False), indent=2) + "\n"


def user_preset_path(preset_id: str) -> Path:
    return user_presets_dir() / f"{preset_id}.vdbforge.json"


def save_user_preset(preset: Preset, *, overwrite: bool = False) -> Path:
    path = user_preset_path(preset.id)
    if path.exists() and not overwrite:
        raise PresetError(f"a user preset '{preset.id}' already exists ({path}); use --force to replace it")
    write_text(path, preset_json(preset))
    return path


def shadows_builtin(preset_id: str) -> bool:
    return any((builtin_presets_dir() / f"{preset_id}{s}").is_file() for s in (".json", ".vdbforge.json"))


def import_preset_file(path: str | Path, *, overwrite: bool = False) -> tuple[Preset, Path]:
    from .preset_library import load_preset_file

    preset = load_preset_file(path)
    return preset, save_user_preset(preset, overwrite=overwrite)


def export_preset(ref: str, dest: str | Path) -> Path:
    """Write preset `ref` (id or file) to `dest`: a file path, or a folder that receives `<id>.vdbforge.json`."""
    preset = resolve_preset(ref)
    dest = Path(dest)
    if dest.is_dir():
        dest = dest / f"{preset.id}.vdbforge.json"
    try:
        write_text(dest, preset_json(preset))
    except OSError as exc:
        raise PresetError(f"cannot write '{dest}': {exc.strerror or exc}") from None
    return dest


def write_pack(refs: list[str], dest: str | Path) -> Path:
    if not refs:
        raise PresetError("a preset pack needs at least one preset")
    presets = [resolve_preset(ref) for ref in refs]
    ids = [p.id for p in presets]
    if len(set(ids)) != len(ids):
        raise PresetError(f"a preset pack cannot hold the same id twice ({', '.join(ids)})")
    buffer = io.BytesIO()
    entries = []
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for preset in presets:
            data = preset_json(preset).encode("utf-8")
            name = f"presets/{preset.id}.vdbforge.json"
            archive.writestr(name, data)
            entries.append({"id": preset.id, "file": name, "sha256": hashlib.sha256(data).hexdigest()})
        manifest = {"format": PACK_FORMAT, "version": PACK_VERSION, "presets": entries}
        archive.writestr("manifest.json", json.dumps(manifest, indent=2))
    dest = Path(dest)
    try:
        write_bytes(dest, buffer.getvalue())
    except OSError as exc:
        raise PresetError(f"cannot write '{dest}': {exc.strerror or exc}") from None
    return dest


def read_pack(path: str | Path) -> list[Preset]:
    """Every preset of a pack, validated; raises on the first problem without writing anything."""
    path = Path(path)
    source = f"preset pack '{path.name}'"
    try:
        if path.stat().st_size > MAX_PACK_BYTES:
            raise PresetError(f"{source}: larger than {MAX_PACK_BYTES} bytes")
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise PresetError(f"preset pack '{path}' does not exist") from None
    except zipfile.BadZipFile:
        raise PresetError(f"{source}: not a zip file") from None
    with archive:
        infos = {info.filename: info for info in archive.infolist()}
        if len(infos) != len(archive.infolist()):
            raise PresetError(f"{source}: the zip holds duplicate entries")
        manifest = _read_manifest(archive, infos, source)
        presets = []
        for entry in manifest["presets"]:
            name = entry.get("file") if isinstance(entry, dict) else None
            match = _ENTRY_RE.match(name or "")
            if match is None or match.group(1) != entry.get("id"):
                raise PresetError(f"{source}: manifest entry {entry!r} is not presets/<id>.vdbforge.json")
            info = infos.get(name)
            if info is None:
                raise PresetError(f"{source}: '{name}' is listed in the manifest but missing")
            if info.file_size > MAX_PRESET_BYTES:
                raise PresetError(f"{source}: '{name}' is larger than {MAX_PRESET_BYTES} bytes")
            data = archive.read(info)
            if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
                raise PresetError(f"{source}: '{name}' does not match its checksum in the manifest")
            preset = parse_preset_text(data.decode("utf-8", errors="strict"), f"{source}: {name}")
            if preset.id != entry["id"]:
                raise PresetError(f"{source}: '{name}' holds preset '{preset.id}', not '{entry['id']}'")
            presets.append(preset)
    return presets


def _read_manifest(archive: zipfile.ZipFile, infos: dict, source: str) -> dict:
    info = infos.get("manifest.json")
    if info is None or info.file_size > MAX_PRESET_BYTES:
        raise PresetError(f"{source}: missing or oversized manifest.json")
    try:
        manifest = json.loads(archive.read(info))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise PresetError(f"{source}: manifest.json is not valid JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != PACK_FORMAT:
        raise PresetError(f"{source}: manifest.json is not a {PACK_FORMAT} manifest")
    if manifest.get("version") != PACK_VERSION:
        raise PresetError(
            f"{source}: pack version {manifest.get('version')!r} is not supported (expected {PACK_VERSION})"
        )
    entries = manifest.get("presets")
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_PACK_PRESETS:
        raise PresetError(f"{source}: manifest must list 1 to {MAX_PACK_PRESETS} presets")
    return manifest


def import_pack(path: str | Path, *, overwrite: bool = False) -> list[Path]:
    presets = read_pack(path)
    clashes = [p.id for p in presets if user_preset_path(p.id).exists()]
    if clashes and not overwrite:
        raise PresetError(f"user presets already exist for {', '.join(clashes)}; use --force to replace them")
    return [save_user_preset(p, overwrite=True) for p in presets]
