"""Shipping the served heads: the file, its test reports, its calibration and its card.

``ship`` writes the weights, scores the file as written on the test splits (reports in
``docs/reports/served``), calibrates it and writes its card (labels, encoders, text
normalization, metrics) beside it; ``model_version`` is the hash every result carries.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

REPORTS = Path(__file__).resolve().parents[2] / "docs" / "reports"
"""The reports kept in the repository (``emostream eval --update-reports``, ``ship``)."""

SERVED_TEXT = "emostream-v2-minilm"
SERVED_IMAGE = "emostream-v2-effnet-lite0"
"""The fine-tuned encoders the served model is trained on (deltas in model/weights/)."""


def model_version(weights: Path, encoder_version: str) -> str:
    """``v2-<8 hex>``: a hash of the head file and of the encoders' base + delta versions."""
    import hashlib

    digest = hashlib.sha256(weights.read_bytes() + encoder_version.encode()).hexdigest()
    return f"v2-{digest[:8]}"


def ship(model, info: dict, cache, data_dir, datasets, out: Path) -> dict:
    """Write ``model`` to ``out``; score the file as written on the test splits (reports in
    docs/reports/served), calibrate it, and write its card beside it. Returns the card."""
    from emostream.model.checkpoint import load_checkpoint, save_checkpoint
    from emostream.model.training.datasets import default_data_dir
    from emostream.model.training.pairs import NEEDS as PAIRS_NEED
    from emostream.model.training.served_training import calibrate, evaluate_served, write_report

    save_checkpoint(model, out, {"encoders": cache.encoder.version})
    reloaded, _ = load_checkpoint(out)  # the card's metrics are those of the file as shipped
    reports = REPORTS / "served"
    metrics = evaluate_served(reloaded, cache, data_dir, datasets, reports)
    meta = {"data_dir": str(data_dir or default_data_dir()), "split": "test"}
    write_report(metrics, reports, "Served model, test splits", meta)
    calibration = calibrate(reloaded, cache, data_dir, datasets, reports)
    card = card_of(out, cache, info, metrics, calibration)
    if set(PAIRS_NEED) <= set(datasets):
        pairs = pairs_report(reloaded, cache, data_dir, "test", reports, "Served model", datasets)
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


def card_of(out: Path, cache, info: dict, metrics: dict, calibration: dict) -> dict:
    from emostream.model.training.labels import EMOTIONS, SENTIMENTS
    from emostream.model.training.served_training import compact

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


def pairs_report(model, cache, data_dir, split: str, out: Path, title: str, datasets) -> dict:
    """Emotion, and sentiment where the tweet sets are there, on text + picture posts
    (``pairs.py``): ``pairs.json`` (``{head: report}``), ``pairs.md``."""
    from emostream.model.training.pairs import (
        SENTIMENT_NEEDS,
        pair_report,
        pair_sets,
        pairs_markdown,
        sentiment_pair_sets,
    )

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


def default_reports_dir() -> Path:
    """Where ``eval`` writes unless told otherwise: outside the checkout."""
    env = os.environ.get("EMOSTREAM_REPORTS_DIR")
    return Path(env) if env else Path.home() / ".cache" / "emostream" / "reports"
