"""Neutral offsets: how readily each dataset's expert says neutral, fitted on val.

A dataset's own head learns its classes' training frequencies, and where neutral is rare
it hardly says it: mvsa-single's expert named neutral for 28 of its 400 test tweets, where
42 are neutral (recall 0.29), and with it the served sentiment (``experts.py``). For every
expert with a label that means neutral, an offset is added to that label's logit, the
one of ``GRID`` under which the served head scores the best macro-F1 on the expert's own
dataset's val split (ties: the smaller offset). Only the neutral label moves, so the
ratios among the other classes, and any answer restricted to them, stay as they were.
"""

from __future__ import annotations

import copy

from emostream.model.fusion import FusionModel, reconfigured
from emostream.model.training.labels import EMOTIONS, SENTIMENTS
from emostream.model.training.tasks import TASKS, evaluate_dataset

GRID = tuple(0.25 * i for i in range(9))
"""Offsets tried: 0 (as trained) to 2 (neutral e^2 = 7.4 times as likely)."""


def fit_neutral_offsets(model: FusionModel, val: dict) -> tuple[FusionModel, dict]:
    """``model`` with a neutral offset per expert that has a neutral label, each chosen on
    its dataset's val split (``val``: dataset -> (items, features)); and, per dataset, the
    offset with every offset's val macro-F1."""
    spec = copy.deepcopy(model.config.experts)
    chosen: dict[str, dict] = {}
    for served, group in spec.get("heads", {}).items():
        names = EMOTIONS if served == "emotion" else SENTIMENTS
        for e in group:
            dataset = spec["domains"][e["gate"]]
            neutral = [i for i, c in enumerate(e["classes"]) if names[c] == "neutral"]
            if not neutral or dataset not in val or TASKS[dataset].head != served:
                continue
            items, feats = val[dataset]
            table = {}
            for b in GRID:
                e["offsets"] = [b if i in neutral else 0.0 for i in range(len(e["classes"]))]
                r = evaluate_dataset(reconfigured(model, experts=spec), items, feats, "both")
                table[b] = r["macro_f1"] if r else 0.0
            best = max(GRID, key=lambda b: (table[b], -b))
            e["offsets"] = [best if i in neutral else 0.0 for i in range(len(e["classes"]))]
            chosen[dataset] = {
                "neutral": best,
                "val_macro_f1": {str(b): round(v, 4) for b, v in table.items()},
            }
    return reconfigured(model, experts=spec), chosen
