"""`vdbforge score` and `vdbforge models`: scoring renders against references, and which model weights are here."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .core.errors import VDBForgeError
from .core.preset_library import resolve_preset
from .core.scoring_settings import ScoringSettings, parse_metric_weights


def add_parsers(sub: argparse._SubParsersAction) -> None:
    score = sub.add_parser("score", help="score rendered previews against reference images and/or a text target")
    score.add_argument("--renders", required=True, help="a render folder (its preview/ is used) or image folder")
    score.add_argument("--reference", action="append", default=[], metavar="IMG", help="reference image (repeatable)")
    score.add_argument("--text", default="", help="text target, scored with CLIP")
    score.add_argument("--metrics", help="metrics and weights, e.g. lpips_alex=0.4,ssim=0.3,color (default: preset's)")
    score.add_argument("--preset", help="take metric weights and scoring settings from this preset")
    score.add_argument("--clip-model", help="open_clip MODEL:TAG (default ViT-B-32:openai)")
    score.add_argument(
        "--allow-missing-weights",
        action="store_true",
        help="score with the metrics whose weights are present when others are missing (reported)",
    )
    score.add_argument("--critic", choices=("openai", "anthropic"), help="also ask a vision-language critic")
    score.add_argument("--critic-model", help="the critic's model name (required with --critic)")
    score.add_argument("--critic-url", help="endpoint base URL (OpenAI-compatible servers: e.g. http://host:8000/v1)")
    score.add_argument("--critic-key-env", help="environment variable holding the API key ('' for none)")
    score.add_argument("--critic-weight", type=float, default=0.3, help="share of the critic's rating (default 0.3)")
    score.add_argument("--json", action="store_true", help="print the full breakdown as JSON")

    models = sub.add_parser("models", help="list scoring models and whether their weights are present")
    models.add_argument("--clip-model", action="append", default=[], help="also check this open_clip MODEL:TAG")
    models.add_argument("--json", action="store_true", help="machine-readable output")
    models.add_argument("--fetch", metavar="NAME", help="download lpips-alex, lpips-vgg or clip:MODEL:TAG weights")
    models.add_argument(
        "--allow-download",
        action="store_true",
        help="consent to --fetch downloading (it also turns on Blender's online access for this process)",
    )


def cmd_score(args: argparse.Namespace) -> int:
    from .ml.scoring import ScoreRequest, find_renders, score

    settings = resolve_preset(args.preset).scoring if args.preset else ScoringSettings()
    updates = {}
    if args.metrics:
        updates["weights"] = parse_metric_weights(args.metrics)
    if args.clip_model:
        updates["clip_model"] = args.clip_model
    settings = ScoringSettings.model_validate({**settings.model_dump(), **updates})
    request = ScoreRequest(
        renders=find_renders(args.renders),
        references=[Path(p) for p in args.reference],
        text=args.text,
        settings=settings,
        allow_missing_weights=args.allow_missing_weights,
        critic=critic_config(args),
    )
    report = score(request)
    if args.json:
        print(json.dumps({"ok": True, **report}, indent=2))
        return 0
    print(f"objective {report['objective']:.4f}  (metrics: {', '.join(report['metrics_used'])})")
    for ref in report["references"]:
        where = f"frame {ref['frame']} angle {ref['angle']}" if ref["frame"] is not None else ref["best_render"]
        parts = "  ".join(f"{k} {v:.3f}" for k, v in ref["metrics"].items())
        print(f"  {Path(ref['path']).name}: {ref['score']:.4f} best at {where}  [{parts}]")
    if report["text"]:
        text = report["text"]
        print(f"  text '{text['text']}': {text['score']:.4f} best at {Path(text['best_render']).name}")
    if "critic" in report:
        critic = report["critic"]
        verdict = critic.get("verdict")
        state = f"rating {verdict['rating']}/10" if verdict else f"failed ({critic.get('error')})"
        print(f"  critic {critic['provider']}/{critic['model']}: {state}, weight {critic['weight']:g}")
    for metric, reason in report["skipped"].items():
        print(f"  skipped {metric}: {reason}")
    return 0


def critic_config(args: argparse.Namespace):
    if not args.critic:
        return None
    from pydantic import ValidationError

    from .ml.critic import CriticConfig

    if not args.critic_model:
        raise VDBForgeError("--critic needs --critic-model (the provider's model name)")
    fields = {"provider": args.critic, "model": args.critic_model, "weight": args.critic_weight}
    if args.critic_url:
        fields["base_url"] = args.critic_url
    if args.critic_key_env is not None:
        fields["api_key_env"] = args.critic_key_env
    try:
        return CriticConfig(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise VDBForgeError(f"critic setting {'.'.join(map(str, first['loc']))}: {first['msg']}") from None


def cmd_models(args: argparse.Namespace) -> int:
    from .ml.model_weights import DEFAULT_CLIP, all_statuses, models_dir

    if args.fetch:
        from .ml.model_download import fetch_weights

        # Headless, the consent flag is the user switching Blender's online access on for this one command.
        path = fetch_weights(args.fetch, consent=args.allow_download, online=args.allow_download)
        print(f"{args.fetch}: {path}")
        return 0

    statuses = all_statuses([DEFAULT_CLIP, *args.clip_model])
    if args.json:
        rows = [
            {
                "name": s.name,
                "metric": s.metric,
                "present": s.present,
                "path": str(s.path or ""),
                "expected": s.expected,
            }
            for s in statuses
        ]
        from .ml.inverse_store import list_inverse_models

        print(json.dumps({"models_dir": str(models_dir()), "models": rows, "inverse": list_inverse_models()}, indent=2))
        return 0
    print(f"models folder: {models_dir()}  (set $VDBFORGE_MODELS to change)")
    for s in statuses:
        where = str(s.path) if s.present else f"missing: put {s.expected} in {s.searched[0]}"
        print(f"  {s.name:<24} {'present' if s.present else 'MISSING':<8} {where}")
    print("  ssim, ms_ssim, color, silhouette need no weights")
    _print_inverse_models()
    return 0


def _print_inverse_models() -> None:
    from .ml.inverse_store import list_inverse_models, models_folder

    rows = list_inverse_models()
    print(f"inverse models (vdbforge train): {models_folder()}" + ("" if rows else "  (none)"))
    for row in rows:
        held = f"held-out MAE {row['held_out_mae']:.3f}, " if row.get("held_out_mae") is not None else ""
        print(
            f"  {row['preset_id']:<24} {row.get('approach') or '?':<4} {held}{row.get('samples')} samples, "
            f"Blender {row.get('blender_version')}, {row['status']}"
        )
