"""The pure parts of match: parameter space, inner fit, optimizers (no bakes; fast)."""

from __future__ import annotations

import os
import signal

import pytest

from vdbforge_addon.core.inner_fit import coordinate_fit
from vdbforge_addon.core.match_optimizer import make_optimizer
from vdbforge_addon.core.match_space import SearchSpace
from vdbforge_addon.core.parameters import validate_preset
from vdbforge_addon.core.preset_library import resolve_preset
from vdbforge_addon.core.worker_pool import run_steps


def test_space_splits_stages_and_round_trips_values():
    space = SearchSpace.of(resolve_preset("explosion"))
    assert space.render_paths == ["material.density_scale", "material.emission_strength", "render.exposure",
                                  "render.framing"]  # fmt: skip
    assert all(t.stage == "simulation" for t in space.simulation)
    x = space.simulation_start()
    assert all(0.0 <= u <= 1.0 for u in x)
    values = space.from_unit(space.simulation, x)
    start = space.start_values()
    for path, value in values.items():
        assert value == pytest.approx(start[path], rel=1e-9), path
    assert space.apply(values).model_dump() == space.preset.model_dump()


def test_categorical_tunables_are_bins():
    data = resolve_preset("smoke_plume").model_dump(mode="json")
    data["parameters"].append({"path": "domain.noise.upres", "stage": "simulation", "choices": [1, 2, 3, 4]})
    space = SearchSpace.of(validate_preset(data, "test"))
    upres = next(t for t in space.simulation if t.path == "domain.noise.upres")
    assert [space.from_unit((upres,), [u])["domain.noise.upres"] for u in (0.0, 0.26, 0.5, 0.99, 1.0)] == [
        1,
        2,
        3,
        4,
        4,
    ]


def test_inner_fit_finds_a_smooth_peak_within_its_budget_and_skips_dead_dimensions():
    calls = []

    def score(u):
        calls.append(list(u))
        return 1.0 - (u[0] - 0.8) ** 2 - 0.5 * (u[1] - 0.3) ** 2  # u[2] does not matter

    fit = coordinate_fit(score, [0.5, 0.5, 0.5], budget=14)
    assert fit.renders == len(calls) <= 14
    assert fit.best[0] == pytest.approx(0.8, abs=0.05) and fit.best[1] == pytest.approx(0.3, abs=0.05)
    assert fit.best_score > fit.start_score
    assert fit.best_score == max(s for _, s in fit.trials)
    # After the first pass the insensitive third dimension gets no more renders.
    first_pass = 1 + 2 * 3 + 2
    assert all(c[2] == 0.5 for c in calls[first_pass:])
    assert coordinate_fit(score, [0.5, 0.5, 0.5], budget=1).renders == 1


@pytest.mark.parametrize("kind", ["cma", "random"])
def test_optimizers_start_at_the_start_and_repeat_for_a_seed(kind):
    start = [0.2, 0.5, 0.9]

    def run(seed):
        opt = make_optimizer(kind, start, 0.25, seed, 4)
        points = []
        for _ in range(3):
            generation = opt.ask()
            points += generation
            opt.tell(generation, [1.0 - sum((a - 0.6) ** 2 for a in p) for p in generation])
        return points

    first = run(7)
    assert first[0] == pytest.approx(start) and len(first) == 12
    assert all(0.0 <= u <= 1.0 for p in first for u in p)
    assert run(7) == first and run(8) != first


def test_cma_opens_with_a_spread_generation_and_refines_around_its_best():
    import numpy as np

    start = [0.2, 0.5, 0.9]
    opt = make_optimizer("cma", start, 0.25, 3, 8)
    opening = opt.ask()
    assert opening[0] == start and opt.ask() == opening  # asked again before a tell: the same opening
    spread = np.asarray(opening[1:])
    assert (spread.min(axis=0) < 0.25).all() and (spread.max(axis=0) > 0.75).all()  # the whole box, per dimension
    target = np.asarray(opening[5])
    opt.tell(opening, [1.0 - float(np.linalg.norm(np.asarray(p) - target)) for p in opening])
    refine = np.asarray(opt.ask())
    assert not any(np.allclose(p, target) for p in refine)  # the best point is not baked twice
    # Centred on the opening's best, not on the start: the refinement's mean is nearer the best point.
    assert np.linalg.norm(refine.mean(axis=0) - target) < np.linalg.norm(refine.mean(axis=0) - np.asarray(start))
    assert np.linalg.norm(refine - target, axis=1).max() < 0.6

    # An informed start (a prediction with its spread) is trusted: the opening stays within start ± 2 σ₀.
    informed = make_optimizer("cma", start, 0.05, 3, 8, informed=True).ask()
    assert all(abs(u - s) <= 0.1 + 1e-9 for p in informed for u, s in zip(p, start, strict=True))


def test_one_dimension_works_with_cma():
    opt = make_optimizer("cma", [0.3], 0.2, 0, 4)
    points = opt.ask()
    assert len(points) == 4 and all(len(p) == 1 for p in points)
    opt.tell(points, [p[0] for p in points])
    assert len(opt.ask()) == 4


def test_crash_regions_from_memory_are_frozen_into_the_run(tmp_path):
    from tests.synthetic_images import plume, save
    from vdbforge_addon.core import technique_memory
    from vdbforge_addon.core.match_controller import MatchController
    from vdbforge_addon.core.match_run import RunDir
    from vdbforge_addon.core.match_settings import MatchSettings
    from vdbforge_addon.core.match_setup import new_run
    from vdbforge_addon.core.scoring_settings import ScoringSettings

    preset = resolve_preset("smoke_plume")
    space = SearchSpace.of(preset)
    crash_x = [0.9, 0.1, 0.5, 0.5, 0.5]
    for _ in range(2):
        technique_memory.record_failure(preset.id, list(reversed(space.simulation_paths)), crash_x[::-1], "mantaflow",
                                        "Manta::Error at 0x7f00 in /tmp/x")  # fmt: skip
    run = RunDir(tmp_path / "run")
    config = new_run(run, preset, [save(plume(), tmp_path / "ref.png")], "", MatchSettings(budget=2), ScoringSettings())
    assert config["crash_regions"] == [{"region": [3, 0, 2, 2, 2], "count": 2}]
    controller = MatchController(run, config)
    assert controller._crash_risk(crash_x) >= 0.75 > controller._crash_risk([0.1, 0.9, 0.5, 0.5, 0.5])
    controller._launch(0, crash_x)  # not baked: recorded as avoided with the penalty
    (entry,) = run.read_history()
    assert entry["status"] == "avoided" and entry["score"] == 0.0 and entry["error"]["kind"] == "avoided"
    assert not controller.running


def test_ctrl_c_cancels_between_steps_never_inside_one():
    """A SIGINT that lands mid-step (e.g. halfway through launching a worker) must not run cancel() there."""
    events: list[str] = []

    class Loop:
        finished = False

        def step(self):
            events.append("step")
            if len(events) == 1:
                os.kill(os.getpid(), signal.SIGINT)
            events.append("step done")
            return self

        def cancel(self):
            events.append("cancel")
            self.finished = True

    loop = Loop()
    before = signal.getsignal(signal.SIGINT)
    state = run_steps(loop.step, interval=0.05, cancel=loop.cancel)
    assert state.finished and events == ["step", "step done", "cancel", "step", "step done"]
    assert signal.getsignal(signal.SIGINT) is before
