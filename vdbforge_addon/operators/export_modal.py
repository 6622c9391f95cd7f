"""Export in a worker, modal: a timer calls `ExportSession.step()`; Esc cancels and leaves the output folder as it was.

All logic lives in `core.export_session`; this operator only turns the Export panel's settings into a session and
mirrors its state into `scene.vdbforge.export`. Headless (no window) `execute()` runs the same step loop to the end.
"""

import bpy

from ..core.export_session import ExportSession, read_cache_preset
from ..core.worker_session import SessionState
from ..panels.export_panel import chosen_cache, chosen_output, panel_frames, panel_overrides
from .build_bake import worker_command
from .session_modal import SessionModalMixin

TIMEOUT_SECONDS = 3600.0  # what `vdbforge export` allows by default


def start_export(context: bpy.types.Context) -> ExportSession:
    """A session for the panel's settings; every bad setting is refused here, before a worker starts."""
    props = context.scene.vdbforge.export
    cache, preset = read_cache_preset(chosen_cache(context))
    command, extra_sys_path = worker_command()
    return ExportSession(
        cache,
        chosen_output(props, str(preset.get("id") or "export")),
        panel_overrides(props),
        panel_frames(props),
        timeout=TIMEOUT_SECONDS,
        command=command,
        extra_sys_path=extra_sys_path,
    )


class VDBFORGE_OT_export(SessionModalMixin, bpy.types.Operator):
    """Export the kept bake cache as .vdb (and .nvdb) files in a worker process (Esc cancels, writing nothing)"""

    bl_idname = "vdbforge.export"
    bl_label = "Export"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        props = getattr(context.scene, "vdbforge", None)
        # A running bake may replace the very cache being read when it publishes.
        return props is not None and not props.running and not props.export.running

    def _make_session(self, context: bpy.types.Context) -> ExportSession:
        return start_export(context)

    def _show(self, context: bpy.types.Context, state: SessionState) -> None:
        props = context.scene.vdbforge.export
        props.progress = state.fraction
        props.status_text = state.error or state.message
        props.running = state.running

    def _end(self, context: bpy.types.Context, state: SessionState) -> set[str]:
        if state.finished:
            result = state.result or {}
            vdb, nvdb = len(result.get("vdb_files", [])), len(result.get("nanovdb_files", []))
            extra = f" and {nvdb} NanoVDB files" if nvdb else ""
            message = f"Exported {vdb} VDB frames{extra} to {self._session.out}"
            context.scene.vdbforge.export.status_text = message
            self.report({"INFO"}, message)
            return {"FINISHED"}
        if state.cancelled:
            self.report({"WARNING"}, state.message)
            return {"CANCELLED"}
        self.report({"ERROR"}, state.error)
        return {"CANCELLED"}


classes = (VDBFORGE_OT_export,)
