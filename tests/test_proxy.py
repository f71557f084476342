"""The compose file's proxy profile, for real: its Caddyfile in Debian's Caddy (TLS from
Caddy's own local CA) in front of a real ``emostream api``. Through it the page signs in
with a Secure cookie, the live feed streams, and the API reads each client's address from
X-Forwarded-For (rate limit per client, not per proxy) because the proxy is trusted."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from fixtures.api import new_token
from helpers import debian_tool, wait_for

from emostream.testing import free_port, wait_for_port

REPO = Path(__file__).resolve().parent.parent


def caddyfile(api_port: int, grafana_port: int, https: int, grafana_https: int, data: Path) -> str:
    """The compose file's Caddyfile with this machine's upstreams and ports, a global block
    that keeps Caddy's state under ``data`` (no admin port, no port 80), and the test
    client taken for a load balancer in front of Caddy (``trusted_proxies``), so that its
    X-Forwarded-For stands for clients at other addresses."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    text = compose["configs"]["caddyfile"]["content"].replace("$$", "$")
    text = text.replace("api:8080", f"127.0.0.1:{api_port}")
    text = text.replace("grafana:3000", f"127.0.0.1:{grafana_port}")
    text = text.replace("{$EMOSTREAM_DOMAIN}:3443", f"localhost:{grafana_https}")
    text = re.sub(r"^\{\$EMOSTREAM_DOMAIN\} \{", f"localhost:{https} {{", text, flags=re.M)
    text = text.replace("flush_interval -1", "flush_interval -1\n    trusted_proxies 127.0.0.1/32")
    ours = f"{{\n  admin off\n  auto_https disable_redirects\n  storage file_system {data}\n"
    assert text.startswith("{\n")  # the compose file's global options, ours added to them
    return ours + text[2:]


@pytest.fixture
def caddy():
    exe = debian_tool("caddy", "caddy")
    started = []

    def start(config: Path) -> subprocess.Popen:
        proc = subprocess.Popen(
            [exe, "run", "--config", str(config), "--adapter", "caddyfile"],
            stdout=subprocess.DEVNULL, stderr=(config.parent / "caddy.log").open("wb"),
            env={**os.environ, "HOME": str(config.parent), "XDG_DATA_HOME": str(config.parent)},
        )  # fmt: skip
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(30)  # the compose file's grace_period (5 s) bounds it
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            raise


def test_the_api_behind_the_compose_proxy(redis_server, api_process, caddy, tmp_path):
    api = api_process(
        redis_server.port, api_trusted_proxies="127.0.0.1", api_auth_failures=3,
        api_auth_failure_window_s=3600,
    )  # fmt: skip
    api_port = int(api.url.rsplit(":", 1)[1])
    https, grafana_https = free_port(), free_port()
    data = tmp_path / "caddy"
    config = tmp_path / "Caddyfile"
    config.write_text(caddyfile(api_port, free_port(), https, grafana_https, data))
    proc = caddy(config)
    wait_for_port(https, proc=proc)
    root = data / "pki/authorities/local/root.crt"
    wait_for(root.exists, what="Caddy's local CA")
    client = httpx.Client(base_url=f"https://localhost:{https}", verify=str(root), timeout=20)
    with client:
        assert client.get("/healthz").json() == {"status": "ok"}  # TLS, through the proxy
        signed = client.post("/signin", data={"token": api.token}, follow_redirects=False)
        assert signed.status_code == 303
        cookie = signed.headers["Set-Cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        page = client.get("/")  # the cookie from signing in opens the page
        assert page.status_code == 200 and 'id="panels"' in page.text
        with client.stream("GET", "/api/feed") as feed:  # streamed, not buffered by Caddy
            assert feed.status_code == 200
            assert next(feed.iter_bytes()).startswith(b"retry:")
        client.cookies.clear()
        # three wrong tokens from one client: that client is held back, another is not
        one, other = {"X-Forwarded-For": "203.0.113.7"}, {"X-Forwarded-For": "198.51.100.9"}
        for _ in range(3):
            bad = {**one, "Authorization": f"Bearer {new_token()}"}
            assert client.get("/api/latest", headers=bad).status_code == 401
        assert client.get("/api/latest", headers={**one, **api.headers()}).status_code == 429
        assert client.get("/api/latest", headers={**other, **api.headers()}).status_code == 200
    log = api.log.read_text()
    assert '"address": "203.0.113.7"' in log and '"address": "198.51.100.9"' in log
