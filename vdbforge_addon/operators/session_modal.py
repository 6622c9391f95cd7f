"""The modal scaffolding around a step-driven worker session (`core.worker_session`): a timer calls `step()`, Esc
cancels, the window manager's progress bar follows the session. Without a window (the `bpy` wheel, `blender -b`)
timers never fire, so `execute()` runs the same step loop to the end.

An operator mixes this in and supplies `_make_session` (the session, or VDBForgeError with the one-line reason the
operator reports), `_show` (mirror the state into its properties) and `_end` (report the outcome, return the operator
result).
"""

import bpy

from ..core.errors import VDBForgeError
from ..core.worker_session import SessionState

TIMER_SECONDS = 0.25


class SessionModalMixin:
    _session = None
    _timer = None

    def _make_session(self, context: bpy.types.Context):
        raise NotImplementedError

    def _start(self, context: bpy.types.Context) -> bool:
        try:
            self._session = self._make_session(context)
        except VDBForgeError as exc:
            self.report({"ERROR"}, str(exc))
            return False
        self._show(context, self._session.state)
        return True

    def _show(self, context: bpy.types.Context, state: SessionState) -> None:
        raise NotImplementedError

    def _end(self, context: bpy.types.Context, state: SessionState) -> set[str]:
        raise NotImplementedError

    def execute(self, context: bpy.types.Context) -> set[str]:
        if not self._start(context):
            return {"CANCELLED"}
        state = self._session.run_to_end()
        self._show(context, state)
        return self._end(context, state)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if context.window is None:
            return self.execute(context)
        if not self._start(context):
            return {"CANCELLED"}
        wm = context.window_manager
        self._timer = wm.event_timer_add(TIMER_SECONDS, window=context.window)
        wm.progress_begin(0.0, 1.0)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if event.type == "ESC":
            return self._finish_modal(context, self._session.cancel())
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        state = self._session.step()
        if not state.running:
            return self._finish_modal(context, state)
        self._show(context, state)
        context.window_manager.progress_update(state.fraction)
        self._redraw(context)
        return {"PASS_THROUGH"}

    def cancel(self, context: bpy.types.Context) -> None:
        # Blender calls this when the window closes mid-run: the worker must not outlive the operator.
        self._stop_timer(context)
        self._show(context, self._session.cancel())

    def _finish_modal(self, context: bpy.types.Context, state: SessionState) -> set[str]:
        self._stop_timer(context)
        self._show(context, state)
        result = self._end(context, state)
        self._redraw(context)
        return result

    def _stop_timer(self, context: bpy.types.Context) -> None:
        wm = context.window_manager
        wm.event_timer_remove(self._timer)
        wm.progress_end()

    def _redraw(self, context: bpy.types.Context) -> None:
        for area in context.screen.areas if context.screen else ():
            if area.type == "VIEW_3D":
                area.tag_redraw()
