"""Shared fixtures: the real data folder, one real encoder, a feature cache per session."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from hypothesis import settings as hypothesis_settings  # noqa: E402

from emostream.model.training.datasets import default_data_dir

# CI runs the same examples every time (a failure is then a regression, not a dice roll);
# HYPOTHESIS_PROFILE=explore searches afresh.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def data_dir():
    d = default_data_dir()
    if not (d / "MANIFEST.json").is_file():
        pytest.fail(f"datasets not found at {d}; set EMOSTREAM_DATA_DIR")
    return d


@pytest.fixture(scope="session")
def encoder():
    from emostream.model.encoder import Encoder

    return Encoder(device="cpu")


@pytest.fixture(scope="session")
def feature_cache(encoder, tmp_path_factory):
    """A cache of its own, so tests really encode (nothing stale from a developer's run)."""
    from emostream.model.training.feature_cache import FeatureCache

    return FeatureCache(encoder, tmp_path_factory.mktemp("features"))


@pytest.fixture
def make_batch():
    """Factory: random features and a mask from a modality pattern like "bti" (b=both)."""

    def make(pattern: str = "btib", text_dim: int = 384, image_dim: int = 1280, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        n = len(pattern)
        text = torch.randn(n, text_dim, generator=g)
        image = torch.randn(n, image_dim, generator=g)
        mask = torch.tensor([[c in "bt", c in "bi"] for c in pattern])
        return text, image, mask

    return make


# -- the batch processor ------------------------------------------------------------------------
@pytest.fixture(scope="session")
def classifier():
    """The served model on CPU, loaded once."""
    from emostream.model.classifier import EmotionClassifier

    return EmotionClassifier(device="cpu")


@pytest.fixture
def processor(classifier, redis_server, tmp_path):
    """Factory: a BatchProcessor with the served model, a real fetcher (loopback allowed),
    a real Redis store on this test's redis-server and a list as dead-letter sink."""
    from emostream.worker.address_guard import AddressGuard
    from emostream.worker.feature_reuse import FeatureReuse
    from emostream.worker.image_fetch import ImageFetcher
    from emostream.worker.pipeline import BatchProcessor
    from emostream.worker.store import ResultStore

    made = []

    def make(reuse_size: int = 100, dead_letters: list | None = None, **kw):
        """``dead_letters``: a list that collects (key, value, RecordError); None: a dead
        letter fails the test."""

        async def dead_letter(key, value, err):
            if dead_letters is None:
                raise AssertionError(f"unexpected dead letter: {err}")
            dead_letters.append((key, value, err))

        proc = BatchProcessor(
            classifier,
            ImageFetcher(AddressGuard.from_strings(["127.0.0.0/8"])),
            ResultStore.from_url(f"redis://127.0.0.1:{redis_server.port}/0"),
            dead_letter,
            reuse=FeatureReuse(reuse_size),
            **kw,
        )
        made.append(proc)
        return proc

    yield make
    for proc in made:
        proc.close()


# -- real services (started on free loopback ports, stopped by PID) ---------------------------
@pytest.fixture(scope="session")
def broker():
    """A Tansu broker (Kafka protocol, in memory) for the whole session."""
    from emostream.testing import start_tansu

    svc = start_tansu()
    yield f"127.0.0.1:{svc.port}"
    svc.stop()


@pytest.fixture
def redis_server(tmp_path):
    """A fresh redis-server of this test's own; yields (port, Service)."""
    from emostream.testing import start_redis

    svc = start_redis(tmp_path / "redis")
    yield svc
    svc.stop()


@pytest.fixture
def unique():
    """Factory of unique names (topics, groups) so tests never share Kafka state."""
    import uuid

    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def worker_process(tmp_path):
    """Factory: start ``emostream worker`` as production does (a process, env settings).

    Test-only settings: a 3 s group session (Tansu holds joins for half of it; see
    ../shared/KAFKA-TESTS.md) and loopback images allowed. Every worker is stopped by PID.
    """
    import subprocess
    import sys
    from pathlib import Path

    from emostream.testing import free_port, local_worker_env

    started = []

    def start(broker: str, redis_port: int, **settings):
        port = free_port()
        env = local_worker_env(broker, redis_port, port, **{"device": "cpu", **settings})
        log = tmp_path / f"worker-{len(started)}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "emostream.cli", "worker"],
            env={**os.environ, **env},
            stdout=open(log, "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parent.parent,
        )
        proc.metrics_port = port
        proc.log = log
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def api_process():
    """Factory: start ``emostream api`` over a Redis port; returns its base URL. Every API
    process is stopped by PID at the end of the test."""
    import subprocess
    import sys

    from emostream.testing import free_port, wait_for_port

    started = []

    def start(redis_port: int) -> str:
        port = free_port()
        env = {
            **os.environ,
            "EMOSTREAM_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "EMOSTREAM_API_PORT": str(port),
            "EMOSTREAM_API_HOST": "127.0.0.1",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "emostream.cli", "api"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        started.append(proc)
        wait_for_port(port, proc=proc)
        return f"http://127.0.0.1:{port}"

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(10)
