#!/usr/bin/env python3
"""Build and validate the VDBForge extension zip with Blender's own extension tooling (taken from the bpy wheel).

    python scripts/build_extension.py --fetch            # fetch this platform's wheels first, then build
    python scripts/build_extension.py --split-platforms  # one zip per platform (after fetch_wheels.py for all)

Stages the contents of vdbforge_addon/ (the package's `__init__.py` must sit beside the manifest) plus
blender_manifest.toml into build/extension/vdbforge/, with `wheels` listing the bundled wheels and `platforms` narrowed
to those every platform-specific wheel covers. Prints the path of each zip, last.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fetch_wheels  # noqa: E402 - a sibling script, not an installed module

ROOT = fetch_wheels.ROOT
PACKAGE_DIR = ROOT / "vdbforge_addon"
MANIFEST = ROOT / "blender_manifest.toml"
EXCLUDE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", "tests", ".*", "*.egg-info")


class BuildError(Exception):
    """A one-line reason the build cannot go on."""


def blender_tools() -> tuple[Path, Path | None]:
    """The extension CLI and the valid-tags file inside the installed bpy wheel (found without importing bpy)."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise BuildError("the bpy wheel is not installed in this Python; run scripts/setup.sh")
    bpy_dir = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(bpy_dir.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not found:
        raise BuildError(f"no extension CLI (bl_pkg/cli/blender_ext.py) inside {bpy_dir}")
    cli = found[-1]
    tags = cli.parents[3] / "modules" / "_bpy_internal" / "extensions" / "tags.py"  # parents[3] is scripts/
    return cli, tags if tags.is_file() else None


def _wheel_fields(path: Path) -> tuple[str, str, list[str]]:
    """(normalised name, version, platform tags) from a wheel file name."""
    parts = path.name[: -len(".whl")].split("-")
    if len(parts) not in (5, 6):
        raise BuildError(f"'{path.name}' is not a wheel file name")
    return re.sub(r"[-_.]+", "-", parts[0]).lower(), parts[1], parts[-1].split(".")


_WHEEL_SYSTEMS = (("macosx", "macos"), ("manylinux", "linux"), ("win", "windows"))
_WHEEL_MACHINES = (("x86_64", "x64"), ("amd64", "x64"), ("arm64", "arm64"), ("aarch64", "arm64"))


def _blender_platforms(tag: str) -> set[str]:
    """Blender platforms a wheel platform tag runs on (`any` for pure wheels)."""
    if tag == "any":
        return {"any"}
    if tag.startswith("macosx") and tag.endswith("universal2"):
        return {"macos-x64", "macos-arm64"}
    system = next((b for w, b in _WHEEL_SYSTEMS if tag.startswith(w)), None)
    machine = next((b for w, b in _WHEEL_MACHINES if tag.endswith(w)), None)
    return {f"{system}-{machine}"} if system and machine else set()


def select_wheels(wheels_dir: Path) -> list[Path]:
    """The wheels of the pinned versions; any other version lying in the folder is left out (and said so)."""
    wanted = dict(r.split("==") for r in fetch_wheels.pinned_requirements())
    chosen, skipped = [], []
    for path in sorted(wheels_dir.glob("*.whl")):
        name, version, _ = _wheel_fields(path)
        (chosen if wanted.get(name) == version else skipped).append(path)
    for path in skipped:
        print(f"build_extension: skipping {path.name} (not a pinned version)", file=sys.stderr)
    missing = sorted(set(wanted) - {_wheel_fields(p)[0] for p in chosen})
    if missing:
        raise BuildError(
            f"no wheel for {', '.join(missing)} in {wheels_dir}; run scripts/fetch_wheels.py (or pass --fetch)"
        )
    return chosen


def covered_platforms(declared: list[str], wheels: list[Path]) -> list[str]:
    """The declared platforms on which every package with platform-specific wheels has one."""
    by_package: dict[str, set[str]] = {}
    for path in wheels:
        name, _, tags = _wheel_fields(path)
        by_package.setdefault(name, set()).update(*(_blender_platforms(t) for t in tags))
    specific = [platforms for platforms in by_package.values() if "any" not in platforms]
    return [p for p in declared if all(p in platforms for platforms in specific)]


def _toml_list(values: list[str]) -> str:
    if len(values) < 2:
        return "[" + ", ".join(json.dumps(v) for v in values) + "]"
    return "[\n" + "".join(f"  {json.dumps(v)},\n" for v in values) + "]"


def staged_manifest_text(text: str, wheels: list[str], platforms: list[str]) -> str:
    for key, values in (("wheels", wheels), ("platforms", platforms)):
        text, count = re.subn(rf"(?ms)^{key}\s*=\s*\[.*?\]", f"{key} = {_toml_list(values)}", text)
        if count != 1:
            raise BuildError(f"blender_manifest.toml must have exactly one top-level `{key} = [...]` line")
    return text


def stage(build_dir: Path, wheels: list[Path]) -> Path:
    manifest = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))
    source = build_dir / manifest["id"]
    if source.exists():
        shutil.rmtree(source)
    shutil.copytree(PACKAGE_DIR, source, ignore=EXCLUDE)
    (source / "wheels").mkdir()
    for wheel in wheels:
        shutil.copy2(wheel, source / "wheels" / wheel.name)
    platforms = covered_platforms(manifest.get("platforms", []), wheels)
    if not platforms:
        raise BuildError("the wheels cover none of the manifest's platforms; run scripts/fetch_wheels.py")
    dropped = [p for p in manifest.get("platforms", []) if p not in platforms]
    if dropped:
        print(f"build_extension: no wheels for {', '.join(dropped)}; the zip declares {', '.join(platforms)}")
    text = staged_manifest_text(MANIFEST.read_text(encoding="utf-8"), [f"./wheels/{w.name}" for w in wheels], platforms)
    staged = tomllib.loads(text)
    if staged["wheels"] != [f"./wheels/{w.name}" for w in wheels] or staged["platforms"] != platforms:
        raise BuildError("rewriting wheels/platforms in the staged manifest went wrong")
    (source / "blender_manifest.toml").write_text(text, encoding="utf-8")
    return source


def _run_cli(cli: Path, *args: str) -> None:
    proc = subprocess.run([sys.executable, str(cli), *args], capture_output=True, text=True)
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0 or "FATAL_ERROR" in output:
        raise BuildError(f"blender_ext {args[0]} failed: {' | '.join(output.splitlines()[-5:]) or proc.returncode}")
    if output:
        print(output)


def build(
    *,
    wheels_dir: Path = fetch_wheels.DEFAULT_DEST,
    build_dir: Path = ROOT / "build" / "extension",
    output_dir: Path = ROOT / "dist",
    split_platforms: bool = False,
) -> list[Path]:
    """Stage, build and validate; returns the zip files."""
    cli, tags = blender_tools()
    tag_args = [f"--valid-tags={tags}"] if tags else []
    if not tags:
        print("build_extension: this Blender has no valid-tags list; tags are not checked", file=sys.stderr)
    source = stage(build_dir, select_wheels(wheels_dir))
    manifest = tomllib.loads((source / "blender_manifest.toml").read_text(encoding="utf-8"))
    output_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{manifest['id']}-{manifest['version']}"
    if split_platforms:
        zips = [output_dir / f"{stem}-{p.replace('-', '_')}.zip" for p in manifest["platforms"]]
    else:
        zips = [output_dir / f"{stem}.zip"]
    for old in zips:
        old.unlink(missing_ok=True)
    split = ["--split-platforms"] if split_platforms else []
    _run_cli(cli, "build", f"--source-dir={source}", f"--output-dir={output_dir}", *split, *tag_args)
    for zip_path in zips:
        if not zip_path.is_file():
            raise BuildError(f"blender_ext build did not write {zip_path}")
        _run_cli(cli, "validate", *tag_args, str(zip_path))
    return zips


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fetch", action="store_true", help="fetch this platform's wheels first")
    parser.add_argument("--split-platforms", action="store_true", help="build one zip per platform")
    parser.add_argument("--wheels-dir", type=Path, default=fetch_wheels.DEFAULT_DEST)
    parser.add_argument("--build-dir", type=Path, default=ROOT / "build" / "extension", help="staging parent folder")
    parser.add_argument("--output-dir", type=Path, default=ROOT / "dist")
    args = parser.parse_args(argv)
    try:
        if args.fetch:
            fetch_wheels.fetch([fetch_wheels.current_platform()], args.wheels_dir)
        zips = build(
            wheels_dir=args.wheels_dir,
            build_dir=args.build_dir,
            output_dir=args.output_dir,
            split_platforms=args.split_platforms,
        )
    except BuildError as exc:
        print(f"build_extension: error: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(
            f"build_extension: error: {' '.join(map(str, exc.cmd[:4]))} … failed (exit {exc.returncode})",
            file=sys.stderr,
        )
        return 1
    for zip_path in zips:
        print(zip_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
