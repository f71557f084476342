"""Language detection (model/language.py) and what the classifier does with a text it
cannot read (``unsupported_language``: image, skip, read)."""

from pathlib import Path

import pytest

from emostream.model.classifier import EmotionClassifier
from emostream.model.encoder import PostInput
from emostream.model.language import UNDETERMINED, LanguageDetector, letters_of, readable
from emostream.settings import SettingError
from emostream.worker.settings import WorkerSettings

FLOWER = (Path(__file__).resolve().parents[1] / "model/sample/images/flower.jpg").read_bytes()
SPANISH = "La comida estaba podrida y el camarero se rió de nosotros, qué vergüenza."
GERMAN = "Ich bin so wütend, der Zug ist schon wieder ausgefallen."


@pytest.fixture(scope="module")
def detector():
    return LanguageDetector()


@pytest.mark.parametrize(
    "text, language",
    [
        (SPANISH, "es"),
        (GERMAN, "de"),
        ("Je suis tellement heureuse aujourd'hui, j'ai eu mon diplôme !", "fr"),
        ("今日はとても悲しい日でした。", "ja"),
        ("오늘 정말 슬퍼요.", "ko"),  # short, but another script
        ("Я очень зол на своего соседа.", "ru"),
    ],
)
def test_other_languages_are_named(detector, text, language):
    assert detector.detect(text) == language
    assert not readable(detector.detect(text))


@pytest.mark.parametrize(
    "text",
    [
        "The meeting has been moved to Thursday at 10am in room 4B.",
        "lets goooo we won the championship!!! 🎉🎉",
        "ngl this new album slaps",
        "Just had the best croissant in Paris, merci to the lovely baker!",
        "@jose_garcia thanks for the tip https://example.com/página #fiesta",
    ],
)
def test_english_posts_stay_readable(detector, text):
    assert readable(detector.detect(text)), detector.detect(text)


@pytest.mark.parametrize("text", ["😡😡😡", "lol", ":)", "🎉 10/10", "ok"])
def test_too_little_text_is_undetermined_and_read(detector, text):
    assert detector.detect(text) == UNDETERMINED
    assert readable(UNDETERMINED)


def test_links_mentions_and_emojis_are_not_words():
    assert letters_of("@anna look 😍 https://t.co/x #sunset!!! 42") == "look sunset"


def test_an_unknown_detector_is_refused():
    with pytest.raises(ValueError, match="not one of"):
        LanguageDetector("guesswork")


@pytest.fixture(scope="module")
def classifiers():
    return {p: EmotionClassifier(device="cpu", unsupported_language=p) for p in ("image", "skip")}


def test_foreign_text_alone_is_not_classified(classifiers):
    [p] = classifiers["image"].classify([PostInput(SPANISH)])
    assert (p.status, p.language, p.label, p.sentiment, p.modalities) == (
        "unsupported_language",
        "es",
        "",
        "",
        (),
    )
    assert p.emotions == {} and p.sentiments == {}


def test_foreign_text_with_a_picture_is_classified_from_the_picture(classifiers):
    [p] = classifiers["image"].classify([PostInput(GERMAN, FLOWER)])
    assert p.status == "classified" and p.modalities == ("image",) and p.language == "de"
    assert p.label in p.emotions


def test_skip_never_classifies_a_foreign_post(classifiers):
    [p, q] = classifiers["skip"].classify([PostInput(GERMAN, FLOWER), PostInput("So happy!")])
    assert p.status == "unsupported_language" and p.modalities == ()
    assert q.status == "classified" and q.language in ("en", UNDETERMINED)


def test_read_reads_every_language_as_english():
    clf = EmotionClassifier(device="cpu", unsupported_language="read")
    [p] = clf.classify([PostInput(SPANISH)])
    assert p.status == "classified" and p.modalities == ("text",) and p.language == "es"


def test_the_policy_is_a_setting_with_a_clear_error():
    assert WorkerSettings(env={}).unsupported_language == "image"
    assert WorkerSettings(env={"EMOSTREAM_UNSUPPORTED_LANGUAGE": "skip"}).unsupported_language == (
        "skip"
    )
    with pytest.raises(SettingError, match="not one of image, skip, read"):
        WorkerSettings(env={"EMOSTREAM_UNSUPPORTED_LANGUAGE": "translate"})
    with pytest.raises(ValueError, match="unsupported_language must be one of"):
        EmotionClassifier(device="cpu", unsupported_language="translate")
