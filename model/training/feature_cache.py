"""Encoded features on disk, so training never re-encodes.

One safetensors file per (encoder version, dataset) under the cache directory
(``$EMOSTREAM_CACHE_DIR``, default ``.cache/features`` in the checkout), holding a text and
an image feature row per item, a mask, and the item keys (in the file's metadata). A key
is the item id plus a hash of the item's content (its text and its image file's bytes), so
an edited post or a replaced picture is encoded afresh, never served stale. Asking for
items that are not in the file encodes only those, with a progress bar, and rewrites it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from emostream.model.encoder import IMAGE, TEXT, Encoder
from emostream.model.training.datasets import Item


def default_cache_dir() -> Path:
    env = os.environ.get("EMOSTREAM_CACHE_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / ".cache" / "features"


@dataclass
class Features:
    """Features of a list of items, row i belonging to ``keys[i]``."""

    keys: list[str]
    text: torch.Tensor
    image: torch.Tensor
    mask: torch.Tensor  # (N, 2) bool

    def select(self, rows: list[int] | torch.Tensor) -> Features:
        rows_t = torch.as_tensor(rows, dtype=torch.long)
        return Features(
            [self.keys[i] for i in rows_t.tolist()],
            self.text[rows_t],
            self.image[rows_t],
            self.mask[rows_t],
        )


def content_key(item: Item) -> str:
    """``<id>:<12 hex>``: the id and a hash of the text and the image file's bytes."""
    h = hashlib.sha256(item.text.encode("utf-8"))
    if item.image_path is not None:
        h.update(b"\0" + item.image_path.read_bytes())
    return f"{item.id}:{h.hexdigest()[:12]}"


class FeatureCache:
    def __init__(self, encoder: Encoder, cache_dir: Path | None = None, batch_size: int = 64):
        self.encoder = encoder
        self.dir = (cache_dir or default_cache_dir()) / encoder.feature_version.replace("/", "_")
        self.batch_size = batch_size

    def _path(self, dataset: str) -> Path:
        return self.dir / f"{dataset}.safetensors"

    def _read(self, dataset: str) -> tuple[dict[str, int], dict[str, torch.Tensor]]:
        path = self._path(dataset)
        if not path.is_file():
            return {}, {}
        tensors = load_file(path)
        from safetensors import safe_open

        with safe_open(path, "pt") as fh:
            ids = json.loads(fh.metadata()["ids"])
        return {k: i for i, k in enumerate(ids)}, tensors

    def features(self, items: list[Item], progress: bool = True) -> Features:
        """Features for ``items`` (all of one dataset), encoding what the cache lacks."""
        if not items:
            raise ValueError("no items")
        datasets = {i.dataset for i in items}
        if len(datasets) != 1:
            raise ValueError(f"items of one dataset at a time, got {sorted(datasets)}")
        dataset = datasets.pop()
        index, tensors = self._read(dataset)
        keys = {it: content_key(it) for it in dict.fromkeys(items)}
        missing = [it for it, k in keys.items() if k not in index]
        if missing:
            new = self._encode(missing, progress, dataset)
            ids = list(index) + [keys[it] for it in missing]
            if tensors:
                tensors = {k: torch.cat([tensors[k], new[k]]) for k in new}
            else:
                tensors = new
            index = {k: i for i, k in enumerate(ids)}
            self.dir.mkdir(parents=True, exist_ok=True)
            tmp = self._path(dataset).with_suffix(".tmp")
            save_file(tensors, tmp, metadata={"ids": json.dumps(ids)})
            tmp.replace(self._path(dataset))
        rows = torch.tensor([index[keys[it]] for it in items])
        return Features(
            [it.key for it in items],
            tensors["text"][rows],
            tensors["image"][rows],
            tensors["mask"][rows].bool(),
        )

    def _encode(self, items: list[Item], progress: bool, dataset: str) -> dict[str, torch.Tensor]:
        n = len(items)
        text = torch.zeros(n, self.encoder.text_backbone.dim)
        image = torch.zeros(n, self.encoder.image_backbone.dim)
        mask = torch.zeros(n, 2, dtype=torch.uint8)
        bar = tqdm(total=n, desc=f"encoding {dataset}", unit="post", disable=not progress)
        step = self.batch_size * 8
        for start in range(0, n, step):
            chunk = items[start : start + step]
            t_rows = [i for i, it in enumerate(chunk) if it.has_text]
            if t_rows:
                feats = self.encoder.encode_texts([chunk[i].text for i in t_rows], self.batch_size)
                text[[start + i for i in t_rows]] = feats
                mask[[start + i for i in t_rows], TEXT] = 1
            i_rows = [i for i, it in enumerate(chunk) if it.has_image]
            if i_rows:
                paths = [chunk[i].image_path for i in i_rows]
                pics = [self.encoder.decode(p.read_bytes()) for p in paths if p is not None]
                feats = self.encoder.encode_images(pics, self.batch_size // 2)
                image[[start + i for i in i_rows]] = feats
                mask[[start + i for i in i_rows], IMAGE] = 1
            bar.update(len(chunk))
        bar.close()
        return {"text": text, "image": image, "mask": mask}
