"""``emostream ingest replay|reddit|flickr``: sources into Kafka."""

from __future__ import annotations

import logging
import sys
import uuid
from pathlib import Path

from prometheus_client import start_http_server

from .settings import IngestSettings


def _start(settings: IngestSettings, source: str):
    from .producer import PostProducer

    if settings.ingest_metrics_port:
        start_http_server(settings.ingest_metrics_port)
    return PostProducer(settings, source)


def _finish(summary, producer) -> int:
    producer.close()
    summary.failed = producer.stats.failed
    print(summary.line())
    return 1 if summary.failed else 0


def cmd_replay(args) -> int:
    from .runner import run
    from .sources.replay import count_rows, files_of, replay

    settings = IngestSettings()
    run_id = args.run_id or ("live" if args.live else uuid.uuid4().hex[:12])
    files = files_of([Path(p) for p in args.paths])
    total = count_rows(files)
    if args.limit is not None:
        total = min(total, args.limit)
    producer = _start(settings, "replay")
    items = replay(
        files,
        run_id=None if args.live else run_id,
        image_base_url=args.image_base_url,
        limit=args.limit,
    )
    print(
        f"replay {run_id}: {total} rows from {len(files)} file(s) -> {settings.topic_posts}",
        file=sys.stderr,
    )
    summary = run(
        items,
        producer,
        rate=args.rate,
        total=total,
        progress=not args.quiet,
        desc=f"replay {run_id}",
    )
    return _finish(summary, producer)


def cmd_reddit(args) -> int:
    from .runner import run
    from .sources.reddit import RedditSource

    settings = IngestSettings()
    source = RedditSource(settings)
    producer = _start(settings, "reddit")
    summary = run(
        source.backfill(args.backfill if args.backfill is not None else settings.reddit_backfill),
        producer,
        progress=False,
        desc="reddit backfill",
    )
    print(summary.line(), file=sys.stderr)
    if not args.once:
        summary = run(source.stream(), producer, progress=False, desc="reddit")
    return _finish(summary, producer)


def cmd_flickr(args) -> int:
    from .runner import run
    from .sources.flickr import FlickrSource

    settings = IngestSettings()
    source = FlickrSource(settings)
    producer = _start(settings, "flickr")
    items = source.new_photos() if args.once else source.stream()
    summary = run(items, producer, progress=False, desc="flickr")
    return _finish(summary, producer)


def add_commands(sub) -> None:
    p = sub.add_parser("ingest", help="send posts from a source into Kafka")
    src = p.add_subparsers(dest="source", required=True)

    r = src.add_parser("replay", help="replay CSV / JSONL / Parquet files (or folders of them)")
    r.add_argument("paths", nargs="+")
    r.add_argument(
        "--rate", type=float, default=0.0, help="posts per second; 0: as fast as possible"
    )
    r.add_argument(
        "--run-id",
        default=None,
        help="stamped into each record (a label: the namespace results go to is the "
        "consuming worker group's EMOSTREAM_RUN_ID, never the message's)",
    )
    r.add_argument("--live", action="store_true", help="stamp no run id")
    r.add_argument(
        "--image-base-url",
        default=None,
        help="turn a relative `image` column into a URL under this base",
    )
    r.add_argument("--limit", type=int, default=None)
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_replay)

    r = src.add_parser("reddit", help="backfill, then stream new submissions (praw)")
    r.add_argument("--backfill", type=int, default=None, help="newest N per subreddit first")
    r.add_argument("--once", action="store_true", help="backfill only, then exit")
    r.set_defaults(func=cmd_reddit)

    r = src.add_parser("flickr", help="poll the Flickr API for new photos")
    r.add_argument("--once", action="store_true", help="one poll, then exit")
    r.set_defaults(func=cmd_flickr)


logging.getLogger("kafka").setLevel(logging.WARNING)
