"""Replay files: the research posts.csv format, JSONL and Parquet, pacing, bad rows."""

import json
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from emostream.ingest.sources.replay import count_rows, files_of, replay
from emostream.pacing import Pacer
from emostream.record import Post, RecordError


def test_research_posts_csv_becomes_posts(data_dir):
    path = data_dir / "mvsa-single" / "posts.csv"
    out = list(
        replay([path], run_id="r1", image_base_url="http://img.local/data/mvsa-single", limit=5)
    )
    assert len(out) == 5 and all(isinstance(p, Post) for p in out)
    p = out[0]
    assert p.id.startswith("twitter:mvsa-single/") and p.run_id == "r1"
    assert p.image_url == f"http://img.local/data/mvsa-single/images/{p.id.split('/')[-1]}.jpg"
    assert p.meta["dataset"] == "mvsa-single" and p.meta["label"] in (
        "positive",
        "neutral",
        "negative",
    )


def test_reddit_rows_keep_channel_and_time(data_dir):
    p = next(iter(replay([data_dir / "reddit-emotions" / "posts.csv"], limit=1)))
    assert p.source == "reddit" and p.channel.startswith("r/")
    assert p.created_at.year < 2020  # from created_utc, not "now"
    assert p.image_url and p.image_url.startswith("http")  # the original link


def test_image_only_rows_without_base_url_are_skipped_with_a_reason(data_dir):
    out = list(replay([data_dir / "emotion6" / "posts.csv"], limit=3))
    assert all(isinstance(e, RecordError) and e.reason == "empty_post" for e in out)


def test_jsonl_and_parquet_and_folders(tmp_path):
    rows = [
        {"id": "a", "text": "hello", "created_at": "2026-01-01T00:00:00Z"},
        {"id": "b", "text": None, "image_url": "https://x/y.jpg"},
        {"id": "c", "text": ""},
    ]
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "one.jsonl").write_text(
        "\n".join(json.dumps(r) for r in rows) + "\n{broken json\n"
    )
    keys = ["id", "text", "image_url", "created_at"]
    table = pa.Table.from_pylist([{k: r.get(k) for k in keys} for r in rows])
    pq.write_table(table, tmp_path / "d" / "two.parquet")
    files = files_of([tmp_path / "d"])
    assert [f.name for f in files] == ["one.jsonl", "two.parquet"]
    assert count_rows(files) == 7
    out = list(replay(files))
    posts = [p for p in out if isinstance(p, Post)]
    errors = [e.reason for e in out if isinstance(e, RecordError)]
    assert [p.id for p in posts] == ["replay:a", "replay:b", "replay:a", "replay:b"]
    assert sorted(errors) == ["empty_post", "empty_post", "invalid_json"]


def test_missing_inputs_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        files_of([tmp_path / "nope.csv"])
    with pytest.raises(FileNotFoundError, match="no .csv"):
        files_of([tmp_path])


def test_pacer_holds_the_rate():
    pacer = Pacer(200.0)
    t0 = time.monotonic()
    for _ in range(40):
        pacer.wait()
    assert time.monotonic() - t0 >= 40 / 200 - 0.01
