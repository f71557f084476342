"""Replay files of historical posts: CSV, JSONL or Parquet, or folders of them.

Accepted rows (column names; anything else goes into ``meta``):

* the wire record itself (JSONL written by another emostream);
* the research ``posts.csv`` format of ``../shared/data`` (``id, split, label, text, image,
  image_url, source, ...``): the dataset folder name prefixes the id;
* a simple form ``id, text, image`` / ``image_url``, ``source``, ``channel``, ``created_at``.

A relative ``image`` path becomes an ``image_url`` under ``--image-base-url`` when one is
given (e.g. a local HTTP server over the dataset folder); otherwise ``image_url`` is used.
Rows with neither text nor an image are skipped and counted. Each replay carries a
``run_id`` so its results land in their own Redis namespace.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from emostream.record import Post, RecordError, make_post, now

SUFFIXES = (".csv", ".jsonl", ".ndjson", ".parquet")


def files_of(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.suffix.lower() in SUFFIXES))
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"replay input {p} does not exist")
    if not out:
        raise FileNotFoundError(f"no {'/'.join(SUFFIXES)} files in {', '.join(map(str, paths))}")
    return out


def rows_of(path: Path) -> Iterator[dict]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as fh:
            yield from csv.DictReader(fh)
    elif suffix in (".jsonl", ".ndjson"):
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        yield {"__error__": f"{path}:{n}: {exc}"}
    elif suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise RuntimeError("Parquet replay needs pyarrow: pip install pyarrow") from exc
        for batch in pq.ParquetFile(path).iter_batches():
            yield from batch.to_pylist()
    else:
        raise ValueError(f"unsupported replay file {path}")


def count_rows(files: list[Path]) -> int:
    return sum(1 for f in files for _ in rows_of(f))


def _time(value, fallback: datetime) -> datetime:
    if value in (None, ""):
        return fallback
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    s = str(value)
    if s.replace(".", "", 1).isdigit():
        return datetime.fromtimestamp(float(s), UTC)
    dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def to_post(
    row: dict,
    path: Path,
    run_id: str | None,
    image_base_url: str | None,
    remote_images: bool = True,
) -> Post:
    """One row as a post. ``remote_images=False`` drops ``image_url`` values that are not
    under ``image_base_url`` (e.g. the research data's dead 2009-2016 links)."""
    if "__error__" in row:
        raise RecordError("invalid_json", row["__error__"])
    dataset = path.parent.name if path.name == "posts.csv" else None
    raw_id = str(row.get("id") or "")
    if not raw_id:
        raise RecordError("bad_id", "row without id")
    source = str(row.get("source") or "replay")
    post_id = raw_id if ":" in raw_id else f"{source}:{dataset + '/' if dataset else ''}{raw_id}"
    image_url = (row.get("image_url") or None) if remote_images else None
    image = row.get("image") or None
    if image and image_base_url:
        image_url = image_base_url.rstrip("/") + "/" + str(image).lstrip("/")
    channel = row.get("channel") or (f"r/{row['subreddit']}" if row.get("subreddit") else "")
    created = _time(row.get("created_at") or row.get("created_utc"), now())
    fixed = {
        "id",
        "text",
        "image",
        "image_url",
        "source",
        "channel",
        "created_at",
        "created_utc",
        "v",
        "ingested_at",
        "meta",
        "run_id",
        "author",
        "permalink",
    }
    meta = {
        k: v
        for k, v in row.items()
        if k not in fixed and isinstance(v, str | int | float | bool) and len(str(v)) < 200
    }
    if dataset:
        meta["dataset"] = dataset
    return make_post(
        id=post_id,
        source=source if source in ("reddit", "flickr", "twitter") else "replay",
        channel=str(channel or dataset or ""),
        created_at=created,
        text=row.get("text") or None,
        image_url=image_url,
        author=row.get("author") or None,
        permalink=row.get("permalink") or None,
        meta=meta,
        run_id=run_id,
    )


def replay(
    paths: list[Path],
    *,
    run_id: str | None = None,
    image_base_url: str | None = None,
    limit: int | None = None,
) -> Iterator[Post | RecordError]:
    """Posts of the files, in order; an invalid row yields its RecordError instead."""
    n = 0
    for path in files_of(paths):
        for row in rows_of(path):
            if limit is not None and n >= limit:
                return
            n += 1
            try:
                yield to_post(row, path, run_id, image_base_url)
            except RecordError as err:
                yield err
            except (ValueError, TypeError) as exc:
                yield RecordError("invalid_row", f"{path}: {exc}")
