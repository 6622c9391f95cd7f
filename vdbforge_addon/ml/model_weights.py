"""Where each scoring model's weights are found, offline. Nothing here imports torch or touches the network.

Search order for every model: the models folder (`$VDBFORGE_MODELS`, else the add-on preference, else
`<user data>/models`), then the cache the upstream library itself uses (torch hub checkpoints for the LPIPS backbones,
the Hugging Face hub cache and open_clip's URL cache for CLIP). The first existing file wins.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import VDBForgeError
from ..core.paths import user_data_dir

_models_dir_provider: Callable[[], str] | None = None

# torchvision's published ImageNet checkpoints, the backbones LPIPS was calibrated on. LPIPS's own linear layers
# ship inside the `lpips` package, so these are the only LPIPS files a user must provide.
LPIPS_BACKBONES = {
    "alex": ("alexnet-owt-7be5be79.pth", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"),
    "vgg": ("vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth"),
}
CLIP_FILE_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
DEFAULT_CLIP = "ViT-B-32:openai"


class ModelWeightsMissing(VDBForgeError):
    """A model's weights file is not on this machine; the message says which file and where to put it."""


def set_models_dir_provider(provider: Callable[[], str] | None) -> None:
    """Inside Blender, register() installs a callable returning the add-on preference's models folder."""
    global _models_dir_provider
    _models_dir_provider = provider


def models_dir() -> Path:
    env = os.environ.get("VDBFORGE_MODELS")
    if env:
        return Path(env).expanduser()
    if _models_dir_provider is not None and _models_dir_provider():
        return Path(_models_dir_provider()).expanduser()
    return user_data_dir() / "models"


def torch_hub_checkpoints() -> Path:
    # Same rule as torch.hub.get_dir(), without importing torch.
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "torch"
    )
    return Path(torch_home) / "hub" / "checkpoints"


@dataclass(frozen=True)
class WeightsStatus:
    name: str  # e.g. "lpips-alex", "clip:ViT-B-32:openai"
    metric: str
    path: Path | None  # the file that would be loaded, or None when missing
    expected: str  # file name(s) looked for
    searched: tuple[Path, ...]
    source_url: str = ""

    @property
    def present(self) -> bool:
        return self.path is not None

    def missing_error(self) -> ModelWeightsMissing:
        places = " or ".join(str(p) for p in self.searched[:2])
        url = f" (from {self.source_url})" if self.source_url else ""
        return ModelWeightsMissing(
            f"{self.name} weights not found: put {self.expected}{url} in {places}, "
            "or set $VDBFORGE_MODELS; `vdbforge models` lists what is present"
        )


def lpips_status(net: str) -> WeightsStatus:
    if net not in LPIPS_BACKBONES:
        raise VDBForgeError(f"unknown LPIPS network '{net}' (choose from {', '.join(LPIPS_BACKBONES)})")
    filename, url = LPIPS_BACKBONES[net]
    folders = (models_dir() / "lpips", models_dir(), torch_hub_checkpoints())
    found = next((f / filename for f in folders if (f / filename).is_file()), None)
    return WeightsStatus(f"lpips-{net}", f"lpips_{net}", found, filename, folders, url)


def parse_clip_name(spec: str) -> tuple[str, str]:
    """'ViT-B-32:openai' → ('ViT-B-32', 'openai'); a bare model name means the 'openai' weights."""
    model, _, tag = spec.partition(":")
    if not model.strip():
        raise VDBForgeError(f"invalid CLIP model '{spec}': use MODEL:TAG, e.g. {DEFAULT_CLIP}")
    return model.strip(), (tag.strip() or "openai")


def _local_clip_candidates(model: str, tag: str) -> list[Path]:
    folder = models_dir() / "open_clip"
    stems = (
        f"{model}_{tag}",
        f"{model}-{tag}",
        f"{model}/{tag}/open_clip_model",
        f"{model}/{tag}/open_clip_pytorch_model",
    )
    return [folder / f"{stem}{suffix}" for stem in stems for suffix in CLIP_FILE_SUFFIXES]


def _hf_cache_candidates(hf_hub: str) -> list[Path]:
    """Files already in the Hugging Face hub cache, found through huggingface_hub's offline lookup."""
    if not hf_hub:
        return []
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return []
    # open_clip's own rule: "org/repo/" means the default file names, "org/repo/file.bin" names one file.
    repo, filename = os.path.split(hf_hub)
    found = []
    names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
    for name in names:
        hit = try_to_load_from_cache(repo_id=repo, filename=name)
        if isinstance(hit, str):
            found.append(Path(hit))
    return found


def clip_status(spec: str = DEFAULT_CLIP) -> WeightsStatus:
    model, tag = parse_clip_name(spec)
    candidates = _local_clip_candidates(model, tag)
    url = ""
    cfg = clip_pretrained_cfg(model, tag)
    if cfg:
        candidates += _hf_cache_candidates(cfg.get("hf_hub", ""))
        url = cfg.get("url", "")
        if url:
            # open_clip's own URL downloads land in ~/.cache/clip/<file name>.
            candidates.append(Path(os.path.expanduser("~/.cache/clip")) / url.rsplit("/", 1)[-1])
    found = next((p for p in candidates if p.is_file()), None)
    searched = (models_dir() / "open_clip", Path(os.path.expanduser("~/.cache/huggingface/hub")))
    expected = f"{model}_{tag}.safetensors (or .bin/.pt)"
    return WeightsStatus(f"clip:{model}:{tag}", "clip", found, expected, searched, url or cfg.get("hf_hub", ""))


def clip_pretrained_cfg(model: str, tag: str) -> dict:
    """open_clip's table of published weights (pure data; importing open_clip pulls in torch, so only on demand)."""
    try:
        from open_clip.pretrained import get_pretrained_cfg
    except ImportError:
        return {}
    return dict(get_pretrained_cfg(model, tag) or {})


def all_statuses(clip_models: list[str] | None = None) -> list[WeightsStatus]:
    statuses = [lpips_status(net) for net in LPIPS_BACKBONES]
    statuses += [clip_status(spec) for spec in (clip_models or [DEFAULT_CLIP])]
    return statuses
