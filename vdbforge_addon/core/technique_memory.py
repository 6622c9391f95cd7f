"""Technique memory: what earlier `match` runs learned, in `<user data>/memory.sqlite`.

Two tables. `successes`: good parameter sets per preset (and its family) with their score and the reference's
fingerprint, so the next run against a similar reference starts its search where earlier fits ended (`warm_start`).
`failures`: error signatures (the message with numbers, paths and addresses stripped) per cell of a coarse grid over
the normalised parameter space, with counts, so the loop can resample candidates that fall where bakes crash
(`failure_risk`).

Normalised vectors are stored in the sorted order of their parameter paths, so a space listed in another order still
matches; callers always pass and receive vectors in their own `space_paths` order. Two `vdbforge match` runs may write
at once: WAL journal, a busy timeout, one short transaction per call, a fresh connection per call.
"""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from . import atomic
from .errors import VDBForgeError
from .image_fingerprint import compatible, similarity
from .paths import user_data_dir

SCHEMA_VERSION = 1
EXPORT_FORMAT = 1
GRID_CELLS = 4  # cells per dimension of the failure grid
BUSY_TIMEOUT_S = 30.0
MAX_SUCCESSES_PER_SPACE = 500  # lowest scores are pruned past this, per preset and space
MIN_SIMILARITY = 0.5  # unrelated pictures measured 0.25-0.39, shifted/rescaled copies 0.96-0.99 (docs/MATCH.md)
SINGLE_ENTRY_SIGMA = 0.15  # one remembered point says nothing about spread
SIGMA_RANGE = (0.05, 0.3)
NEIGHBOUR_WEIGHT = 0.5  # a crash in an adjacent cell counts half
RESET_HINT = "reset it with `vdbforge memory clear --all`"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS successes (
    id INTEGER PRIMARY KEY,
    preset_id TEXT NOT NULL, family TEXT NOT NULL, space_key TEXT NOT NULL,
    x TEXT NOT NULL, params TEXT NOT NULL, score REAL NOT NULL, fingerprint TEXT,
    run_id TEXT NOT NULL, created TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS successes_space ON successes (preset_id, space_key, score);
CREATE TABLE IF NOT EXISTS failures (
    preset_id TEXT NOT NULL, space_key TEXT NOT NULL, region TEXT NOT NULL, kind TEXT NOT NULL,
    signature TEXT NOT NULL, example TEXT NOT NULL, count INTEGER NOT NULL,
    first_seen TEXT NOT NULL, last_seen TEXT NOT NULL,
    PRIMARY KEY (preset_id, space_key, region, kind, signature));
"""


class MemoryDatabaseError(VDBForgeError):
    """The memory file cannot be used (not sqlite, or written by a newer VDBForge); `vdbforge memory clear --all`."""


@dataclass
class WarmStart:
    mean: list[float]  # normalised, in the caller's space_paths order
    sigma: float
    entries: list[dict[str, Any]] = field(default_factory=list)  # id, run_id, score, similarity, weight, x


def memory_path() -> Path:
    return user_data_dir() / "memory.sqlite"


# --- connection -------------------------------------------------------------------------------------------------


@contextmanager
def _transaction(write: bool) -> Iterator[sqlite3.Connection]:
    """One short transaction on a fresh connection; IMMEDIATE for writers so they queue on the busy timeout."""
    path = memory_path()
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        try:
            _prepare(conn, path)
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise _one_line(exc, path) from exc
    finally:
        conn.close()


def _one_line(exc: sqlite3.DatabaseError, path: Path) -> Exception:
    if type(exc) is sqlite3.DatabaseError:  # "file is not a database", "disk image is malformed"
        return MemoryDatabaseError(f"technique memory {path} is not a usable sqlite database ({exc}); {RESET_HINT}")
    if isinstance(exc, sqlite3.OperationalError):
        if "locked" in str(exc):
            return VDBForgeError(f"technique memory {path} stayed locked for more than {BUSY_TIMEOUT_S:g}s")
        return VDBForgeError(f"technique memory {path}: {exc}")
    return exc  # integrity and programming errors are bugs here: keep them as they are


def _prepare(conn: sqlite3.Connection, path: Path) -> None:
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        _retry_locked(lambda: conn.execute("PRAGMA journal_mode = WAL"))
    conn.execute("PRAGMA synchronous = NORMAL")  # with WAL: a crash of the process loses nothing committed
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_version'").fetchone():
        conn.execute("BEGIN IMMEDIATE")  # two first runs may race to create the tables: one waits for the other
        for statement in filter(str.strip, _SCHEMA.split(";")):
            conn.execute(statement)
        if not conn.execute("SELECT 1 FROM schema_version").fetchone():
            conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
        conn.execute("COMMIT")
    version = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
    if version is None:
        raise MemoryDatabaseError(f"technique memory {path} has no schema version; {RESET_HINT}")
    if version > SCHEMA_VERSION:
        raise MemoryDatabaseError(
            f"technique memory {path} has schema {version}, newer than this VDBForge reads ({SCHEMA_VERSION}); "
            f"update VDBForge or {RESET_HINT}"
        )


def _retry_locked(call) -> None:
    # Switching the journal mode is not covered by the busy handler when another connection holds the file open.
    for attempt in range(200):
        try:
            call()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 199:
                raise
            time.sleep(0.05)


# --- recording --------------------------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _canonical(space_paths: Sequence[str], x: Sequence[float]) -> tuple[str, list[float]]:
    """(space key, x in sorted-path order), after checking the vector fits the space."""
    paths = list(space_paths)
    if not paths or len(set(paths)) != len(paths):
        raise VDBForgeError(f"technique memory: the parameter space must list distinct paths, got {paths}")
    if len(x) != len(paths):
        raise VDBForgeError(f"technique memory: {len(x)} values for {len(paths)} parameters")
    if not all(math.isfinite(float(v)) for v in x):
        raise VDBForgeError("technique memory: the normalised vector has a non-finite value")
    order = sorted(range(len(paths)), key=lambda i: paths[i])
    return json.dumps([paths[i] for i in order]), [min(1.0, max(0.0, float(x[i]))) for i in order]


def _to_caller_order(space_paths: Sequence[str], canonical_x: Sequence[float]) -> list[float]:
    by_path = dict(zip(sorted(space_paths), canonical_x, strict=True))
    return [by_path[p] for p in space_paths]


def record_success(
    preset_id: str,
    family: str,
    space_paths: list[str],
    x: list[float],
    params: dict,
    score: float,
    fingerprint: list[float] | None,
    run_id: str,
) -> None:
    """Remember a good parameter set (x normalised to [0, 1] in the order of space_paths, plus the raw values)."""
    key, cx = _canonical(space_paths, x)
    if not math.isfinite(float(score)):
        raise VDBForgeError("technique memory: a success needs a finite score")
    fp = json.dumps(fingerprint) if fingerprint else None
    with _transaction(write=True) as conn:
        conn.execute(
            "INSERT INTO successes (preset_id, family, space_key, x, params, score, fingerprint, run_id, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (preset_id, family, key, json.dumps(cx), json.dumps(params), float(score), fp, run_id, _now()),
        )
        conn.execute(
            "DELETE FROM successes WHERE id IN (SELECT id FROM successes WHERE preset_id = ? AND space_key = ? "
            "ORDER BY score DESC, id DESC LIMIT -1 OFFSET ?)",
            (preset_id, key, MAX_SUCCESSES_PER_SPACE),
        )


_HEX = re.compile(r"\b0x[0-9a-fA-F]+\b")
_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[~.]{0,2}[\\/][\w.\-+@%~]+)+[\\/]?")
_TEMP = re.compile(r"\b(?:tmp|temp|\.?staging)[\w\-]*", re.IGNORECASE)
_UUID = re.compile(r"\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b", re.IGNORECASE)
_HEXISH = re.compile(r"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{6,}\b")  # hashes, job ids
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def error_signature(message: str) -> str:
    """The message reduced to what identifies the failure: first line, first clause, no numbers/paths/addresses."""
    lines = [line.strip() for line in str(message).strip().splitlines() if line.strip()]
    text = lines[0] if lines else "unknown error"
    text = _PATH.sub("<path>", text)  # first: ids and numbers inside a path go with it
    text = _UUID.sub("<id>", text)
    text = _HEX.sub("<addr>", text)
    text = _HEXISH.sub("<id>", text)
    text = _TEMP.sub("<tmp>", text)
    text = _NUMBER.sub("#", text)
    # Keep the exception type and its first clause: what follows a ';' or a sentence end is usually detail.
    text = re.split(r";|\.\s|\s\(", text, maxsplit=1)[0]
    return " ".join(text.split())[:200] or "unknown error"


def region_of(x: Sequence[float]) -> list[int]:
    return [min(GRID_CELLS - 1, max(0, int(float(v) * GRID_CELLS))) for v in x]


def record_failure(preset_id: str, space_paths: list[str], x: list[float], kind: str, message: str) -> None:
    """Count a failed evaluation under (signature, grid cell of x)."""
    key, cx = _canonical(space_paths, x)
    region = json.dumps(region_of(cx))
    signature = error_signature(message)
    example = " ".join(str(message).split())[:500]
    now = _now()
    with _transaction(write=True) as conn:
        conn.execute(
            "INSERT INTO failures (preset_id, space_key, region, kind, signature, example, count, first_seen, "
            "last_seen) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?) ON CONFLICT (preset_id, space_key, region, kind, signature) "
            "DO UPDATE SET count = count + 1, last_seen = excluded.last_seen, example = excluded.example",
            (preset_id, key, region, kind, signature, example, now, now),
        )


# --- using what was learned -------------------------------------------------------------------------------------


def warm_start(preset_id: str, space_paths: list[str], fingerprint: list[float] | None, k: int = 3) -> WarmStart | None:
    """A start for the search from up to k earlier runs' best matching entries, or None when nothing fits.

    Relevance = score × fingerprint similarity (score alone without a query fingerprint; an entry without a
    fingerprint counts at similarity MIN_SIMILARITY). Entries of a less similar reference than MIN_SIMILARITY are
    ignored. One entry per run: a run's evaluations are correlated, several runs say more than one run's neighbours.
    The mean weights entries by relevance²; sigma is their spread (RMS over dimensions of the weighted standard
    deviation), clipped to SIGMA_RANGE.
    """
    key, _ = _canonical(space_paths, [0.0] * len(space_paths))
    with _transaction(write=False) as conn:
        rows = conn.execute(
            "SELECT id, run_id, x, score, fingerprint FROM successes WHERE preset_id = ? AND space_key = ?",
            (preset_id, key),
        ).fetchall()
    best_per_run: dict[str, dict[str, Any]] = {}
    for row_id, run_id, x_json, score, fp_json in rows:
        sim = 1.0
        if fingerprint:
            entry_fp = json.loads(fp_json) if fp_json else None
            sim = similarity(fingerprint, entry_fp) if compatible(fingerprint, entry_fp) else MIN_SIMILARITY
        if sim < MIN_SIMILARITY or score <= 0.0:
            continue
        entry = {"id": row_id, "run_id": run_id, "score": score, "similarity": round(sim, 4), "x": json.loads(x_json)}
        entry["relevance"] = score * sim
        if run_id not in best_per_run or entry["relevance"] > best_per_run[run_id]["relevance"]:
            best_per_run[run_id] = entry
    chosen = sorted(best_per_run.values(), key=lambda e: (-e["relevance"], -e["id"]))[: max(1, k)]
    if not chosen:
        return None
    xs = np.array([e.pop("x") for e in chosen])
    weights = np.array([e.pop("relevance") for e in chosen]) ** 2
    weights /= weights.sum()
    mean = weights @ xs
    spread = SINGLE_ENTRY_SIGMA if len(chosen) == 1 else float(np.sqrt((weights @ (xs - mean) ** 2).mean()))
    sigma = min(SIGMA_RANGE[1], max(SIGMA_RANGE[0], spread))
    used = [
        {**e, "weight": round(float(w), 4), "x": _to_caller_order(space_paths, x.tolist())}
        for e, w, x in zip(chosen, weights, xs, strict=True)
    ]
    return WarmStart(mean=_to_caller_order(space_paths, mean.tolist()), sigma=sigma, entries=used)


def failure_risk(preset_id: str, space_paths: list[str], x: list[float]) -> float:
    """In [0, 1): 1 − ½^n, n = crashes counted in x's grid cell plus half of those in adjacent cells (any signature)."""
    key, cx = _canonical(space_paths, x)
    cell = region_of(cx)
    with _transaction(write=False) as conn:
        rows = conn.execute(
            "SELECT region, SUM(count) FROM failures WHERE preset_id = ? AND space_key = ? GROUP BY region",
            (preset_id, key),
        ).fetchall()
    return risk_near(cell, ((json.loads(region), count) for region, count in rows))


def risk_near(cell: Sequence[int], crashes: Iterable[tuple[Sequence[int], float]]) -> float:
    """1 − ½^n, n = crashes counted in `cell` plus NEIGHBOUR_WEIGHT of those in adjacent cells."""
    n = 0.0
    for region, count in crashes:
        distance = max(abs(a - b) for a, b in zip(region, cell, strict=True))
        n += count if distance == 0 else count * NEIGHBOUR_WEIGHT if distance == 1 else 0.0
    return 1.0 - 0.5**n


# --- listing, sharing, clearing ---------------------------------------------------------------------------------

_COLUMNS = {
    "successes": "id, preset_id, family, space_key, x, params, score, fingerprint, run_id, created",
    "failures": "preset_id, space_key, region, kind, signature, example, count, first_seen, last_seen",
}
_ORDER = {"successes": "preset_id, score DESC, id", "failures": "preset_id, count DESC, last_seen DESC"}
_JSON_FIELDS = ("x", "params", "fingerprint", "region")


def list_entries(kind: str = "successes", preset_id: str | None = None) -> list[dict]:
    """Rows as dicts; `space_paths` (and `x`, `region`) in the stored (sorted-path) order."""
    if kind not in _COLUMNS:
        raise VDBForgeError(f"technique memory: kind must be 'successes' or 'failures', not '{kind}'")
    where, args = ("WHERE preset_id = ?", (preset_id,)) if preset_id else ("", ())
    with _transaction(write=False) as conn:
        cursor = conn.execute(f"SELECT {_COLUMNS[kind]} FROM {kind} {where} ORDER BY {_ORDER[kind]}", args)
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
    entries = []
    for row in rows:
        entry = dict(zip(names, row, strict=True))
        entry["space_paths"] = json.loads(entry.pop("space_key"))
        for name in _JSON_FIELDS:
            if name in entry and entry[name] is not None:
                entry[name] = json.loads(entry[name])
        entries.append(entry)
    return entries


def export_memory(path: str | os.PathLike) -> Path:
    """Everything as one JSON file (written atomically)."""
    path = Path(path)
    if path.is_dir():
        raise VDBForgeError(f"technique memory export: {path} is a folder; give a file name")
    data = {
        "format": EXPORT_FORMAT,
        "schema": SCHEMA_VERSION,
        "exported": _now(),
        "successes": list_entries("successes"),
        "failures": list_entries("failures"),
    }
    try:
        atomic.write_json(path, data)
    except OSError as exc:
        raise VDBForgeError(f"cannot write technique memory export {path}: {exc.strerror or exc}") from None
    return path


def clear_memory(preset_id: str | None = None) -> int:
    """Delete one preset's rows (or all rows); returns how many went."""
    where, args = ("WHERE preset_id = ?", (preset_id,)) if preset_id else ("", ())
    with _transaction(write=True) as conn:
        removed = conn.execute(f"DELETE FROM successes {where}", args).rowcount
        removed += conn.execute(f"DELETE FROM failures {where}", args).rowcount
    return removed


def reset_memory() -> Path | None:
    """Move an unusable memory file aside as `memory.sqlite.corrupt-<time>` (with its -wal/-shm); returns where."""
    path = memory_path()
    if not path.exists():
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    os.replace(path, target)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.replace(side, target.with_name(target.name + suffix))
    return target
