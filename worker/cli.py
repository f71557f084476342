"""The ``emostream`` command: model, ingest and worker commands in one place.

emostream train | eval | classify | sample       the model (model/cli.py)
emostream ingest replay|reddit|flickr           sources into Kafka (ingest/cli.py)
emostream worker                                the faust worker
emostream demo                                  the whole pipeline on this machine
emostream settings                              every EMOSTREAM_* setting, as a table
"""

from __future__ import annotations

import argparse
import logging

from ingest import cli as ingest_cli
from model import cli as model_cli


def cmd_worker(args) -> int:
    from .app import run_worker
    from .settings import WorkerSettings

    run_worker(WorkerSettings(), args.loglevel)
    return 0


def cmd_settings(args) -> int:  # noqa: ARG001
    from .settings import WorkerSettings

    print(WorkerSettings.table())
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(keep=args.keep, metrics_port=args.metrics_port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emostream", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    model_cli.add_commands(sub)
    ingest_cli.add_commands(sub)

    p = sub.add_parser("worker", help="run a faust worker (EMOSTREAM_* settings)")
    p.add_argument("--loglevel", default="info")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("demo", help="the whole pipeline on this machine, on the bundled sample")
    p.add_argument(
        "--keep", action="store_true", help="keep Redis and /metrics up after the run until Ctrl-C"
    )
    p.add_argument("--metrics-port", type=int, default=9101)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("settings", help="print the settings table")
    p.set_defaults(func=cmd_settings)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
