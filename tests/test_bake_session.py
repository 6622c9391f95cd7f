"""BakeSession driven by its step function on real tiny bakes: progress rises to a published result, and a cancel
keeps the frames that were baked."""

from __future__ import annotations

import json
import time
from pathlib import Path

from vdbforge_addon.core.bake_session import BakeSession
from vdbforge_addon.core.preset_library import resolve_preset
from vdbforge_addon.core.render_run import RenderOptions
from vdbforge_addon.core.staged_run import STAGING_PREFIX


def _options(end: int, keep_cache: bool) -> RenderOptions:
    return RenderOptions(
        resolution=16, frames=(1, end, 1), angles=1, preview_size=64, keep_cache=keep_cache, timeout=300
    )


def test_step_loop_rises_to_a_published_result(tmp_path: Path):
    out = tmp_path / "out"
    session = BakeSession(resolve_preset("smoke_plume"), out, _options(6, keep_cache=False))
    fractions, stages = [], []
    while (state := session.step()).running:
        fractions.append(state.fraction)
        stages.append(state.stage)
        time.sleep(0.05)
    assert state.finished and not state.failed and not state.cancelled, state.error
    assert state.fraction == 1.0 and fractions == sorted(fractions) and fractions[-1] > 0
    assert "bake" in stages
    assert state.result is not None and state.result["frames"][:2] == [1, 6]
    assert Path(state.result["contact_sheet"]).is_file()
    assert json.loads((out / "result.json").read_text(encoding="utf-8"))["preset_id"] == "smoke_plume"
    assert not [p for p in out.iterdir() if p.name.startswith(STAGING_PREFIX)]
    assert session.step() is state  # further steps are harmless


def test_cancel_after_the_first_baked_frame_keeps_it(tmp_path: Path):
    out = tmp_path / "out"
    session = BakeSession(resolve_preset("smoke_plume"), out, _options(24, keep_cache=True))
    deadline = time.monotonic() + 240
    while (state := session.step()).running and state.baked_frames < 1:
        assert time.monotonic() < deadline, state.message
        time.sleep(0.05)
    assert state.running, f"the job ended before it could be cancelled: {state.message}"
    state = session.cancel()
    assert state.cancelled and not state.finished and not state.failed
    assert state.kept_cache == str(out / "cache")
    frames = sorted(int(p.stem.rsplit("_", 1)[1]) for p in (out / "cache" / "data").glob("*.vdb"))
    assert frames and frames[0] == 1 and frames[-1] <= state.baked_frames
    assert frames == list(range(1, len(frames) + 1))
    assert not (out / "result.json").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(STAGING_PREFIX)]
    assert session.step() is state
