"""The wire record: round trip, strict decoding with reason codes, and properties."""

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emostream.ingest.record import RecordError, decode, encode, make_post

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


def test_odd_but_valid_posts_decode():
    post = decode(raw(text="\u202eevil\u0000 zero\u200b width 🙂 \x07", image_url=None))
    assert "🙂" in post.text
    assert decode(raw(text=None, image_url="https://example.com/a.jpg")).image_url


@settings(max_examples=300, deadline=None)
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


@settings(max_examples=300, deadline=None)
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
