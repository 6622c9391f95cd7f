"""Frame-parallel .vdb -> .nvdb conversion (core/nanovdb/frame_pool.py): real helper processes, real files."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from vdbforge_addon.core.errors import VDBForgeError
from vdbforge_addon.core.nanovdb import convert_vdb_file
from vdbforge_addon.core.nanovdb.frame_pool import FrameConverter

from .test_nanovdb_openvdb import mantaflow_like, ovdb  # noqa: F401 - ovdb is a fixture


def write_frames(ovdb, folder, count):  # noqa: F811
    paths = []
    for i in range(count):
        path = folder / f"f{i}.vdb"
        ovdb.write(str(path), [mantaflow_like(ovdb, n=24, seed=i)])
        paths.append(path)
    return paths


@pytest.mark.parametrize("codec", ["none", "zip"])
def test_helpers_write_the_same_bytes_as_this_process(tmp_path, ovdb, codec):  # noqa: F811
    src = write_frames(ovdb, tmp_path, 4)
    with FrameConverter(ovdb, frames=4, codec=codec, quantize="fp8", helpers=1) as conv:
        for i, p in enumerate(src):
            conv.submit(p, tmp_path / f"pool{i}.nvdb")
            assert len(conv.helper_pids) == 1  # forced on after the first frame
        out = conv.finish()
    assert out == [str(tmp_path / f"pool{i}.nvdb") for i in range(4)]
    for i, p in enumerate(src):
        convert_vdb_file(p, tmp_path / "here.nvdb", ovdb, codec=codec, quantize="fp8")
        assert np.array_equal(np.fromfile(tmp_path / "here.nvdb", np.uint8), np.fromfile(out[i], np.uint8))


def test_small_frames_stay_in_this_process(tmp_path, ovdb):  # noqa: F811
    src = write_frames(ovdb, tmp_path, 3)
    with FrameConverter(ovdb, frames=3) as conv:
        for i, p in enumerate(src):
            conv.submit(p, tmp_path / f"{i}.nvdb")
        assert conv.helper_pids == [] and conv.helpers_used == 0  # 24^3 frames convert in ms: a helper costs more
        assert len(conv.finish()) == 3


def test_a_bad_frame_is_a_one_line_error_and_nothing_half_written(tmp_path, ovdb):  # noqa: F811
    src = write_frames(ovdb, tmp_path, 3)
    src[1].write_bytes(b"not a vdb")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(VDBForgeError, match="cannot read .*f1.vdb"):  # noqa: SIM117
        with FrameConverter(ovdb, frames=3, helpers=1) as conv:
            for i, p in enumerate(src):
                conv.submit(p, out / f"{i}.nvdb")
            conv.finish()
    assert not (out / "1.nvdb").exists() and not [p for p in out.iterdir() if p.name.startswith(".")]


def test_a_killed_helper_fails_the_sequence_and_leaves_no_process(tmp_path, ovdb):  # noqa: F811
    src = write_frames(ovdb, tmp_path, 2)
    conv = FrameConverter(ovdb, frames=3, helpers=1)
    with pytest.raises(VDBForgeError, match="helper process died"), conv:
        conv.submit(src[0], tmp_path / "0.nvdb")
        (pid,) = conv.helper_pids
        os.kill(pid, signal.SIGKILL)
        conv.submit(src[1], tmp_path / "1.nvdb")
        deadline = time.monotonic() + 10
        while conv.queued and time.monotonic() < deadline:  # let the helper take it before finish() could
            time.sleep(0.01)
        conv.finish()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
