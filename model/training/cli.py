"""``emostream train`` and ``emostream eval``: training and scoring the served model.

emostream train              train the served common-space model on every dataset
emostream eval               test metrics of the shipped model (JSON, Markdown, PNG)
emostream eval --paper       the paper's tables: every model x dataset, missing modality
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .shipping import (
    REPORTS,
    SERVED_IMAGE,
    SERVED_TEXT,
    default_reports_dir,
    model_version,
    pairs_report,
    ship,
)


def _cache(args, normalization: str | None = None):
    """The feature cache of the encoders ``args`` name; texts normalised by
    ``normalization`` (default: the recipe of this install, what training uses; "none":
    raw texts)."""
    from emostream.model.backbones import IMAGE_BACKBONES, TEXT_BACKBONES
    from emostream.model.encoder import Encoder
    from emostream.model.text_normalization import VERSION
    from emostream.model.training.feature_cache import FeatureCache

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
        choices=("eager", "onnx", "onnx-int8", "onnx-int8-image"),
        default="eager",
        help="encoders on torch (eager) or ONNX Runtime (onnx: the workers' CPU default; "
        "onnx-int8: int8 text weights; onnx-int8-image: static int8 image encoder)",
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


def cmd_train(args) -> int:
    from emostream.model.training.datasets import DATASETS
    from emostream.model.training.loop import TrainConfig
    from emostream.model.training.served_training import train_served
    from emostream.model.weights import WEIGHTS_DIR

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
    )
    out = Path(args.out or WEIGHTS_DIR / "emostream-commonspace-v2.safetensors")
    ship(model, info, cache, args.data_dir, datasets, out)
    return 0


def cmd_eval(args) -> int:
    from emostream.model.training.datasets import DATASETS

    cache = _cache(args, _checkpoint_normalization(args))
    datasets = tuple(args.datasets or DATASETS)
    if args.paper:
        from emostream.model.training.loop import TrainConfig
        from emostream.model.training.paper import run

        from .fusion import KINDS

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
    from emostream.model.weights import Weights

    path = Path(getattr(args, "checkpoint", None) or Weights.DEFAULT.path)
    card = path.with_name(path.name.removesuffix(".safetensors") + ".card.json")
    if not card.is_file():
        return None
    return json.loads(card.read_text())["encoders"].get("normalization") or "none"


def _eval_served(args, cache, datasets) -> int:
    from emostream.model.checkpoint import load_checkpoint
    from emostream.model.training.datasets import default_data_dir
    from emostream.model.training.pairs import NEEDS as PAIRS_NEED
    from emostream.model.training.served_training import evaluate_served, write_report
    from emostream.model.weights import Weights

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
        pairs_report(model, cache, data_dir, args.split, out, title, datasets)
        print((out / "pairs.md").read_text())
    print(f"report in {out}")
    return 0


def add_commands(sub) -> None:
    _train_parser(sub)
    _eval_parser(sub)


def _train_parser(sub) -> None:
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
        "--modality-pool",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="emotion and sentiment of a post with text and picture = weighted mean of the "
        "answers to each alone, each head's text weight fitted on val pairs "
        "(model/training/pairs.py); "
        "sentiment keeps its fused answer as far as the text reads like a tweet",
    )
    p.add_argument("--modality-dropout", type=float, default=0.3)
    p.add_argument("--aux-weight", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=20261124)
    p.add_argument("--out", type=Path, default=None, help="weights file to write")
    p.set_defaults(func=cmd_train)


def _eval_parser(sub) -> None:
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
        help="write into docs/reports/served, the reports kept in the repository",
    )
    p.add_argument("--seed", type=int, default=20261124)
    p.set_defaults(func=cmd_eval)
