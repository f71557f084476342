"""``emostream export``: a replay's results (or the live ones) out of a real Redis into
Parquet and JSON Lines, every post once with its stored fields."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import pyarrow.parquet as pq
import pytest

from emostream.model.prediction import Prediction
from emostream.worker.replay.export import PAGE, SCHEMA
from emostream.worker.store import Result, ResultStore


def results(n: int, run_id: str | None) -> list[Result]:
    t = datetime(2026, 11, 24, 8, tzinfo=UTC)
    return [
        Result(
            id=f"reddit:{i}", source="reddit", channel="r/x", created_at=t, ingested_at=t,
            written_at=t, prediction=Prediction(
label="joy", emotions={"joy": 0.75, "fear": 0.25},
            sentiment="positive", sentiments={"positive": 1.0}, modalities=("text", "image"),
            image_status="ok", model_version="v1",
), run_id=run_id, text=f"post {i} ünïcode",
        )
        for i in range(n)
    ]  # fmt: skip


@pytest.fixture
def stored(redis_server):
    async def go():
        store = ResultStore.from_url(f"redis://127.0.0.1:{redis_server.port}/0")
        try:
            await store.write(results(PAGE + 250, "backfill"))  # more than one SCAN page
            await store.write(results(3, None))
        finally:
            await store.aclose()

    asyncio.run(go())
    return redis_server.port


def export(port: int, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "EMOSTREAM_REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    return subprocess.run(
        [sys.executable, "-m", "emostream.cli", "export", "--quiet", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_run_to_parquet(stored, tmp_path):
    out = tmp_path / "backfill.parquet"
    done = export(stored, "--run", "backfill", str(out))
    assert done.returncode == 0, done.stderr
    assert f"{PAGE + 250} results" in done.stdout
    table = pq.read_table(out)
    assert table.num_rows == PAGE + 250
    rows = table.to_pylist()
    assert len({r["id"] for r in rows}) == PAGE + 250  # each post once
    first = next(r for r in rows if r["id"] == "reddit:7")
    assert first["text"] == "post 7 ünïcode" and first["run_id"] == "backfill"
    assert dict(first["emotions"]) == {"joy": 0.75, "fear": 0.25}
    assert first["modalities"] == ["text", "image"] and first["label"] == "joy"
    assert first["created_at"] == "2026-11-24T08:00:00+00:00"
    assert not (tmp_path / "backfill.parquet.partial").exists()


def test_the_live_results_to_json_lines(stored, tmp_path):
    out = tmp_path / "live.jsonl"
    assert export(stored, str(out)).returncode == 0
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(x["id"] for x in lines) == ["reddit:0", "reddit:1", "reddit:2"]
    assert all(x["run_id"] is None and x["sentiments"] == {"positive": 1.0} for x in lines)


def test_nothing_to_export_or_a_bad_name_is_a_clear_error(stored, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    none = export(stored, "--run", "never-ran", str(folder / "x.parquet"))
    assert none.returncode == 2 and "no results under emo:replay:never-ran:post:*" in none.stderr
    assert not list(folder.iterdir())  # no file, no partial
    bad = export(stored, str(folder / "x.xlsx"))
    assert bad.returncode == 2 and ".parquet, .jsonl or .csv" in bad.stderr


def test_a_run_to_csv(stored, tmp_path):
    import csv

    out = tmp_path / "backfill.csv"
    assert export(stored, "--run", "backfill", str(out)).returncode == 0
    with out.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == PAGE + 250
    first = next(r for r in rows if r["id"] == "reddit:7")
    assert json.loads(first["emotions"]) == {"joy": 0.75, "fear": 0.25}
    assert first["modalities"] == "text,image" and first["text"] == "post 7 ünïcode"


def test_the_api_streams_the_same_export(stored, api_process):
    import csv
    import io

    api = api_process(stored)
    r = api.get("/api/export", params={"run": "backfill"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    assert 'filename="emostream-backfill.jsonl"' in r.headers["content-disposition"]
    rows = [json.loads(x) for x in r.text.splitlines()]
    assert len(rows) == PAGE + 250 and len({x["id"] for x in rows}) == PAGE + 250
    assert rows[0].keys() == {f.name for f in SCHEMA}
    table = list(csv.DictReader(io.StringIO(api.get("/api/export?format=csv").text)))
    assert sorted(x["id"] for x in table) == ["reddit:0", "reddit:1", "reddit:2"]
    assert api.get("/api/export?format=xlsx").status_code == 400
    empty = api.get("/api/export", params={"run": "never-ran"})
    assert empty.status_code == 200 and empty.text == ""
