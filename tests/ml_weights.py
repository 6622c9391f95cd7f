"""Model weight files made on the spot for tests: randomly initialised, saved where the real ones would go.

Real weights cannot be downloaded here (offline), and tests must exercise the real loading code, so they get files of
the right format and architecture whose values are random.
"""

from __future__ import annotations

import json
from pathlib import Path

TINY_CLIP = "vdbforge-tiny-clip"
TINY_CLIP_CONFIG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "patch_size": 32, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def write_lpips_backbone(models_dir: Path, net: str = "alex") -> Path:
    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.alexnet() if net == "alex" else torchvision.models.vgg16()
    name = "alexnet-owt-7be5be79.pth" if net == "alex" else "vgg16-397923af.pth"
    path = models_dir / "lpips" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path


def write_tiny_clip(models_dir: Path, tag: str = "test") -> tuple[str, Path]:
    """A two-layer CLIP: its config json and random weights, in the layout `model_weights` searches."""
    import open_clip
    import torch

    folder = models_dir / "open_clip"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{TINY_CLIP}.json").write_text(json.dumps(TINY_CLIP_CONFIG))
    open_clip.add_model_config(folder)
    torch.manual_seed(0)
    model = open_clip.create_model(TINY_CLIP, pretrained=None)
    path = folder / f"{TINY_CLIP}_{tag}.pt"
    torch.save(model.state_dict(), path)
    return f"{TINY_CLIP}:{tag}", path
