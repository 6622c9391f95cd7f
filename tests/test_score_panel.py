"""The References & Score and Iterate sub-panels through `bpy.ops` in the installed extension, in a Python without
torch (like a stock Blender): references added and removed, previews scored with the metrics that can run there, the
skipped ones named, one-line errors for scoring before any preview and for a text target without CLIP; then a small
match run (EXEC path of the modal operator), Save Best as Preset and Apply Best."""

from __future__ import annotations

from pathlib import Path

from .test_extension import run_extension_session

SCRIPT = r"""
import json, sys
sys.path.insert(0, SITE)
import bpy

facts = {}
bpy.ops.extensions.package_install_files(filepath=ZIP, repo="user_default", enable_on_install=True)
props = bpy.context.scene.vdbforge
score = props.score
paths_module = sys.modules[MODULE + ".core.paths"]


def run(op, **kwargs):
    try:
        return sorted(op(**kwargs))
    except RuntimeError as exc:
        return ["RuntimeError", str(exc).strip()]


facts["torch_importable"] = "torch" in sys.modules or __import__("importlib").util.find_spec("torch") is not None
facts["before_preview"] = run(bpy.ops.vdbforge.score_previews)
props.preset = "smoke_plume"
props.resolution, props.frame_start, props.frame_end, props.angles = 16, 1, 6, 2
facts["bake"] = run(bpy.ops.vdbforge.bake_modal)
preview = __import__("pathlib").Path(props.contact_sheet).parent
images = sorted(p for p in preview.glob("f*_a*.png"))
facts["add"] = run(bpy.ops.vdbforge.reference_add, filepath=str(images[1]))
facts["add_missing"] = run(bpy.ops.vdbforge.reference_add, filepath=str(preview / "nope.png"))
facts["references"] = [r.filepath for r in score.references]
facts["score"] = run(bpy.ops.vdbforge.score_previews)
facts["objective"] = score.objective
facts["rows"] = [[r.image, r.frame, r.angle, r.score, r.best_for] for r in score.results]
facts["summary"], facts["skipped"] = score.summary, score.skipped
facts["pil_file"] = sys.modules["PIL"].__file__
score.allow_missing_weights = False
facts["strict"] = run(bpy.ops.vdbforge.score_previews)
score.allow_missing_weights = True
facts["remove"] = run(bpy.ops.vdbforge.reference_remove)
score.text_target = "a plume of smoke"
facts["text_only"] = run(bpy.ops.vdbforge.score_previews)

# Iterate: a two-candidate match against the preview, then Save Best and Apply Best.
score.text_target = ""
score.references.add().filepath = str(images[1])
it = props.iterate
it.budget, it.population, it.workers, it.inner_budget, it.threshold = 2, 2, 2, 1, 1.0
it.snapshots = True
props.frame_end = 6
facts["match"] = run(bpy.ops.vdbforge.match_run)
facts["iterate"] = [it.running, it.progress, it.best_score, it.status_text, bool(bpy.data.images.get(it.best_image))]
run_dir = __import__("pathlib").Path(it.run_dir)
facts["history"] = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
facts["report"] = "Plots need matplotlib" in (run_dir / "report.html").read_text()
facts["save_best"] = run(bpy.ops.vdbforge.match_save_best)
facts["saved_best"] = sorted(p.name for p in paths_module.user_presets_dir().glob("*_matched*.json"))
best = json.loads((run_dir / "best" / "preset.json").read_text())
facts["best_vorticity"] = best["domain"]["vorticity"]
for item in props.tunables:
    if item.path == "domain.vorticity":
        item.value = 0.01
facts["apply_best"] = run(bpy.ops.vdbforge.match_apply_best)
facts["applied_vorticity"] = next(t.value for t in props.tunables if t.path == "domain.vorticity")
scenes_before = [s.name for s in bpy.data.scenes]
facts["open_snapshot"] = run(bpy.ops.vdbforge.match_open_snapshot)
added = [s for s in bpy.data.scenes if s.name not in scenes_before]
domain = next((o for s in added for o in s.objects if o.name.startswith("VDBForge_Domain")), None)
facts["snapshot_scene"] = [s.name for s in added]
facts["snapshot_cache"] = domain.modifiers["Fluid"].domain_settings.cache_directory if domain else None
facts["snapshot_volumes"] = [bpy.path.abspath(v.filepath) for v in bpy.data.volumes]
facts["snapshot_files"] = sorted(p.name for p in (run_dir / "best").iterdir())
bpy.ops.preferences.addon_disable(module=MODULE)
facts["classes_after"] = [n for n in dir(bpy.types) if n.startswith(("VDBFORGE_", "VDBForge"))]
print(PREFIX + json.dumps(facts), flush=True)
"""


def test_references_and_score_panel_without_torch(extension_zip: Path, tmp_path: Path):
    facts, resources = run_extension_session(extension_zip, tmp_path, SCRIPT)
    assert not facts["torch_importable"], "the session mimics a stock Blender"
    kind, message = facts["before_preview"]
    assert kind == "RuntimeError" and "render a preview first" in message

    assert facts["bake"] == ["FINISHED"] and facts["add"] == ["FINISHED"]
    kind, message = facts["add_missing"]
    assert kind == "RuntimeError" and "reference image not found" in message
    assert len(facts["references"]) == 1 and facts["references"][0].endswith("_a01.png")

    assert facts["score"] == ["FINISHED"], facts["score"]
    assert Path(facts["pil_file"]).is_relative_to(resources / "extensions"), "Pillow comes from the bundled wheel"
    assert facts["summary"] == "Metrics: color, silhouette"
    for metric in ("lpips_alex", "clip", "ssim"):
        assert f"{metric} skipped" in facts["skipped"]
    rows = {name: (score, best) for name, _, _, score, best in facts["rows"]}
    reference_name = Path(facts["references"][0]).name
    assert rows[reference_name] == (1.0, reference_name), "the reference itself is among the previews"
    assert facts["objective"] == 1.0 and len(rows) == 2
    assert all(0.0 <= score <= 1.0 for score, _ in rows.values())

    kind, message = facts["strict"]
    assert kind == "RuntimeError" and "needs torch" in message and "\n" not in message
    assert facts["remove"] == ["FINISHED"]
    kind, message = facts["text_only"]
    assert kind == "RuntimeError" and "text target needs CLIP" in message

    assert facts["match"] == ["FINISHED"], facts["match"]
    assert facts["open_snapshot"] == ["FINISHED"], facts["open_snapshot"]
    assert facts["snapshot_scene"] == [f"VDBForge best #{0}"] and "scene.blend" in facts["snapshot_files"]
    assert facts["snapshot_cache"] and facts["snapshot_cache"].endswith("best/cache"), facts["snapshot_cache"]
    assert facts["snapshot_volumes"] and all(Path(v).is_file() for v in facts["snapshot_volumes"]), facts
    running, progress, best_score, status, has_image = facts["iterate"]
    # The reference is one of the default preset's own previews: the first candidate (the preset's values) renders
    # it exactly, scores 1.0 and stops the run at its threshold, cancelling the candidate in flight.
    assert not running and best_score == 1.0 and has_image, facts["iterate"]
    assert progress == len(facts["history"]) / 2 and f"{len(facts['history'])}/2 bakes" in status
    assert all(e["status"] == "ok" for e in facts["history"]) and facts["report"]
    assert best_score == max(e["score"] for e in facts["history"])
    assert facts["save_best"] == ["FINISHED"] and facts["saved_best"] == ["smoke_plume_matched.vdbforge.json"]
    assert facts["apply_best"] == ["FINISHED"]
    assert abs(facts["applied_vorticity"] - facts["best_vorticity"]) < 1e-5
    assert facts["classes_after"] == []
