"""LPIPS and CLIP networks built from local weight files only, loaded once per process.

Neither library is allowed to fetch anything: LPIPS is built with a random backbone (`pnet_rand=True`, which skips
torchvision's download) and the torchvision checkpoint found by `model_weights` is copied in; open_clip gets the
resolved file path as its `pretrained` argument, which it loads from disk.
"""

from __future__ import annotations

import pickle
import threading
import warnings
from pathlib import Path
from typing import Any

from ..core.errors import VDBForgeError
from .model_weights import clip_pretrained_cfg, clip_status, lpips_status, models_dir, parse_clip_name

# What torch.load / safetensors / load_state_dict raise for a truncated, foreign or corrupt file.
UNREADABLE_CHECKPOINT = (RuntimeError, KeyError, ValueError, OSError, EOFError, pickle.UnpicklingError)
_cache: dict[tuple, Any] = {}
_lock = threading.Lock()


def _torch():
    try:
        import torch
    except ImportError as exc:
        raise VDBForgeError("torch is not installed: run ./scripts/setup.sh (or pip install 'vdbforge[ml]')") from exc
    return torch


def _load_state(path: Path) -> dict:
    torch = _torch()
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state


def lpips_model(net: str = "alex"):
    """The LPIPS metric network (eval mode, CPU). Raises ModelWeightsMissing when the backbone file is absent."""
    status = lpips_status(net)
    if not status.present:
        raise status.missing_error()
    key = ("lpips", net, str(status.path))
    with _lock:
        if key not in _cache:
            _cache[key] = _build_lpips(net, status.path)
    return _cache[key]


def _build_lpips(net: str, backbone_file: Path):
    _torch()
    import lpips
    import torchvision

    with warnings.catch_warnings():
        # lpips still passes torchvision's deprecated `pretrained=False`; the warning is theirs, not the user's.
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    reference = torchvision.models.alexnet() if net == "alex" else torchvision.models.vgg16()
    try:
        reference.load_state_dict(_load_state(backbone_file))
    except UNREADABLE_CHECKPOINT as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise VDBForgeError(f"cannot load {backbone_file}: not a torchvision {net} checkpoint ({reason})") from exc
    # LPIPS splits torchvision's `features` into slices whose child names are the original layer indices.
    for index in range(1, 6):
        for name, layer in getattr(model.net, f"slice{index}").named_children():
            layer.load_state_dict(reference.features[int(name)].state_dict())
    return model.eval()


def _register_local_configs() -> None:
    """Model configs (`*.json`) in the models folder's open_clip/ become model names open_clip knows."""
    folder = models_dir() / "open_clip"
    if folder.is_dir() and any(folder.glob("*.json")):
        import open_clip

        open_clip.add_model_config(folder)


def clip_model(spec: str):
    """(model, preprocess, tokenizer) for 'MODEL:TAG', from a local file. Raises ModelWeightsMissing when absent."""
    _torch()
    import open_clip

    _register_local_configs()
    model_name, tag = parse_clip_name(spec)
    if model_name not in open_clip.list_models():
        raise VDBForgeError(f"unknown CLIP model '{model_name}' (see open_clip.list_models() or add a config json)")
    status = clip_status(spec)
    if not status.present:
        raise status.missing_error()
    key = ("clip", model_name, str(status.path))
    with _lock:
        if key not in _cache:
            quick_gelu = bool(clip_pretrained_cfg(model_name, tag).get("quick_gelu", False))
            try:
                model, _, preprocess = open_clip.create_model_and_transforms(
                    model_name, pretrained=str(status.path), force_quick_gelu=quick_gelu, device="cpu"
                )
            except UNREADABLE_CHECKPOINT as exc:
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise VDBForgeError(f"cannot load CLIP weights {status.path}: {reason}") from exc
            _cache[key] = (model.eval(), preprocess, open_clip.get_tokenizer(model_name))
    return _cache[key]


def clear_cache() -> None:
    with _lock:
        _cache.clear()
