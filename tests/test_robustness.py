"""The served model on short posts written for this project (tests/data/robustness.jsonl).

None of these posts comes from a dataset. They cover every emotion and neutral, with
tagged subsets for negation, slang, emoji, typos and mixed emotions (a mixed post counts
as right when the model names any of its listed emotions). Sentiment is scored where the
post has one (a surprise can be good or bad news).

Each must reach 0.90; the shipped model reaches 0.908 (emotion) and 0.905 (sentiment).
Its misses are mostly neutral statements and questions read as joy or surprise (GoEmotions,
the only source of neutral, files curiosity under surprise); docs/model.md lists them.
"""

import json
from collections import defaultdict
from pathlib import Path

import pytest

from emostream.model.classifier import EmotionClassifier
from emostream.model.encoder import PostInput
from emostream.model.labels import EMOTIONS

POSTS = Path(__file__).resolve().parent / "data" / "robustness.jsonl"
REQUIRED = 0.90
WITH_A_PICTURE = 0.85
SENTIMENT_WITH_A_PICTURE = 0.75
SAMPLE_IMAGES = Path(__file__).resolve().parents[1] / "model" / "sample" / "images"


def load_posts() -> list[dict]:
    return [json.loads(line) for line in POSTS.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture(scope="module")
def scored():
    posts = load_posts()
    preds = EmotionClassifier(device="cpu").classify([PostInput(p["text"]) for p in posts])
    return posts, preds


def _right(post: dict, pred) -> bool:
    want = post["emotion"]
    return pred.label in want if isinstance(want, list) else pred.label == want


def test_the_set_covers_every_emotion_and_every_tag():
    posts = load_posts()
    assert len(posts) >= 150
    single = [p["emotion"] for p in posts if isinstance(p["emotion"], str)]
    for e in EMOTIONS:
        assert single.count(e) >= 15, e
    tags = {t for p in posts for t in p["tags"]}
    assert {"negation", "slang", "emoji", "typo", "mixed"} <= tags
    assert len({p["text"].lower() for p in posts}) == len(posts)


def test_emotion_and_sentiment_accuracy(scored):
    posts, preds = scored
    by_tag: dict[str, list[bool]] = defaultdict(list)
    misses = []
    for p, pred in zip(posts, preds, strict=True):
        ok = _right(p, pred)
        for tag in p["tags"]:
            by_tag[tag].append(ok)
        if not ok:
            misses.append((p["text"], p["emotion"], pred.label))
    emotion_acc = sum(_right(p, q) for p, q in zip(posts, preds, strict=True)) / len(posts)
    rated = [(p, q) for p, q in zip(posts, preds, strict=True) if p["sentiment"]]
    sentiment_acc = sum(p["sentiment"] == q.sentiment for p, q in rated) / len(rated)
    table = {t: f"{sum(v) / len(v):.2f} of {len(v)}" for t, v in sorted(by_tag.items())}
    print(f"emotion {emotion_acc:.3f}, sentiment {sentiment_acc:.3f}; by tag {table}")
    assert emotion_acc >= REQUIRED, (emotion_acc, misses)
    assert sentiment_acc >= REQUIRED, sentiment_acc


def test_scores_are_calibrated_probabilities(scored):
    _, preds = scored
    for pred in preds:
        assert abs(sum(pred.emotions.values()) - 1) < 1e-3
        assert max(pred.emotions, key=pred.emotions.get) == pred.label


@pytest.mark.parametrize("picture", ["flower.jpg", "sky.jpg"])
def test_a_picture_beside_the_post_does_not_take_it_over(scored, picture):
    """The same posts, each beside a photo of the demo sample that says nothing about it:
    emotion stays the text's (FusionConfig.modality_pool; before it, a flower photo took
    the set to 0.39), and so does sentiment, mostly (FusionConfig.fused_for: the fused
    answer counts as far as the text reads like a tweet; before it, 0.30 beside the
    flower). The pooled answers still hear the picture, hence the lower bars."""
    posts, _ = scored
    image = (SAMPLE_IMAGES / picture).read_bytes()
    clf = EmotionClassifier(device="cpu")
    preds = clf.classify([PostInput(p["text"], image) for p in posts])
    assert all(q.modalities == ("text", "image") for q in preds)
    accuracy = sum(_right(p, q) for p, q in zip(posts, preds, strict=True)) / len(posts)
    rated = [(p, q) for p, q in zip(posts, preds, strict=True) if p["sentiment"]]
    sentiment = sum(p["sentiment"] == q.sentiment for p, q in rated) / len(rated)
    print(f"{picture}: emotion {accuracy:.3f}, sentiment {sentiment:.3f}")
    assert accuracy >= WITH_A_PICTURE, accuracy
    assert sentiment >= SENTIMENT_WITH_A_PICTURE, sentiment
