"""Settings: typed, from EMOSTREAM_* variables or secret files; secrets stay hidden."""

import pytest

from emostream.ingest.settings import IngestSettings, SettingError
from emostream.worker.settings import WorkerSettings


def test_defaults_and_env_parsing():
    s = WorkerSettings(
        env={
            "EMOSTREAM_MAX_BATCH": "64",
            "EMOSTREAM_MAX_WAIT_S": "0.25",
            "EMOSTREAM_IMAGE_ALLOW_NETWORKS": "127.0.0.0/8",
        }
    )
    assert s.max_batch == 64 and s.max_wait_s == 0.25
    ingest = IngestSettings(env={"EMOSTREAM_REDDIT_SUBREDDITS": "pics, aww ,"})
    assert ingest.reddit_subreddits == ["pics", "aww"]
    assert s.image_allow_networks == ["127.0.0.0/8"]
    assert s.kafka_bootstrap == "localhost:9092"  # default


def test_a_worker_holds_no_source_credentials():
    worker, ingest = set(WorkerSettings.declared()), set(IngestSettings.declared())
    assert {"reddit_client_secret", "flickr_api_key"} <= ingest - worker
    assert "kafka_bootstrap" in worker & ingest


def test_bad_values_are_clear_errors():
    with pytest.raises(SettingError, match="EMOSTREAM_MAX_BATCH='many'"):
        WorkerSettings(env={"EMOSTREAM_MAX_BATCH": "many"})
    with pytest.raises(SettingError, match="unknown settings"):
        IngestSettings(env={}, max_bach=3)


def test_secrets_from_files_and_never_in_repr(tmp_path):
    f = tmp_path / "secret"
    f.write_text("s3cr3t-value\n")
    s = IngestSettings(
        env={"EMOSTREAM_REDDIT_CLIENT_SECRET_FILE": str(f), "EMOSTREAM_FLICKR_API_KEY": "k3y-value"}
    )
    assert s.reddit_client_secret == "s3cr3t-value"
    assert "s3cr3t" not in repr(s) and "k3y-value" not in repr(s)
    assert "s3cr3t" not in IngestSettings.table()


def test_every_setting_is_documented():
    for name, spec in WorkerSettings.declared().items():
        assert spec.doc and spec.env == "EMOSTREAM_" + name.upper()
    assert "EMOSTREAM_REDIS_URL" in WorkerSettings.table()


def _emostream(*args: str, env: dict[str, str]):
    import os
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "emostream.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "env", "names"),
    [
        (("worker",), {"EMOSTREAM_MAX_BATCH": "abc"}, "EMOSTREAM_MAX_BATCH"),
        (("ingest", "reddit"), {"EMOSTREAM_INGEST_METRICS_PORT": "0"}, "REDDIT_CLIENT_ID"),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_2(args, env, names):
    out = _emostream(*args, env=env)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and names in lines[0] and "Traceback" not in out.stderr


def test_effective_settings_mask_secrets():
    env = {"EMOSTREAM_REDIS_PASSWORD": "hunter2", "EMOSTREAM_MAX_BATCH": "7"}
    out = _emostream("settings", "--effective", env=env)
    assert out.returncode == 0, out.stderr
    assert "EMOSTREAM_MAX_BATCH=7" in out.stdout.splitlines()
    assert "EMOSTREAM_REDIS_PASSWORD=***" in out.stdout.splitlines()
    assert "hunter2" not in out.stdout


def test_help_shows_defaults():
    out = _emostream("replay", "--help", env={})
    assert "(default: 0.0)" in out.stdout
