"""The dashboard API over Redis (aiohttp): results, aggregates and a live feed.

    emostream api          # EMOSTREAM_API_PORT (8080); OpenAPI at /openapi.json, page at /

=================================  ==========================================================
``GET /api/posts/{id}``            one post's result
``GET /api/latest``                newest results from the feed; filters source, channel,
                                   emotion; ``limit`` (<= 500)
``GET /api/aggregates``            posts per emotion per time bucket over ``window_s`` (or
                                   ``from``..``to``, epoch s; by default ending at the
                                   newest result when it is older than the window), and
                                   per channel; filters source, channel
``GET /api/feed``                  Server-Sent Events: every new result as it is written;
                                   same filters; resumes from ``Last-Event-ID``
``GET /api/shifts``                channels whose emotion or sentiment mix moved away from
                                   their own baseline (``worker/shifts.py``)
``GET /api/versions``, ``/api/compare``  model versions; a shadow against the live one
=================================  ==========================================================

Every endpoint takes ``run`` (a replay's run id) to read a replay's namespace instead of
the live one. The API only reads Redis; it never writes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import redis.exceptions
from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from emostream.settings import SettingError
from emostream.worker.api import metrics as m
from emostream.worker.api.auth import (
    FailedAttempts,
    TokensFile,
    auth_middleware,
    check_open_allowed,
    client_address,
    signin,
    signout,
    trusted_networks,
)
from emostream.worker.api.export_stream import export
from emostream.worker.api.feed_hub import Ended, FeedHub
from emostream.worker.api.headers import add_security_headers, cors_preflight
from emostream.worker.api.schema import (
    VENDORED,
    Aggregates,
    Comparison,
    Health,
    Latest,
    PostResult,
    Problem,
    Shifts,
    Versions,
    openapi,
)
from emostream.worker.api.shift_report import shift_report
from emostream.worker.api.shifts import ShiftRule
from emostream.worker.redis_client import async_client
from emostream.worker.settings import WorkerSettings
from emostream.worker.store import HOUR_S, SENTIMENT_MARK, Keys

log = logging.getLogger("emostream.api")
access_log = logging.getLogger("emostream.api.access")
PAGE = Path(__file__).resolve().parent / "dashboard" / "index.html"
FILTERS = ("source", "channel", "emotion", "language")


FEED_BLOCK_MS = 1000
"""One blocking read of the feed's stream, at most; far below the Redis client's socket
timeout (``redis_client.TIMEOUT_S``), so an idle feed never times its connection out."""
FEED_KEEPALIVE_S = 15.0
"""An idle feed sends an SSE comment this often (proxies close silent connections)."""


def _keys(request: web.Request) -> Keys:
    run = request.query.get("run") or None
    if run is not None and not run.replace("-", "").replace("_", "").isalnum():
        raise web.HTTPBadRequest(text="run: letters, digits, - and _ only")
    return Keys(request.app["settings"].key_prefix, run)


def _result(fields: dict) -> dict:
    out = dict(fields)
    for k in ("emotions", "sentiments"):
        if out.get(k):
            out[k] = json.loads(out[k])
    out["modalities"] = [m for m in out.get("modalities", "").split(",") if m]
    return out


def _matches(item: dict, query) -> bool:
    """Filters: source, channel, emotion; for stored results also modality ("text",
    "image" or "text,image"), q (words the text contains, any case) and min_confidence (of
    the top emotion, 0..1)."""
    mapping = {"source": "source", "channel": "channel", "emotion": "label"}
    if query.get("language") and "language" in item and item["language"] != query["language"]:
        return False
    if not all(item.get(field) == query[f] for f, field in mapping.items() if query.get(f)):
        return False
    if query.get("modality") and "modalities" in item and item["modalities"] != query["modality"]:
        return False
    if query.get("q") and "text" in item and query["q"].casefold() not in item["text"].casefold():
        return False
    if query.get("min_confidence") and "emotions" in item:
        try:
            floor = float(query["min_confidence"])
        except ValueError:
            raise web.HTTPBadRequest(text="min_confidence must be a number") from None
        scores = json.loads(item["emotions"] or "{}")
        return scores.get(item.get("label", ""), 0.0) >= floor
    return True


def answer(kind: type, body, status: int = 200, content_type: str = "application/json"):
    """A JSON answer of the documented ``kind``: ``body`` is converted to the struct first,
    so a field of the wrong type, or a missing one, fails here and never reaches a client."""
    encoded = msgspec.json.encode(msgspec.convert(body, kind))
    return web.Response(body=encoded, status=status, content_type=content_type)


async def post(request: web.Request) -> web.Response:
    fields = await request.app["redis"].hgetall(_keys(request).post(request.match_info["id"]))
    if not fields:
        raise web.HTTPNotFound(text="no such post")
    return answer(PostResult, _result(fields))


def _created_between(request: web.Request):
    """``since``/``until`` (epoch s, of created_at): a test of a stored result's fields."""
    since = _int(request, "since", 0, 0, 2**40)
    until = _int(request, "until", 2**40, 0, 2**40)
    if len(request.query.get("q", "")) > 200:
        raise web.HTTPBadRequest(text="q: at most 200 characters")
    if since == 0 and until == 2**40:
        return lambda fields: True
    return lambda fields: since <= (_epoch(fields.get("created_at")) or -1) < until


async def latest(request: web.Request) -> web.Response:
    """The newest results that match, walking back through the feed (its length is capped):
    filters as ``_matches``, and ``since``/``until`` for a bin of a chart (drill-down)."""
    limit = _int(request, "limit", 50, 1, 500)
    created = _created_between(request)
    out: list[dict] = []
    cursor = "+"
    r = request.app["redis"]
    feed = _keys(request).feed()
    while len(out) < limit:  # walk back through the stream until enough match
        entries = await r.xrevrange(feed, max=cursor, count=200)
        if not entries:
            break
        for entry_id, fields in entries:
            if _matches(fields, request.query) and created(fields):
                out.append({"event_id": entry_id, **_result(fields)})
                if len(out) == limit:
                    break
        last = entries[-1][0]
        ms, seq = last.split("-")
        if seq == "0" and ms == "0":
            break
        cursor = f"{ms}-{int(seq) - 1}" if int(seq) > 0 else f"{int(ms) - 1}-18446744073709551615"
        if len(entries) < 200:
            break
    return answer(Latest, {"results": out})


async def aggregates(request: web.Request) -> web.Response:
    settings: WorkerSettings = request.app["settings"]
    keys = _keys(request)
    r = request.app["redis"]
    newest = await r.xrevrange(keys.feed(), count=1)
    version = request.query.get("version")
    if not version:
        version = newest[0][1].get("model_version") if newest else None
    first, end = _time_range(request, newest[0][1] if newest else None)
    window = end - first
    if not version:
        return answer(
            Aggregates,
            {"version": None, "bucket_s": settings.count_bucket_s, "buckets": [], "channels": {}},
        )
    step = settings.count_bucket_s
    bin_s = _bin_s(window, step)
    end = end // step * step
    first, last = end - window + step, end  # bucket starts
    if bin_s % HOUR_S == 0:  # hourly bins: the range in whole hours, whatever is read
        first, last = first - first % HOUR_S, last - last % HOUR_S + HOUR_S - step
    starts, names = _count_keys(keys, version, first, last, bin_s, settings)
    pipe = r.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(name)
    bins: dict[int, tuple[dict[str, int], dict[str, int]]] = {}
    not_read: dict[int, int] = {}
    channels: dict[str, dict[str, int]] = {}
    for start, counts in zip(starts, await pipe.execute(), strict=True):
        per_emotion, per_sentiment = bins.setdefault(start - start % bin_s, ({}, {}))
        for field, n in counts.items():
            source, channel, label = (
                field.rsplit("|", 2) if field.count("|") >= 2 else ("", "", field)
            )
            if not _matches({"source": source, "channel": channel}, request.query):
                continue
            if label.startswith(SENTIMENT_MARK):
                label = label.removeprefix(SENTIMENT_MARK)
                per_sentiment[label] = per_sentiment.get(label, 0) + int(n)
                continue
            if label == "unsupported_language":
                not_read[start - start % bin_s] = not_read.get(start - start % bin_s, 0) + int(n)
                continue
            if request.query.get("emotion") not in (None, "", label):
                continue
            per_emotion[label] = per_emotion.get(label, 0) + int(n)
            ch = channels.setdefault(f"{source}/{channel}", {})
            ch[label] = ch.get(label, 0) + int(n)
    buckets = [
        {"start": b, "counts": c, "sentiments": s, "not_read": not_read.get(b, 0)}
        for b, (c, s) in sorted(bins.items())
    ]
    return answer(
        Aggregates,
        {
            "version": version,
            "bucket_s": bin_s,
            "from": first,
            "to": last + step,
            "buckets": buckets,
            "channels": channels,
        },
    )


MAX_RANGE_S = 30 * 86400
MAX_BINS = 240
"""A chart gets at most about this many points: stored counts are summed into bins."""


def _bin_s(window: int, step: int) -> int:
    """The width of a chart's bins: a multiple of the stored bucket, of an hour once that
    is half an hour or more (so that those bins are read from the hourly counts: a 7-day
    chart has 168 bins of an hour)."""
    bin_s = max(step, -(-window // MAX_BINS // step) * step)
    return -(-bin_s // HOUR_S) * HOUR_S if 2 * bin_s >= HOUR_S else bin_s


def _count_keys(
    keys: Keys, version: str, first: int, last: int, bin_s: int, settings: WorkerSettings
) -> tuple[list[int], list[str]]:
    """The starts and keys of the count hashes covering ``first``..``last`` (bucket starts;
    whole hours for bins of whole hours): hourly ones (``{p}:hours:*``) for bins of whole
    hours, the per-bucket ones otherwise or with ``api_hourly_counts`` off."""
    if settings.api_hourly_counts and bin_s % HOUR_S == 0:
        starts = list(range(first, last + 1, HOUR_S))
        return starts, [keys.hours(version, h) for h in starts]
    starts = list(range(first, last + 1, settings.count_bucket_s))
    return starts, [keys.counts(version, s) for s in starts]


def _time_range(request: web.Request, newest: dict | None) -> tuple[int, int]:
    """``from``/``to`` (epoch seconds) or ``window_s`` back from ``to``; without ``to``,
    the range ends now, or at the newest result's creation time when that is older than
    the window (a replay of old posts, a demo from last week), so the data is in it."""
    q = request.query
    window = _int(request, "window_s", 3600, 60, MAX_RANGE_S)
    now = int(time.time())
    if q.get("to"):
        end = _int(request, "to", now, 0, 2**40)
    else:
        end = now
        created = _epoch(newest.get("created_at")) if newest else None
        if q.get("from") is None and created is not None and created < now - window:
            end = created + 1
    first = _int(request, "from", end - window, 0, 2**40) if q.get("from") else end - window
    if not 60 <= end - first <= MAX_RANGE_S:
        raise web.HTTPBadRequest(text="from..to must span 60 s to 30 days")
    return first, end


def _epoch(iso: str | None) -> int | None:
    try:
        return int(datetime.fromisoformat(iso).timestamp()) if iso else None
    except ValueError:
        return None


async def feed(request: web.Request) -> web.StreamResponse:
    """The live feed, within the caps: ``api_feed_clients_max`` feeds in all (503 beyond:
    the Redis pool stays free for ordinary requests) and ``api_feed_clients_per_token``
    per token (429 beyond)."""
    settings: WorkerSettings = request.app["settings"]
    open_feeds: Counter[str] = request.app["feeds"]
    who = request["token"].name
    if sum(open_feeds.values()) >= settings.api_feed_clients_max:
        m.API_FEEDS_REFUSED.labels("all").inc()
        raise web.HTTPServiceUnavailable(
            text=f"{settings.api_feed_clients_max} live feeds are open; try again later",
            headers={"Retry-After": "10"},
        )
    if open_feeds[who] >= settings.api_feed_clients_per_token:
        m.API_FEEDS_REFUSED.labels("token").inc()
        raise web.HTTPTooManyRequests(
            text=f"token {who} has {open_feeds[who]} live feeds open already",
            headers={"Retry-After": "10"},
        )
    open_feeds[who] += 1
    try:
        return await _stream(request)
    finally:
        open_feeds[who] -= 1


ENTRY_ID = re.compile(r"\d{1,20}(-\d{1,20})?")


async def _stream(request: web.Request) -> web.StreamResponse:
    """The feed's events from the shared reader of its stream (``feed_hub.py``): no
    pooled Redis connection is held while a feed is open."""
    stream = _keys(request).feed()
    last = request.headers.get("Last-Event-ID") or request.query.get("from") or "$"
    if last != "$" and not ENTRY_ID.fullmatch(last):
        raise web.HTTPBadRequest(text="Last-Event-ID / from: a feed event id (ms-seq)")
    sub = await request.app["feeds_hub"].subscribe(stream, last)
    m.API_FEED_CLIENTS.inc()
    try:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        await response.write(b"retry: 2000\n: connected\n\n")
        await _send_events(request, response, sub)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    except (Ended, redis.exceptions.RedisError) as exc:
        # end the stream; EventSource reconnects and resumes from its Last-Event-ID
        log.warning("feed ended: %s", exc)
    finally:
        sub.hub.unsubscribe(sub)
        m.API_FEED_CLIENTS.dec()
    return response


async def _send_events(request: web.Request, response: web.StreamResponse, sub) -> None:
    closing: asyncio.Event = request.app["closing"]
    quiet_since = time.monotonic()
    while (
        request.transport is not None
        and not request.transport.is_closing()
        and not closing.is_set()  # the API is stopping: end, the client reconnects
    ):
        got = await sub.next(timeout_s=FEED_BLOCK_MS / 1000)
        if got is None:
            if time.monotonic() - quiet_since >= FEED_KEEPALIVE_S:
                await response.write(b": keep-alive\n\n")
                quiet_since = time.monotonic()
            continue
        quiet_since = time.monotonic()
        entry_id, fields = got
        if _matches(fields, request.query):
            data = json.dumps({"event_id": entry_id, **_result(fields)})
            await response.write(f"id: {entry_id}\ndata: {data}\n\n".encode())


def _int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high]; 400 naming the bounds otherwise."""
    try:
        value = int(request.query.get(name, str(default)))
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be an integer") from None
    if not low <= value <= high:
        raise web.HTTPBadRequest(text=f"{name} must be within {low}..{high}")
    return value


async def _newest_version(r, keys: Keys) -> str | None:
    newest = await r.xrevrange(keys.feed(), count=1)
    return newest[0][1].get("model_version") if newest else None


def _rule(request: web.Request) -> ShiftRule:
    bucket = request.app["settings"].count_bucket_s
    window = _int(request, "window_s", ShiftRule.window_s, bucket, 86400) // bucket * bucket
    return ShiftRule(
        window_s=window,
        baseline_windows=_int(request, "windows", ShiftRule.baseline_windows, 3, 96),
        min_posts=_int(request, "min_posts", ShiftRule.min_posts, 1, 100_000),
    )


async def shifts(request: web.Request) -> web.Response:
    """Flagged emotion and sentiment shifts per channel (``at``: epoch seconds, default now)."""
    r, keys = request.app["redis"], _keys(request)
    version = request.query.get("version") or await _newest_version(r, keys)
    at = _int(request, "at", int(time.time()), 0, 2**40) if request.query.get("at") else None
    rule = _rule(request)
    found = []
    if version:
        bucket = request.app["settings"].count_bucket_s
        found = await shift_report(r, keys, version, rule, bucket, at)
    return answer(Shifts, {"version": version, "window_s": rule.window_s, "baseline_windows":
                           rule.baseline_windows, "shifts": found})  # fmt: skip


async def report_shifts(app: web.Application) -> None:
    """Every minute, the live shifts as Prometheus gauges (at most SHIFT_SERIES series;
    a shift that ends loses its series)."""
    settings: WorkerSettings = app["settings"]
    keys = Keys(settings.key_prefix)
    shown: set[tuple] = set()
    while True:
        try:
            version = await _newest_version(app["redis"], keys)
            found = await shift_report(
                app["redis"], keys, version, ShiftRule(), settings.count_bucket_s
            ) if version else []  # fmt: skip
            shown = m.show_shifts(found, shown)
            m.SHIFT_REPORTS.inc()
        except redis.exceptions.RedisError as exc:
            log.warning("shift gauges not updated: %s", exc)
        await asyncio.sleep(60)


def _name(text: str, what: str) -> str:
    if not text or not all(c.isalnum() or c in "-_.+" for c in text):
        raise web.HTTPBadRequest(text=f"{what}: letters, digits, - _ . + only")
    return text


async def versions(request: web.Request) -> web.Response:
    """The model versions with results: live, and each shadow namespace."""
    prefix = request.app["settings"].key_prefix
    r = request.app["redis"]
    out: dict[str, list[dict]] = {"live": [], "shadow": []}
    for kind, pattern in (("live", f"{prefix}:totals:*"), ("shadow", f"{prefix}:shadow:*")):
        async for key in r.scan_iter(match=pattern, count=500):
            if kind == "shadow" and ":totals:" not in key:
                continue
            version = key.rsplit(":totals:", 1)[1]
            posts = sum(int(v) for v in (await r.hvals(key)))
            out[kind].append({"version": version, "posts": posts})
    return answer(Versions, out)


async def compare(request: web.Request) -> web.Response:
    """A shadow version against the live results of the same posts: agreement of the top
    emotion and of the sentiment, and the confusion between the two (live x shadow), over
    the shadow's latest ``limit`` results that have a live result too."""
    prefix = request.app["settings"].key_prefix
    if not request.query.get("shadow"):
        raise web.HTTPBadRequest(text="shadow is required: a shadow model version (/api/versions)")
    shadow = _name(request.query["shadow"], "shadow")
    limit = _int(request, "limit", 1000, 1, 10_000)
    r = request.app["redis"]
    entries = await r.xrevrange(f"{prefix}:shadow:{shadow}:feed", count=limit)
    ids = [fields["id"] for _, fields in entries]
    pipe = r.pipeline(transaction=False)
    for i in ids:
        pipe.hmget(f"{prefix}:post:{i}", "label", "sentiment", "model_version")
    lives = await pipe.execute()
    n = same = same_sentiment = 0
    confusion: dict[str, dict[str, int]] = {}
    live_versions: set[str] = set()
    for (_, fields), (label, sentiment, version) in zip(entries, lives, strict=True):
        if version is None or version == shadow:
            continue  # no live result (yet) for this post
        n += 1
        live_versions.add(version)
        same += label == fields["label"]
        same_sentiment += sentiment == fields["sentiment"]
        row = confusion.setdefault(label or "unclassifiable", {})
        col = fields["label"] or "unclassifiable"
        row[col] = row.get(col, 0) + 1
    return answer(
        Comparison,
        {
            "shadow": shadow,
            "live": sorted(live_versions),
            "posts": n,
            "emotion_agreement": same / n if n else None,
            "sentiment_agreement": same_sentiment / n if n else None,
            "confusion": confusion,
        },
    )


async def page(request: web.Request) -> web.Response:
    return web.Response(text=request.app["page"], content_type="text/html")


VENDOR = PAGE.parent / "vendor"
DOCS = PAGE.parent / "docs.html"
"""The ``/docs`` page: Swagger UI over ``/openapi.json``."""


async def docs(request: web.Request) -> web.Response:
    return web.Response(text=request.app["docs"], content_type="text/html")


async def vendored(request: web.Request) -> web.Response:
    """A file of ``VENDORED``, read once when the API starts (``app["vendored"]``)."""
    name = request.match_info["name"]
    if name not in VENDORED:
        raise web.HTTPNotFound(text=f"no file {name!r} here")
    body = request.app["vendored"][name]
    headers = {"Cache-Control": "private, max-age=86400"}
    return web.Response(body=body, content_type=VENDORED[name], headers=headers)


async def openapi_json(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document itself (built from the structs by ``schema.openapi``)."""
    return web.Response(body=msgspec.json.encode(openapi()), content_type="application/json")


async def healthz(request: web.Request) -> web.Response:
    """Open to all (no token): 200 when Redis answers, else 503."""
    try:
        await request.app["redis"].ping()
    except redis.exceptions.RedisError as exc:
        return answer(Health, {"status": "redis unavailable", "reason": str(exc)}, status=503)
    return answer(Health, {"status": "ok"})


@web.middleware
async def json_errors(request: web.Request, handler):
    """Every error as RFC 9457 problem details (``application/problem+json``: type, title,
    status, detail; the schema's Problem), never aiohttp's text/plain; an unexpected
    exception is logged and answered 500."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = exc.text or exc.reason
        if message.startswith(f"{exc.status}: "):  # aiohttp's default text
            message = message.split(": ", 1)[1]
        headers = {k: v for k, v in exc.headers.items() if k.lower() != "content-type"}
        headers.pop("Content-Length", None)
        return _problem(exc.status, exc.reason, message, headers)
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return _problem(500, "Internal Server Error", "internal error (logged)", {})


def _problem(status: int, title: str, detail: str, headers: dict) -> web.Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    response = answer(Problem, body, status, "application/problem+json")
    response.headers.update(headers)
    return response


@web.middleware
async def observe(request: web.Request, handler):
    """Counts every request by route and status, and logs it as one JSON line (who,
    route, status, duration; never a token or the query string)."""
    route = (
        request.match_info.route.resource.canonical
        if request.match_info.route.resource
        else "unmatched"
    )
    started = time.monotonic()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        m.API_REQUESTS.labels(route, str(status)).inc()
        token = request.get("token")
        access_log.info(json.dumps({
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "who": token.name if token else None, "address": client_address(request),
            "method": request.method, "route": route, "status": status,
            "ms": round(1000 * (time.monotonic() - started), 1),
        }))  # fmt: skip


def _tokens(settings: WorkerSettings) -> TokensFile | None:
    check_open_allowed(settings.api_auth, settings.api_host)
    if settings.api_auth == "none":
        log.warning("EMOSTREAM_API_AUTH=none: the API is open to anyone on this machine")
        return None
    if not settings.api_tokens_file:
        raise SettingError(
            "the API needs tokens: EMOSTREAM_API_TOKENS_FILE names a file of "
            "'<read|admin> <name> <token>' lines (docs/operations.md); "
            "EMOSTREAM_API_AUTH=none opens it on a loopback address only"
        )
    try:
        return TokensFile(settings.api_tokens_file)
    except (OSError, ValueError) as exc:
        raise SettingError(f"EMOSTREAM_API_TOKENS_FILE={settings.api_tokens_file}: {exc}") from exc


def create_api(settings: WorkerSettings) -> web.Application:
    """The API app; SettingError (before anything listens) for an unsafe or broken auth
    set-up."""
    tokens = _tokens(settings)
    failures = FailedAttempts(settings.api_auth_failures, settings.api_auth_failure_window_s)
    middlewares = [
        observe,
        json_errors,
        cors_preflight(settings.api_cors_origins),
        auth_middleware(tokens, failures),
    ]
    app = web.Application(middlewares=middlewares)
    app["settings"], app["tokens"], app["failures"] = settings, tokens, failures
    app["page"] = PAGE.read_text(encoding="utf-8")
    app["docs"] = DOCS.read_text(encoding="utf-8")
    app["vendored"] = {name: (VENDOR / name).read_bytes() for name in VENDORED}
    app["feeds"] = Counter()
    app["trusted_proxies"] = trusted_networks(settings.api_trusted_proxies)
    app["closing"] = asyncio.Event()

    async def end_feeds(app: web.Application) -> None:  # else SIGTERM waits on open feeds
        app["closing"].set()

    app.on_shutdown.append(end_feeds)
    add_security_headers(app, app["page"] + app["docs"], settings.api_cors_origins)

    async def connect(app: web.Application):
        app["redis"] = async_client(settings, decode_responses=True)
        app["feeds_hub"] = FeedHub(app["redis"], FEED_BLOCK_MS)
        yield
        await app["feeds_hub"].close()
        await app["redis"].aclose()

    async def shift_gauges(app: web.Application):
        task = asyncio.create_task(report_shifts(app))
        yield
        task.cancel()

    app.cleanup_ctx.append(connect)
    app.cleanup_ctx.append(shift_gauges)
    if settings.api_metrics_port:
        app.cleanup_ctx.append(_metrics_site(settings.api_host, settings.api_metrics_port))
    for path, handler in ROUTES.items():
        app.router.add_get(path, handler)
    app.router.add_post("/signin", signin)
    app.router.add_post("/signout", signout)
    return app


ROUTES = {
    "/": page, "/vendor/{name}": vendored, "/signin": signin, "/healthz": healthz,
    "/openapi.json": openapi_json, "/docs": docs,
    "/api/posts/{id}": post, "/api/latest": latest, "/api/aggregates": aggregates,
    "/api/feed": feed, "/api/shifts": shifts, "/api/versions": versions,
    "/api/compare": compare, "/api/export": lambda request: export(request, _keys(request)),
}  # fmt: skip


def _metrics_site(host: str, port: int):
    """/metrics on a port of its own, apart from the API (for Prometheus only)."""

    async def serve(app: web.Application):
        metrics_app = web.Application()
        metrics_app.router.add_get("/metrics", make_aiohttp_handler())
        runner = web.AppRunner(metrics_app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        yield
        await runner.cleanup()

    return serve


def run_api(settings: WorkerSettings) -> None:
    app = create_api(settings)
    web.run_app(app, host=settings.api_host, port=settings.api_port, print=None, access_log=None)
