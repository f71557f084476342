"""Fine-tuning MiniLM's upper layers on the texts of every dataset at once.

Multi-task: one linear head per dataset over its own label space (GoEmotions: the seven
served classes, with all of a comment's served emotions as a soft target; texts normalised
as the encoder serves them, ``text_normalization.py``), so no dataset
has to squeeze its labels into another's. Each step takes a batch from one dataset; a
dataset is drawn with probability proportional to ``n ** SAMPLING_POWER`` (GoEmotions would
otherwise drown the small sets); inside a dataset, classes are weighted by the inverse
square root of their frequency (a middle way between accuracy and macro-F1).
``--fine-weight W`` adds a head over GoEmotions' 28 labels on its batches (loss weight W).
``--distill-weight W`` adds a distillation loss: MiniLM's pooled vector, through a learnt
projection, should point where a larger sentence encoder's does (``model/teacher.py``).

The frozen lower layers run once over every text (``MiniLM.lower``) and their token vectors
stay in memory, so a step runs only the tuned layers. Checkpoints are written at every
validation, and a run restarted with the same output directory resumes from the last one.
Seeds are fixed; on one machine a run is reproducible.

    python -m emostream.model.training.text_finetune --out .cache/text-ft  # ~40 min, 2 cores
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from emostream.model.text_model import TUNED_LAYERS, MiniLM
from emostream.model.text_normalization import normalize
from emostream.model.training.augmentation import augment as augment_text
from emostream.model.training.datasets import Dataset, Item, default_data_dir
from emostream.model.training.evaluation import macro_f1
from emostream.model.training.labels import EMOTIONS, SENTIMENTS
from emostream.model.training.losses import class_weights
from emostream.model.training.targets import (
    dataset_target,
    emotion_target,
    label_distribution,
    sentiment_target,
)
from emostream.model.training.teacher import Teacher

TEXT_DATASETS = ("reddit-emotions", "flickr-fi-text", "goemotions", "mvsa-single", "twitter-ii")
GOEMOTIONS_CLASSES = ("anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral")
GOEMOTIONS_FINE = "goemotions-fine"
"""The auxiliary head over GoEmotions' 28 labels (``FinetuneConfig.fine_weight``)."""
FINE_LABELS = (
    *("admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion"),
    *("curiosity", "desire", "disappointment", "disapproval", "disgust", "embarrassment"),
    *("excitement", "fear", "gratitude", "grief", "joy", "love", "nervousness", "optimism"),
    *("pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral"),
)
"""GoEmotions' taxonomy (the ``labels`` column of its posts.csv)."""
SAMPLING_POWER = 0.7
HEAD_SCALE = 10.0
"""Features are unit vectors; heads read them scaled (a cosine-style classifier)."""


def task_classes(dataset: str) -> tuple[str, ...]:
    return GOEMOTIONS_CLASSES if dataset == "goemotions" else Dataset.load(dataset).labels


@dataclass
class Part:
    """One dataset split: cached lower-layer token vectors, lengths, targets."""

    dataset: str
    tokens: list[torch.Tensor]  # per text (L, dim) float16
    targets: torch.Tensor  # (N, C)
    fine: torch.Tensor | None = None  # GoEmotions: (N, 28), all of a comment's 28 labels
    teacher: torch.Tensor | None = None  # (N, D) the teacher's unit vectors (distillation)

    def batch(self, rows: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        longest = max(self.tokens[r].shape[0] for r in rows)
        dim = self.tokens[rows[0]].shape[1]
        h = torch.zeros(len(rows), longest, dim)
        mask = torch.zeros(len(rows), longest, dtype=torch.long)
        for i, r in enumerate(rows):
            n = self.tokens[r].shape[0]
            h[i, :n] = self.tokens[r].float()
            mask[i, :n] = 1
        return h, mask, self.targets[rows]


@torch.no_grad()
def cache_lower(
    net: MiniLM,
    dataset: str,
    split: str,
    data_dir: Path,
    limit: int | None = None,
    teacher: Teacher | None = None,
    augment: float = 0.0,
) -> Part:
    """``augment``: the share of texts that get one rewritten copy (``augmentation.py``)."""
    classes = task_classes(dataset)
    items = [it for it in Dataset.load(dataset, data_dir).split(split) if it.has_text]
    if limit and len(items) > limit:
        items = random.Random(0).sample(items, limit)
    texts = [it.text for it in items]
    if augment > 0:
        copies = augmented_copies(items, augment, seed=len(items))
        items += [it for it, _ in copies]
        texts += [text for _, text in copies]
    order = sorted(range(len(items)), key=lambda i: len(texts[i]))
    tokens: list[torch.Tensor | None] = [None] * len(items)
    for start in tqdm(range(0, len(order), 64), desc=f"lower layers {dataset}/{split}"):
        rows = order[start : start + 64]
        tok = net.tokenize([normalize(texts[r]) for r in rows])
        h = net.lower(tok["input_ids"], tok["attention_mask"])
        for j, r in enumerate(rows):
            n = int(tok["attention_mask"][j].sum())
            tokens[r] = h[j, :n].to(torch.float16).clone()
    targets = torch.from_numpy(np.stack([dataset_target(it, classes) for it in items]))
    fine = None
    if dataset == "goemotions":
        fine = torch.from_numpy(np.stack([fine_target(it) for it in items]))
    vectors = None
    if teacher is not None:
        vectors = teacher.vectors(f"{dataset}-{split}", texts)
    return Part(dataset, tokens, targets, fine, vectors)  # type: ignore[arg-type]


def augmented_copies(items: list[Item], fraction: float, seed: int) -> list[tuple[Item, str]]:
    """(item, rewritten text) for about ``fraction`` of ``items``, drawn from ``seed``."""
    rng = random.Random(seed)
    out = []
    for it in items:
        if rng.random() >= fraction:
            continue
        emotion = _felt(emotion_target(it), EMOTIONS)
        sentiment = _felt(sentiment_target(it), SENTIMENTS)
        out.append((it, augment_text(it.text, emotion, sentiment, rng)))
    return out


def _felt(target: np.ndarray | None, names: tuple[str, ...]) -> str | None:
    """The most probable name of a target, or None when there is none or it is neutral."""
    name = names[int(target.argmax())] if target is not None else None
    return None if name == "neutral" else name


def fine_target(item) -> np.ndarray:
    """All of a GoEmotions comment's 28-taxonomy labels, as a distribution (else zeros)."""
    names = [n for n in item.extra.get("labels", "").split("|") if n in FINE_LABELS]
    return label_distribution(names, FINE_LABELS)


def _loss(logits: torch.Tensor, target: torch.Tensor, class_w: torch.Tensor) -> torch.Tensor:
    """Soft cross-entropy with a weight per class."""
    return -((target * class_w) * logits.log_softmax(-1)).sum(-1).mean()


def _distill_loss(projected: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """1 - cosine between the projected student vectors and the teacher's."""
    return 1.0 - torch.nn.functional.cosine_similarity(projected, teacher.float(), dim=-1).mean()


def _step_loss(
    net: MiniLM,
    heads: Heads,
    part: Part,
    rows: list[int],
    class_w: torch.Tensor,
    fine_w: torch.Tensor | None,
    cfg: FinetuneConfig,
) -> torch.Tensor:
    """One batch's loss: its dataset's head, plus the 28-label head and the distillation
    loss where they are on."""
    h, m, y = part.batch(rows)
    feats = net.upper(h, m)
    loss = _loss(heads(feats, part.dataset), y, class_w)
    if fine_w is not None and part.fine is not None:
        loss = loss + cfg.fine_weight * _loss(
            heads(feats, GOEMOTIONS_FINE), part.fine[rows], fine_w
        )
    if heads.project is not None and part.teacher is not None:
        loss = loss + cfg.distill_weight * _distill_loss(heads.project(feats), part.teacher[rows])
    return loss


def length_batches(part: Part, size: int, rng: random.Random) -> list[list[int]]:
    """Batches of similar length (less padding), in random order."""
    idx = list(range(len(part.tokens)))
    rng.shuffle(idx)
    chunks = [idx[i : i + size * 20] for i in range(0, len(idx), size * 20)]
    out = []
    for c in chunks:
        c.sort(key=lambda r: part.tokens[r].shape[0])
        out += [c[i : i + size] for i in range(0, len(c), size)]
    rng.shuffle(out)
    return out


class Heads(torch.nn.Module):
    def __init__(self, dim: int, datasets, fine: bool = False, teacher_dim: int = 0) -> None:
        super().__init__()
        self.project = torch.nn.Linear(dim, teacher_dim) if teacher_dim else None
        """Student vector -> the teacher's space (distillation only; never shipped)."""
        self.drop = torch.nn.Dropout(0.1)
        sizes = {d: len(task_classes(d)) for d in datasets}
        if fine:
            sizes[GOEMOTIONS_FINE] = len(FINE_LABELS)
        self.heads = torch.nn.ModuleDict(
            {d.replace("-", "_"): torch.nn.Linear(dim, n) for d, n in sizes.items()}
        )

    def forward(self, feats: torch.Tensor, dataset: str) -> torch.Tensor:
        return self.heads[dataset.replace("-", "_")](self.drop(feats) * HEAD_SCALE)


@torch.no_grad()
def validate(net: MiniLM, heads: Heads, val: dict[str, Part]) -> dict[str, dict]:
    net.eval()
    heads.eval()
    out = {}
    for name, part in val.items():
        preds = []
        order = sorted(range(len(part.tokens)), key=lambda r: part.tokens[r].shape[0])
        for s in range(0, len(order), 128):
            h, m, _ = part.batch(order[s : s + 128])
            preds.append(heads(net.upper(h, m), name).argmax(-1))
        pred = torch.empty(len(order), dtype=torch.long)
        pred[order] = torch.cat(preds)
        y = part.targets.argmax(-1).numpy()
        c = part.targets.shape[1]
        out[name] = {
            "accuracy": float((pred.numpy() == y).mean()),
            "macro_f1": macro_f1(y, pred.numpy(), c),
        }
    net.train()
    heads.train()
    return out


def val_score(res: dict[str, dict]) -> float:
    return float(np.mean([(r["accuracy"] + r["macro_f1"]) / 2 for r in res.values()]))


@dataclass(frozen=True)
class FinetuneConfig:
    steps: int = 4500
    batch_size: int = 32
    lr: float = 8e-5
    head_lr: float = 2e-3
    warmup: int = 200
    eval_every: int = 500
    val_limit: int = 2000
    """Validation texts per dataset (GoEmotions' 5,426 would make each check slow)."""
    seed: int = 20261201
    tuned_layers: int = TUNED_LAYERS
    """MiniLM layers fine-tuned, from the top (each adds 3.6 MB to the shipped delta)."""
    train_limit: int | None = None
    """Training texts per dataset (None: all); small values make a smoke test."""
    fine_weight: float = 0.0
    """Weight of the auxiliary loss of a head over GoEmotions' 28 labels on GoEmotions
    batches (0: no such head)."""
    distill_weight: float = 0.0
    """Weight of the distillation loss towards the teacher's vectors (0: no teacher)."""
    augment: float = 0.0
    """Share of training texts that get one rewritten copy (intense words, typos, an emoji,
    a negated contrast: ``augmentation.py``); 0: none. Off until a delta trained with it
    (``--augment 0.3``) is scored against the shipped one on every test split."""
    delta_bits: int = 16
    """How the shipped delta stores the tuned matrices: float16, or int8 with a scale per row
    (half the size; what lets all six layers fit the weights budget)."""


def _lr_factor(step: int, cfg: FinetuneConfig) -> float:
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    return max(0.0, (cfg.steps - step) / (cfg.steps - cfg.warmup))


def _schedule(train: dict[str, Part], cfg: FinetuneConfig) -> list[tuple[str, list[int]]]:
    """Every step's (dataset, rows), drawn up front from the seed: resuming replays it."""
    rng = random.Random(cfg.seed)
    names = list(train)
    sizes = np.array([len(train[n].tokens) for n in names], dtype=np.float64)
    p = sizes**SAMPLING_POWER / (sizes**SAMPLING_POWER).sum()
    queues: dict[str, list[list[int]]] = {n: [] for n in names}
    plan = []
    for _ in range(cfg.steps):
        name = names[int(np.searchsorted(np.cumsum(p), rng.random()))]
        if not queues[name]:
            queues[name] = length_batches(train[name], cfg.batch_size, rng)
        plan.append((name, queues[name].pop()))
    return plan


def finetune(
    out: Path, cfg: FinetuneConfig, data_dir: Path, teacher: Teacher | None = None
) -> dict:
    """Train, validate and checkpoint; ``teacher`` (with ``distill_weight`` > 0): the encoder
    to distil from, all-mpnet-base-v2 when None."""
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    net = MiniLM(cfg.tuned_layers)
    if cfg.distill_weight <= 0:
        teacher = None
    elif teacher is None:
        teacher = Teacher()
    train = {
        d: cache_lower(net, d, "train", data_dir, cfg.train_limit, teacher, cfg.augment)
        for d in TEXT_DATASETS
    }
    val = {d: cache_lower(net, d, "val", data_dir, cfg.val_limit) for d in TEXT_DATASETS}
    weights = {d: class_weights(p.targets) for d, p in train.items()}
    teacher_dim = teacher.dim if teacher else 0
    heads = Heads(net.dim, TEXT_DATASETS, fine=cfg.fine_weight > 0, teacher_dim=teacher_dim)
    fine_w = class_weights(train["goemotions"].fine) if cfg.fine_weight > 0 else None
    opt = torch.optim.AdamW(
        [
            {"params": [p for p in net.parameters() if p.requires_grad], "lr": cfg.lr},
            {"params": heads.parameters(), "lr": cfg.head_lr},
        ],
        weight_decay=0.01,
    )
    base_lrs = [g["lr"] for g in opt.param_groups]
    state = _resume(out, net, heads, opt)
    plan = _schedule(train, cfg)
    net.train()
    bar = tqdm(total=cfg.steps, initial=state["step"], desc="fine-tuning MiniLM", unit="step")
    started = time.time() - state["wall_s"]
    for step in range(state["step"], cfg.steps):
        for g, base in zip(opt.param_groups, base_lrs, strict=True):
            g["lr"] = base * _lr_factor(step, cfg)
        name, rows = plan[step]
        loss = _step_loss(net, heads, train[name], rows, weights[name], fine_w, cfg)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}", ds=name[:8])
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            res = validate(net, heads, val)
            state["history"].append({"step": step + 1, "val": res, "score": val_score(res)})
            state.update(step=step + 1, wall_s=time.time() - started)
            _save(out, net, heads, opt, state, cfg.delta_bits)
            bar.write(f"step {step + 1}: val score {val_score(res):.4f} {json.dumps(res)}")
    bar.close()
    return state


def _save(out: Path, net: MiniLM, heads: Heads, opt, state: dict, bits: int = 16) -> None:
    out.mkdir(parents=True, exist_ok=True)
    best = max(state["history"], key=lambda h: h["score"])
    if best is state["history"][-1]:
        net.save_delta(out / "best.text-delta.safetensors", bits)
        torch.save(heads.state_dict(), out / "best.heads.pt")
    ckpt = {"net": net.delta_state(), "heads": heads.state_dict(), "opt": opt.state_dict()}
    torch.save(ckpt | {"state": state}, out / "last.pt.tmp")
    (out / "last.pt.tmp").replace(out / "last.pt")
    (out / "history.json").write_text(json.dumps(state, indent=1))


def _resume(out: Path, net: MiniLM, heads: Heads, opt) -> dict:
    path = out / "last.pt"
    if not path.is_file():
        return {"step": 0, "wall_s": 0.0, "history": []}
    ckpt = torch.load(path, weights_only=False)
    net.bert.load_state_dict({k: v.float() for k, v in ckpt["net"].items()}, strict=False)
    heads.load_state_dict(ckpt["heads"])
    opt.load_state_dict(ckpt["opt"])
    print(f"resuming at step {ckpt['state']['step']}")
    return ckpt["state"]


def finish_run(state: dict, out: Path, kind: str, ship: str | None) -> None:
    """Print the best validation and the wall time; with ``ship``, copy the best delta to
    ``model/weights/<ship>.<kind>-delta.safetensors``, where the backbone registry finds it."""
    print(json.dumps(max(state["history"], key=lambda h: h["score"]), indent=1))
    print(f"wall time {state['wall_s'] / 60:.1f} min of training (after caching)")
    if ship:
        from emostream.model.backbones import DELTAS_DIR

        target = DELTAS_DIR / f"{ship}.{kind}-delta.safetensors"
        shutil.copyfile(out / f"best.{kind}-delta.safetensors", target)
        print(f"shipped {target}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path(".cache/text-ft"), help="run directory")
    ap.add_argument("--data-dir", type=Path, default=None, help="default: ../shared/data")
    ap.add_argument("--steps", type=int, default=FinetuneConfig.steps, help="training steps")
    ap.add_argument("--tuned-layers", type=int, default=FinetuneConfig.tuned_layers)
    ap.add_argument("--lr", type=float, default=FinetuneConfig.lr)
    ap.add_argument(
        "--delta-bits",
        type=int,
        choices=(16, 8),
        default=FinetuneConfig.delta_bits,
        help="the shipped delta's matrices as float16 or int8 (a scale per row)",
    )
    ap.add_argument(
        "--fine-weight",
        type=float,
        default=FinetuneConfig.fine_weight,
        help="weight of an auxiliary head over GoEmotions' 28 labels (0: none)",
    )
    ap.add_argument(
        "--distill-weight",
        type=float,
        default=FinetuneConfig.distill_weight,
        help="weight of distillation towards all-mpnet-base-v2 (needs the teacher extra; 0: none)",
    )
    ap.add_argument(
        "--augment",
        type=float,
        default=FinetuneConfig.augment,
        help="share of training texts that get one rewritten copy (0: none)",
    )
    ap.add_argument("--eval-every", type=int, default=FinetuneConfig.eval_every)
    ap.add_argument("--train-limit", type=int, default=None, help="texts per dataset (smoke)")
    ap.add_argument("--val-limit", type=int, default=FinetuneConfig.val_limit)
    ap.add_argument(
        "--ship",
        default=None,
        metavar="NAME",
        help="copy the best delta to model/weights/NAME.text-delta.safetensors (the served "
        "model uses emostream-v2-minilm)",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    cfg = FinetuneConfig(
        steps=args.steps,
        tuned_layers=args.tuned_layers,
        lr=args.lr,
        eval_every=args.eval_every,
        train_limit=args.train_limit,
        val_limit=args.val_limit,
        delta_bits=args.delta_bits,
        fine_weight=args.fine_weight,
        distill_weight=args.distill_weight,
        augment=args.augment,
    )
    state = finetune(args.out, cfg, args.data_dir or default_data_dir())
    finish_run(state, args.out, "text", args.ship)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
