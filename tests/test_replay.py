"""``emostream replay``: its own namespace beside a live worker, resumable, Kafka ranges."""

import json
import threading

import pyarrow.parquet as pq
import pytest
import redis
from helpers import produce, text_posts, wait_for, written

from emostream.settings import SettingError
from emostream.testing import create_topics
from emostream.worker.replay.replayer import run_replay
from emostream.worker.settings import WorkerSettings


def settings_for(port: int, broker: str = "127.0.0.1:1", **kw) -> WorkerSettings:
    return WorkerSettings(
        env={},
        redis_url=f"redis://127.0.0.1:{port}/0",
        kafka_bootstrap=broker,
        worker_metrics_port=0,
        max_batch=8,
        **kw,
    )


def jsonl(path, posts):
    path.write_text(
        "".join(
            json.dumps({"id": p.id, "text": p.text, "source": "reddit", "channel": p.channel})
            + "\n"
            for p in posts
        )
    )


def test_live_run_and_replay_at_once_do_not_disturb_each_other(
    broker, redis_server, worker_process, data_dir, unique, tmp_path
):
    live = text_posts(data_dir, 60, "same")  # the replay re-classifies the same ids
    topic = unique("posts")
    create_topics(broker, {topic: 2})
    w = worker_process(broker, redis_server.port, topic_posts=topic, consumer_group=unique("g"))
    jsonl(tmp_path / "history.jsonl", live)
    result = {}
    t = threading.Thread(
        target=lambda: result.update(
            s=run_replay(
                settings_for(redis_server.port),
                files=[tmp_path / "history.jsonl"],
                run_id="hist",
                progress=False,
            )
        )
    )
    t.start()
    produce(broker, topic, live)
    t.join(300)
    r = redis.Redis(port=redis_server.port, decode_responses=True)
    wait_for(lambda: written(r, "emo") >= 60, proc=w, what="live results")
    assert result["s"].written == 60 and result["s"].rows == 60
    assert written(r, "emo") == 60 and written(r, "emo:replay:hist") == 60
    assert len(r.keys("emo:post:*")) == 60
    assert len(r.keys("emo:replay:hist:post:*")) == 60
    assert r.xlen("emo:feed") == 60 and r.xlen("emo:replay:hist:feed") == 60
    assert all(r.hget(f"emo:post:{p.id}", "run_id") is None for p in live[:5])
    assert r.hget(f"emo:replay:hist:post:{live[0].id}", "run_id") == "hist"


def test_an_interrupted_replay_resumes_where_it_stopped(redis_server, data_dir, tmp_path):
    posts = text_posts(data_dir, 30, "resume")
    f = tmp_path / "part.jsonl"
    jsonl(f, posts[:20])
    first = run_replay(settings_for(redis_server.port), files=[f], run_id="r", progress=False)
    assert first.rows == 20 and first.written == 20
    jsonl(f, posts)  # the file grew (or the first run was cut off after 20 rows)
    second = run_replay(settings_for(redis_server.port), files=[f], run_id="r", progress=False)
    assert second.resumed_from == 20 and second.rows == 10 and second.written == 10
    r = redis.Redis(port=redis_server.port, decode_responses=True)
    assert written(r, "emo:replay:r") == 30
    assert "resumed after 20 rows" in second.line()


def test_replay_of_a_kafka_range(broker, redis_server, data_dir, unique):
    posts = text_posts(data_dir, 30, "range")
    topic = unique("posts")
    create_topics(broker, {topic: 1})
    produce(broker, topic, posts)
    s = run_replay(
        settings_for(redis_server.port, broker),
        topic=topic,
        start="5",
        end="15",
        run_id="k",
        progress=False,
    )
    assert s.rows == 10 and s.written == 10
    r = redis.Redis(port=redis_server.port, decode_responses=True)
    got = sorted(k.removeprefix("emo:replay:k:post:") for k in r.keys("emo:replay:k:post:*"))
    assert got == sorted(p.id for p in posts[5:15])
    assert not r.keys("emo:post:*")


def test_a_replay_writes_its_results_to_a_parquet_file(redis_server, data_dir, tmp_path):
    posts = text_posts(data_dir, 12, "toparquet")
    jsonl(tmp_path / "in.jsonl", posts)
    out = tmp_path / "results.parquet"
    s = run_replay(
        settings_for(redis_server.port),
        files=[tmp_path / "in.jsonl"],
        run_id="pq",
        progress=False,
        out=out,
    )
    assert s.written == 12 and s.exported == 12 and "12 results exported" in s.line()
    table = pq.read_table(out).to_pylist()
    assert sorted(r["id"] for r in table) == sorted(p.id for p in posts)
    assert all(r["run_id"] == "pq" and r["label"] for r in table)
    assert {r["text"] for r in table} == {p.text for p in posts}


def test_a_replay_to_a_file_of_no_known_format_fails_before_it_starts(redis_server, tmp_path):
    with pytest.raises(SettingError, match="must end in .parquet"):
        run_replay(
            settings_for(redis_server.port), files=[tmp_path / "x.jsonl"], out=tmp_path / "r.xlsx"
        )
    assert not (tmp_path / "r.xlsx").exists()
