"""Training-time text augmentation (model/training/augmentation.py)."""

import random

from emostream.model.training.augmentation import (
    INTENSE,
    add_emoji,
    add_interjection,
    augment,
    intensify,
    misspell,
    negated_contrast,
)


def test_intensify_swaps_a_mild_word_for_a_strong_word_of_the_same_emotion():
    out = intensify("I was so angry at the referee", random.Random(0))
    assert out is not None and "angry" not in out
    assert any(word in out for word in INTENSE["anger"])
    assert intensify("The bus leaves at nine", random.Random(0)) is None


def test_misspell_changes_spelling_but_keeps_the_words_recognisable():
    text = "I really want to know what you are doing tonight because it matters"
    outs = {misspell(text, random.Random(seed)) for seed in range(20)}
    assert len(outs) > 10
    for out in outs:
        assert len(out.split()) >= len(text.split()) - 3


def test_an_emoji_of_the_texts_own_feeling_is_added():
    out = add_emoji("I got the job", "joy", random.Random(1))
    assert out is not None and out != "I got the job" and "I got the job" in out
    assert add_emoji("The bus leaves at nine", "neutral", random.Random(1)) is None


def test_a_chat_interjection_of_the_texts_own_emotion_is_added():
    out = add_interjection("the train is late again", "anger", random.Random(4))
    assert out is not None and "the train is late again" in out and out != "the train is late again"
    assert add_interjection("The bus leaves at nine", "neutral", random.Random(4)) is None


def test_a_negated_contrast_goes_before_a_text_of_the_other_valence():
    out = negated_contrast("I got the job", "positive", random.Random(2))
    assert out is not None and out.endswith("I got the job") and out.lower().startswith("no")
    assert negated_contrast("The bus leaves at nine", "neutral", random.Random(2)) is None


def test_augment_always_rewrites_and_is_reproducible_from_the_seed():
    texts = ["I am sad today", "The bus leaves at nine", "lol"]
    for text in texts:
        a = augment(text, None, None, random.Random(5))
        assert a == augment(text, None, None, random.Random(5))
    assert augment("I am sad today", "sadness", "negative", random.Random(3)) != "I am sad today"
