"""``emostream export``: the results of a replay run (or the live ones) out of Redis into a
Parquet, JSON Lines or CSV file, so they outlive Redis's TTL and the feed's cap.

    emostream export --run backfill results.parquet      # a replay's namespace
    emostream export live.jsonl                          # the live results

Every post hash of the namespace (``<prefix>[:replay:<run>]:post:*``) is read with SCAN,
in pages, and written as it is read (memory stays flat for any size): one row per post,
the stored fields as columns (emotions and sentiments as maps of label to probability,
modalities as a list; in CSV as JSON and a comma-joined list). The file is written
beside its name and renamed into place when complete, so a failed export never leaves a
half file under the name asked for.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from emostream.settings import SettingError

from ..redis_client import sync_client
from ..settings import WorkerSettings
from ..store import Keys

PAGE = 1000
"""Posts read per SCAN page and pipeline."""
MAPS = ("emotions", "sentiments")
SCHEMA_FIELDS = (
    "id", "source", "channel", "label", "status", "sentiment", "image_status",
    "model_version", "created_at", "created_at_given", "ingested_at", "received_at",
    "written_at", "language", "run_id", "permalink", "text",
)  # fmt: skip
SCHEMA = pa.schema(
    [pa.field(n, pa.string()) for n in SCHEMA_FIELDS]
    + [pa.field(n, pa.map_(pa.string(), pa.float64())) for n in MAPS]
    + [pa.field("modalities", pa.list_(pa.string()))]
)


def row(fields: dict[str, str]) -> dict:
    """A stored post hash as one export row (every column present)."""
    out: dict = {n: fields.get(n) for n in SCHEMA_FIELDS}
    for n in MAPS:
        out[n] = json.loads(fields.get(n) or "{}")
    out["modalities"] = [m for m in fields.get("modalities", "").split(",") if m]
    return out


def csv_row(r: dict) -> dict:
    """An export row for CSV: the maps as JSON, the modalities joined by ","."""
    return {**r, **{n: json.dumps(r[n]) for n in MAPS}, "modalities": ",".join(r["modalities"])}


def pages(client, pattern: str) -> Iterator[list[dict]]:
    """The post hashes matching ``pattern``, PAGE at a time."""
    names: list[str] = []
    for name in client.scan_iter(match=pattern, count=PAGE):
        names.append(name)
        if len(names) == PAGE:
            yield _read(client, names)
            names = []
    if names:
        yield _read(client, names)


def _read(client, names: list[str]) -> list[dict]:
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(name)
    return [row(f) for f in pipe.execute() if f]  # a hash may expire between SCAN and read


FORMATS = (".parquet", ".jsonl", ".csv")


def export_format(out: Path) -> str:
    """The format of an export file, by its name's suffix; a clear error for any other."""
    fmt = out.suffix.lower()
    if fmt not in FORMATS:
        raise SettingError(f"{out}: the file name must end in .parquet, .jsonl or .csv")
    return fmt


def export(settings: WorkerSettings, run_id: str | None, out: Path, quiet: bool = False) -> int:
    """Write the namespace's results to ``out`` (.parquet, .jsonl or .csv); how many."""
    fmt = export_format(out)
    pattern = Keys(settings.key_prefix, run_id).post("*")
    partial = out.with_name(out.name + ".partial")
    client = sync_client(settings, decode_responses=True)
    n = 0
    bar = tqdm(desc=f"exporting {run_id or 'live'}", unit="post", disable=quiet)
    write, close = _sink(partial, fmt)
    try:
        for rows in pages(client, pattern):
            write(rows)
            n += len(rows)
            bar.update(len(rows))
    finally:
        bar.close()
        close()
        client.close()
    if n == 0:
        partial.unlink(missing_ok=True)
        raise SettingError(f"no results under {pattern} (run id, prefix, Redis URL?)")
    os.replace(partial, out)
    return n


def _sink(path: Path, fmt: str) -> tuple[Callable[[list[dict]], None], Callable[[], None]]:
    """(write rows, close) of a Parquet or JSON Lines file at ``path``."""
    if fmt == ".parquet":
        writer = pq.ParquetWriter(path, SCHEMA)
        return (lambda rows: writer.write_table(pa.Table.from_pylist(rows, schema=SCHEMA)),
                writer.close)  # fmt: skip
    fh = path.open("w", encoding="utf-8", newline="")
    if fmt == ".csv":  # maps as JSON, modalities joined by ","
        columns = [f.name for f in SCHEMA]
        table = csv.DictWriter(fh, columns)
        table.writeheader()
        return (lambda rows: table.writerows(csv_row(r) for r in rows)), fh.close  # fmt: skip
    return (lambda rows: fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
            fh.close)  # fmt: skip


def cmd_export(args) -> int:
    n = export(WorkerSettings(), args.run, Path(args.out), quiet=args.quiet)
    print(f"{n} results written to {args.out}")
    return 0


def add_command(sub) -> None:
    p = sub.add_parser("export", help="results of a replay run (or live) to Parquet / JSONL / CSV")
    p.add_argument("out", help="the file to write: NAME.parquet, NAME.jsonl or NAME.csv")
    p.add_argument("--run", default=None, help="a replay's run id; default: the live results")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_export)
