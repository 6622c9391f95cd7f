"""The Iterate panel's inverse model, through `bpy.ops` in the installed extension, in a Blender whose Python has
torch and scipy: no model at first; Build Model's session cancelled after two samples keeps them and leaves no
staging folder; Build Model then continues that dataset (no sample redone) and trains; the panel's status says the
model is ready; a match started from the panel with Start From = Auto starts from the model's prediction, and Model for
a preset without a model is a one-line error."""

from __future__ import annotations

from pathlib import Path

from .test_extension import run_extension_session

SCRIPT = r"""
import json, os, sys, time
sys.path.insert(0, SITE)
import bpy

facts = {}
bpy.ops.extensions.package_install_files(filepath=ZIP, repo="user_default", enable_on_install=True)
# torch and scipy pip-installed into Blender's Python: this environment's packages, after the bundled wheels.
sys.path.append(os.path.dirname(os.path.realpath(os.path.join(SITE, "numpy"))))
props = bpy.context.scene.vdbforge
it, score = props.iterate, props.score
panel = sys.modules[MODULE + ".panels.iterate_panel"]
build = sys.modules[MODULE + ".operators.inverse_build"]


def run(op, **kwargs):
    try:
        return sorted(op(**kwargs))
    except RuntimeError as exc:
        return ["RuntimeError", str(exc).strip()]


props.preset = "smoke_plume"
props.resolution, props.frame_start, props.frame_end, props.angles = 16, 1, 8, 1
facts["status_before"] = panel._model_status(props.preset).state
it.model_samples, it.workers = 8, 2

session = build.start_build(bpy.context)  # what the operator's timer steps
while session.state.done < 2:
    session.step()
    time.sleep(0.2)
state = session.cancel()
dataset = session.dataset_dir
facts["cancel"] = [state.cancelled, state.running, state.message]
facts["kept"] = sorted(p.name for p in (dataset / "samples").iterdir())

facts["build"] = run(bpy.ops.vdbforge.inverse_build)
facts["built"] = [it.model_building, it.model_progress, it.model_status_text]
status = panel._model_status(props.preset)
facts["status_after"] = [status.state, status.text]
records = [json.loads(line) for line in (dataset / "index.jsonl").read_text().splitlines() if line.strip()]
facts["records"] = sorted(r["index"] for r in records)
facts["dataset"] = str(dataset)

reference = next((dataset / "samples" / "00003" / "preview").glob("f*_a00.png"))
score.references.add().filepath = str(reference)
it.budget, it.population, it.inner_budget, it.threshold = 2, 2, 1, 1.0
facts["match"] = run(bpy.ops.vdbforge.match_run)
run_json = json.loads((__import__("pathlib").Path(it.run_dir) / "run.json").read_text())
facts["init"] = run_json["init"]["kind"]
it.init = "inverse"
props.preset = "fire"
facts["inverse_without_model"] = run(bpy.ops.vdbforge.match_run)
bpy.ops.preferences.addon_disable(module=MODULE)
facts["classes_after"] = [n for n in dir(bpy.types) if n.startswith(("VDBFORGE_", "VDBForge"))]
print(PREFIX + json.dumps(facts), flush=True)
"""


def test_build_model_cancel_resume_status_and_match_start(extension_zip: Path, tmp_path: Path):
    facts, resources = run_extension_session(extension_zip, tmp_path, SCRIPT)

    assert facts["status_before"] == "none"
    cancelled, running, message = facts["cancel"]
    assert cancelled and not running and "samples kept" in message, facts["cancel"]
    kept = facts["kept"]
    assert len(kept) >= 2 and all(name.isdigit() for name in kept), kept  # no staging folder left behind

    assert facts["build"] == ["FINISHED"], facts["build"]
    building, progress, text = facts["built"]
    assert not building and progress == 1.0 and text.startswith("Model ready"), facts["built"]
    assert facts["status_after"][0] == "ready" and "8 samples" in facts["status_after"][1], facts["status_after"]
    assert facts["records"] == list(range(8)), facts["records"]  # each sample recorded once: none redone
    assert Path(facts["dataset"]).is_relative_to(resources / "extensions" / ".user"), facts["dataset"]

    assert facts["match"] == ["FINISHED"], facts["match"]
    assert facts["init"] == "inverse"
    assert facts["inverse_without_model"][0] == "RuntimeError"
    assert "there is no model for 'fire'" in facts["inverse_without_model"][1]
    assert facts["classes_after"] == []
