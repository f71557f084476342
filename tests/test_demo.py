"""``emostream demo`` (what ``make demo`` runs) end to end, as a user sees it."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_demo_classifies_every_sample_post_through_the_real_pipeline(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "emostream.cli", "demo", "--metrics-port", "0"],
        cwd=tmp_path,  # writes nothing where it runs: its files go under the state dir
        env={**os.environ, "EMOSTREAM_STATE_DIR": str(tmp_path / "state")},
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    n = len((REPO / "model/sample/posts.jsonl").read_text().splitlines())
    rows = [x for x in out.stdout.splitlines() if x.startswith("sample:")]
    assert len(rows) == n
    assert "modalities used:   text 16, text+image 14, image 4, (none) 1" in out.stdout
    assert "image status:      ok 18, absent 14, error:undecodable 3" in out.stdout
    assert "(unsupported_language) 1" in out.stdout and "es 1" in out.stdout
    assert 'emostream_posts_dead_lettered_total{reason="invalid_json"} 1.0' in out.stdout
    assert 'emostream_posts_dead_lettered_total{reason="unknown_version"} 1.0' in out.stdout
    assert (tmp_path / "state" / "demo" / "dump.rdb").is_file()
    import pyarrow.parquet as pq

    exported = pq.read_table(tmp_path / "state" / "demo" / "results.parquet")
    assert exported.num_rows == n and f"{n} results exported" in out.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["state"]
