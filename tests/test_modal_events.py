"""The modal path of Bake & Preview in the installed extension: `modal()` fed timer, mouse and Esc events the way
Blender's event loop delivers them, with a real window-manager timer and progress bar.

`bpy.ops` cannot run a modal operator to the end without an event loop (the wheel has none), so the operator's
methods run on a stand-in `self` (registered operators cannot be instantiated outside Blender's UI); everything else
is real: the scene properties, the worker process, the bake, the timer, the screen the operator redraws.
"""

from __future__ import annotations

from pathlib import Path

from .test_extension import STANDIN_SELF, run_extension_session

SCRIPT = r"""
import json, sys, tempfile, time, types
sys.path.insert(0, SITE)
import bpy

bpy.ops.extensions.package_install_files(filepath=ZIP, repo="user_default", enable_on_install=True)
registration = sys.modules[MODULE + ".blender_registration"]
operator = next(c for c in registration.CLASSES if c.__name__ == "VDBFORGE_OT_bake_modal")
context, wm = bpy.context, bpy.context.window_manager
props = context.scene.vdbforge
props.preset, props.resolution, props.angles = "smoke_plume", 16, 1


def run(end, cancel_after_frames=None):
    props.frame_start, props.frame_end, props.output_dir = 1, end, tempfile.mkdtemp(prefix="modal-")
    op = Standin(operator)
    # What invoke() does before handing the operator to the window manager's modal handlers.
    assert op._start(context)
    op._timer = wm.event_timer_add(0.1, window=context.window)
    wm.progress_begin(0.0, 1.0)
    seen = {"running": [], "progress": [], "ignored": None}
    seen["ignored"] = sorted(op.modal(context, types.SimpleNamespace(type="MOUSEMOVE")))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        baked = op._session.state.baked_frames
        event = "ESC" if cancel_after_frames is not None and baked >= cancel_after_frames else "TIMER"
        result = op.modal(context, types.SimpleNamespace(type=event))
        seen["running"].append(props.running)
        seen["progress"].append(props.progress)
        if result != {"PASS_THROUGH"}:
            break
        time.sleep(0.05)
    seen.update(result=sorted(result), reports=op.reports, status=props.status_text, running_after=props.running,
                out=str(op._session.out), preview=props.preview_image)
    return seen


facts = {"finished": run(4), "cancelled": run(24, cancel_after_frames=1)}
print(PREFIX + json.dumps(facts))
"""


def test_modal_bake_runs_on_timer_events_and_esc_keeps_baked_frames(extension_zip: Path, tmp_path: Path):
    facts, _ = run_extension_session(extension_zip, tmp_path, STANDIN_SELF + SCRIPT)
    done = facts["finished"]
    assert done["ignored"] == ["PASS_THROUGH"], "events other than the timer and Esc pass through"
    assert done["result"] == ["FINISHED"], done
    assert done["running"][0] and not done["running_after"]
    assert done["progress"] == sorted(done["progress"]) and done["progress"][-1] == 1.0
    assert done["reports"] and done["reports"][-1][0] == ["INFO"] and "Baked and rendered" in done["reports"][-1][1]
    assert done["preview"], "the finished run's contact sheet is shown in the Preview panel"
    assert (Path(done["out"]) / "result.json").is_file()

    cancelled = facts["cancelled"]
    assert cancelled["result"] == ["CANCELLED"], cancelled
    assert cancelled["reports"][-1][0] == ["WARNING"] and not cancelled["running_after"]
    out = Path(cancelled["out"])
    assert sorted((out / "cache" / "data").glob("*.vdb")), "Esc keeps the frames baked so far"
    assert not (out / "result.json").exists()
