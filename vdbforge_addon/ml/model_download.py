"""Fetching model weights: only on an explicit request and only with Blender's online access enabled.

Nothing else in VDBForge touches the network for weights; scoring only ever reads files (`model_weights`). A fetch
writes into the models folder under a temporary name and renames on completion, so an interrupted download leaves
no file that would later be taken for weights.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..core.errors import VDBForgeError
from .model_weights import LPIPS_BACKBONES, clip_pretrained_cfg, clip_status, lpips_status, models_dir, parse_clip_name


def online_access_allowed() -> bool:
    """Blender's own switch (Preferences > System > Allow Online Access, or --online-mode)."""
    try:
        import bpy
    except ImportError:
        return False
    return bool(getattr(bpy.app, "online_access", False))


def fetch_weights(name: str, *, consent: bool, online: bool | None = None) -> Path:
    """Download `name` ('lpips-alex', 'lpips-vgg' or 'clip:MODEL:TAG') into the models folder; returns the file."""
    if not consent:
        raise VDBForgeError(f"downloading {name} needs explicit consent (--allow-download); nothing was downloaded")
    if not (online_access_allowed() if online is None else online):
        raise VDBForgeError(
            "Blender's online access is off (Preferences > System > Allow Online Access); nothing was downloaded"
        )
    if name.startswith("lpips-"):
        net = name.removeprefix("lpips-")
        if net not in LPIPS_BACKBONES:
            raise VDBForgeError(f"unknown model '{name}' (lpips-alex, lpips-vgg or clip:MODEL:TAG)")
        if (status := lpips_status(net)).present:
            return status.path
        filename, url = LPIPS_BACKBONES[net]
        return _download_url(url, models_dir() / "lpips" / filename)
    if name.startswith("clip:"):
        if (status := clip_status(name.removeprefix("clip:"))).present:
            return status.path
        model, tag = parse_clip_name(name.removeprefix("clip:"))
        cfg = clip_pretrained_cfg(model, tag)
        target = models_dir() / "open_clip" / f"{model}_{tag}.safetensors"
        if cfg.get("hf_hub"):
            return _download_hf(cfg["hf_hub"], target)
        if cfg.get("url"):
            return _download_url(cfg["url"], target.with_suffix(".pt"))
        raise VDBForgeError(f"open_clip knows no published weights for {model}:{tag}")
    raise VDBForgeError(f"unknown model '{name}' (lpips-alex, lpips-vgg or clip:MODEL:TAG)")


def _download_url(url: str, target: Path) -> Path:
    import torch.hub

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        torch.hub.download_url_to_file(url, str(partial), progress=True)
        os.replace(partial, target)
    except (OSError, RuntimeError, ValueError) as exc:
        partial.unlink(missing_ok=True)
        raise VDBForgeError(f"download of {url} failed: {exc}") from exc
    return target


def _download_hf(hf_hub: str, target: Path) -> Path:
    from huggingface_hub import hf_hub_download

    repo, filename = os.path.split(hf_hub)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        cached = hf_hub_download(repo, filename or "open_clip_model.safetensors")
    except Exception as exc:  # noqa: BLE001 - huggingface_hub raises many types; all mean "not downloaded"
        raise VDBForgeError(f"download of {hf_hub} failed: {str(exc).splitlines()[0]}") from exc
    partial = target.with_name(target.name + ".partial")
    shutil.copyfile(cached, partial)
    os.replace(partial, target if cached.endswith(".safetensors") else target.with_suffix(".bin"))
    return target
