"""The model's half of a batch: features (reused where possible) and one forward pass.

All torch work runs in one thread of its own: each thread that runs a parallel torch op
on CPU gets an OpenMP team of its own, and idle teams spinning beside the busy one cost
the model about a fifth of its speed on 2 cores (bench/cpu_contention.py). Running there
also keeps the event loop free (heartbeats, fetches) during the forward pass.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import torch

from emostream.model.classifier import EmotionClassifier, Prediction
from emostream.model.encoder import IMAGE, TEXT, EncodedBatch, PostInput
from emostream.record import Post

from . import metrics as m
from .feature_reuse import FeatureReuse, digest
from .image_preparation import PreparedImages


class BatchClassifier:
    def __init__(self, classifier: EmotionClassifier, reuse: FeatureReuse) -> None:
        self.classifier = classifier
        self.reuse = reuse
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="model")

    async def warm_up(self) -> None:
        """Load both encoders with one tiny batch, in the model thread."""
        warm = PostInput("warm up", torch.zeros(3, 224, 224, dtype=torch.uint8))
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self.classifier.classify, [warm])

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    async def classify(self, posts: list[Post], images: PreparedImages) -> list[Prediction | None]:
        """A prediction per post; None for a post with neither text nor a usable picture."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._run, posts, images)

    def _run(self, posts: list[Post], images: PreparedImages) -> list[Prediction | None]:
        enc = self.classifier.encoder
        n = len(posts)
        mask = torch.zeros(n, 2, dtype=torch.bool)
        text = torch.zeros(n, enc.text_backbone.dim)
        image = torch.zeros(n, enc.image_backbone.dim)
        language = [""] * n
        texts = {i: p.text or "" for i, p in enumerate(posts) if p.has_text}
        for i, t in texts.items():
            language[i] = enc.languages.detect(t)
        t_rows = list(enc.readable_texts(texts, language))
        if t_rows:
            text[t_rows] = self._text_features(posts, t_rows)
            mask[t_rows, TEXT] = True
        for i, feature in self._image_features(posts, images).items():
            image[i] = feature
            mask[i, IMAGE] = True
        batch = EncodedBatch(text, image, mask, images.status, language)
        return self.classifier.predict_encoded(batch)

    def _text_features(self, posts: list[Post], rows: list[int]) -> torch.Tensor:
        """Features of ``posts[rows]``' texts: each distinct text encoded once, recent ones
        reused."""
        out = torch.zeros(len(rows), self.classifier.encoder.text_backbone.dim)
        todo: dict[bytes, list[int]] = {}
        for j, i in enumerate(rows):
            key = digest(posts[i].text or "")
            feature = self.reuse.get("text", key) if key not in todo else None
            if feature is not None:
                out[j] = feature
                m.FEATURES_REUSED.labels("text").inc()
            else:
                todo.setdefault(key, []).append(j)
        if todo:
            texts = [posts[rows[js[0]]].text or "" for js in todo.values()]
            feats = self.classifier.encoder.encode_texts(texts)
            m.FEATURES_COMPUTED.labels("text").inc(len(texts))
            for (key, js), feature in zip(todo.items(), feats, strict=True):
                out[js] = feature
                self.reuse.put("text", key, feature)
                if len(js) > 1:
                    m.FEATURES_REUSED.labels("text").inc(len(js) - 1)
        return out

    def _image_features(self, posts: list[Post], images: PreparedImages) -> dict:
        """Image features by post position: reused ones, then each distinct picture encoded
        once and remembered by its bytes and its URL."""
        feats = dict(images.reused)
        groups: dict[bytes | None, list[int]] = {}
        for i, pic in enumerate(images.pictures):
            if pic is not None:
                groups.setdefault(images.image_keys[i], []).append(i)
        if groups:
            pics = [images.pictures[rows[0]] for rows in groups.values()]
            encoded = self.classifier.encoder.encode_images(pics)
            m.FEATURES_COMPUTED.labels("image").inc(len(pics))
            for (key, rows), feature in zip(groups.items(), encoded, strict=True):
                self.reuse.put("image_bytes", key, feature)
                for i in rows:
                    feats[i] = feature
                    self.reuse.put("image_url", posts[i].image_url, feature)
                if len(rows) > 1:
                    m.FEATURES_REUSED.labels("image_bytes").inc(len(rows) - 1)
        return feats
