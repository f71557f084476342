"""Testing helpers shared by the integration and fault suites."""

from __future__ import annotations

import os
import time
import urllib.request
from pathlib import Path

import redis

from emostream.ingest.producer import PostProducer
from emostream.ingest.settings import IngestSettings
from emostream.model.training.datasets import Dataset
from emostream.record import Post, make_post, now


def fuzz_examples(default: int) -> int:
    """Examples per fuzz test: ``default`` in make test, EMOSTREAM_FUZZ_EXAMPLES in
    ``make fuzz`` (the long run)."""
    return int(os.environ.get("EMOSTREAM_FUZZ_EXAMPLES") or default)


def metrics(port: int) -> dict[str, float]:
    """A worker's /metrics as {sample name with labels: value}."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for line in body.splitlines():
        if line.startswith("emostream_"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def metric(port: int, name: str, default: float = 0.0) -> float:
    try:
        return metrics(port).get(name, default)
    except OSError:
        return default


def metric_total(port: int, name: str) -> float:
    """A metric summed over all its label sets (0 when absent or unreachable)."""
    try:
        samples = metrics(port)
    except OSError:
        return 0.0
    return sum(v for k, v in samples.items() if k == name or k.startswith(name + "{"))


def wait_for(
    predicate, timeout_s: float = 180, what="condition", proc=None, every_s: float = 0.5
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"worker died: {Path(proc.log).read_text()[-3000:]}")
        if predicate():
            return
        time.sleep(every_s)
    detail = what() if callable(what) else what  # a callable: the state at the timeout
    raise AssertionError(f"timed out after {timeout_s}s waiting for {detail}")


def written(r: redis.Redis, prefix: str = "emo") -> int:
    """Posts counted so far (all model versions), from the totals hashes: one cheap read."""
    return sum(int(v) for k in r.keys(f"{prefix}:totals:*") for v in r.hvals(k))


def text_posts(data_dir: Path, n: int, tag: str) -> list[Post]:
    """n text-only posts from goemotions (fast to classify)."""
    items = Dataset.load("goemotions", data_dir).split("train")[:n]
    return [
        make_post(
            id=f"{tag}:{i.id}", source="reddit", channel="goemotions", created_at=now(), text=i.text
        )
        for i in items
    ]


def dead_letters(broker: str, topic: str, group: str) -> list[dict]:
    """Every message on a dead-letter topic, decoded (a probe consumer of its own group)."""
    import json

    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=broker,
        auto_offset_reset="earliest",
        consumer_timeout_ms=15000,
        group_id=group,
        fetch_max_bytes=50 * 1024 * 1024,
        max_partition_fetch_bytes=50 * 1024 * 1024,
        session_timeout_ms=3000,
        heartbeat_interval_ms=500,
    )
    try:
        return [json.loads(m.value) for m in consumer]
    finally:
        consumer.close()


def produce(broker: str, topic: str, posts: list[Post]) -> None:
    settings = IngestSettings(
        env={}, kafka_bootstrap=broker, topic_posts=topic, ingest_metrics_port=0
    )
    producer = PostProducer(settings, "replay")
    for p in posts:
        producer.send(p)
    producer.close()
    assert producer.stats.failed == 0 and producer.stats.acked == len(posts)


def png_header(w: int, h: int) -> bytes:
    """A PNG that declares w x h pixels and carries garbage pixel data: decoding it would
    fail as ``undecodable``, so a size refusal proves the size is checked first."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", b"\x00garbage")
        + chunk(b"IEND", b"")
    )


def debian_tool(name: str, package: str) -> str:
    """The path of a command from Debian's packages that a test needs: skips without it,
    fails in CI (.ci/run installs it)."""
    import os
    import shutil

    import pytest

    exe = shutil.which(name)
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} missing in CI (.ci/run installs Debian's {package})")
        pytest.skip(f"{name} not installed (apt-get install {package})")
    return exe


def headless_chromium(tmp_path: Path):
    """Debian's chromium + chromedriver, headless, with a fresh profile (never a browser
    a tool downloads). Skips without them, fails in CI (.ci/run installs them)."""
    import os
    import shutil

    import pytest

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        if os.environ.get("CI"):
            pytest.fail("chromium/chromedriver missing in CI (.ci/run installs them)")
        pytest.skip("chromium not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1400,900",
    ):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=opts)


def sign_in(browser, url: str, token: str) -> None:
    """Sign the browser in on the API's page, as a person would: the form at /signin."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url + "/signin")
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.CSS_SELECTOR, "form button").click()
    WebDriverWait(browser, 20).until(lambda b: b.find_elements(By.ID, "panels"))


def wire_record(pid: str, **changes) -> bytes:
    """The bytes of a valid post on the wire, with ``changes`` to its fields (any JSON
    values, valid or not): for hostile-message tests."""
    import json

    base = {
        "v": 1,
        "id": pid,
        "source": "reddit",
        "channel": "r/test",
        "created_at": "2026-11-24T08:00:00Z",
        "ingested_at": "2026-11-24T08:00:00Z",
        "text": "a perfectly ordinary post",
        "image_url": None,
    }
    return json.dumps({**base, **changes}).encode()
