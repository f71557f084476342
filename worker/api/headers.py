"""Security headers on every answer, and CORS only for the origins configured.

The inline scripts of the page and of ``/docs`` are allowed by their hashes
(``script-src 'sha256-…'``), and the vendored libraries (``/vendor/``) by their origin,
so no other script runs on them, injected or not (the API's other answers are JSON,
which ``nosniff`` keeps from running); nothing may frame them, and they talk to their own
origin only. Without ``api_cors_origins`` no cross-origin browser code can read an answer;
with it, the origins named get ``Access-Control-Allow-Origin`` (and a preflight answer for
the ``Authorization`` header), nobody else.
"""

from __future__ import annotations

import base64
import hashlib
import re

from aiohttp import web


def script_hashes(html: str) -> list[str]:
    """CSP sources for each inline ``<script>`` of a page."""
    bodies = re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() + "'"
        for b in bodies
    ]


def content_security_policy(html: str) -> str:
    scripts = " ".join(script_hashes(html)) or "'none'"
    return "; ".join([
        "default-src 'none'",
        f"script-src 'self' {scripts}",  # 'self': the vendored chart library, /vendor/
        "style-src 'self' 'unsafe-inline'",  # its stylesheet, the page's <style>, colours
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ])  # fmt: skip


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def _origins(cors_origins: str) -> set[str]:
    return {o.strip() for o in cors_origins.split(",") if o.strip()}


def add_security_headers(app: web.Application, page_html: str, cors_origins: str) -> None:
    """The headers above on every answer of ``app`` (set just before they are sent, so a
    streamed feed and an error get them too), the page's CSP, ``Cache-Control:
    no-store`` unless a handler chose otherwise, and ``Access-Control-Allow-Origin`` for
    the origins of ``cors_origins`` (comma-separated) only."""
    csp = content_security_policy(page_html)
    allowed = _origins(cors_origins)

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Content-Security-Policy", csp)
        response.headers.setdefault("Cache-Control", "no-store")
        origin = request.headers.get("Origin", "")
        if origin in allowed:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"

    app.on_response_prepare.append(on_prepare)


def cors_preflight(cors_origins: str):
    """A middleware answering CORS preflights (``OPTIONS`` with
    ``Access-Control-Request-Method``): 204 for the origins configured, 403 for others."""
    allowed = _origins(cors_origins)

    @web.middleware
    async def preflight(request: web.Request, handler):
        if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
            return await handler(request)
        if request.headers.get("Origin", "") not in allowed:
            raise web.HTTPForbidden(text="cross-origin requests are not allowed from here")
        return web.Response(
            status=204,
            headers={
                "Access-Control-Allow-Methods": "GET",
                "Access-Control-Allow-Headers": "Authorization, Last-Event-ID",
                "Access-Control-Max-Age": "600",
            },
        )

    return preflight
