"""The run report's HTML: one file, no external CSS/JS/fonts, every image a base64 data: URI.

Preset names, texts, error messages and paths come from files anyone can edit, so every string goes through
`html.escape` (`_e`) and images are read only from inside the run directory.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from datetime import UTC, datetime
from pathlib import Path

from .run_report import RunData, best_evaluation, best_preview, frame_angle, improvements, is_ok, number
from .version import vdbforge_version

PREVIEW_PX = 256
THUMB_PX = 160
HEADER_THUMB_PX = 96
STRIP_MAX = 40
MESSAGE_MAX = 2000

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;padding:16px 24px;color:#222;
background:#fafafa}
h1{font-size:22px;margin:0 0 2px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ccc;padding-bottom:4px}
.sub{color:#555;margin:0 0 12px}table{border-collapse:collapse;background:#fff}
th,td{padding:4px 8px;border-bottom:1px solid #e4e4e4;text-align:left;vertical-align:top}
th{background:#f2f2f2;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.grid,.strip{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start}
figure{margin:0;padding:4px;background:#fff;border:3px solid #ddd;border-radius:4px}
figure.hl{border-color:#2ca02c}figure.refbest{border-color:#98d698}
figcaption{font-size:12px;color:#444;max-width:256px;word-break:break-word}
img{display:block;max-width:100%;height:auto}img.plot{max-width:1100px;width:100%}
.missing{display:flex;align-items:center;justify-content:center;background:#eee;color:#a00;font-size:12px;
word-break:break-all;text-align:center;padding:4px;box-sizing:border-box}
.changed{color:#b35c00;font-weight:600}.note{color:#8a5a00}.muted{color:#777}.msg{white-space:pre-wrap;max-width:640px}
.range{position:relative;width:120px;height:8px;background:#e6e6e6;border-radius:4px;margin-top:6px}
.range span{position:absolute;top:-3px;width:4px;height:14px;margin-left:-2px;border-radius:1px}
.range .s{background:#777}.range .b{background:#2ca02c}
pre{white-space:pre-wrap;word-break:break-word;background:#f0f0f0;padding:8px;max-height:420px;overflow:auto}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: object, digits: int = 4) -> str:
    n = number(value)
    return "—" if n is None else f"{n:.{digits}g}"


def _score(value: object) -> str:
    n = number(value)
    return "—" if n is None else f"{n:.4f}"


def _png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


class _Images:
    """Downscaled, embedded images from inside the run directory (each file encoded once per size)."""

    def __init__(self, run_dir: Path) -> None:
        self.root = run_dir.resolve()
        self.cache: dict[tuple[Path, int], tuple[str, int, int] | str] = {}

    def resolve(self, rel: object) -> Path | None:
        if not isinstance(rel, str) or not rel:
            return None
        path = (self.root / rel).resolve()
        return path if path.is_relative_to(self.root) else None

    def tag(self, rel: object, px: int, alt: str) -> str:
        path = self.resolve(rel)
        if path is None or not path.is_file():
            why = "outside the run directory" if rel and path is None else "missing"
            return self._placeholder(f"image {why}: {rel}", px)
        key = (path, px)
        if key not in self.cache:
            self.cache[key] = self._encode(path, px)
        found = self.cache[key]
        if isinstance(found, str):
            return self._placeholder(f"unreadable image {rel}: {found}", px)
        uri, w, h = found
        return f'<img src="{uri}" width="{w}" height="{h}" alt="{_e(alt)}" title="{_e(rel)}">'

    @staticmethod
    def _placeholder(text: str, px: int) -> str:
        return f'<div class="missing" style="width:{px}px;height:{px * 3 // 4}px">{_e(text)}</div>'

    @staticmethod
    def _encode(path: Path, px: int) -> tuple[str, int, int] | str:
        from PIL import Image

        try:
            with Image.open(path) as im:
                im.draft("RGB", (px, px))
                im.thumbnail((px, px))
                if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
                    # Cut-out references sit on neutral grey, as the scorer composites them onto a solid background.
                    rgba = im.convert("RGBA")
                    im = Image.new("RGBA", rgba.size, (128, 128, 128, 255))
                    im.alpha_composite(rgba)
                im = im.convert("RGB")
                buf = io.BytesIO()
                im.save(buf, format="JPEG", quality=85)
        except (OSError, Image.DecompressionBombError) as exc:
            return " ".join(str(exc).split())
        return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii"), im.width, im.height


def _rows(pairs: list[tuple[str, str]]) -> str:
    return "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in pairs)


def _duration(start: object, end: object) -> str:
    try:
        seconds = (datetime.fromisoformat(str(end)) - datetime.fromisoformat(str(start))).total_seconds()
    except (ValueError, TypeError):
        return ""  # timestamps written by hand or by another tool: show them as they are, without a duration
    return f" ({seconds / 60:.1f} min)" if seconds >= 0 else ""


def _header(data: RunData, best: dict | None, baseline: RunData | None, note: str | None, imgs: _Images) -> str:
    run, s, evals = data.run, data.settings, data.evals
    counts: dict[str, int] = {}
    for ev in evals:
        counts[str(ev.get("status"))] = counts.get(str(ev.get("status")), 0) + 1
    renders = sum(int(number((ev.get("inner") or {}).get("renders")) or 0) for ev in evals)
    budget = f"{len(evals)} of {_e(s.get('budget', '?'))} evaluations (bakes)"
    budget += (
        "".join(f" · {_e(k)} {n}" for k, n in sorted(counts.items(), key=lambda kv: (kv[0] != "ok", kv[0])))
        + f" · {renders} inner-fit renders"
    )
    refs = [r for r in run.get("references") or [] if isinstance(r, str)]
    thumbs = "".join(f"<figure>{imgs.tag(r, HEADER_THUMB_PX, 'reference')}</figure>" for r in refs)
    text = run.get("text")
    target = (f'<div class="grid">{thumbs}</div>' if refs else "no reference images") + (
        f"<p>text: “{_e(text)}”</p>" if text else ""
    )
    init = run.get("init") if isinstance(run.get("init"), dict) else {}
    optimizer = f"{_e(s.get('optimizer', '?'))} · population {_e(s.get('population', '?'))}"
    optimizer += f" · σ₀ {_e(s.get('sigma0', '?'))} · seed {_e(s.get('seed', '?'))}"
    optimizer += f" · start: {_e(init.get('kind', '?'))}" + (
        f" (σ₀ {_fmt(init['sigma0'])})" if "sigma0" in init else ""
    )
    if best:
        where = (
            f"{_score(best.get('score'))} at evaluation #{_e(best['index'])} (generation {_e(best.get('generation'))})"
        )
        where += f" · {_e(best.get('candidate', ''))} · frame {_e(best.get('best_frame'))}, angle {_e(best.get('best_angle'))}"
        if (data.run_dir / "best" / "preset.json").is_file():
            where += ' · <a href="best/preset.json">best/preset.json</a>'
    else:
        where = "no successful evaluation yet"
    last = evals[-1].get("finished") if evals else None
    when = f"started {_e(run.get('created', '?'))}"
    when += f" · last evaluation finished {_e(last)}{_e(_duration(run.get('created'), last))}" if last else ""
    if run.get("resumes"):
        when += " · resumed " + ", ".join(_e(r) for r in run["resumes"])
    totals: dict[str, float] = {}
    for ev in evals:
        for stage, sec in (ev.get("timings") or {}).items():
            if number(sec) is not None:
                totals[str(stage)] = totals.get(str(stage), 0.0) + number(sec)
    rows = [
        ("Preset", f"{_e(run.get('preset_id', '?'))} ({_e(run.get('family', '?'))})"),
        ("Target", target),
        ("Optimizer", optimizer),
        ("Budget spent", budget),
        ("Best", where),
    ]
    if baseline:
        rows.append(("Baseline", _baseline_summary(data, baseline)))
    if totals:
        rows.append(("Time spent", " · ".join(f"{_e(k)} {v:.0f} s" for k, v in totals.items())))
    rows.append(("When", when))
    rows.append(("Settings", " · ".join(f"{_e(k)} {_e(v)}" for k, v in s.items())))
    versions = run.get("versions") if isinstance(run.get("versions"), dict) else {}
    rows.append(("Versions", " · ".join(f"{_e(k)} {_e(v)}" for k, v in versions.items())))
    notes = [note] if note else []
    if data.torn_line:
        notes.append("the last line of history.jsonl is incomplete (an evaluation being recorded) and is not shown")
    rows += [("Note", f'<span class="note">{_e(n)}</span>') for n in notes]
    title = f"Match report: {_e(run.get('preset_id', '?'))}"
    sub = f"{_e(run.get('family', ''))} · {_e(s.get('optimizer', ''))} · {_e(data.run_dir.name)}"
    return f'<h1>{title}</h1><p class="sub">{sub}</p><table id="summary">{_rows(rows)}</table>'


def _baseline_summary(data: RunData, baseline: RunData) -> str:
    base_best = best_evaluation(baseline.evals)
    if base_best is None:
        return f"{len(baseline.evals)} evaluations, none successful ({_e(baseline.run_dir)})"
    target = number(base_best["score"])
    text = f"{_e(baseline.settings.get('optimizer', '?'))}: best {_score(target)} at #{_e(base_best['index'])}"
    text += f" of {len(baseline.evals)} evaluations"
    reached = next((ev for ev in data.evals if is_ok(ev) and number(ev["score"]) >= target), None)
    if reached:
        text += f" · this run reached it at evaluation #{_e(reached['index'])}"
    return text


def _plots(score_png: bytes | None, metric_png: bytes | None, plots_note: str | None = None) -> str:
    if plots_note:
        return f'<h2 id="scores">Score per evaluation</h2><p class="note">{_e(plots_note)}</p>'
    out = ['<h2 id="scores">Score per evaluation</h2>']
    if score_png:
        out.append(f'<img class="plot" src="{_png_uri(score_png)}" alt="score per evaluation and best so far">')
    else:
        out.append('<p class="muted">No evaluation has finished yet.</p>')
    out.append('<h2 id="metrics">Metric breakdown</h2>')
    if metric_png:
        out.append(f'<img class="plot" src="{_png_uri(metric_png)}" alt="metric breakdown of the best candidate">')
    else:
        out.append('<p class="muted">No successful evaluation with metrics yet.</p>')
    return "".join(out)


def _best_section(data: RunData, best: dict | None, imgs: _Images) -> str:
    out = ['<h2 id="best">Best candidate beside the references</h2>']
    if best is None:
        return out[0] + '<p class="muted">No successful evaluation yet.</p>'
    breakdown = best.get("breakdown") if isinstance(best.get("breakdown"), dict) else {}
    run_refs = [r for r in data.run.get("references") or [] if isinstance(r, str)]
    rows, best_for = [], {}
    for j, ref in enumerate(r for r in breakdown.get("references") or [] if isinstance(r, dict)):
        ref_path = next(
            (p for p in (ref.get("path"), run_refs[j] if j < len(run_refs) else None) if imgs.resolve(p)), None
        )
        preview = best_preview(best, ref.get("frame"), ref.get("angle"), ref.get("best_render"))
        best_for.setdefault(preview, []).append(f"ref {j + 1}")
        metrics = ", ".join(f"{_e(k)} {_fmt(v, 3)}" for k, v in (ref.get("metrics") or {}).items())
        info = f"frame {_e(ref.get('frame'))}, angle {_e(ref.get('angle'))}<br>score {_score(ref.get('score'))}"
        rows.append((imgs.tag(ref_path or ref.get("path"), PREVIEW_PX, f"reference {j + 1}"), preview, info, metrics))
    text = breakdown.get("text")
    if isinstance(text, dict):
        preview = best_preview(best, text.get("frame"), text.get("angle"), text.get("best_render"))
        best_for.setdefault(preview, []).append("text")
        info = f"frame {_e(text.get('frame'))}, angle {_e(text.get('angle'))}<br>score {_score(text.get('score'))}"
        rows.append((f"<p>“{_e(text.get('text', data.run.get('text', '')))}”</p>", preview, info, "clip_text"))
    if rows:
        out.append("<table><tr><th>target</th><th>best-matching render</th><th>where</th><th>metrics</th></tr>")
        for target, preview, info, metrics in rows:
            render = imgs.tag(preview, PREVIEW_PX, "best-matching render") if preview else "no preview"
            out.append(f"<tr><td>{target}</td><td>{render}</td><td>{info}</td><td>{metrics}</td></tr>")
        out.append("</table>")
    overall = best_preview(best)
    # The scorer's per-render scores (one per target), matched to the previews by file name.
    per_render = {
        Path(str(r["path"])).name: [x.get("score") for x in r.get("references") or [] if isinstance(x, dict)]
        + ([r["text_score"]] if "text_score" in r else [])
        for r in breakdown.get("renders") or []
        if isinstance(r, dict) and r.get("path")
    }
    figures = []
    for p in [p for p in best.get("previews") or [] if isinstance(p, str)]:
        fa = frame_angle(p)
        label = f"frame {fa[0]} · angle {fa[1]}" if fa else Path(p).name
        cls = "hl" if p == overall else ("refbest" if p in best_for else "")
        extra = (" · best for " + ", ".join(best_for[p])) if p in best_for else ""
        extra += " · best overall" if p == overall else ""
        if per_render.get(Path(p).name):
            extra += " · scores " + " / ".join(_fmt(v, 3) for v in per_render[Path(p).name])
        figures.append(
            f'<figure class="{cls}">{imgs.tag(p, PREVIEW_PX, label)}<figcaption>{_e(label + extra)}</figcaption></figure>'
        )
    candidate = _e(best.get("candidate", ""))
    out.append(f"<h3>All previews of evaluation #{_e(best['index'])} ({candidate})</h3>")
    out.append(f'<div class="grid">{"".join(figures)}</div>' if figures else '<p class="muted">No previews.</p>')
    return "".join(out)


def _strip(data: RunData) -> list[tuple[dict, float | None]]:
    steps = improvements(data.evals)
    if len(steps) <= STRIP_MAX:
        return steps
    picks = sorted({round(k * (len(steps) - 1) / (STRIP_MAX - 1)) for k in range(STRIP_MAX)})
    return [steps[k] for k in picks]


def _strip_section(data: RunData, imgs: _Images) -> str:
    steps = _strip(data)
    out = ['<h2 id="improvements">Improving candidates</h2>']
    if not steps:
        return out[0] + '<p class="muted">None yet.</p>'
    total = len(improvements(data.evals))
    if total > len(steps):
        out.append(f'<p class="muted">{len(steps)} of {total} improvements shown, evenly spaced.</p>')
    figures = []
    for ev, before in steps:
        gain = "" if before is None else f" (+{number(ev['score']) - before:.4f})"
        caption = f"#{ev['index']} · {_score(ev['score'])}{gain}"
        preview = best_preview(ev)
        thumb = imgs.tag(preview, THUMB_PX, caption) if preview else imgs._placeholder("no preview", THUMB_PX)
        figures.append(f"<figure>{thumb}<figcaption>{_e(caption)}</figcaption></figure>")
    return "".join(out) + f'<div class="strip">{"".join(figures)}</div>'


def _position(value: float | None, lo: float | None, hi: float | None, scale: object) -> float | None:
    if value is None or lo is None or hi is None or hi <= lo:
        return None
    if scale == "log" and lo > 0 and value > 0:
        t = (math.log(value) - math.log(lo)) / (math.log(hi) - math.log(lo))
    else:
        t = (value - lo) / (hi - lo)
    return min(max(t, 0.0), 1.0) * 100


def _parameters(data: RunData, best: dict | None) -> str:
    out = ['<h2 id="parameters">Parameters</h2>']
    space = [p for p in data.run.get("space") or [] if isinstance(p, dict)]
    if not space:
        return out[0] + '<p class="muted">No tunable parameters recorded.</p>'
    init = data.run.get("init") if isinstance(data.run.get("init"), dict) else {}
    mean = init.get("mean") if isinstance(init.get("mean"), dict) else {}
    head = "".join(f"<th>{h}</th>" for h in ("path", "stage", "min", "max", "scale", "start", "init", "best", ""))
    out.append(f"<table><tr>{head}<th>position (grey start, green best)</th></tr>")
    for p in space:
        path, stage = p.get("path", "?"), p.get("stage", "?")
        lo, hi, start = number(p.get("min")), number(p.get("max")), number(p.get("start"))
        values = (best or {}).get("render_params" if stage == "render" else "sim_params") or {}
        value = number(values.get(path)) if isinstance(values, dict) else None
        changed = ""
        if value is not None and start is not None and abs(value - start) > 1e-9 * max(1.0, abs((hi or 0) - (lo or 0))):
            changed = '<span class="changed">changed ' + ("↑" if value > start else "↓") + "</span>"
        bar = ""
        for cls, v in (("s", start), ("b", value)):
            pos = _position(v, lo, hi, p.get("scale"))
            bar += f'<span class="{cls}" style="left:{pos:.1f}%"></span>' if pos is not None else ""
        cells = [_e(path), _e(stage)] + [f'<td class="num">{_fmt(v)}</td>' for v in (lo, hi)]
        cells = [f"<td>{c}</td>" for c in cells[:2]] + cells[2:]
        cells.append(f"<td>{_e(p.get('scale', 'linear'))}</td>")
        cells += [f'<td class="num">{_fmt(v)}</td>' for v in (start, mean.get(path), value)]
        cells.append(f'<td>{changed}</td><td><div class="range">{bar}</div></td>')
        out.append(f"<tr>{''.join(cells)}</tr>")
    out.append("</table>")
    return "".join(out)


def _failures(data: RunData, imgs: _Images) -> str:
    failed = [ev for ev in data.evals if not is_ok(ev)]
    out = [f'<h2 id="failures">Failures ({len(failed)})</h2>']
    if not failed:
        return out[0] + '<p class="muted">None.</p>'
    out.append("<table><tr><th>#</th><th>status</th><th>kind</th><th>message</th><th>where</th><th>log</th></tr>")
    for ev in failed:
        err = ev.get("error") if isinstance(ev.get("error"), dict) else {}
        message = str(err.get("message") or "(no message recorded)")
        message = message if len(message) <= MESSAGE_MAX else message[:MESSAGE_MAX] + " …"
        where = f"{err['file']}:{err.get('line') if err.get('line') is not None else '?'}" if err.get("file") else "—"
        log = f"{ev.get('candidate')}/worker.log" if isinstance(ev.get("candidate"), str) else None
        log_path = imgs.resolve(log)
        link = f'<a href="{_e(log)}">worker.log</a>' if log_path and log_path.is_file() else "—"
        out.append(
            f'<tr><td class="num">{_e(ev["index"])}</td><td>{_e(ev.get("status"))}</td><td>{_e(err.get("kind", "—"))}'
            f'</td><td class="msg">{_e(message)}</td><td>{_e(where)}</td><td>{link}</td></tr>'
        )
    out.append("</table>")
    return "".join(out)


def render_report(
    data: RunData,
    *,
    best: dict | None,
    baseline: RunData | None,
    baseline_note: str | None,
    score_png: bytes | None,
    metric_png: bytes | None,
    plots_note: str | None = None,
) -> str:
    """The whole report as one HTML string."""
    imgs = _Images(data.run_dir)
    body = [
        _header(data, best, baseline, baseline_note, imgs),
        _plots(score_png, metric_png, plots_note),
        _best_section(data, best, imgs),
        _strip_section(data, imgs),
        _parameters(data, best),
        _failures(data, imgs),
        '<h2 id="raw">Run record</h2><details><summary>run.json</summary><pre>'
        + _e(json.dumps(data.run, indent=2, ensure_ascii=False))
        + "</pre></details>",
        f'<p class="muted">Generated {_e(datetime.now(UTC).isoformat(timespec="seconds"))} by VDBForge '
        f"{_e(vdbforge_version())} from {_e(data.run_dir)}.</p>",
    ]
    title = _e(f"VDBForge match: {data.run.get('preset_id', '?')}")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
