"""Who may read the dashboard API and page: bearer tokens with a scope, from a file.

The tokens file (``EMOSTREAM_API_TOKENS_FILE``) holds one token per line::

    # scope  name         token (at least 24 characters)
    read     wall-screen  0c3f9e6a41d2b7c85e1f04a9d36b2c71
    admin    ops          5b8e2d0f7a9c4e13b6d1f08a2c7e9b45

``read`` opens the page and every ``GET`` of the API; ``admin`` is ``read`` and anything
that changes state (the API has no such route today). The file is read again whenever it
changes (a new inode, size or mtime), so a token is rotated or revoked by rewriting it; a
file that cannot be read or parsed accepts no token at all. Tokens are compared in
constant time. A request shows its token as ``Authorization: Bearer <token>`` or, from
the page, in the ``emostream_token`` cookie (HttpOnly, SameSite=Strict) that signing in
sets. A missing or wrong token is answered 401 with ``WWW-Authenticate``; after
``api_auth_failures`` wrong tokens within ``api_auth_failure_window_s`` an address gets
429 until the window has passed. ``EMOSTREAM_API_AUTH=none`` turns all of it off, and is
refused unless the API listens on a loopback address.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from html import escape

from aiohttp import web

from emostream.settings import SettingError
from emostream.worker.api import metrics as m

log = logging.getLogger("emostream.api.auth")
COOKIE = "emostream_token"
SCOPES = {"read": {"read"}, "admin": {"read", "admin"}}
"""What each scope of the tokens file may do."""
MIN_TOKEN_CHARS = 24
OPEN_PATHS = frozenset({"/healthz", "/signin", "/signout"})
"""Routes that need no token (the health check, signing in and out)."""
TRACKED_ADDRESSES = 10_000
"""Addresses whose failed attempts are remembered at once (the oldest are forgotten)."""


@dataclass(frozen=True)
class Token:
    name: str
    scope: str
    secret: str = ""

    def may(self, action: str) -> bool:
        return action in SCOPES[self.scope]


OPEN = Token("anonymous", "admin")
"""Every request's identity under ``EMOSTREAM_API_AUTH=none``."""


def parse_tokens(text: str) -> list[Token]:
    """The tokens of a tokens file; ValueError naming the line of anything else."""
    tokens = []
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) != 3 or words[0] not in SCOPES:
            raise ValueError(f"line {number}: want '<read|admin> <name> <token>'")
        if len(words[2]) < MIN_TOKEN_CHARS:
            raise ValueError(f"line {number}: a token needs {MIN_TOKEN_CHARS}+ characters")
        tokens.append(Token(words[1], words[0], words[2]))
    return tokens


class TokensFile:
    """The tokens of a file, read again when the file changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: tuple | None = None
        self._tokens: list[Token] = []
        self.load()  # a broken file at start-up is an error, not an empty list

    def load(self) -> None:
        stat = os.stat(self.path)
        with open(self.path, encoding="utf-8") as fh:
            self._tokens = parse_tokens(fh.read())
        self._stamp = (stat.st_ino, stat.st_size, stat.st_mtime_ns)

    def tokens(self) -> list[Token]:
        try:
            stat = os.stat(self.path)
            if (stat.st_ino, stat.st_size, stat.st_mtime_ns) != self._stamp:
                self.load()
                log.info("tokens file read again: %d tokens", len(self._tokens))
        except (OSError, ValueError) as exc:
            if self._tokens or self._stamp is not None:
                log.error("tokens file %s unusable, no token accepted: %s", self.path, exc)
            self._tokens, self._stamp = [], None
        return self._tokens

    def find(self, presented: str) -> Token | None:
        """The token presented, comparing it with every token in constant time."""
        found = None
        for token in self.tokens():
            if hmac.compare_digest(token.secret.encode(), presented.encode()):
                found = token
        return found


class FailedAttempts:
    """Wrong tokens per client address within a sliding window."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic):
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, address: str) -> deque[float]:
        times = self._seen.get(address, deque())
        while times and times[0] <= self.clock() - self.window_s:
            times.popleft()
        return times

    def wait_s(self, address: str) -> float:
        """Seconds until this address may try again; 0 when it may now."""
        times = self._recent(address)
        if len(times) < self.limit:
            return 0.0
        return max(0.0, times[0] + self.window_s - self.clock())

    def failed(self, address: str) -> None:
        times = self._recent(address)
        times.append(self.clock())
        self._seen[address] = times
        self._seen.move_to_end(address)
        while len(self._seen) > TRACKED_ADDRESSES:
            self._seen.popitem(last=False)


def trusted_networks(spec: str) -> tuple:
    """``api_trusted_proxies`` (comma-separated addresses or CIDRs) as networks."""
    try:
        return tuple(
            ipaddress.ip_network(x.strip(), strict=False) for x in spec.split(",") if x.strip()
        )
    except ValueError as exc:
        raise SettingError(f"EMOSTREAM_API_TRUSTED_PROXIES: {exc}") from exc


def _within(address: str, networks: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(request: web.Request) -> str:
    """The client's address: the peer's, or, when the peer is a trusted proxy, the
    nearest address in ``X-Forwarded-For`` that is not one (a client cannot forge its
    way past the proxies, which append what they saw)."""
    remote = request.remote or "?"
    networks = request.app.get("trusted_proxies", ())
    if not networks or not _within(remote, networks):
        return remote
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _within(hop, networks):
            return hop
    return remote


def presented(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.cookies.get(COOKIE)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_open_allowed(auth: str, host: str) -> None:
    """``EMOSTREAM_API_AUTH=none`` only on a loopback address: SettingError otherwise."""
    if auth == "none" and not is_loopback(host):
        raise SettingError(
            f"EMOSTREAM_API_AUTH=none serves every post to anyone who reaches {host}: "
            "it is allowed only with EMOSTREAM_API_HOST=127.0.0.1 (or ::1, localhost); "
            "set EMOSTREAM_API_TOKENS_FILE instead"
        )


def unauthorized(request: web.Request, reason: str) -> web.StreamResponse:
    """401: the sign-in form for the page, problem details (json_errors) for the API."""
    challenge = {"WWW-Authenticate": f'Bearer realm="emostream", error="{reason}"'}
    if request.path == "/":
        return signin_page(request, 401, "" if reason == "no_token" else "wrong token")
    message = "a token is required" if reason == "no_token" else "wrong token"
    raise web.HTTPUnauthorized(text=message, headers=challenge)


def _held_back(failures: FailedAttempts, address: str) -> float:
    """Seconds ``address`` must wait (counted as rate_limited when it must)."""
    wait = failures.wait_s(address)
    if wait:
        m.API_AUTH_FAILURES.labels("rate_limited").inc()
    return wait


def _wrong_token(failures: FailedAttempts, address: str) -> None:
    failures.failed(address)
    m.API_AUTH_FAILURES.labels("wrong_token").inc()


def authenticate(request: web.Request, tokens: TokensFile, failures: FailedAttempts):
    """The token of a request, a 401/429 response to send, or an exception to raise."""
    address = client_address(request)
    wait = _held_back(failures, address)
    if wait:
        raise web.HTTPTooManyRequests(
            text="too many wrong tokens from this address; try again later",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    secret = presented(request)
    if not secret:
        return unauthorized(request, "no_token")
    token = tokens.find(secret)
    if token is None:
        _wrong_token(failures, address)
        return unauthorized(request, "invalid_token")
    return token


def auth_middleware(tokens: TokensFile | None, failures: FailedAttempts):
    """Every route but OPEN_PATHS needs a ``read`` token (``request["token"]``)."""

    @web.middleware
    async def auth(request: web.Request, handler):
        if tokens is None:
            request["token"] = OPEN
            return await handler(request)
        if request.path in OPEN_PATHS:
            return await handler(request)
        found = authenticate(request, tokens, failures)
        if not isinstance(found, Token):
            return found
        if not found.may("read"):
            raise web.HTTPForbidden(text=f"token {found.name} may not read")
        request["token"] = found
        return await handler(request)

    return auth


def signin_page(request: web.Request, status: int = 200, problem: str = "") -> web.Response:
    note = f'<p class="problem">{escape(problem)}</p>' if problem else ""
    html = SIGNIN_HTML.replace("{problem}", note)
    headers = {"WWW-Authenticate": 'Bearer realm="emostream"'} if status == 401 else None
    return web.Response(text=html, status=status, content_type="text/html", headers=headers)


async def signin(request: web.Request) -> web.StreamResponse:
    """GET: the form. POST (``token``): the cookie set and back to the page, or the form
    again with the reason (a wrong token counts as a failed attempt)."""
    if request.method == "GET":
        return signin_page(request)
    app = request.app
    tokens, failures = app["tokens"], app["failures"]
    if tokens is None:  # EMOSTREAM_API_AUTH=none: nothing to sign in to
        return web.Response(status=303, headers={"Location": "/"})
    address = client_address(request)
    if _held_back(failures, address):
        return signin_page(request, 429, "too many wrong tokens; try again later")
    form = await request.post()
    secret = str(form.get("token", "")).strip()
    token = tokens.find(secret) if secret else None
    if token is None:
        _wrong_token(failures, address)
        return signin_page(request, 401, "wrong token")
    response = web.Response(status=303, headers={"Location": "/"})
    secure = request.secure or request.headers.get("X-Forwarded-Proto") == "https"
    response.set_cookie(COOKIE, secret, httponly=True, samesite="Strict", secure=secure, path="/")
    request["token"] = token
    return response


async def signout(request: web.Request) -> web.StreamResponse:
    response = web.Response(status=303, headers={"Location": "/signin"})
    response.del_cookie(COOKIE, path="/")
    return response


SIGNIN_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>emostream: sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 15px system-ui, sans-serif; max-width: 26rem; margin: 4rem auto; }
  input { width: 100%; padding: 6px; margin: 6px 0 12px; box-sizing: border-box; }
  .problem { color: #b91c1c; }
</style></head>
<body>
<h1>emostream</h1>
<form method="post" action="/signin">
  <label for="token">API token</label>
  <input id="token" name="token" type="password" autocomplete="current-password" required>
  <button type="submit">Sign in</button>
</form>
{problem}
</body></html>
"""
