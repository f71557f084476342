"""Who may read the API: tokens, their rotation, the rate limit on wrong ones, the feed caps,
the security headers and the bounds on parameters, against a real ``emostream api``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import ExitStack

import httpx
import pytest
from fixtures.api import new_token
from helpers import wait_for

from emostream.worker.api.auth import FailedAttempts, TokensFile, parse_tokens

OPEN = {"/healthz", "/signin", "/signout"}


@pytest.fixture
def api(redis_server, api_process):
    return api_process(redis_server.port)


def _documented_routes(api) -> list[tuple[str, dict]]:
    doc = api.get("/openapi.json").json()
    return [
        (path, item["get"])
        for path, item in doc["paths"].items()
        if "get" in item and item["get"].get("security") != []
    ]


def _url(path: str, op: dict) -> str:
    """A documented route with its required parameters filled in."""
    path = path.replace("{id}", "reddit:nothing").replace("{name}", "uPlot.min.css")
    required = [p["name"] for p in op["parameters"] if p["in"] == "query" and p["required"]]
    return path + ("?" + "&".join(f"{n}=v-x" for n in required) if required else "")


def _status(api, url: str, headers: dict) -> int:
    with httpx.stream("GET", api.url + url, headers=headers, timeout=10) as r:
        return r.status_code  # a feed is left as soon as its headers are in


def test_every_documented_route_needs_a_token(redis_server, api_process, capsys):
    api = api_process(redis_server.port, api_auth_failures=1000)  # a wrong token per route
    routes = _documented_routes(api)
    assert {"/", "/openapi.json", "/api/latest", "/api/feed", "/api/compare"} <= {
        p for p, _ in routes
    }
    wrong = api.headers(new_token())
    for path, op in routes:
        url = _url(path, op)
        r = httpx.get(api.url + url) if path != "/api/feed" else None
        assert _status(api, url, {}) == 401, url
        if r is not None:
            assert r.headers["WWW-Authenticate"].startswith('Bearer realm="emostream"'), url
        assert _status(api, url, wrong) == 401, url
        expected = 404 if "{id}" in path else 200  # no such post, but allowed to ask
        assert _status(api, url, api.headers()) == expected, url
    with capsys.disabled():
        print(f"\n{len(routes)} documented routes: 401 without a token, answered with one")
    assert httpx.get(api.url + "/healthz").json() == {"status": "ok"}  # open


def test_the_api_answers_without_a_token_json_with_the_reason(api):
    r = httpx.get(api.url + "/api/latest")
    assert r.status_code == 401
    assert r.json()["detail"] == "a token is required"
    assert 'error="no_token"' in r.headers["WWW-Authenticate"]
    r = httpx.get(api.url + "/api/latest", headers=api.headers("not-the-token"))
    assert r.json()["detail"] == "wrong token"
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    page = httpx.get(api.url + "/")  # a browser without the cookie: the sign-in form
    assert page.status_code == 401 and 'name="token"' in page.text
    assert "panels" not in page.text


def test_tokens_are_rotated_and_revoked_without_a_restart(api):
    old, fresh = api.token, new_token()
    assert api.get("/api/latest").status_code == 200
    api.write_tokens([f"read tests {fresh}"])  # rotation: the old token out, a new one in
    assert api.get("/api/latest").status_code == 401
    assert api.get("/api/latest", headers=api.headers(fresh)).status_code == 200
    api.write_tokens([f"admin ops {new_token()}"])  # revocation
    assert api.get("/api/latest", headers=api.headers(fresh)).status_code == 401
    api.write_tokens([f"read tests {old}"])
    assert api.get("/api/latest").status_code == 200
    assert api.process.poll() is None  # the same process all along


def test_wrong_tokens_are_rate_limited_per_address(redis_server, api_process):
    api = api_process(redis_server.port, api_auth_failures=5, api_auth_failure_window_s=3600)
    for _ in range(5):
        assert api.get("/api/latest", headers=api.headers(new_token())).status_code == 401
    limited = api.get("/api/latest")  # now even the right token waits
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    signin = httpx.post(api.url + "/signin", data={"token": api.token})
    assert signin.status_code == 429
    other = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    with other:  # another address is not held back
        assert other.get(api.url + "/api/latest", headers=api.headers()).status_code == 200
    metrics = httpx.get(api.metrics_url).text
    assert 'emostream_api_auth_failures_total{reason="wrong_token"} 5.0' in metrics
    assert 'emostream_api_auth_failures_total{reason="rate_limited"} 2.0' in metrics


def test_signing_in_sets_an_httponly_strict_cookie(api):
    wrong = httpx.post(api.url + "/signin", data={"token": new_token()})
    assert wrong.status_code == 401 and "wrong token" in wrong.text
    r = httpx.post(api.url + "/signin", data={"token": api.token})
    assert r.status_code == 303 and r.headers["Location"] == "/"
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    jar = {"emostream_token": api.token}
    assert httpx.get(api.url + "/api/latest", cookies=jar).status_code == 200
    out = httpx.post(api.url + "/signout", cookies=jar)
    assert out.status_code == 303 and 'emostream_token=""' in out.headers["Set-Cookie"]


def _feed(stack: ExitStack, api, token: str) -> int:
    r = stack.enter_context(
        httpx.stream("GET", api.url + "/api/feed", headers=api.headers(token), timeout=20)
    )
    if r.status_code == 200:
        next(r.iter_bytes())  # ": connected": the feed holds its place
    return r.status_code


def test_live_feeds_are_capped_in_all_and_per_token(redis_server, api_process):
    api = api_process(redis_server.port, api_feed_clients_max=3, api_feed_clients_per_token=2)
    second = new_token()
    api.write_tokens([f"read tests {api.token}", f"read wall {second}"])
    with ExitStack() as one:
        assert [_feed(one, api, api.token) for _ in range(2)] == [200, 200]
        with ExitStack() as more:
            assert _feed(more, api, api.token) == 429  # this token's two are open
            assert _feed(more, api, second) == 200
            assert _feed(more, api, second) == 503  # three in all
            assert api.get("/api/latest").status_code == 200  # ordinary requests go on
    # every feed closed: the API notices within a blocking read and frees their places
    with ExitStack() as again:
        wait_for(lambda: _feed(again, api, second) == 200, what="a feed after the others left")
    metrics = httpx.get(api.metrics_url).text
    assert 'emostream_api_feeds_refused_total{cap="token"} 1.0' in metrics
    assert 'emostream_api_feeds_refused_total{cap="all"} 0.0' not in metrics  # 1 or more


def test_security_headers_and_no_cors_unless_configured(redis_server, api_process):
    api = api_process(redis_server.port)
    for r in (api.get("/"), api.get("/api/latest"), httpx.get(api.url + "/api/latest")):
        csp = r.headers["Content-Security-Policy"]
        script = next(d for d in csp.split("; ") if d.startswith("script-src"))
        assert "'sha256-" in script and "unsafe" not in script, csp
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["Cache-Control"] == "no-store"
    evil = {"Origin": "https://evil.example"}
    assert "Access-Control-Allow-Origin" not in api.get("/api/latest", headers=evil).headers
    preflight = {**evil, "Access-Control-Request-Method": "GET"}
    assert httpx.options(api.url + "/api/latest", headers=preflight).status_code == 403

    wall = "https://wall.example"
    cors = api_process(redis_server.port, api_cors_origins=wall)
    r = cors.get("/api/latest", headers={"Origin": wall})
    assert r.headers["Access-Control-Allow-Origin"] == wall
    asked = {"Origin": wall, "Access-Control-Request-Method": "GET"}
    ok = httpx.options(cors.url + "/api/latest", headers=asked)
    assert ok.status_code == 204 and "Authorization" in ok.headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Origin" not in cors.get("/api/latest", headers=evil).headers


@pytest.mark.parametrize(
    "query,reason",
    [
        ("/api/latest?limit=-5", "limit must be within 1..500"),
        ("/api/latest?limit=1000000000", "limit must be within 1..500"),
        ("/api/aggregates?window_s=1000000000000", "window_s must be within 60..2592000"),
        ("/api/compare?shadow=v&limit=0", "limit must be within 1..10000"),
    ],
)
def test_parameters_out_of_bounds_are_refused(api, query, reason):
    r = api.get(query)
    assert r.status_code == 400 and r.json()["detail"] == reason


def test_the_access_log_is_json_and_never_shows_a_token(api):
    api.get("/api/latest")
    httpx.get(api.url + "/api/latest", headers=api.headers("wrong-token-" + "x" * 20))
    wait_for(lambda: api.log.read_text().count('"route"') >= 2, what="two access lines")
    lines = [json.loads(x) for x in api.log.read_text().splitlines() if x.startswith("{")]
    assert {"who": "tests", "route": "/api/latest", "status": 200}.items() <= lines[0].items()
    assert lines[1]["who"] is None and lines[1]["status"] == 401
    assert all({"time", "address", "method", "ms"} <= line.keys() for line in lines)
    assert api.token not in api.log.read_text() and "wrong-token" not in api.log.read_text()


def _api_exit(env: dict) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMOSTREAM_API")} | env
    return subprocess.run(
        [sys.executable, "-m", "emostream.cli", "api"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_an_open_api_only_on_loopback_and_never_without_tokens():
    exposed = _api_exit({"EMOSTREAM_API_AUTH": "none", "EMOSTREAM_API_HOST": "0.0.0.0"})
    assert exposed.returncode == 2 and "allowed only with EMOSTREAM_API_HOST" in exposed.stderr
    untokened = _api_exit({"EMOSTREAM_API_HOST": "0.0.0.0"})
    assert untokened.returncode == 2 and "EMOSTREAM_API_TOKENS_FILE" in untokened.stderr


def test_auth_none_on_loopback_is_open(redis_server, api_process):
    api = api_process(redis_server.port, api_auth="none")
    assert httpx.get(api.url + "/api/latest").status_code == 200


def test_tokens_file_lines_are_checked(tmp_path):
    token = new_token()
    assert [(t.scope, t.name) for t in parse_tokens(f"# c\nadmin ops {token}\n\n")] == [
        ("admin", "ops")
    ]
    for bad, reason in [
        (f"root ops {token}", "line 1"),
        ("read ops short", "24. characters"),
        (f"read {token}", "line 1"),
    ]:
        with pytest.raises(ValueError, match=reason):
            parse_tokens(bad)
    path = tmp_path / "tokens"
    path.write_text(f"read a {token}\n")
    tokens = TokensFile(str(path))
    assert tokens.find(token).name == "a" and tokens.find(token + "x") is None
    path.write_text("read a short\n")  # broken on rotation: no token accepted at all
    assert tokens.find(token) is None
    path.unlink()
    assert tokens.find(token) is None


def test_failed_attempts_slide_out_of_their_window():
    now = [0.0]
    failures = FailedAttempts(limit=3, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        assert failures.wait_s("10.0.0.1") == 0
        failures.failed("10.0.0.1")
    assert failures.wait_s("10.0.0.1") == 60 and failures.wait_s("10.0.0.2") == 0
    now[0] = 59.0
    assert failures.wait_s("10.0.0.1") == 1
    now[0] = 60.0
    assert failures.wait_s("10.0.0.1") == 0
