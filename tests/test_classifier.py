"""The served classifier on the bundled sample: every post answered, modalities reported."""

import json
from pathlib import Path

import pytest

from emostream.model.classifier import EmotionClassifier
from emostream.model.encoder import PostInput
from emostream.model.training.labels import EMOTIONS, SENTIMENTS

SAMPLE = Path(__file__).resolve().parent.parent / "model" / "sample"


@pytest.fixture(scope="module")
def clf():
    return EmotionClassifier(device="cpu")


@pytest.fixture(scope="module")
def sample():
    recs = [json.loads(x) for x in (SAMPLE / "posts.jsonl").read_text().splitlines() if x]
    posts = [
        PostInput(r["text"], (SAMPLE / "images" / r["image"]).read_bytes() if r["image"] else None)
        for r in recs
    ]
    return recs, posts


def test_every_sample_post_gets_a_prediction(clf, sample):
    recs, posts = sample
    preds = clf.classify(posts)
    assert len(preds) == len(recs)
    for r, p in zip(recs, preds, strict=True):
        if p.status == "unsupported_language":  # the Spanish post, no picture
            assert p.language == "es" and r["image"] is None and p.label == ""
            continue
        assert p.label in EMOTIONS and p.sentiment in SENTIMENTS
        assert abs(sum(p.emotions.values()) - 1) < 1e-3
        assert abs(sum(p.sentiments.values()) - 1) < 1e-3
        assert p.model_version == clf.version == clf.card["version"]
        broken = r["image"] in ("broken-truncated.jpg", "not-an-image.jpg")
        if r["image"] is None:
            assert p.modalities == ("text",) and p.image_status == "absent"
        elif broken:
            assert p.modalities == ("text",) and p.image_status == "error:undecodable"
        elif r["text"] is None:
            assert p.modalities == ("image",)
        else:
            assert p.modalities == ("text", "image")


SAMPLE_EXPECTED = {
    "sample:005": "anger",  # r/rage: someone keyed my car ... Furious.
    "sample:030": "anger",  # the train is late AGAIN 🤬🤬
    "sample:031": "joy",  # 🥳🎉🎉
    "sample:032": "neutral",  # a question
    "sample:033": "sadness",  # my exam results 😭💔
    "sample:034": "unsupported_language",  # Spanish, no picture
}
"""What the served model reads right in the demo. Three anger posts without an anger word
are still missed (sample:004 the landlord kept our deposit AGAIN, sample:007 the update
deleted my settings, sample:029 the clinic closed its doors on us); docs/labels.md."""


def test_the_demo_sample_reads_as_a_person_would(clf, sample):
    """What `make demo` shows: its emoji and question posts, its r/rage and
    r/mildlyinfuriating posts, and its post in Spanish."""
    recs, posts = sample
    got = {r["id"]: p.label or p.status for r, p in zip(recs, clf.classify(posts), strict=True)}
    assert {i: got[i] for i in SAMPLE_EXPECTED} == SAMPLE_EXPECTED


def test_obvious_texts_get_the_obvious_emotion(clf):
    texts = {
        "joy": "I am so happy, this is the best day of my life!",
        "anger": "I am furious, they lied to us again and I am so angry",
        "fear": "I am terrified, something is moving in the dark outside my window",
    }
    preds = clf.classify([PostInput(t) for t in texts.values()])
    assert [p.label for p in preds] == list(texts)
    assert preds[0].sentiment == "positive" and preds[1].sentiment == "negative"


def test_post_with_nothing_usable(clf):
    with pytest.raises(ValueError, match="neither text nor a usable image"):
        clf.classify([PostInput(None, b"junk")])
    assert clf.classify([PostInput(None, b"junk"), PostInput("hi")], strict=False)[0] is None
