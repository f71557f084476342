"""Skipping repeated work: the reuse window, and the batch processor that uses it."""

from __future__ import annotations

import asyncio
import shutil

import pytest
import torch

from emostream.model.encoder import PostInput
from emostream.model.training.datasets import Dataset
from emostream.record import encode, make_post, now
from emostream.worker.feature_reuse import FeatureReuse, digest


# -- the window ---------------------------------------------------------------------------------
def test_returns_what_was_put_and_copies_it():
    reuse = FeatureReuse(size=4)
    row = torch.arange(3.0)
    reuse.put("text", digest("hello"), row)
    row += 1  # the caller's tensor changes; the window keeps its copy
    assert torch.equal(reuse.get("text", digest("hello")), torch.arange(3.0))
    assert reuse.get("text", digest("other")) is None
    assert reuse.get("image_url", digest("hello")) is None  # kinds are separate


def test_evicts_least_recently_used_beyond_size():
    reuse = FeatureReuse(size=2)
    for k in "abc":
        reuse.put("text", k, torch.zeros(1))
    assert reuse.get("text", "a") is None
    assert reuse.get("text", "b") is not None  # b is now the most recent
    reuse.put("text", "d", torch.zeros(1))
    assert reuse.get("text", "c") is None
    assert reuse.get("text", "b") is not None and reuse.get("text", "d") is not None


def test_entries_expire_after_ttl():
    clock = [0.0]
    reuse = FeatureReuse(size=10, ttl_s=60, clock=lambda: clock[0])
    reuse.put("image_url", "https://i.example/a.jpg", torch.ones(2))
    clock[0] = 59
    assert reuse.get("image_url", "https://i.example/a.jpg") is not None
    clock[0] = 61
    assert reuse.get("image_url", "https://i.example/a.jpg") is None
    assert len(reuse) == 0


def test_size_zero_turns_it_off():
    reuse = FeatureReuse(size=0)
    reuse.put("text", "a", torch.zeros(1))
    assert reuse.get("text", "a") is None and len(reuse) == 0
    with pytest.raises(ValueError):
        FeatureReuse(size=-1)


# -- the batch processor ------------------------------------------------------------------------
def sample(name: str, **labels) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


def computed(modality: str) -> float:
    return sample("emostream_features_computed_total", modality=modality)


def fetches() -> float:
    return sample("emostream_image_fetch_seconds_count")


def test_repeats_are_encoded_once_and_predict_the_same(processor, classifier, data_dir, tmp_path):
    from emostream.testing import serve_directory
    from emostream.worker.pipeline import Message

    items = Dataset.load("mvsa-single", data_dir).split("test")[:2]
    pics = tmp_path / "pics"
    pics.mkdir()
    shutil.copy(items[0].image_path, pics / "a.jpg")
    shutil.copy(items[0].image_path, pics / "copy-of-a.jpg")  # same bytes, another URL
    shutil.copy(items[1].image_path, pics / "b.jpg")
    server = serve_directory(pics)
    t0, t1 = items[0].text, items[1].text

    def post(pid, text, name):
        url = f"{server.url}/{name}" if name else None
        p = make_post(id=pid, source="twitter", created_at=now(), text=text, image_url=url)
        return Message(pid.encode(), encode(p))

    batch1 = [
        post("p1", t0, "a.jpg"),
        post("p2", t0, "a.jpg"),  # same text, same URL, same batch
        post("p3", t1, "copy-of-a.jpg"),  # same picture at another URL
        post("p4", t1, "b.jpg"),
    ]
    batch2 = [post("p5", t0, "a.jpg"), post("p6", None, "b.jpg")]  # all seen in batch 1
    proc = processor()
    text0, image0, fetch0 = computed("text"), computed("image"), fetches()
    url0 = sample("emostream_features_reused_total", kind="image_url")

    async def run():
        r1 = await proc.process(batch1)
        assert computed("text") - text0 == 2
        assert computed("image") - image0 == 2  # a and b; copy-of-a is a's bytes
        assert fetches() - fetch0 == 3  # a.jpg once, copy-of-a.jpg, b.jpg
        r2 = await proc.process(batch2)
        assert computed("text") - text0 == 2  # nothing new to encode
        assert computed("image") - image0 == 2
        assert sample("emostream_features_reused_total", kind="image_url") - url0 == 2
        assert fetches() - fetch0 == 3  # batch 2 fetched nothing
        return r1, r2

    try:
        r1, r2 = asyncio.run(run())
    finally:
        server.stop()

    # the reused features give exactly what encoding afresh gives
    raw = {n: (pics / n).read_bytes() for n in ("a.jpg", "copy-of-a.jpg", "b.jpg")}
    fresh = classifier.classify(
        [
            PostInput(t0, raw["a.jpg"]),
            PostInput(t0, raw["a.jpg"]),
            PostInput(t1, raw["copy-of-a.jpg"]),
            PostInput(t1, raw["b.jpg"]),
            PostInput(t0, raw["a.jpg"]),
            PostInput(None, raw["b.jpg"]),
        ]
    )
    got = r1.results + r2.results
    assert [r.id for r in got] == ["p1", "p2", "p3", "p4", "p5", "p6"]
    for res, want in zip(got, fresh, strict=True):
        assert res.label == want.label
        assert res.prediction.modalities == want.modalities
        for e, p in want.emotions.items():
            assert res.prediction.emotions[e] == pytest.approx(p, abs=1e-4)


def test_off_encodes_everything(processor, data_dir):
    from emostream.worker.pipeline import Message

    texts = [i.text for i in Dataset.load("goemotions", data_dir).split("test")[:2]]
    msgs = [
        Message(None, encode(make_post(id=f"q{k}", source="reddit", created_at=now(), text=t)))
        for k, t in enumerate([texts[0], texts[1], texts[0]])
    ]
    proc = processor(reuse_size=0)
    before = computed("text")

    async def run():
        await proc.process(msgs)
        # within one batch the repeat is still encoded once: that needs no window
        assert computed("text") - before == 2
        await proc.process(msgs[:1])
        assert computed("text") - before == 3  # no window: encoded again

    asyncio.run(run())
