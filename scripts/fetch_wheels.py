#!/usr/bin/env python3
"""Download the wheels the extension imports at registration that Blender does not ship, into wheels/.

    python scripts/fetch_wheels.py                     # every supported platform
    python scripts/fetch_wheels.py --platform current  # only this machine's (what tests use)

Versions are pinned to the ones installed in the running environment, so the extension runs with exactly what the
tests ran with. numpy is not fetched: every Blender ships its own. Nothing but the .whl files is written.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEST = ROOT / "wheels"
PYTHON_VERSION = "3.11"  # the Python of Blender 4.2 – 5.0
PACKAGES = ("pydantic", "pydantic-core", "annotated-types", "typing-extensions", "typing-inspection", "cma", "pillow")

# Blender platform -> pip platform tags, newest first. pip widens macOS tags down to older releases itself, but not
# manylinux ones, so both glibc baselines Blender 4.2+ supports are listed.
PLATFORM_TAGS: dict[str, tuple[str, ...]] = {
    "linux-x64": ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"),
    "macos-arm64": ("macosx_11_0_arm64",),
    "macos-x64": ("macosx_11_0_x86_64",),
    "windows-x64": ("win_amd64",),
}


def current_platform() -> str:
    system = {"darwin": "macos", "win32": "windows"}.get(sys.platform, sys.platform)
    machine = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64"}.get(platform.machine().lower(), "")
    name = f"{system}-{machine}"
    if name not in PLATFORM_TAGS:
        raise SystemExit(
            f"fetch_wheels: this machine ({sys.platform}, {platform.machine()}) is not a supported platform"
        )
    return name


def pinned_requirements() -> list[str]:
    try:
        return [f"{name}=={importlib.metadata.version(name)}" for name in PACKAGES]
    except importlib.metadata.PackageNotFoundError as exc:
        raise SystemExit(f"fetch_wheels: {exc.name} is not installed here, so its version cannot be pinned") from None


def fetch(platforms: list[str], dest: Path = DEFAULT_DEST, python: str = sys.executable) -> list[Path]:
    """Download the pinned wheels for each Blender platform into `dest`; returns the wheels now there for them."""
    dest.mkdir(parents=True, exist_ok=True)
    requirements = pinned_requirements()
    for name in platforms:
        tag_args = [arg for tag in PLATFORM_TAGS[name] for arg in ("--platform", tag)]
        cmd = [
            python,
            "-m",
            "pip",
            "download",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            "--no-deps",
            "--python-version",
            PYTHON_VERSION,
            "--implementation",
            "cp",
            *tag_args,
            "--dest",
            str(dest),
            *requirements,
        ]
        print(f"fetch_wheels: {name}: {' '.join(requirements)}", flush=True)
        subprocess.run(cmd, check=True)
    return sorted(dest.glob("*.whl"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--platform",
        action="append",
        choices=[*PLATFORM_TAGS, "current", "all"],
        help="Blender platform to fetch for (repeatable); default all",
    )
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="folder for the wheels (default: wheels/)")
    args = parser.parse_args(argv)
    chosen = args.platform or ["all"]
    platforms: list[str] = []
    for item in chosen:
        names = list(PLATFORM_TAGS) if item == "all" else [current_platform()] if item == "current" else [item]
        platforms += [n for n in names if n not in platforms]
    try:
        wheels = fetch(platforms, args.dest)
    except subprocess.CalledProcessError as exc:
        print(f"fetch_wheels: error: pip download failed (exit {exc.returncode})", file=sys.stderr)
        return 1
    for wheel in wheels:
        print(wheel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
