"""The preview rig: explicit camera angles, frame lists, and the same scene rendering the same pixels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.conftest import run_cli
from vdbforge_addon.core.errors import PresetError
from vdbforge_addon.core.preset_library import resolve_preset
from vdbforge_addon.core.render_run import RenderOptions, parse_views, resolve_render_preset


def test_views_parse_and_replace_the_angle_count():
    assert parse_views("0:10, 90:45,0:89") == [(0.0, 10.0), (90.0, 45.0), (0.0, 89.0)]
    assert parse_views("180") == [(180.0, 10.0)]
    for bad in ("a:b", ",".join(["0:0"] * 17), "0:95"):
        with pytest.raises(PresetError, match="views"):
            resolve_render_preset(resolve_preset("fire"), RenderOptions(views=parse_views(bad)))
    preset = resolve_render_preset(resolve_preset("fire"), RenderOptions(views=[(0, 10), (90, 30)]))
    assert preset.render.angles == 2 and [v.elevation for v in preset.render.views] == [10, 30]
    # An explicit --angles count asks for the default angles even when the preset lists its own views.
    again = resolve_render_preset(preset, RenderOptions(angles=3))
    assert again.render.angles == 3 and again.render.views == []


def _render(out, *extra):
    proc = run_cli("render", "--preset", "smoke_plume", "--out", str(out), "--resolution", "16", "--frames", "1:8",
                   "--preview-size", "64", "--json", *extra)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def test_views_and_frame_list_name_previews_and_renders_repeat_exactly(tmp_path):
    first = _render(tmp_path / "a", "--views", "0:10,90:45,0:89", "--preview-frames", "5,8")
    names = sorted(p.rsplit("/", 1)[-1] for p in first["previews"])
    assert names == [f"f{f:04d}_a{a:02d}.png" for f in (5, 8) for a in range(3)]
    assert "contact" in first["contact_sheet"].rsplit("/", 1)[-1]
    pixels = {n: np.asarray(Image.open(tmp_path / "a" / "preview" / n)) for n in names}
    assert all(p.std() > 1.0 for p in pixels.values()), "every angle shows the volume"
    assert not np.array_equal(pixels["f0008_a00.png"], pixels["f0008_a02.png"]), "front and top differ"
    _render(tmp_path / "b", "--views", "0:10,90:45,0:89", "--preview-frames", "5,8")
    for a in range(3):
        name = f"f0008_a{a:02d}.png"
        same = np.asarray(Image.open(tmp_path / "b" / "preview" / name))
        assert np.array_equal(same, pixels[name]), f"{name}: a fixed seed and a deterministic bake repeat exactly"


def _luminance(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"), dtype=np.float32)


def test_core_and_edge_radii_cut_a_dark_centre_and_a_round_rim(tmp_path):
    """The accretion disk's black hole and round rim are shading: the same bake seen from above with both radii
    and with neither (a copy of the preset with them at 0)."""
    builtin = json.loads(resolve_preset("accretion_disk").model_dump_json())
    builtin["material"].update(core_radius=0.0, edge_radius=0.0)
    builtin["parameters"] = [p for p in builtin["parameters"] if p["path"] != "material.core_radius"]
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(builtin))
    args = ("--resolution", "24", "--frames", "1:24", "--views", "0:89", "--preview-size", "96", "--json")
    images = {}
    for label, extra in (("cut", ("accretion_disk", "--set", "material.core_radius=2")), ("plain", (str(plain),))):
        proc = run_cli("render", "--out", str(tmp_path / label), *args, "--preset", *extra)
        assert proc.returncode == 0, proc.stderr[-2000:]
        images[label] = _luminance(json.loads(proc.stdout)["previews"][0])
    size = images["cut"].shape[0]
    yy, xx = np.indices(images["cut"].shape)
    r = np.hypot(yy - (size - 1) / 2, xx - (size - 1) / 2) / size
    centre, ring, corners = (r > 0.08) & (r < 0.2), (r > 0.28) & (r < 0.36), r > 0.55
    assert images["plain"][centre].mean() > 10, "without a core radius gas glows near the centre"
    assert images["cut"][centre].mean() < 0.2 * images["plain"][centre].mean(), "the core radius darkens it"
    assert images["cut"][ring].mean() > 0.9 * images["plain"][ring].mean(), "the ring itself stays lit"
    assert images["plain"][corners].mean() > 5, "without an edge radius the gas reaches the square domain's corners"
    assert images["cut"][corners].max() < 5, "beyond the edge radius nothing shows: the rim is round"
