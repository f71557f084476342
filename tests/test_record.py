"""The wire record: round trip, strict decoding with reason codes, and properties."""

import json
from datetime import UTC, datetime

import pytest
from helpers import fuzz_examples
from hypothesis import given, settings
from hypothesis import strategies as st

from emostream.record import RecordError, decode, encode, make_post

GOOD = {
    "v": 1,
    "id": "reddit:t3_abc",
    "source": "reddit",
    "channel": "r/happy",
    "created_at": "2026-11-24T08:00:00Z",
    "ingested_at": "2026-11-24T08:00:01Z",
    "text": "hello",
    "image_url": None,
    "author": "a",
    "permalink": None,
    "meta": {},
}


def raw(**changes) -> bytes:
    return json.dumps({**GOOD, **changes}).encode()


def test_round_trip():
    post = make_post(
        id="flickr:1",
        source="flickr",
        created_at=datetime(2026, 1, 1),
        text="t",
        image_url="https://x/y.jpg",
        meta={"k": 1},
    )
    again = decode(encode(post))
    assert again == post and again.created_at.tzinfo is not None


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "invalid_json"),
        (b"{", "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        (b"[]", "invalid_schema"),
        (b'"text"', "invalid_schema"),
        (b'{"v": "1"}', "invalid_schema"),
        (raw(v=2), "unknown_version"),
        (raw(v=0), "unknown_version"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "id"}).encode(), "invalid_schema"),
        (raw(text=None), "empty_post"),
        (raw(text="   "), "empty_post"),
        (raw(text=123), "invalid_schema"),
        (raw(created_at="yesterday"), "invalid_schema"),
        (raw(created_at="2026-11-24T08:00:00"), "naive_timestamp"),
        (raw(source="myspace"), "bad_source"),
        (raw(id=""), "bad_id"),
        (raw(id="a\nb"), "bad_id"),
        (raw(text="x" * 50_000), "text_too_long"),
        (b"x" * 1_000_001, "message_too_large"),
        (None, "empty_message"),
    ],
)
def test_bad_messages_get_a_reason(data, reason):
    with pytest.raises(RecordError) as err:
        decode(data)
    assert err.value.reason == reason


def _with_raw(field: str, raw_value: bytes) -> bytes:
    """A valid post whose ``field`` holds ``raw_value`` as the bytes of a JSON string."""
    return raw(**{field: "PLACEHOLDER"}).replace(b"PLACEHOLDER", raw_value)


DEEP = b"[" * 1000 + b"]" * 1000


@pytest.mark.parametrize(
    "data, reason",
    [
        # invalid UTF-8 inside any string: one byte, a CESU-8 surrogate, an overlong form
        *[(_with_raw(f, b"a\xffb"), "invalid_utf8") for f in ("text", "id", "channel")],
        *[(_with_raw(f, b"a\xed\xa0\x80b"), "invalid_utf8") for f in ("text", "source")],
        (_with_raw("image_url", b"https://x/\xc0\xafa.jpg"), "invalid_utf8"),
        (raw(meta={"PLACEHOLDER": 1}).replace(b"PLACEHOLDER", b"k\xfe"), "invalid_utf8"),
        ("a lone surrogate \ud800 in a str", "invalid_utf8"),
        # nesting: in an unknown field, in meta, as the record itself
        (raw()[:-1] + b', "zz": ' + DEEP + b"}", "too_deep"),
        (raw()[:-1] + b', "meta": {"a": ' + DEEP + b"}}", "too_deep"),
        (b'{"a":' * 1000 + b"1" + b"}" * 1000, "too_deep"),
        (b"[" * 100_000, "too_deep"),
        # channels: the count separator, control characters, too long
        (raw(channel="r/a|joy"), "bad_channel"),
        (raw(channel="r/a\nb"), "bad_channel"),
        (raw(channel="c" * 101), "bad_channel"),
    ],
)
def test_poison_pills_get_a_reason(data, reason):
    with pytest.raises(RecordError) as err:
        decode(data)
    assert err.value.reason == reason


def test_brackets_inside_strings_do_not_count_as_nesting():
    text = '[[[{{{ "quoted" \\ [[[ ' * 40
    assert decode(raw(text=text, meta={"k": "]]]" * 50})).text == text
    assert decode(raw(meta={"a": "b"}, x=[[[[1]]]])).id == GOOD["id"]


def test_odd_but_valid_posts_decode():
    post = decode(raw(text="\u202eevil\u0000 zero\u200b width 🙂 \x07", image_url=None))
    assert "🙂" in post.text
    assert decode(raw(text=None, image_url="https://example.com/a.jpg")).image_url


@pytest.mark.fuzz
@settings(max_examples=fuzz_examples(300), deadline=None)
@given(st.binary(max_size=300))
def test_decoder_never_raises_anything_but_record_error(data):
    try:
        decode(data)
    except RecordError as err:
        assert err.reason


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@pytest.mark.fuzz
@settings(max_examples=fuzz_examples(300), deadline=None)
@given(st.dictionaries(st.sampled_from(list(GOOD) + ["x"]), json_values, max_size=12))
def test_any_json_object_decodes_or_is_refused_with_a_reason(obj):
    try:
        post = decode(json.dumps({**GOOD, **obj}).encode())
    except RecordError as err:
        assert err.reason in {
            "invalid_json",
            "invalid_schema",
            "unknown_version",
            "empty_post",
            "bad_id",
            "bad_source",
            "text_too_long",
            "naive_timestamp",
            "bad_image_url",
            "bad_channel",
        }
    else:
        assert post.v == 1 and (post.has_text or post.image_url)


@settings(max_examples=200, deadline=None)
@given(
    st.text(max_size=500).filter(str.strip),
    st.text(max_size=60).filter(lambda s: s.isprintable() and s),
)
def test_any_text_and_id_survive_the_wire(text, pid):
    post = make_post(id=pid, source="replay", created_at=datetime.now(UTC), text=text)
    assert decode(encode(post)) == post
