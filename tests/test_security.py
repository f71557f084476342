"""Credentials: Redis AUTH works, and no secret reaches a log or /metrics."""

import os
import subprocess
import sys
import urllib.request

import pytest
import redis
from helpers import produce, text_posts, wait_for

from emostream.ingest.settings import IngestSettings, SettingError
from emostream.testing import create_topics, start_redis
from emostream.worker.app import broker_credentials
from emostream.worker.settings import WorkerSettings

SECRETS = {
    "redis_password": "redis-PW-d41d8cd9",
    "reddit_client_secret": "reddit-SECRET-8f00b204",
    "flickr_api_key": "flickr-KEY-e9800998",
    "kafka_sasl_password": "sasl-PW-ecf8427e",
}


def test_worker_with_redis_auth_keeps_every_secret_out_of_logs_and_metrics(
    broker, worker_process, data_dir, unique, tmp_path
):
    store = start_redis(tmp_path / "redis", password=SECRETS["redis_password"])
    try:
        topic = unique("posts")
        create_topics(broker, {topic: 1})
        w = worker_process(
            broker, store.port, topic_posts=topic, consumer_group=unique("g"), **SECRETS
        )
        posts = text_posts(data_dir, 20, "auth")
        produce(broker, topic, posts)
        r = redis.Redis(port=store.port, password=SECRETS["redis_password"])
        wait_for(lambda: len(r.keys("emo:post:*")) >= 20, proc=w, what="results via AUTH")
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=store.port).ping()  # and the server really requires it
        body = urllib.request.urlopen(f"http://127.0.0.1:{w.metrics_port}/metrics").read()
        w.terminate()
        w.wait(60)
        log = w.log.read_text()
        for secret in SECRETS.values():
            assert secret not in log and secret.encode() not in body
    finally:
        store.stop()


def test_wrong_redis_password_stalls_and_is_reported_without_the_password(
    broker, worker_process, data_dir, unique, tmp_path
):
    store = start_redis(tmp_path / "redis", password="the-right-one")
    try:
        topic = unique("posts")
        create_topics(broker, {topic: 1})
        w = worker_process(
            broker,
            store.port,
            topic_posts=topic,
            consumer_group=unique("g"),
            redis_password="a-WRONG-pw-5e3f",
        )
        produce(broker, topic, text_posts(data_dir, 5, "wrong"))
        wait_for(lambda: "redis write failed" in w.log.read_text(), proc=w, what="stall log")
        assert w.poll() is None  # held, not crash-looping
        assert "a-WRONG-pw-5e3f" not in w.log.read_text()
    finally:
        store.stop()


def test_kafka_security_settings_map_to_both_clients():
    s = WorkerSettings(
        env={},
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="u",
        kafka_sasl_password="p",
    )
    opts = s.kafka_client_options()
    assert opts == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "u",
        "sasl_plain_password": "p",
    }
    creds = broker_credentials(s)
    assert creds.username == "u" and creds.ssl_context is not None
    assert str(creds.mechanism.value) == "SCRAM-SHA-512"
    assert broker_credentials(WorkerSettings(env={})) is None
    assert broker_credentials(WorkerSettings(env={}, kafka_security_protocol="SSL")) is not None
    with pytest.raises(SettingError, match="needs EMOSTREAM_KAFKA_SASL_USERNAME"):
        IngestSettings(env={}, kafka_security_protocol="SASL_PLAINTEXT").kafka_client_options()
    with pytest.raises(SettingError, match="must be one of"):
        IngestSettings(env={}, kafka_security_protocol="TLS").kafka_client_options()


def test_ingest_cli_never_prints_secrets(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "emostream.cli", "settings"],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": os.environ["PATH"],
            **{f"EMOSTREAM_{k.upper()}": v for k, v in SECRETS.items()},
        },
    )
    assert out.returncode == 0
    for secret in SECRETS.values():
        assert secret not in out.stdout + out.stderr
