"""The ``emostream`` command as a user runs it."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "emostream.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_sample_prints_a_row_per_sample_post():
    out = run("sample")
    assert out.returncode == 0, out.stderr
    lines = (REPO / "model" / "sample" / "posts.jsonl").read_text().splitlines()
    rows = [x for x in out.stdout.splitlines() if x.startswith("sample:")]
    assert len(rows) == len(lines)
    assert "modalities used:" in out.stdout and "posts/s" in out.stdout


def test_classify_text_and_image(tmp_path):
    img = REPO / "model" / "sample" / "images" / "flower.jpg"
    out = run("classify", "--text", "so proud of my garden", "--image", str(img))
    assert out.returncode == 0, out.stderr
    pred = json.loads(out.stdout)
    assert pred["modalities"] == ["text", "image"] and pred["label"]


def test_classify_jsonl_reports_unusable_posts(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"nope")
    f = tmp_path / "posts.jsonl"
    f.write_text(
        json.dumps({"id": "a", "text": "hello", "image": None})
        + "\n"
        + json.dumps({"id": "b", "text": None, "image": "bad.jpg"})
        + "\n"
    )
    out = run("classify", "--jsonl", str(f))
    assert out.returncode == 0, out.stderr
    a, b = (json.loads(x) for x in out.stdout.splitlines())
    assert a["id"] == "a" and a["modalities"] == ["text"]
    assert b == {"id": "b", "error": "post has neither text nor a usable image"}


def test_classify_jsonl_streams_in_batches_and_reports_unreadable_lines(tmp_path):
    """Lines are classified a batch at a time, in order; a line that is not JSON or names
    a missing picture gets an error line of its own and the rest go on."""
    f = tmp_path / "posts.jsonl"
    good = [json.dumps({"id": f"p{i}", "text": f"so happy, day {i}"}) for i in range(5)]
    f.write_text("\n".join([good[0], "{not json", good[1], good[2],
                             json.dumps({"id": "gone", "image": "missing.jpg"}),
                             good[3], "[1, 2]", good[4]]) + "\n")  # fmt: skip
    out = run("classify", "--jsonl", str(f), "--batch", "2")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(x) for x in out.stdout.splitlines()]
    assert [r.get("id") for r in rows] == ["p0", None, "p1", "p2", "gone", "p3", None, "p4"]
    assert rows[1]["error"].startswith("line 2:") and rows[1]["line"] == 2
    assert "missing.jpg" in rows[4]["error"] and "not a JSON object" in rows[6]["error"]
    assert all(r["label"] for r in rows if "error" not in r)


def test_classify_without_input_is_a_usage_error():
    out = run("classify")
    assert out.returncode == 2 and "give --text" in out.stderr


def test_eval_any_split_reports_where_and_what(tmp_path):
    out = run(
        "eval", "--split", "val", "--datasets", "twitter-ii", "--out", str(tmp_path / "r")
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads((tmp_path / "r" / "served.json").read_text())
    assert doc["meta"]["split"] == "val" and doc["meta"]["model_version"].startswith("v2-")
    assert doc["meta"]["data_dir"] and "split val" in doc["title"]
    assert doc["metrics"]["twitter-ii"]["both"]["n"] == 60
    assert "split val" in (tmp_path / "r" / "served.md").read_text()


def test_eval_writes_outside_the_repository_by_default(tmp_path):
    import os

    env_out = tmp_path / "reports"
    out = subprocess.run(
        [sys.executable, "-m", "emostream.cli", "eval", "--datasets", "twitter-ii"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "EMOSTREAM_REPORTS_DIR": str(env_out)},
    )
    assert out.returncode == 0, out.stderr
    [report] = env_out.glob("*/eager/test/served.json")  # <model version>/<runtime>/<split>
    assert json.loads(report.read_text())["meta"]["runtime"] == "eager"
