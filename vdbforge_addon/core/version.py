"""The version of VDBForge, read from the package metadata when installed, else the source default."""

from __future__ import annotations

VERSION = "0.1.0"


def vdbforge_version() -> str:
    return VERSION
