"""`vdbforge memory list|export|clear`: look at, save, or forget what `match` runs taught the technique memory."""

from __future__ import annotations

import argparse
import json

from .core import technique_memory


def add_parsers(sub: argparse._SubParsersAction) -> None:
    memory = sub.add_parser("memory", help="list, export or clear the technique memory (warm starts, crash regions)")
    actions = memory.add_subparsers(dest="action", required=True, parser_class=type(memory))
    show = actions.add_parser("list", help="remembered good parameter sets (or, with --failures, error signatures)")
    show.add_argument("--preset", help="only this preset id")
    show.add_argument("--failures", action="store_true", help="list error signatures instead of successes")
    show.add_argument("--json", action="store_true", help="machine-readable output (fingerprints left out)")
    export = actions.add_parser("export", help="write the whole memory to a JSON file")
    export.add_argument("--out", required=True, help="the .json file to write")
    export.add_argument("--json", action="store_true", help="machine-readable output")
    clear = actions.add_parser("clear", help="forget one preset's entries or everything (asks nothing)")
    which = clear.add_mutually_exclusive_group(required=True)
    which.add_argument("--preset", help="forget this preset's successes and failures")
    which.add_argument("--all", action="store_true", help="forget everything; also resets an unreadable memory file")
    clear.add_argument("--json", action="store_true", help="machine-readable output")


def cmd_memory(args: argparse.Namespace) -> int:
    if args.action == "list":
        return _list(args)
    if args.action == "export":
        path = technique_memory.export_memory(args.out)
        _say(args, f"wrote {path}", {"path": str(path)})
        return 0
    moved = None
    try:
        removed = technique_memory.clear_memory(None if args.all else args.preset)
    except technique_memory.MemoryDatabaseError:
        if not args.all:
            raise
        moved, removed = technique_memory.reset_memory(), 0
        technique_memory.clear_memory()  # creates the new, empty database now, so the next run finds it ready
    note = f"; moved the unusable file aside to {moved}" if moved else ""
    _say(
        args,
        f"removed {removed} rows from {technique_memory.memory_path()}{note}",
        {"removed": removed, "moved_aside": str(moved) if moved else None},
    )
    return 0


def _say(args: argparse.Namespace, text: str, data: dict) -> None:
    print(json.dumps({"ok": True, **data}) if args.json else text)


def _list(args: argparse.Namespace) -> int:
    kind = "failures" if args.failures else "successes"
    entries = technique_memory.list_entries(kind, args.preset)
    if args.json:
        for entry in entries:
            if "fingerprint" in entry:
                entry["fingerprint"] = entry["fingerprint"] is not None
        print(json.dumps({"ok": True, "path": str(technique_memory.memory_path()), kind: entries}, indent=2))
        return 0
    if not entries:
        print(f"no {kind} remembered{' for ' + args.preset if args.preset else ''} ({technique_memory.memory_path()})")
        return 0
    for e in entries:
        if kind == "successes":
            values = ", ".join(f"{k}={_short(v)}" for k, v in e["params"].items())
            print(
                f"{e['preset_id']:<16} {e['family']:<10} score {e['score']:.4f}  run {e['run_id']}  "
                f"{e['created']}  {values}"
            )
        else:
            region = ",".join(str(c) for c in e["region"])
            print(
                f"{e['preset_id']:<16} {e['count']:>4}x  {e['kind']:<10} cell [{region}]  last {e['last_seen']}  "
                f"{e['signature']}"
            )
    return 0


def _short(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
