"""``GET /api/export``: every result of a namespace (live, or a replay's ``run``) streamed
as JSON Lines or CSV, page by page, with the fields of ``emostream export``
(``worker/replay/export.py``): an analyst's download from the page or with curl."""

from __future__ import annotations

import csv
import io
import json

from aiohttp import web

from emostream.worker.replay.export import PAGE, SCHEMA, csv_row, row
from emostream.worker.store import Keys

FORMATS = {"jsonl": "application/x-ndjson", "csv": "text/csv"}


def _lines(rows: list[dict], fmt: str, header: bool) -> bytes:
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    out = io.StringIO()
    table = csv.DictWriter(out, [f.name for f in SCHEMA])
    if header:
        table.writeheader()
    table.writerows(csv_row(r) for r in rows)
    return out.getvalue().encode()


async def export(request: web.Request, keys: Keys) -> web.StreamResponse:
    """The results under ``keys`` (the live namespace or a run's), streamed."""
    fmt = request.query.get("format", "jsonl")
    if fmt not in FORMATS:
        raise web.HTTPBadRequest(text="format: jsonl or csv")
    name = f"emostream-{request.query.get('run') or 'live'}.{fmt}"
    response = web.StreamResponse(headers={
        "Content-Type": f"{FORMATS[fmt]}; charset=utf-8",
        "Content-Disposition": f'attachment; filename="{name}"',
    })  # fmt: skip
    await response.prepare(request)
    r, names, first = request.app["redis"], [], True
    async for key in r.scan_iter(match=keys.post("*"), count=PAGE):
        names.append(key)
        if len(names) == PAGE:
            await response.write(await _page(r, names, fmt, first))
            names, first = [], False
    if names or first:
        await response.write(await _page(r, names, fmt, first))
    await response.write_eof()
    return response


async def _page(r, names: list[str], fmt: str, header: bool) -> bytes:
    pipe = r.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(name)
    rows = [row(f) for f in await pipe.execute() if f] if names else []
    return _lines(rows, fmt, header)
