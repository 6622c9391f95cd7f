"""`vdbforge train` and the image → parameters API on a tiny real dataset: both approaches compared and the model
file written, `vdbforge models` listing it, `predict_start` shapes and ranges, the atlas recovering a picture it holds,
and models that no longer fit (another Blender, another parameter space, another scene) refused in one line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, VDBFORGE

BAKE = ["--resolution", "16", "--frames", "1:8", "--preview-frames", "6", "--angles", "1", "--preview-size", "64"]


def _cli(home: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "VDBFORGE_HOME": str(home)}
    return subprocess.run([*VDBFORGE, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """A 7-sample smoke_plume dataset, and `train` (both approaches, a few CNN epochs) into a model file."""
    root = tmp_path_factory.mktemp("inverse")
    home, data, model = root / "home", root / "ds", root / "smoke_plume.pt"
    proc = _cli(home, "dataset", "--preset", "smoke_plume", "--n", "7", "--out", str(data), *BAKE, "--workers", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = _cli(home, "train", "--dataset", str(data), "--max-epochs", "4", "--out", str(model), "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"data": data, "model": model, "report": json.loads(proc.stdout)}


@pytest.fixture
def installed(trained, isolated_home) -> Path:
    """The trained model where `find_inverse_model` looks, in this test's own user data folder."""
    target = isolated_home / "models" / "inverse" / "smoke_plume.pt"
    target.parent.mkdir(parents=True)
    shutil.copyfile(trained["model"], target)
    return target


def _preview(data: Path, index: int = 0) -> Path:
    return next((data / "samples" / f"{index:05d}" / "preview").glob("f*_a*.png"))


def test_train_compares_both_approaches_and_keeps_the_better(trained):
    report = trained["report"]
    assert report["samples"] == 7 and report["test_samples"] >= 1 and trained["model"].is_file()
    assert set(report["approaches"]) == {"knn", "cnn"}
    maes = {name: figures["mae"] for name, figures in report["approaches"].items()}
    assert report["winner"] == min(maes, key=lambda a: (maes[a], a != "knn"))
    for figures in report["approaches"].values():
        assert set(figures["per_parameter"]) == set(report["parameters"]) and len(report["parameters"]) == 8
        assert 0.0 <= figures["mae"] <= 1.0 and 0.0 <= figures["coverage_1sigma"] <= 1.0
    assert report["approaches"]["cnn"]["epochs"] <= 4
    from vdbforge_addon.ml.inverse_store import read_model

    scale = read_model(trained["model"])["sigma_scale"]
    assert len(scale) == 8 and all(0.25 <= f <= 10.0 for f in scale)


def test_sigma_calibration_makes_an_over_confident_spread_cover_one_sigma():
    from vdbforge_addon.ml.inverse_model import ONE_SIGMA, calibrate_sigma

    rng = np.random.default_rng(0)
    truth = rng.random((400, 3))
    sigma = np.full((400, 3), 0.05)
    mean = truth + rng.normal(0.0, [0.1, 0.05, 0.025], size=(400, 3))  # spread 2x, 1x and 0.5x too small
    groups = np.repeat(np.arange(100), 4)  # four pictures per sample, split by sample
    scale, coverage = calibrate_sigma(mean, sigma, truth, groups)
    assert scale == pytest.approx([2.0, 1.0, 0.5], rel=0.2)
    assert (np.abs(mean - truth) <= sigma)[:, 0].mean() < 0.45  # the over-confident one, before
    assert coverage == pytest.approx(ONE_SIGMA, abs=0.06)
    assert calibrate_sigma(mean[:4], sigma[:4], truth[:4], groups[:4])[1] is None  # one sample: nothing to check on


def test_models_lists_the_model_and_predict_start_gives_normalised_vectors(trained, installed, isolated_home):
    from vdbforge_addon.core.preset_library import resolve_preset
    from vdbforge_addon.ml.inverse_model import predict_start
    from vdbforge_addon.ml.inverse_store import find_inverse_model

    proc = _cli(isolated_home, "models", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout)["inverse"]
    assert [(r["preset_id"], r["status"], r["samples"]) for r in rows] == [("smoke_plume", "ok", 7)]
    assert "smoke_plume" in _cli(isolated_home, "models").stdout

    preset = resolve_preset("smoke_plume")
    assert find_inverse_model(preset) == installed
    sim_mean, sim_sigma, render_mean, render_sigma = predict_start(preset, _preview(trained["data"]))
    assert len(sim_mean) == len(sim_sigma) == 5 and len(render_mean) == len(render_sigma) == 3
    assert all(0.0 <= v <= 1.0 for v in [*sim_mean, *render_mean])
    assert all(0.0 < s <= 1.0 for s in [*sim_sigma, *render_sigma])

    from vdbforge_addon.ml.start_point import start_point

    auto = start_point(None, preset, [_preview(trained["data"])])
    assert auto["kind"] == "inverse" and auto["x"] == sim_mean and 0.05 <= auto["sigma0"] <= 0.3
    assert start_point("inverse", preset, [_preview(trained["data"])], sigma0=0.4)["sigma0"] == 0.4  # --sigma0 wins
    assert start_point("default", preset, [_preview(trained["data"])]) is None


def test_atlas_recovers_a_picture_it_holds(trained, tmp_path):
    """The saved atlas holds every sample, so one of its own previews maps back to that sample's parameters."""
    from vdbforge_addon.ml.inverse_model import predict, train
    from vdbforge_addon.ml.inverse_store import read_model

    train(trained["data"], "knn", tmp_path / "knn.pt")
    model = read_model(tmp_path / "knn.pt")
    record = json.loads((trained["data"] / "samples" / "00003" / "sample.json").read_text())
    mean, _ = predict(model, _preview(trained["data"], 3))
    assert mean == pytest.approx(record["x_sim"] + record["x_render"], abs=1e-3)


def test_cnn_model_predicts(trained, tmp_path):
    from vdbforge_addon.ml.inverse_model import predict
    from vdbforge_addon.ml.inverse_store import read_model

    proc = _cli(tmp_path / "home", "train", "--dataset", str(trained["data"]), "--approach", "cnn", "--max-epochs",
                "2", "--out", str(tmp_path / "cnn.pt"))  # fmt: skip
    assert proc.returncode == 0 and "cnn: held-out MAE" in proc.stdout, proc.stderr[-2000:]
    model = read_model(tmp_path / "cnn.pt")
    assert model["approach"] == "cnn"
    mean, sigma = predict(model, _preview(trained["data"], 1))
    assert len(mean) == len(sigma) == 8 and all(0 <= v <= 1 for v in mean)


def _stale(installed: Path, **changes) -> None:
    import torch

    model = torch.load(installed, weights_only=True)
    torch.save({**model, **changes}, installed)


def test_model_from_another_blender_is_refused(installed, isolated_home):
    from vdbforge_addon.core.errors import VDBForgeError
    from vdbforge_addon.core.preset_library import resolve_preset
    from vdbforge_addon.ml.inverse_model import predict_start
    from vdbforge_addon.ml.inverse_store import find_inverse_model

    _stale(installed, blender_version="4.2.0")
    preset = resolve_preset("smoke_plume")
    with pytest.raises(VDBForgeError, match=r"baked with Blender 4\.2\.0, this is Blender 4\.5.*vdbforge dataset"):
        find_inverse_model(preset)
    with pytest.raises(VDBForgeError, match="Blender 4.2.0"):
        predict_start(preset, installed)  # refused before the image is even read
    rows = json.loads(_cli(isolated_home, "models", "--json").stdout)["inverse"]
    assert rows[0]["status"].startswith("stale: its dataset was baked with Blender 4.2.0")


def test_model_for_another_parameter_space_or_scene_is_refused(installed, isolated_home):
    from vdbforge_addon.core.errors import VDBForgeError
    from vdbforge_addon.core.preset_library import resolve_preset
    from vdbforge_addon.core.preset_sharing import import_preset_file
    from vdbforge_addon.ml.inverse_store import find_inverse_model

    data = resolve_preset("smoke_plume").model_dump(mode="json")
    data["parameters"][0]["max"] = data["parameters"][0]["max"] * 2  # a user copy with a wider vorticity range
    path = isolated_home / "smoke_plume.vdbforge.json"
    path.write_text(json.dumps(data))
    import_preset_file(path, overwrite=True)
    with pytest.raises(VDBForgeError, match="parameter space changed.*bounds") as err:
        find_inverse_model(resolve_preset("smoke_plume"))
    assert "\n" not in str(err.value) and "vdbforge train" in str(err.value)

    data = resolve_preset("smoke_plume").model_dump(mode="json")
    data["parameters"][0]["max"] = data["parameters"][0]["max"] / 2  # the space back as it was, but a new emitter size
    data["emitters"][0]["scale"] = [v * 1.5 for v in data["emitters"][0]["scale"]]
    path.write_text(json.dumps(data))
    import_preset_file(path, overwrite=True)
    with pytest.raises(VDBForgeError, match="scene .* changed"):
        find_inverse_model(resolve_preset("smoke_plume"))


def test_no_model_and_too_small_datasets_are_one_line_errors(trained, tmp_path, isolated_home):
    from vdbforge_addon.core.errors import VDBForgeError
    from vdbforge_addon.core.preset_library import resolve_preset
    from vdbforge_addon.ml.inverse_model import predict_start
    from vdbforge_addon.ml.inverse_store import find_inverse_model

    preset = resolve_preset("smoke_plume")
    assert find_inverse_model(preset) is None
    with pytest.raises(VDBForgeError, match="no inverse model for preset 'smoke_plume'"):
        predict_start(preset, _preview(trained["data"]))
    small = tmp_path / "small"
    shutil.copytree(trained["data"], small)
    lines = (small / "index.jsonl").read_text().splitlines()
    (small / "index.jsonl").write_text("\n".join(lines[:2]) + "\n")
    proc = _cli(isolated_home, "train", "--dataset", str(small))
    assert proc.returncode == 1 and "has 2 finished samples; training needs at least 4" in proc.stderr
    proc = _cli(isolated_home, "train", "--dataset", str(tmp_path / "nothing"))
    assert proc.returncode == 1 and "no dataset in" in proc.stderr
