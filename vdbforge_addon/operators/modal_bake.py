"""Bake & Preview in a worker, modal: a timer calls `BakeSession.step()`; ESC cancels and keeps the baked frames.

All logic lives in `core.bake_session`; this operator only mirrors its state into `scene.vdbforge` and the window
manager's progress bar. Without a window (the `bpy` wheel, `blender -b`) timers never fire, so `execute()` runs the
same step loop to the end.
"""

from pathlib import Path

import bpy

from ..core.bake_session import BakeSession, StepState
from ..core.errors import PresetError
from ..core.parameters import apply_overrides
from ..core.preset_library import resolve_preset
from ..core.render_run import RenderOptions
from ..panels.properties import tunable_overrides
from .build_bake import output_folder, worker_command
from .preview_image import load_preview
from .session_modal import SessionModalMixin


def start_session(props: bpy.types.PropertyGroup) -> BakeSession:
    """A session for the scene's settings; the edited tunables are checked against their bounds here."""
    if not props.preset:
        raise PresetError("no preset is selected")
    preset = apply_overrides(resolve_preset(props.preset), tunable_overrides(props))
    options = RenderOptions(
        resolution=props.resolution,
        frames=(props.frame_start, props.frame_end, 1),
        angles=props.angles,
        keep_cache=True,  # a cancel, or the Export panel later, works from the baked cache
    )
    command, extra_sys_path = worker_command()
    out = output_folder(props) / "renders" / preset.id
    return BakeSession(preset, out, options, command=command, extra_sys_path=extra_sys_path)


def show_state(context: bpy.types.Context, state: StepState) -> None:
    props = context.scene.vdbforge
    props.progress = state.fraction
    props.status_text = state.error or state.message
    props.running = state.running


class VDBFORGE_OT_bake_modal(SessionModalMixin, bpy.types.Operator):
    """Bake, export and render a preview of the chosen preset in a worker process (Esc cancels and keeps baked frames)"""

    bl_idname = "vdbforge.bake_modal"
    bl_label = "Bake & Preview"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        props = getattr(context.scene, "vdbforge", None)
        return props is not None and context.mode == "OBJECT" and not props.running

    def _make_session(self, context: bpy.types.Context) -> BakeSession:
        return start_session(context.scene.vdbforge)

    def _show(self, context: bpy.types.Context, state: StepState) -> None:
        show_state(context, state)

    def _end(self, context: bpy.types.Context, state: StepState) -> set[str]:
        show_state(context, state)
        if state.finished:
            sheet = (state.result or {}).get("contact_sheet")
            if sheet and Path(sheet).is_file():
                load_preview(context.scene.vdbforge, sheet)
            self.report({"INFO"}, f"Baked and rendered '{self._session.resolved.name}' into {self._session.out}")
            return {"FINISHED"}
        if state.cancelled:
            self.report({"WARNING"}, state.message)
            return {"CANCELLED"}
        self.report({"ERROR"}, state.error)
        return {"CANCELLED"}


classes = (VDBFORGE_OT_bake_modal,)
