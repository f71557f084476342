"""The address guard and the image fetcher against a local HTTP server that misbehaves."""

import asyncio
import ipaddress
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emostream.worker.address_guard import AddressGuard, FetchRefused
from emostream.worker.image_fetch import ImageFetcher

JPEG = (Path(__file__).resolve().parent.parent / "model/sample/images/flower.jpg").read_bytes()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def _send(self, code, ctype="image/jpeg", body=b"", headers=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        for k, v in headers:
            self.send_header(k, v)
        if body is not None:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self):  # noqa: N802
        p = self.path
        if p == "/ok.jpg":
            self._send(200, body=JPEG)
        elif p == "/html":
            self._send(200, "text/html", b"<html></html>")
        elif p == "/big":
            self._send(200, body=b"\xff" * 3000)
        elif p == "/bigchunked":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b"\xff" * 1000)
        elif p == "/slow":  # answers only when the test is over: slower than any timeout
            RELEASE.wait(60)
            self._send(200, body=JPEG)
        elif p == "/loop":
            self._send(302, headers=[("Location", "/loop")])
        elif p == "/to-ok":
            self._send(301, headers=[("Location", "/ok.jpg")])
        elif p.startswith("/to/"):
            self._send(302, headers=[("Location", p.removeprefix("/to/"))])
        elif p == "/empty":
            self._send(200, body=b"")
        elif p == "/missing":
            self._send(404, "text/plain", b"no")
        else:
            self._send(500, "text/plain", b"?")


RELEASE = threading.Event()
"""Set when the module's tests are done; until then /slow does not answer."""


@pytest.fixture(scope="module")
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    RELEASE.set()
    srv.shutdown()


def fetch(url, allow=("127.0.0.1/32",), **kw):
    async def go():
        f = ImageFetcher(AddressGuard.from_strings(allow), **kw)
        try:
            return await f.fetch_one(url)
        finally:
            await f.aclose()

    return asyncio.run(go())


def test_fetches_an_image(server):
    got = fetch(server + "/ok.jpg")
    assert got.status == "ok" and got.data == JPEG


def test_follows_a_checked_redirect(server):
    assert fetch(server + "/to-ok").data == JPEG


@pytest.mark.parametrize(
    "path, reason, kw",
    [
        ("/html", "content_type", {}),
        ("/big", "too_large", {"max_bytes": 2000}),
        ("/bigchunked", "too_large", {"max_bytes": 20_000}),
        ("/slow", "timeout", {"timeout_s": 0.5}),
        ("/loop", "redirects", {}),
        ("/missing", "http_status", {}),
        ("/empty", "empty_body", {}),
        ("/to/http://10.1.2.3/x.jpg", "private_address", {}),
        ("/to/http://169.254.169.254/latest/meta-data", "private_address", {}),
        ("/to/http://[::1]:80/x.jpg", "private_address", {}),
        ("/to/file:///etc/passwd", "scheme", {}),
        ("/to/gopher://example.com/", "scheme", {}),
    ],
)
def test_refusals_have_reasons(server, path, reason, kw):
    got = fetch(server + path, **kw)
    assert got.data is None and got.status == f"error:{reason}", got


def test_loopback_is_refused_without_allow_list(server):
    assert fetch(server + "/ok.jpg", allow=()).status == "error:private_address"


def test_dns_names_resolving_to_private_addresses_are_refused():
    # "localhost" resolves to loopback: refused before any connection is made
    assert fetch("http://localhost:9/x.jpg", allow=()).status == "error:private_address"
    assert fetch("http://localhost.:9/x.jpg", allow=()).status == "error:private_address"


@pytest.mark.parametrize(
    "url, reason",
    [
        ("file:///etc/passwd", "scheme"),
        ("ftp://example.com/a.jpg", "scheme"),
        ("javascript:alert(1)", "scheme"),
        ("http://user:pw@example.com/a.jpg", "bad_url"),
        ("http:///nohost", "bad_url"),
        ("http://example.com:99999/", "bad_url"),
    ],
)
def test_parse_refuses(url, reason):
    with pytest.raises(FetchRefused) as err:
        AddressGuard().parse(url)
    assert err.value.reason == reason


@pytest.mark.parametrize(
    "addr",
    [
        "127.0.0.1",
        "10.0.0.5",
        "172.16.3.4",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "100.64.0.1",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:10.0.0.1",
        "::ffff:127.0.0.1",
        "240.0.0.1",
    ],
)
def test_private_and_special_addresses_are_refused(addr):
    assert not AddressGuard().allowed(ipaddress.ip_address(addr))


@pytest.mark.parametrize("addr", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
def test_public_addresses_pass(addr):
    assert AddressGuard().allowed(ipaddress.ip_address(addr))


def test_allow_list_opens_only_its_networks():
    guard = AddressGuard.from_strings(["127.0.0.0/8"])
    assert guard.allowed(ipaddress.ip_address("127.0.0.9"))
    assert not guard.allowed(ipaddress.ip_address("10.0.0.1"))


@settings(max_examples=500, deadline=None)
@given(st.ip_addresses())
def test_guard_agrees_with_the_address_classes(addr):
    allowed = AddressGuard().allowed(addr)
    plain = addr.ipv4_mapped if getattr(addr, "ipv4_mapped", None) else addr
    if allowed:
        assert plain.is_global and not (
            plain.is_private or plain.is_loopback or plain.is_link_local or plain.is_multicast
        )


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_parse_never_raises_anything_but_refusal(text):
    try:
        t = AddressGuard().parse(text)
    except FetchRefused:
        return
    assert t.scheme in ("http", "https") and t.host
