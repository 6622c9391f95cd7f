"""A match run seen as a step-driven session (`worker_session.SessionState`), for the Iterate panel's modal operator."""

from __future__ import annotations

from pathlib import Path

from .match_controller import MatchController, MatchState
from .worker_session import SessionState, run_until_done


class MatchSession:
    def __init__(self, controller: MatchController) -> None:
        self.controller = controller
        self.state = SessionState(stage="match", total=controller.budget)
        self._mirror(controller.state)

    @property
    def run_dir(self) -> Path:
        return self.controller.run.path

    def step(self) -> SessionState:
        return self._mirror(self.controller.step())

    def cancel(self) -> SessionState:
        self.controller.cancel()
        return self._mirror(self.controller.state)

    def run_to_end(self) -> SessionState:
        return run_until_done(self.step, interval=0.2)

    def _mirror(self, match: MatchState) -> SessionState:
        state = self.state
        state.done, state.total = match.evaluations, match.budget
        state.fraction = match.evaluations / match.budget if match.budget else 0.0
        best = f"best {match.best_score:.3f} (#{match.best_index})" if match.best_index is not None else "no best yet"
        state.message = f"generation {match.generation + 1} · {match.evaluations}/{match.budget} bakes · {best}"
        state.result = {
            "best_score": match.best_score if match.best_index is not None else None,
            "best_index": match.best_index,
            "best_preview": match.best_preview,
            "best_dir": str(self.controller.run.best_dir) if match.best_index is not None else None,
            "generation": match.generation,
            "stop_reason": match.stop_reason,
        }
        if match.finished:
            state.cancelled = match.stop_reason == "cancelled"
            state.finished = not state.cancelled
        return state
