"""Scoring: metric ordering on known pairs, reference handling, offline weights, and `vdbforge score|models`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import run_cli
from tests.ml_weights import write_lpips_backbone, write_tiny_clip
from tests.synthetic_images import BACKGROUND, fog_bank, plume, save
from vdbforge_addon.core.errors import VDBForgeError
from vdbforge_addon.core.scoring_settings import METRIC_NAMES, ScoringSettings, parse_metric_weights
from vdbforge_addon.ml.model_weights import ModelWeightsMissing
from vdbforge_addon.ml.scoring import ScoreRequest, score

ALL_PAIR = [m for m in METRIC_NAMES if m != "lpips_vgg"]  # vgg16 weights would be 0.5 GB of random numbers


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("models")
    write_lpips_backbone(folder)
    spec, _ = write_tiny_clip(folder)
    return folder, spec


@pytest.fixture
def with_models(models, monkeypatch) -> str:
    monkeypatch.setenv("VDBFORGE_MODELS", str(models[0]))
    return models[1]


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pairs")
    images = {
        "reference": plume(),
        "identical": plume(),
        "shifted": plume(shift=24),
        "colour": plume(color=(0.1, 0.45, 1.0)),
        "family": fog_bank(),
    }
    return {name: save(image, folder / f"{name}.png") for name, image in images.items()}


def _scores(pairs, spec, names) -> dict[str, dict[str, float]]:
    settings = ScoringSettings(clip_model=spec, weights={n: 1.0 for n in names})
    candidates = ["identical", "shifted", "colour", "family"]
    report = score(ScoreRequest([pairs[c] for c in candidates], [pairs["reference"]], settings=settings))
    return {c: r["references"][0]["metrics"] for c, r in zip(candidates, report["renders"], strict=True)}


def test_every_metric_orders_known_pairs(pairs, with_models):
    scores = _scores(pairs, with_models, ALL_PAIR)
    for metric in ALL_PAIR:
        s = {name: values[metric] for name, values in scores.items()}
        assert all(0.0 <= v <= 1.0 for v in s.values()), (metric, s)
        assert s["identical"] == pytest.approx(1.0, abs=1e-5), (metric, s)
        assert s["identical"] >= s["shifted"] > s["family"], (metric, s)
        assert s["colour"] <= s["identical"], (metric, s)
    # What each metric is for: colour ignores position, silhouette ignores colour, the rest see both.
    assert scores["colour"]["color"] < 0.5 < scores["shifted"]["color"]
    assert scores["colour"]["silhouette"] > 0.95 > 0.7 > scores["shifted"]["silhouette"]
    for metric in ("ssim", "ms_ssim", "lpips_alex", "clip"):
        assert scores["shifted"][metric] < scores["identical"][metric] - 1e-5, metric
        assert scores["colour"][metric] < scores["identical"][metric] - 1e-3, metric


def test_best_angle_per_reference_and_objective(pairs, tmp_path, with_models):
    renders = [
        save(plume(seed=5), tmp_path / "f0010_a00.png"),
        save(plume(), tmp_path / "f0010_a01.png"),
        save(fog_bank(), tmp_path / "f0012_a00.png"),
    ]
    settings = ScoringSettings(clip_model=with_models, weights={"ssim": 1, "silhouette": 1, "lpips_alex": 1})
    report = score(ScoreRequest(renders, [pairs["reference"], pairs["family"]], settings=settings))
    best = [(r["frame"], r["angle"]) for r in report["references"]]
    assert best == [(10, 1), (12, 0)]
    assert report["objective"] == pytest.approx(1.0, abs=1e-5)
    assert len(report["renders"]) == 3 and len(report["renders"][0]["references"]) == 2


def test_reference_of_other_aspect_and_alpha_is_cropped_and_composited(pairs, tmp_path, with_models):
    plain = plume()
    # The same picture centred on a wider canvas of background, and again with a transparent background.
    wide = np.zeros((256, 512, 3), np.uint8) + np.round(BACKGROUND * 255).astype(np.uint8)
    wide[:, 128:384] = plain
    alpha = np.dstack([plain, np.where(np.abs(plain.astype(int) - 5).max(axis=2) > 15, 255, 0).astype(np.uint8)])
    refs = [save(wide, tmp_path / "wide.jpg"), save(alpha, tmp_path / "alpha.png")]
    settings = ScoringSettings(clip_model=with_models, weights={"ssim": 1.0, "silhouette": 1.0})
    report = score(ScoreRequest([pairs["identical"], pairs["family"]], refs, settings=settings))
    for ref in report["references"]:
        assert Path(ref["best_render"]).name == "identical.png"
        assert ref["score"] > 0.9, (ref["path"], ref["metrics"])


def test_text_target_alone_uses_clip(pairs, with_models):
    settings = ScoringSettings(clip_model=with_models)
    report = score(ScoreRequest([pairs["identical"], pairs["family"]], [], text="a fiery plume", settings=settings))
    assert report["metrics_used"] == ["clip_text"] and report["references"] == []
    assert 0.0 < report["text"]["score"] <= 1.0 and report["objective"] == report["text"]["score"]


def test_missing_weights_name_the_file_unless_allowed(pairs, tmp_path, monkeypatch):
    monkeypatch.setenv("VDBFORGE_MODELS", str(tmp_path / "empty"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    request = ScoreRequest([pairs["identical"]], [pairs["reference"]])
    with pytest.raises(ModelWeightsMissing, match="alexnet-owt-7be5be79.pth.*--allow-missing-weights"):
        score(request)
    request.allow_missing_weights = True
    report = score(request)
    assert set(report["skipped"]) == {"lpips_alex", "clip"}
    assert report["metrics_used"] == ["ssim", "color", "silhouette"]
    assert report["objective"] == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(VDBForgeError, match="text target needs CLIP"):
        score(ScoreRequest([pairs["identical"]], [], text="smoke", allow_missing_weights=True))


def test_a_corrupt_weights_file_is_a_clear_error(pairs, tmp_path, monkeypatch):
    (tmp_path / "lpips").mkdir()
    (tmp_path / "lpips" / "alexnet-owt-7be5be79.pth").write_bytes(b"not a checkpoint")
    monkeypatch.setenv("VDBFORGE_MODELS", str(tmp_path))
    from vdbforge_addon.ml import networks

    networks.clear_cache()
    settings = ScoringSettings(weights={"lpips_alex": 1.0})
    with pytest.raises(VDBForgeError, match="cannot load .*alexnet-owt-7be5be79.pth"):
        score(ScoreRequest([pairs["identical"]], [pairs["reference"]], settings=settings))


def test_bad_images_and_weights_are_one_line_errors(pairs, tmp_path):
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    settings = ScoringSettings(weights={"ssim": 1.0})
    with pytest.raises(VDBForgeError, match="reference image not found"):
        score(ScoreRequest([pairs["identical"]], [tmp_path / "missing.png"], settings=settings))
    with pytest.raises(VDBForgeError, match="cannot read reference image"):
        score(ScoreRequest([pairs["identical"]], [tmp_path / "corrupt.png"], settings=settings))
    with pytest.raises(VDBForgeError, match="nothing to score against"):
        score(ScoreRequest([pairs["identical"]]))
    with pytest.raises(VDBForgeError, match="unknown metric 'lpip'"):
        parse_metric_weights("lpip=1")
    with pytest.raises(VDBForgeError, match="within 0..100"):
        parse_metric_weights("ssim=-1")
    assert parse_metric_weights("ssim,color=0.5") == {"ssim": 1.0, "color": 0.5}


def test_models_command_finds_weights_in_our_folder_and_the_hf_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VDBFORGE_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    proc = run_cli("models", "--json")
    assert proc.returncode == 0, proc.stderr
    assert not any(m["present"] for m in json.loads(proc.stdout)["models"])
    # The layout huggingface_hub itself writes: a snapshot folder named by a revision that refs/main points to.
    repo = tmp_path / "hf" / "hub" / "models--timm--vit_base_patch32_clip_224.openai"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    snapshot = repo / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (snapshot / "open_clip_model.safetensors").write_bytes(b"x")
    (tmp_path / "torch" / "hub" / "checkpoints").mkdir(parents=True)
    (tmp_path / "torch" / "hub" / "checkpoints" / "vgg16-397923af.pth").write_bytes(b"x")
    models = {m["name"]: m for m in json.loads(run_cli("models", "--json").stdout)["models"]}
    assert models["clip:ViT-B-32:openai"]["path"] == str(snapshot / "open_clip_model.safetensors")
    assert models["lpips-vgg"]["present"] and not models["lpips-alex"]["present"]
    text = run_cli("models").stdout
    assert "MISSING" in text and "alexnet-owt-7be5be79.pth" in text


def test_score_command_on_a_real_render(explosion_render, models, monkeypatch):
    monkeypatch.setenv("VDBFORGE_MODELS", str(models[0]))
    out: Path = explosion_render["_out"]
    reference = out / "preview" / Path(explosion_render["previews"][1]).name
    args = ["score", "--renders", str(out), "--reference", str(reference), "--clip-model", models[1]]
    proc = run_cli(*args, "--text", "an explosion", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert Path(report["references"][0]["best_render"]).name == reference.name
    assert report["references"][0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert report["metrics_used"] == ["lpips_alex", "clip", "ssim", "color", "silhouette", "clip_text"]
    assert len(report["renders"]) == len(explosion_render["previews"])
    # A darker copy of the reference scores lower, and the human-readable form names the best frame and angle.
    darker = Image.open(reference).point(lambda v: v // 2)
    darker.save(out.parent / "darker.png")
    proc = run_cli(*args[:4], str(out.parent / "darker.png"), "--clip-model", models[1])
    assert proc.returncode == 0, proc.stderr
    assert "best at frame" in proc.stdout
    assert float(proc.stdout.split()[1]) < report["references"][0]["score"] - 0.01
    proc = run_cli("score", "--renders", str(out), "--reference", str(out / "nope.png"))
    assert proc.returncode == 1 and proc.stderr.strip().count("\n") == 0 and "not found" in proc.stderr


def test_downloads_need_consent_and_online_access(tmp_path, monkeypatch):
    from vdbforge_addon.ml.model_download import fetch_weights

    monkeypatch.setenv("VDBFORGE_MODELS", str(tmp_path))
    proc = run_cli("models", "--fetch", "lpips-alex")
    assert proc.returncode == 1 and "explicit consent (--allow-download)" in proc.stderr
    with pytest.raises(VDBForgeError, match="online access is off"):
        fetch_weights("lpips-alex", consent=True, online=False)
    with pytest.raises(VDBForgeError, match="unknown model"):
        fetch_weights("resnet", consent=True, online=True)
    assert not any(tmp_path.rglob("*")), "nothing was written"
