"""The ``emostream`` command: model, ingest and worker commands in one place.

emostream train | eval                           training and scoring (model/training/cli.py)
emostream classify | sample | export-onnx       the served model (model/cli.py)
emostream ingest replay|reddit|flickr           sources into Kafka (ingest/cli.py)
emostream worker                                the faust worker
emostream demo                                  the whole pipeline on this machine
emostream api                                   the dashboard API and page
emostream replay                                offline replay of files or a Kafka range
emostream settings                              every EMOSTREAM_* setting, as a table
emostream deadletters list|show|redrive         read and re-drive the dead-letter topic
emostream replay-progress --topic T --group G   a replay worker group's progress and ETA
emostream export [--run ID] FILE                results to Parquet / JSON Lines
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from emostream.ingest import cli as ingest_cli
from emostream.model import cli as model_cli
from emostream.model.training import cli as training_cli
from emostream.settings import SettingError
from emostream.worker.replay import export

LOGLEVELS = ("debug", "info", "warning", "error", "critical")


def cmd_worker(args) -> int:
    from emostream.worker.app import run_worker
    from emostream.worker.settings import WorkerSettings

    run_worker(WorkerSettings(), args.loglevel)
    return 0


def cmd_settings(args) -> int:
    """The settings of each process: the shared Kafka ones, the ingest's, the worker's."""
    from emostream.ingest.settings import IngestSettings
    from emostream.settings import KafkaSettings
    from emostream.worker.settings import WorkerSettings

    shared = set(KafkaSettings.declared())
    sections = [
        ("Kafka (ingest and worker)", KafkaSettings, shared),
        ("Ingest (emostream ingest)", IngestSettings, set(IngestSettings.declared()) - shared),
        ("Worker, API and replay", WorkerSettings, set(WorkerSettings.declared()) - shared),
    ]
    for i, (title, cls, names) in enumerate(sections):
        body = cls().effective(names) if args.effective else cls.table(names)
        print(("\n" if i else "") + f"### {title}\n\n{body}")
    return 0


def cmd_deadletters(args) -> int:
    from datetime import datetime

    from emostream.worker.deadletters import redrive as rd
    from emostream.worker.settings import WorkerSettings

    def when(text):
        return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None

    settings = WorkerSettings()
    letters = rd.read_all(settings, args.topic)
    if args.action == "show":
        for d in rd.select(letters, refs=args.refs):
            print(
                f"{d.ref}  {d.reason}  at {d.at}  key {d.key!r}  {len(d.original)} bytes"
                + ("  (truncated)" if d.truncated else "")
            )
            print(f"  detail: {d.detail}")
            print(f"  original: {d.original[:2000]!r}")
        return 0
    chosen = rd.select(
        letters, reasons=args.reason, since=when(args.since), until=when(args.until), refs=args.refs
    )
    if args.action == "list" or args.dry_run:
        print(f"{'ref':>10}  {'at':<32} {'reason':<22} {'bytes':>8}  original")
        for d in chosen:
            print(
                f"{d.ref:>10}  {str(d.at):<32} {d.reason:<22} {len(d.original):>8}  "
                f"{d.original[:50]!r}"
            )
        print(f"{len(chosen)} of {len(letters)} dead letters")
        return 0
    sent, skipped = rd.redrive(settings, chosen)
    print(
        f"re-drove {sent} to {settings.topic_posts}"
        + (f"; skipped {len(skipped)} truncated: {', '.join(skipped)}" if skipped else "")
    )
    return 0


def cmd_replay_progress(args) -> int:
    from emostream.worker.replay import progress as rp
    from emostream.worker.settings import WorkerSettings

    settings = WorkerSettings()
    t0 = time.monotonic()
    first = rp.progress(settings, args.topic, args.group)
    now = rp.watch(settings, args.topic, args.group, args.every) if args.watch else first
    elapsed = time.monotonic() - t0
    rate = (now.done - first.done) / elapsed if args.watch and elapsed > 0 else None
    for p, (committed, high) in sorted(now.partitions.items()):
        print(f"partition {p}: {committed} / {high}")
    print(
        f"{now.done} of {now.total} done, {now.left} left"
        + (f"; {rate:.1f} posts/s" if rate else "")
    )
    return 0


def cmd_replay(args) -> int:
    from pathlib import Path

    from emostream.worker.replay.replayer import run_replay
    from emostream.worker.settings import WorkerSettings

    if not args.paths and not args.topic:
        print("error: give files/folders to replay, or --topic", file=sys.stderr)
        return 2
    summary = run_replay(
        WorkerSettings(),
        files=[Path(p) for p in args.paths] or None,
        topic=args.topic,
        start=args.start,
        end=args.end,
        run_id=args.run_id,
        image_base_url=args.image_base_url,
        rate=args.rate,
        tag=args.tag,
        progress=not args.quiet,
        remote_images=not args.local_images_only,
        out=Path(args.out) if args.out else None,
    )
    print(summary.line())
    return 0


def cmd_api(args) -> int:  # noqa: ARG001
    from emostream.worker.api.server import run_api
    from emostream.worker.settings import WorkerSettings

    access = logging.getLogger("emostream.api.access")  # one JSON line per request
    access.setLevel(logging.INFO)
    access.propagate = False
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)
    run_api(WorkerSettings())
    return 0


def cmd_demo(args) -> int:
    from emostream.demo import run_demo

    return run_demo(keep=args.keep, metrics_port=args.metrics_port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emostream", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    training_cli.add_commands(sub)
    model_cli.add_commands(sub)
    ingest_cli.add_commands(sub)
    export.add_command(sub)

    p = sub.add_parser("worker", help="run a faust worker (EMOSTREAM_* settings)")
    p.add_argument(
        "--loglevel", default="info", choices=LOGLEVELS, help="log level of the worker's log"
    )
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser(
        "replay", help="offline replay of files or a Kafka range into its own namespace"
    )
    p.add_argument("paths", nargs="*", help="CSV / JSONL / Parquet files or folders")
    p.add_argument("--topic", default=None, help="replay a Kafka topic instead of files")
    p.add_argument("--start", default=None, help="offset or ISO timestamp (with --topic)")
    p.add_argument("--end", default=None, help="offset or ISO timestamp, exclusive")
    p.add_argument("--run-id", default=None, help="the same id resumes an interrupted replay")
    p.add_argument(
        "--image-base-url", default=None, help="base URL for the rows' relative image paths"
    )
    p.add_argument("--rate", type=float, default=0.0, help="posts/s; 0: as fast as possible")
    p.add_argument("--tag", default="", help="a label stored with the run (e.g. model tag)")
    p.add_argument(
        "--local-images-only",
        action="store_true",
        help="ignore image_url values of rows (only pictures under --image-base-url)",
    )
    p.add_argument(
        "--out", default=None, help="also write the run's results to NAME.parquet / .jsonl / .csv"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("demo", help="the whole pipeline on this machine, on the bundled sample")
    p.add_argument(
        "--keep", action="store_true", help="keep Redis and /metrics up after the run until Ctrl-C"
    )
    p.add_argument(
        "--metrics-port", type=int, default=9101, help="port of the demo worker's /metrics"
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("api", help="the dashboard API and live page over Redis")
    p.set_defaults(func=cmd_api)

    p = sub.add_parser(
        "replay-progress", help="progress of a replay consumed by a worker group (offsets)"
    )
    p.add_argument("--topic", required=True, help="the replay topic")
    p.add_argument("--group", required=True, help="the replay workers' consumer group")
    p.add_argument("--watch", action="store_true", help="a progress bar with ETA until done")
    p.add_argument("--every", type=float, default=5.0, help="--watch: seconds between reads")
    p.set_defaults(func=cmd_replay_progress)

    p = sub.add_parser("deadletters", help="list, show or re-drive dead letters")
    p.add_argument("action", choices=("list", "show", "redrive"))
    p.add_argument("refs", nargs="*", help="dead letters by partition:offset (all if none)")
    p.add_argument("--reason", nargs="+", default=None, help="only these reason codes")
    p.add_argument("--since", default=None, help="dead-lettered at or after (ISO 8601)")
    p.add_argument("--until", default=None, help="dead-lettered before (ISO 8601)")
    p.add_argument("--topic", default=None, help="default: EMOSTREAM_TOPIC_DEAD_LETTER")
    p.add_argument("--dry-run", action="store_true", help="redrive: list what would be sent")
    p.set_defaults(func=cmd_deadletters)

    p = sub.add_parser("settings", help="print the settings table")
    p.add_argument(
        "--effective",
        action="store_true",
        help="the values in force here (environment and *_FILE secrets), secrets masked",
    )
    p.set_defaults(func=cmd_settings)
    _show_defaults(parser)
    return parser


def _show_defaults(parser: argparse.ArgumentParser) -> None:
    """Every subcommand's --help shows each option's default."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                sub.formatter_class = argparse.ArgumentDefaultsHelpFormatter
                _show_defaults(sub)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SettingError as err:  # a bad setting or a missing credential: one line, exit 2
        print(f"emostream: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
