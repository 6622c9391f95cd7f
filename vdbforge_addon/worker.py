"""Worker process entry: `python -m vdbforge_addon.worker JOB.json` (pip bpy) or the same `main()` inside
`blender -b --python-expr`. Every outcome is reported as protocol messages; the parent never has to guess."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .core.protocol import Emitter, failure_from_exception

JOB_KINDS = ("render", "export", "evaluate", "train", "crash-test")


def _run(job: dict, emit: Emitter) -> dict:
    kind = job.get("kind")
    if kind == "render":
        from .blender.render_job import run_render_job

        return run_render_job(job, emit)
    if kind == "evaluate":
        from .blender.evaluate_job import run_evaluate_job

        return run_evaluate_job(job, emit)
    if kind == "export":
        from .blender.export_job import run_export_job

        return run_export_job(job, emit)
    if kind == "train":
        # Training is minutes of CPU: in a worker, Blender's UI stays responsive and Esc can stop it.
        from .ml.inverse_model import train

        return train(job["dataset"], job.get("approach", "auto"), job["out"], seed=int(job.get("seed", 0)))
    if kind == "crash-test":
        # Lets tests prove that a hard crash, an abort or a hang becomes a structured failure in the parent.
        from .blender.crash_test import run_crash_test

        return run_crash_test(job, emit)
    raise ValueError(f"unknown job kind {kind!r} (expected one of {', '.join(JOB_KINDS)})")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    emit = Emitter()
    if len(argv) != 1:
        emit.send("error", failure={"kind": "python", "message": "usage: python -m vdbforge_addon.worker JOB.json"})
        return 2
    try:
        job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
        emit.status("start", f"job {job.get('kind')}")
        result = _run(job, emit)
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the parent as a structured message
        emit.send("error", failure=failure_from_exception(exc))
        return 1
    emit.send("result", result=result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
