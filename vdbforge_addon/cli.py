"""The `vdbforge` command. `main(argv)` returns an exit code and is callable from `blender -b --python-expr` too."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from . import cli_dataset, cli_match, cli_memory, cli_score
from .core import preset_sharing
from .core.errors import VDBForgeError, WorkerFailure
from .core.export_run import run_export
from .core.parameters import parse_assignments
from .core.preset_library import list_presets, resolve_preset
from .core.render_run import RenderOptions, parse_frame_list, parse_frames, parse_views, run_render
from .core.worker_client import WorkerCommand


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other failure
        raise SystemExit(_fail(f"{self.prog}: {message}", code=2))


def _fail(message: str, code: int = 1, as_json: bool = False, failure: dict | None = None) -> int:
    if as_json:
        print(json.dumps({"ok": False, "error": message, "failure": failure}))
    print(f"vdbforge: error: {message}", file=sys.stderr)
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="vdbforge", description="Volumetric assets from presets, headless.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_ArgumentParser)

    presets = sub.add_parser("presets", help="list, show, import, export and pack presets")
    presets.add_argument("--json", action="store_true", help="machine-readable output")
    actions = presets.add_subparsers(dest="action", parser_class=_ArgumentParser)
    actions.add_parser("list", help="list built-in and user presets (the default)")
    show = actions.add_parser("show", help="print a preset as JSON")
    show.add_argument("preset", help="preset id or file")
    imp = actions.add_parser("import", help="add a .vdbforge.json file or a preset pack (.zip) to the user library")
    imp.add_argument("file")
    imp.add_argument("--force", action="store_true", help="replace user presets with the same id")
    exp = actions.add_parser("export", help="write a preset to a .vdbforge.json file")
    exp.add_argument("preset")
    exp.add_argument("--out", required=True, help="file, or folder that receives <id>.vdbforge.json")
    pack = actions.add_parser("pack", help="write several presets into one shareable zip")
    pack.add_argument("presets", nargs="+")
    pack.add_argument("--out", required=True, help="the .zip to write")

    render = sub.add_parser("render", help="build, bake, export and preview one preset")
    render.add_argument("--preset", required=True, help="preset id or path to a preset .json file")
    render.add_argument("--out", required=True, help="output folder (vdb/, preview/, result.json)")
    render.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a tunable parameter, e.g. --set domain.vorticity=0.5",
    )
    render.add_argument("--resolution", type=int, help="domain resolution (longest side), 8-512")
    render.add_argument("--frames", help="bake frames A:B, export every step-th with A:B:step")
    render.add_argument("--angles", type=int, help="number of preview angles (default from the preset, 4)")
    render.add_argument("--preview-size", type=int, help="longest side of the preview images in pixels")
    render.add_argument("--preview-frames", help="frames to preview: 8,12,16 or 6:16")
    render.add_argument("--views", help="camera angles AZIMUTH:ELEVATION in degrees, e.g. 0:10,90:10,0:89")
    _add_export_options(render)
    render.add_argument("--keep-cache", action="store_true", help="keep the Mantaflow cache in OUT/cache")
    render.add_argument("--timeout", type=float, default=3600.0, help="seconds before the worker is stopped")
    render.add_argument("--json", action="store_true", help="print the result as JSON")

    export = sub.add_parser("export", help="re-export a kept cache (render --keep-cache) as .vdb / .nvdb")
    export.add_argument("--cache", required=True, help="the cache folder (OUT/cache of a render --keep-cache)")
    export.add_argument("--out", required=True, help="output folder (vdb/, nvdb/, result.json)")
    export.add_argument("--frames", help="frames A:B or A:B:step (default: every cached frame)")
    _add_export_options(export)
    export.add_argument("--timeout", type=float, default=3600.0, help="seconds before the worker is stopped")
    export.add_argument("--json", action="store_true", help="print the result as JSON")
    cli_score.add_parsers(sub)
    cli_match.add_parsers(sub)
    cli_memory.add_parsers(sub)
    cli_dataset.add_parsers(sub)
    return parser


def _add_export_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--grids", help="comma-separated grids to export, e.g. density,flame,temperature,velocity")
    parser.add_argument("--precision", choices=("float", "half"), help="float storage in the .vdb files")
    parser.add_argument("--compression", choices=("blosc", "zip", "none"), help=".vdb compression")
    parser.add_argument("--nanovdb", action="store_true", help="also write nvdb/<asset>_####.nvdb")
    parser.add_argument("--nanovdb-codec", choices=("none", "zip", "blosc"), help="NanoVDB file codec (default zip)")
    parser.add_argument("--quantize", choices=("fp16", "fp8", "fp4", "fpn"), help="NanoVDB quantized float grids")
    parser.add_argument("--tolerance", type=float, help="largest absolute error per voxel for --quantize fpn")


def export_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if args.grids:
        overrides["grids"] = [g.strip() for g in args.grids.split(",") if g.strip()]
    for key in ("precision", "compression", "nanovdb_codec", "quantize", "tolerance"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    if args.nanovdb or args.quantize or args.nanovdb_codec:
        overrides["nanovdb"] = True
    if args.tolerance is not None and args.quantize != "fpn":
        raise VDBForgeError("--tolerance applies to --quantize fpn only")
    return overrides


def _progress_printer(as_json: bool):
    tty = sys.stderr.isatty()

    def on_message(message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "status":
            print(f"[{message['stage']}] {message.get('message', '')}", file=sys.stderr, flush=True)
        elif kind == "progress" and tty:
            print(f"\r  {message['stage']} {message['done']}/{message['total']}", end="", file=sys.stderr, flush=True)
            if message["done"] == message["total"]:
                print(file=sys.stderr)
        elif kind == "log":
            print(f"  note: {message.get('message')}", file=sys.stderr, flush=True)

    return on_message


def _worker_command() -> WorkerCommand:
    """Inside a real Blender the worker is that Blender in background mode; with the pip wheel, this Python."""
    bpy = sys.modules.get("bpy")
    app = getattr(bpy, "app", None)
    in_real_blender = app is not None and not getattr(app, "module", False) and bool(app.binary_path)
    return WorkerCommand.detect(app.binary_path if in_real_blender else None)


def cmd_presets(args: argparse.Namespace) -> int:
    action = args.action or "list"
    if action == "list":
        entries = list_presets()
        if args.json:
            print(json.dumps([{**e.__dict__, "path": str(e.path)} for e in entries], indent=2))
            return 0
        for e in entries:
            shadow = "  (user preset shadows the built-in one)" if e.shadows_builtin else ""
            print(f"{e.id:<16} {e.family:<12} {e.source:<8} {e.name}{shadow}")
        return 0
    if action == "show":
        print(preset_sharing.preset_json(resolve_preset(args.preset)), end="")
        return 0
    if action == "import":
        if str(args.file).endswith(".zip"):
            paths = preset_sharing.import_pack(args.file, overwrite=args.force)
        else:
            paths = [preset_sharing.import_preset_file(args.file, overwrite=args.force)[1]]
        for path in paths:
            preset_id = path.name.removesuffix(".vdbforge.json")
            note = " (shadows the built-in preset)" if preset_sharing.shadows_builtin(preset_id) else ""
            print(f"imported {preset_id} -> {path}{note}")
        return 0
    if action == "export":
        print(f"wrote {preset_sharing.export_preset(args.preset, args.out)}")
        return 0
    print(f"wrote {preset_sharing.write_pack(args.presets, args.out)}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    preset = resolve_preset(args.preset)
    overrides = parse_assignments(args.sets)
    options = RenderOptions(
        overrides=overrides,
        resolution=args.resolution,
        frames=parse_frames(args.frames) if args.frames else None,
        angles=args.angles,
        preview_size=args.preview_size,
        export=export_overrides(args),
        preview_frames=parse_frame_list(args.preview_frames) if args.preview_frames else None,
        views=parse_views(args.views) if args.views else None,
        keep_cache=args.keep_cache,
        timeout=args.timeout,
    )
    result = run_render(preset, args.out, options, on_message=_progress_printer(args.json), command=_worker_command())
    if args.json:
        print(json.dumps({"ok": True, **result}, indent=2))
    else:
        t = result["timings"]
        print(
            f"wrote {len(result['vdb_files'])} VDB frames and {len(result['previews'])} previews to {args.out} "
            f"(bake {t['bake']:.1f}s, export {t['export']:.1f}s, render {t['render']:.1f}s, total {t['total']:.1f}s)"
        )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    result = run_export(
        args.cache,
        args.out,
        export_overrides(args),
        parse_frames(args.frames) if args.frames else None,
        timeout=args.timeout,
        on_message=_progress_printer(args.json),
        command=_worker_command(),
    )
    if args.json:
        print(json.dumps({"ok": True, **result}, indent=2))
    else:
        extra = f" and {len(result['nanovdb_files'])} NanoVDB files" if result["nanovdb_files"] else ""
        print(f"wrote {len(result['vdb_files'])} VDB frames{extra} to {args.out}")
    return 0


COMMANDS = {
    "presets": cmd_presets,
    "render": cmd_render,
    "export": cmd_export,
    "score": cli_score.cmd_score,
    "models": cli_score.cmd_models,
    "match": lambda args: cli_match.cmd_match(args, command=_worker_command()),
    "memory": cli_memory.cmd_memory,
    "dataset": lambda args: cli_dataset.cmd_dataset(args, command=_worker_command()),
    "train": cli_dataset.cmd_train,
}


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    as_json = bool(getattr(args, "json", False))
    try:
        return COMMANDS[args.command](args)
    except WorkerFailure as exc:
        return _fail(str(exc), as_json=as_json, failure=exc.failure)
    except VDBForgeError as exc:
        return _fail(str(exc), as_json=as_json)
    except KeyboardInterrupt:
        return _fail("interrupted", code=130, as_json=as_json)


def main_entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    main_entry()
