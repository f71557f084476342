"""The ``emostream`` command.

emostream train              train the served common-space model on every dataset
emostream eval               test metrics of the shipped model (JSON, Markdown, PNG)
emostream eval --paper       the paper's tables: every model x dataset, missing modality
emostream classify ...       classify posts given on the command line or as JSONL
emostream demo               classify the bundled sample posts, print a table
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REPORTS = Path(__file__).resolve().parent / "reports"
SAMPLE = Path(__file__).resolve().parent / "sample"


SERVED_TEXT = "emostream-v2-minilm"
SERVED_IMAGE = "emostream-v2-effnet-lite0"
"""The fine-tuned encoders the served model is trained on (deltas in model/weights/)."""


def _cache(args, normalization: str | None = None):
    """The feature cache of the encoders ``args`` name; texts normalised by
    ``normalization`` (default: the recipe of this install, what training uses; "none":
    raw texts)."""
    from .backbones import IMAGE_BACKBONES, TEXT_BACKBONES
    from .encoder import Encoder
    from .feature_cache import FeatureCache
    from .text_normalization import VERSION

    text = args.text_encoder or (SERVED_TEXT if SERVED_TEXT in TEXT_BACKBONES else None)
    image = args.image_encoder or (SERVED_IMAGE if SERVED_IMAGE in IMAGE_BACKBONES else None)
    encoder = Encoder(
        image or "efficientnet-lite0",
        text or "all-minilm-l6-v2",
        args.device,
        runtime=getattr(args, "runtime", "eager"),
        normalization=None if normalization == "none" else normalization or VERSION,
    )
    return FeatureCache(encoder, args.cache_dir)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder of the datasets (default: $EMOSTREAM_DATA_DIR or ../shared/data)",
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="feature cache (default: $EMOSTREAM_CACHE_DIR or .cache/features)",
    )
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if present)")
    p.add_argument("--datasets", nargs="+", default=None, help="a subset of the datasets")
    p.add_argument(
        "--runtime",
        choices=("eager", "onnx", "onnx-int8"),
        default="eager",
        help="encoders on torch (eager) or ONNX Runtime (onnx: the workers' CPU default; "
        "onnx-int8: int8 text weights)",
    )
    p.add_argument(
        "--text-encoder",
        default=None,
        help=f"text backbone (default: {SERVED_TEXT} if shipped, else all-minilm-l6-v2)",
    )
    p.add_argument(
        "--image-encoder",
        default=None,
        help=f"image backbone (default: {SERVED_IMAGE} if shipped, else efficientnet-lite0)",
    )


def model_version(weights: Path, encoder_version: str) -> str:
    """``v2-<8 hex>``: a hash of the head file and of the encoders' base + delta versions."""
    import hashlib

    digest = hashlib.sha256(weights.read_bytes() + encoder_version.encode()).hexdigest()
    return f"v2-{digest[:8]}"


def cmd_train(args) -> int:
    from .datasets import DATASETS
    from .served import train_served
    from .training import TrainConfig
    from .weights import WEIGHTS_DIR

    cache = _cache(args)
    datasets = tuple(args.datasets or DATASETS)
    cfg = TrainConfig(
        epochs=args.epochs,
        lr=args.lr,
        modality_dropout=args.modality_dropout,
        aux_weight=args.aux_weight,
        seed=args.seed,
    )
    model, info = train_served(
        cache,
        args.data_dir,
        datasets,
        cfg,
        args.hidden,
        dropout=args.dropout,
        balance=args.balance,
        restrict=args.label_spaces,
        experts=args.experts,
        expert_weights=dict(zip(("emotion", "sentiment"), args.expert_weights, strict=True))
        if args.expert_weights
        else None,
        modality_pool=args.modality_pool,
        neutral_offsets=args.neutral_offsets,
    )
    out = Path(args.out or WEIGHTS_DIR / "emostream-commonspace-v2.safetensors")
    ship(model, info, cache, args.data_dir, datasets, out)
    return 0


def ship(model, info: dict, cache, data_dir, datasets, out: Path) -> dict:
    """Write ``model`` to ``out``; score the file as written on the test splits (reports in
    model/reports/served), calibrate it, and write its card beside it. Returns the card."""
    from .checkpoint import load_checkpoint, save_checkpoint
    from .datasets import default_data_dir
    from .pairs import NEEDS as PAIRS_NEED
    from .served import calibrate, evaluate_served, write_report

    save_checkpoint(model, out, {"encoders": cache.encoder.version})
    reloaded, _ = load_checkpoint(out)  # the card's metrics are those of the file as shipped
    reports = REPORTS / "served"
    metrics = evaluate_served(reloaded, cache, data_dir, datasets, reports)
    meta = {"data_dir": str(data_dir or default_data_dir()), "split": "test"}
    write_report(metrics, reports, "Served model, test splits", meta)
    calibration = calibrate(reloaded, cache, data_dir, datasets, reports)
    card = _card(out, cache, info, metrics, calibration)
    if set(PAIRS_NEED) <= set(datasets):
        pairs = _pairs_report(reloaded, cache, data_dir, "test", reports, "Served model", datasets)
        card["pairs"] = {k: round(v["both"]["accuracy"], 4) for k, v in pairs["emotion"].items()}
        card["pairs_note"] = "emotion accuracy on text + picture pairs made from the test splits"
        if "sentiment" in pairs:
            card["pairs_sentiment"] = {
                k: round(v["both"]["accuracy"], 4) for k, v in pairs["sentiment"].items()
            }
    card_path = out.with_name(out.name.removesuffix(".safetensors") + ".card.json")
    card_path.write_text(json.dumps(card, indent=1) + "\n")
    print((reports / "served.md").read_text())
    print(json.dumps(calibration, indent=1))
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB) and {card_path}; {card['version']}")
    return card


def _card(out: Path, cache, info: dict, metrics: dict, calibration: dict) -> dict:
    from .labels import EMOTIONS, SENTIMENTS
    from .served import compact

    enc = cache.encoder
    return {
        "name": out.name.removesuffix(".safetensors"),
        "version": model_version(out, enc.version),
        "kind": "commonspace",
        "heads": {"emotion": list(EMOTIONS), "sentiment": list(SENTIMENTS)},
        "encoders": {
            "image": enc.image_backbone.name,
            "text": enc.text_backbone.name,
            "normalization": enc.normalization,
            "version": enc.version,
        },
        "training": info,
        "calibration": calibration,
        "metrics": compact(metrics),
        "metrics_note": "test splits of ../shared/data; served heads restricted to the "
        "classes each dataset has, 'own head' = the dataset's training head; bootstrap 95% "
        "intervals (1000 resamples); calibration: temperature fitted on val, ECE on test",
    }


def cmd_eval(args) -> int:
    from .datasets import DATASETS

    cache = _cache(args, _checkpoint_normalization(args))
    datasets = tuple(args.datasets or DATASETS)
    if args.paper:
        from .fusion import KINDS
        from .paper import run
        from .training import TrainConfig

        version = cache.encoder.version
        if args.update_reports:
            out = REPORTS / ("paper" if "+ft-" not in version else "paper-finetuned")
        else:
            out = Path(args.out or default_reports_dir() / "paper" / version / args.split)
        run(
            args.data_dir,
            out,
            cache,
            datasets,
            tuple(args.kinds or KINDS),
            TrainConfig(seed=args.seed),
            split=args.split,
            models_dir=default_reports_dir().parent / "paper-models" / version,
        )
        print((out / "paper.md").read_text())
        print(f"report in {out}")
        return 0
    return _eval_served(args, cache, datasets)


def _checkpoint_normalization(args) -> str | None:
    """The text normalization the evaluated heads were trained with (their card's), or
    None for this install's recipe."""
    from .weights import Weights

    path = Path(getattr(args, "checkpoint", None) or Weights.DEFAULT.path)
    card = path.with_name(path.name.removesuffix(".safetensors") + ".card.json")
    if not card.is_file():
        return None
    return json.loads(card.read_text())["encoders"].get("normalization") or "none"


def default_reports_dir() -> Path:
    """Where ``eval`` writes unless told otherwise: outside the checkout."""
    env = os.environ.get("EMOSTREAM_REPORTS_DIR")
    return Path(env) if env else Path.home() / ".cache" / "emostream" / "reports"


def _eval_served(args, cache, datasets) -> int:
    from .checkpoint import load_checkpoint
    from .datasets import default_data_dir
    from .pairs import NEEDS as PAIRS_NEED
    from .served import evaluate_served, write_report
    from .weights import Weights

    path = Path(args.checkpoint or Weights.DEFAULT.path)
    model, _ = load_checkpoint(path)
    version = model_version(path, cache.encoder.version)
    data_dir = Path(args.data_dir or default_data_dir()).resolve()
    if args.update_reports:
        out = REPORTS / "served"
    else:
        runtime = cache.encoder.runtime
        out = Path(args.out or default_reports_dir() / version / runtime / args.split)
    metrics = evaluate_served(model, cache, data_dir, datasets, out, split=args.split)
    runtime = cache.encoder.runtime
    title = f"{path.name} (model {version}, {runtime}), {data_dir}, split {args.split}"
    meta = {
        "data_dir": str(data_dir),
        "split": args.split,
        "model_version": version,
        "runtime": runtime,
    }
    write_report(metrics, out, title, meta)
    print((out / "served.md").read_text())
    if set(PAIRS_NEED) <= set(datasets):
        _pairs_report(model, cache, data_dir, args.split, out, title, datasets)
        print((out / "pairs.md").read_text())
    print(f"report in {out}")
    return 0


def _pairs_report(model, cache, data_dir, split: str, out: Path, title: str, datasets) -> dict:
    """Emotion, and sentiment where the tweet sets are there, on text + picture posts
    (``pairs.py``): ``pairs.json`` (``{head: report}``), ``pairs.md``."""
    from .pairs import SENTIMENT_NEEDS, pair_report, pair_sets, pairs_markdown, sentiment_pair_sets

    report = {"emotion": pair_report(model, pair_sets(cache, data_dir, split))}
    if set(SENTIMENT_NEEDS) <= set(datasets):
        sets = sentiment_pair_sets(cache, data_dir, split)
        report["sentiment"] = pair_report(model, sets, "sentiment")
    out.mkdir(parents=True, exist_ok=True)
    (out / "pairs.json").write_text(json.dumps(report, indent=1))
    md = "\n".join(
        pairs_markdown(r, f"{title}: {head} on text + picture posts, split {split}", head)
        for head, r in report.items()
    )
    (out / "pairs.md").write_text(md)
    return report


def _read_image(ref: str | None, base: Path) -> bytes | None:
    if not ref:
        return None
    return (base / ref).read_bytes()


def cmd_classify(args) -> int:
    from .classifier import EmotionClassifier
    from .encoder import PostInput

    clf = EmotionClassifier(device=args.device)
    if args.jsonl:
        src = sys.stdin if args.jsonl == "-" else open(args.jsonl, encoding="utf-8")
        base = Path(".") if args.jsonl == "-" else Path(args.jsonl).parent
        records = [json.loads(line) for line in src if line.strip()]
        posts = [PostInput(r.get("text"), _read_image(r.get("image"), base)) for r in records]
    else:
        if args.text is None and args.image is None:
            print("error: give --text and/or --image, or --jsonl FILE", file=sys.stderr)
            return 2
        records = [{}]
        image = Path(args.image).read_bytes() if args.image else None
        posts = [PostInput(args.text, image)]
    for rec, pred in zip(records, clf.classify(posts, strict=False), strict=True):
        if pred is None:
            out = {"id": rec.get("id"), "error": "post has neither text nor a usable image"}
        else:
            out = {"id": rec.get("id"), **pred.to_dict()} if rec else pred.to_dict()
        print(json.dumps(out))
    return 0


def cmd_sample(args) -> int:
    from .classifier import EmotionClassifier
    from .encoder import PostInput

    records = [json.loads(x) for x in (SAMPLE / "posts.jsonl").read_text().splitlines() if x]
    t0 = time.perf_counter()
    clf = EmotionClassifier(device=args.device)
    t_load = time.perf_counter() - t0
    posts = [PostInput(r["text"], _read_image(r["image"], SAMPLE / "images")) for r in records]
    t1 = time.perf_counter()
    preds = clf.classify(posts, strict=False)
    t_run = time.perf_counter() - t1
    print(f"model {clf.version} on {clf.device}; loaded in {t_load:.1f}s\n")
    print(
        f"{'id':<11} {'source/channel':<22} {'emotion':<9} {'p':>5}  {'sentiment':<9} "
        f"{'used':<11} {'image':<18} text"
    )
    for r, p in zip(records, preds, strict=True):
        text = (r["text"] or "")[:48]
        where = f"{r['source']}/{r['channel']}"[:22]
        print(
            f"{r['id']:<11} {where:<22} {p.label:<9} {p.emotions[p.label]:>5.2f}  "
            f"{p.sentiment:<9} {'+'.join(p.modalities):<11} {p.image_status:<18} {text}"
        )
    counts = Counter(p.label for p in preds)
    mix = Counter("+".join(p.modalities) for p in preds)
    print("\nemotions: " + ", ".join(f"{k} {v}" for k, v in counts.most_common()))
    print("modalities used: " + ", ".join(f"{k} {v}" for k, v in mix.most_common()))
    print(f"{len(posts)} posts in one batch: {t_run:.2f}s ({len(posts) / t_run:.1f} posts/s)")
    return 0


def cmd_export_onnx(args) -> int:
    """Build the ONNX files of the served encoders now (containers start warm)."""
    import torch

    from .classifier import EmotionClassifier
    from .encoder import PostInput
    from .onnx_runtime import onnx_dir

    for runtime in args.runtime:
        clf = EmotionClassifier(device="cpu", runtime=runtime)
        clf.classify([PostInput("export", torch.zeros(3, 224, 224, dtype=torch.uint8))])
        print(f"{runtime}: ready for {clf.version}")
    print(f"ONNX files in {onnx_dir()}")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("train", help="train the served common-space model")
    _common(p)
    # Defaults chosen on the validation splits (served.val_score: the mean over datasets and
    # both kinds of head of (accuracy + macro-F1) / 2); docs/model.md lists the variants.
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument(
        "--balance",
        type=float,
        default=0.25,
        help="each dataset weighs in proportion to its size ** balance",
    )
    p.add_argument(
        "--label-spaces",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="restrict each row's served-head softmax to its dataset's classes",
    )
    p.add_argument(
        "--experts",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="serve each head as a mixture of the datasets' own heads, gated by a domain head",
    )
    p.add_argument(
        "--expert-weights",
        nargs=2,
        type=float,
        metavar=("EMOTION", "SENTIMENT"),
        default=None,
        help="the experts' weight against the served head, per served head (default: "
        "served.EXPERT_WEIGHTS; 1 = the expert alone re-decides among its classes)",
    )
    p.add_argument(
        "--neutral-offsets",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="fit how readily each dataset's expert says neutral on its val split "
        "(model/offsets.py; more neutral recall and macro-F1 on mvsa-single, less accuracy)",
    )
    p.add_argument(
        "--modality-pool",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="emotion and sentiment of a post with text and picture = weighted mean of the "
        "answers to each alone, each head's text weight fitted on val pairs (model/pairs.py); "
        "sentiment keeps its fused answer as far as the text reads like a tweet",
    )
    p.add_argument("--modality-dropout", type=float, default=0.3)
    p.add_argument("--aux-weight", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=20261124)
    p.add_argument("--out", type=Path, default=None, help="weights file to write")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate on the test splits")
    _common(p)
    p.add_argument("--paper", action="store_true", help="train and compare every paper model")
    p.add_argument("--kinds", nargs="+", default=None, help="with --paper: a subset of models")
    p.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped weights")
    p.add_argument(
        "--split",
        default="test",
        help="split to score: any value of the split column of posts.csv (default: test)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="report folder (default: $EMOSTREAM_REPORTS_DIR or ~/.cache/emostream/reports"
        "/<model version>/<split>)",
    )
    p.add_argument(
        "--update-reports",
        action="store_true",
        help="write into model/reports/served, the reports kept in the repository",
    )
    p.add_argument("--seed", type=int, default=20261124)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("classify", help="classify posts")
    p.add_argument("--text", default=None)
    p.add_argument("--image", default=None, help="path of an image file")
    p.add_argument(
        "--jsonl",
        default=None,
        help='file of {"id", "text", "image"} lines (image: a path relative to it); - for stdin',
    )
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser(
        "export-onnx", help="build the encoders' ONNX files now, not at the first start"
    )
    p.add_argument(
        "--runtime", nargs="+", choices=("onnx", "onnx-int8"), default=["onnx", "onnx-int8"]
    )
    p.set_defaults(func=cmd_export_onnx)

    p = sub.add_parser("sample", help="classify the bundled sample posts offline")
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_sample)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emostream", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
