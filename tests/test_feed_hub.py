"""Live feeds share one Redis reader per stream: 150 open feeds hold no Redis connection
of their own, ordinary requests are answered meanwhile, and every feed gets a new post
once; a feed resuming from an older id gets what it missed, then the live entries."""

from __future__ import annotations

import json
from contextlib import ExitStack

import httpx
import redis
from fixtures.api import result, write

FEEDS = 150


def _open(stack: ExitStack, api, **headers):
    r = stack.enter_context(
        httpx.stream("GET", api.url + "/api/feed", headers={**api.headers(), **headers}, timeout=30)
    )
    assert r.status_code == 200
    lines = r.iter_lines()
    assert next(lines).startswith("retry:")
    return lines


def _next_event(lines) -> dict:
    for line in lines:
        if line.startswith("data: "):
            return json.loads(line[6:])
    raise AssertionError("the feed ended")


def test_many_feeds_share_one_reader(redis_server, api_process):
    api = api_process(
        redis_server.port, api_feed_clients_max=FEEDS + 10, api_feed_clients_per_token=FEEDS + 10
    )
    admin = redis.Redis(port=redis_server.port)
    with ExitStack() as stack:
        feeds = [_open(stack, api) for _ in range(FEEDS)]
        for _ in range(20):  # ordinary requests while every feed is open
            assert api.get("/api/latest").status_code == 200
            assert api.get("/api/aggregates").status_code == 200
        api_connections = len(admin.client_list()) - 1  # all but this one
        assert api_connections <= 10, api_connections  # not one connection per feed
        print(f"\n{FEEDS} feeds open: the API holds {api_connections} Redis connections")
        write(redis_server.port, [result(1, "joy")])
        got = [_next_event(lines)["id"] for lines in feeds]
        assert got == ["reddit:1"] * FEEDS


def test_a_feed_resuming_gets_what_it_missed_then_the_live_entries(redis_server, api_process):
    api = api_process(redis_server.port)
    write(redis_server.port, [result(i, "fear") for i in range(3)])
    first = api.get("/api/latest").json()["results"][-1]["event_id"]  # the oldest entry
    with ExitStack() as stack:
        live = _open(stack, api)  # starts the shared reader at the newest entry
        resumed = _open(stack, api, **{"Last-Event-ID": first})
        write(redis_server.port, [result(9, "joy")])
        ids = [_next_event(resumed)["id"] for _ in range(3)]
        assert ids == ["reddit:1", "reddit:2", "reddit:9"]  # missed ones, then live, once
        assert _next_event(live)["id"] == "reddit:9"
    bad = api.get("/api/feed", headers={"Last-Event-ID": "not-an-id"})
    assert bad.status_code == 400
