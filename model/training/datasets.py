"""Loaders for the six research datasets in ``../shared/data`` (the ``posts.csv`` format).

Every dataset is one folder with ``posts.csv`` and, where it has them, ``images/<id>.jpg``.
All columns are read as strings and empty fields stay empty strings (some ids look
numeric but are identifiers). The data never goes into this repository; point
``EMOSTREAM_DATA_DIR`` (or ``--data-dir``) at the folder.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

SPLITS = ("train", "val", "test")

#: Which modalities each dataset really carries (image URLs without files do not count).
MODALITIES: dict[str, tuple[str, ...]] = {
    "reddit-emotions": ("text",),
    "flickr-fi-text": ("text",),
    "goemotions": ("text",),
    "emotion6": ("image",),
    "mvsa-single": ("text", "image"),
    "twitter-ii": ("text", "image"),
}
DATASETS: tuple[str, ...] = tuple(MODALITIES)


def default_data_dir() -> Path:
    """``$EMOSTREAM_DATA_DIR``, else ``../shared/data`` next to the repository."""
    env = os.environ.get("EMOSTREAM_DATA_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "data"


@dataclass(frozen=True)
class Item:
    """One labelled post of a dataset."""

    dataset: str
    id: str
    split: str
    label: str
    text: str
    image_path: Path | None
    extra: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def key(self) -> str:
        """Unique across datasets: ``<dataset>/<id>``."""
        return f"{self.dataset}/{self.id}"

    @property
    def has_text(self) -> bool:
        return bool(self.text.strip())

    @property
    def has_image(self) -> bool:
        return self.image_path is not None


@dataclass
class Dataset:
    """One dataset folder: its items, labels and modalities."""

    name: str
    root: Path

    def __post_init__(self) -> None:
        if self.name not in MODALITIES:
            raise ValueError(f"unknown dataset {self.name!r}; known: {', '.join(DATASETS)}")
        if not (self.root / "posts.csv").is_file():
            raise FileNotFoundError(
                f"{self.root / 'posts.csv'} not found: set EMOSTREAM_DATA_DIR to the data folder"
            )

    @classmethod
    def load(cls, name: str, data_dir: Path | None = None) -> Dataset:
        return cls(name, (data_dir or default_data_dir()) / name)

    @property
    def modalities(self) -> tuple[str, ...]:
        return MODALITIES[self.name]

    @cached_property
    def labels(self) -> tuple[str, ...]:
        """Class names in the order of ``MANIFEST.json`` (sorted), the order of class indices."""
        manifest = self.root.parent / "MANIFEST.json"
        if manifest.is_file():
            return tuple(json.loads(manifest.read_text())["datasets"][self.name]["labels"])
        return tuple(sorted({i.label for i in self.items}))

    @cached_property
    def items(self) -> list[Item]:
        items = []
        with open(self.root / "posts.csv", newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                image = row.get("image", "")
                path = self.root / image if image else None
                if path is not None and not path.is_file():
                    raise FileNotFoundError(f"{self.name}: row {row['id']} names missing {path}")
                fixed = {"id", "split", "label", "text", "image"}
                extra = {k: v or "" for k, v in row.items() if k not in fixed}
                items.append(
                    Item(
                        dataset=self.name,
                        id=row["id"],
                        split=row["split"],
                        label=_served_label(self.name, row["label"], extra),
                        text=row["text"] or "",
                        image_path=path,
                        extra=extra,
                    )
                )
        return items

    def split(self, split: str) -> list[Item]:
        """Items of one split: any value of the ``split`` column (train, val, test, ...)."""
        out = [i for i in self.items if i.split == split]
        if not out:
            present = sorted({i.split for i in self.items})
            raise ValueError(f"{self.name} has no split {split!r}; it has {present}")
        return out

    def label_index(self, label: str) -> int:
        return self.labels.index(label)


def _served_label(dataset: str, label: str, extra: dict[str, str]) -> str:
    """GoEmotions: the comment's first served emotion, from its 28 labels by the mapping in
    ``labels.GOEMOTIONS_SERVED`` (the published Ekman label stays in ``extra["ekman_label"]``);
    every other dataset: its label as it is."""
    if dataset != "goemotions" or not extra.get("labels"):
        return label
    from emostream.model.training.labels import goemotions_emotions

    extra["ekman_label"] = label
    served = goemotions_emotions(extra["labels"].split("|"))
    return served[0] if served else label
