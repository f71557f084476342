"""The dashboard API's response types and the OpenAPI document generated from them.

The response types are msgspec structs; ``openapi()`` derives the JSON schemas from them
(``msgspec.json.schema_components``), so the document cannot drift from what the API
returns. ``PostResult`` has one field per field the worker stores for a post
(``store.Result.fields``); a test holds the two together.
"""

from __future__ import annotations

import msgspec

from emostream.model.training.labels import EMOTIONS


class PostResult(msgspec.Struct, kw_only=True):
    """One post's result, as stored by the worker."""

    id: str
    source: str
    channel: str
    label: str
    """The most probable emotion; empty when the post could not be classified."""
    status: str
    """classified, unsupported_language (the text is in a language the model cannot
    read, and there was no picture to classify instead) or unclassifiable."""
    emotions: dict[str, float]
    sentiment: str
    sentiments: dict[str, float]
    modalities: list[str]
    image_status: str
    model_version: str
    created_at: str
    ingested_at: str
    written_at: str
    text: str
    """The first 280 characters."""
    language: str = ""
    """The language of the text (ISO 639-1; und: too little text to tell; empty: no
    text)."""
    run_id: str | None = None
    received_at: str | None = None
    created_at_given: str | None = None
    """Only when the post's own created_at was out of range (before 2004 or over a day
    ahead): that value; created_at is then its ingested_at."""
    permalink: str | None = None
    """Where the post can be read at its source, when the source gave an address."""


class FeedResult(PostResult, kw_only=True):
    event_id: str
    """The feed stream's entry id (SSE ``id``; pass as Last-Event-ID or ``from``)."""


class Latest(msgspec.Struct):
    results: list[FeedResult]


class Bucket(msgspec.Struct, kw_only=True):
    start: int
    counts: dict[str, int]
    """Posts per emotion (and unclassifiable)."""
    not_read: int = 0
    """Posts not classified for their language (unsupported_language): in no share."""
    sentiments: dict[str, int]
    """Posts per sentiment."""


class Aggregates(msgspec.Struct, kw_only=True):
    version: str | None
    bucket_s: int
    buckets: list[Bucket]
    channels: dict[str, dict[str, int]]
    start: int | None = msgspec.field(default=None, name="from")
    """The first bin's start (epoch s); none when there is no version to read."""
    end: int | None = msgspec.field(default=None, name="to")
    """The end of the last bin (epoch s, exclusive)."""


class ShiftExample(msgspec.Struct):
    id: str
    text: str


class ShiftItem(msgspec.Struct):
    source: str
    channel: str
    kind: str
    """emotion or sentiment."""
    label: str
    share: float
    """The label's share of the channel's posts in the current window."""
    baseline: float
    """Its weighted mean share over the baseline windows."""
    score: float
    """z-score of the rise (baseline variance plus the sampling variance of the share)."""
    posts: int
    window_s: int
    since: int
    """Start (epoch seconds) of the first window of the unbroken run of flagged windows."""
    examples: list[ShiftExample]


class Shifts(msgspec.Struct):
    version: str | None
    window_s: int
    baseline_windows: int
    shifts: list[ShiftItem]


class VersionPosts(msgspec.Struct):
    version: str
    posts: int


class Versions(msgspec.Struct):
    live: list[VersionPosts]
    shadow: list[VersionPosts]


class Comparison(msgspec.Struct):
    shadow: str
    live: list[str]
    """The live versions the compared posts had."""
    posts: int
    """Posts with a result from both (the shadow's latest ``limit``)."""
    emotion_agreement: float | None
    sentiment_agreement: float | None
    confusion: dict[str, dict[str, int]]
    """live label -> shadow label -> posts."""


class Health(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``/healthz``: ``ok`` when Redis answers (200), else ``redis unavailable`` (503)."""

    status: str
    reason: str = ""
    """Why Redis did not answer (503 only)."""


class Problem(msgspec.Struct, kw_only=True):
    """Every error response (400, 401, 404, 429, 500...), as RFC 9457 problem details
    (``application/problem+json``)."""

    type: str = "about:blank"
    title: str
    """The status's phrase, e.g. "Bad Request"."""
    status: int
    detail: str
    """What was wrong, e.g. "limit must be an integer"."""


def _query(name: str, desc: str, kind: str = "string", required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "description": desc,
            "schema": {"type": kind}}  # fmt: skip


def _json(description: str, name: str) -> dict:
    schema = {"$ref": f"#/components/schemas/{name}"}
    media = "application/problem+json" if name == "Problem" else "application/json"
    return {"description": description, "content": {media: {"schema": schema}}}


def _ok(name: str) -> dict:
    return {"200": _json("OK", name), "400": _json("a parameter out of its bounds", "Problem")}


VENDORED = {
    "uPlot.iife.min.js": "text/javascript",
    "uPlot.min.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
}
"""The pages' third-party files and their media types: the charts' uPlot 1.6.32 (MIT,
``dashboard/vendor/uPlot.LICENSE``) and the ``/docs`` page's Swagger UI 5.36.0 (Apache-2.0,
``dashboard/vendor/swagger-ui.LICENSE``); served from the package, nothing is fetched from
elsewhere at run time."""


def openapi() -> dict:
    _, components = msgspec.json.schema_components(
        [PostResult, Latest, Aggregates, Shifts, Versions, Comparison, Health, Problem],
        ref_template="#/components/schemas/{name}",
    )
    common = [_query("run", "a replay's run id (default: the live namespace)")]
    filters = [
        _query("source", "reddit, flickr, ..."),
        _query("channel", "e.g. r/happy"),
        _query("emotion", ", ".join(EMOTIONS)),
        _query("modality", "text, image or text,image (latest, feed)"),
        _query("min_confidence", "0..1, of the top emotion (latest, feed)", "number"),
        _query("language", "ISO 639-1 code of the text, or und (latest, feed)"),
        _query("q", "words the text contains, any case; at most 200 characters (latest, feed)"),
    ]
    path_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    sse = {"200": {"description": "text/event-stream", "content": {"text/event-stream": {}}}}
    window = [_query("window_s", "seconds", "integer"), _query("version", "default: newest")]
    paths = {
        "/api/posts/{id}": ("One post's result", [path_id, *common],
                            {**_ok("PostResult"), "404": _json("no such post", "Problem")}),
        "/api/latest": ("Newest results", [*common, *filters, _query("limit", "1..500", "integer"),
                         _query("since", "created at or after, epoch s", "integer"),
                         _query("until", "created before, epoch s", "integer")],
                        _ok("Latest")),
        "/api/aggregates": ("Posts per emotion per time bin, and per channel",
                            [*common, *filters[:2], *window], _ok("Aggregates")),
        "/api/feed": ("Server-Sent Events: each new result (a FeedResult per event)",
                      [*common, *filters], sse),
        "/api/shifts": ("Channels whose emotion or sentiment mix left their own baseline",
                        [*common, _query("window_s", "default 600", "integer"),
                         _query("windows", "baseline windows, default 12", "integer"),
                         _query("min_posts", "posts a window needs, default 20", "integer"),
                         _query("at", "epoch seconds, default now", "integer"),
                         _query("version", "default: newest")], _ok("Shifts")),
        "/api/versions": ("Model versions with results, live and shadow", [], _ok("Versions")),
        "/api/export": ("Every result of the namespace, streamed (emostream export's fields)",
                        [*common, _query("format", "jsonl (default) or csv")],
                        {"200": {"description": "JSON Lines or CSV, one post per line",
                                 "content": {"application/x-ndjson": {}, "text/csv": {}}},
                         "400": _json("a parameter out of its bounds", "Problem")}),
        "/api/compare": ("A shadow model version against the live results of the same posts",
                         [_query("shadow", "the shadow's model version", required=True),
                          _query("limit", "1..10000, default 1000", "integer")],
                         _ok("Comparison")),
    }  # fmt: skip
    html = {"200": {"description": "text/html", "content": {"text/html": {}}}}
    paths["/"] = ("The live page (without a token: the sign-in form, 401)", [], html)
    paths["/openapi.json"] = ("This document", [], {"200": {"description": "OpenAPI 3.1"}})
    vendored = {"name": "name", "in": "path", "required": True,
                "schema": {"type": "string", "enum": list(VENDORED)}}  # fmt: skip
    paths["/docs"] = ("This document, browsable (Swagger UI, from the package)", [],
                      {"200": {"description": "an HTML page"}})  # fmt: skip
    paths["/vendor/{name}"] = ("The pages' libraries (uPlot, Swagger UI), from the package",
                               [vendored], {"200": {"description": "JavaScript or CSS"},
                                            "404": _json("no such file", "Problem")})  # fmt: skip
    doc: dict = {
        "openapi": "3.1.0",  # msgspec's schemas are JSON Schema 2020-12 ({"type": "null"})
        "info": {"title": "emostream dashboard API", "version": "1"},
        "security": [{"bearer": []}, {"cookie": []}],
        "paths": {
            path: {"get": {"summary": summary, "parameters": params,
                           "responses": {**responses, **REFUSED}}}
            for path, (summary, params, responses) in paths.items()
        },
        "components": {"schemas": components, "securitySchemes": SECURITY_SCHEMES},
    }  # fmt: skip
    doc["paths"].update(_open_paths(html))
    return doc


def _open_paths(html: dict) -> dict:
    """The routes open without a token: the health check, signing in and out."""
    paths: dict = {}
    paths["/healthz"] = {"get": {
        "summary": "Health: 200 when Redis answers, else 503 (no token needed)",
        "security": [], "parameters": [],
        "responses": {"200": _json("ok", "Health"), "503": _json("Redis away", "Health")},
    }}  # fmt: skip
    form = {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {"token": {"type": "string"}},
                    "required": ["token"],
                }
            }
        },
    }
    paths["/signin"] = {
        "get": {"summary": "The sign-in form", "security": [], "parameters": [], "responses": html},
        "post": {
            "summary": "Sign in: sets the emostream_token cookie (HttpOnly, "
            "SameSite=Strict) and sends the page (303 to /)",
            "security": [],
            "requestBody": form,
            "responses": {
                "303": {"description": "signed in"},
                "401": {"description": "wrong token (the form again)"},
                "429": {"description": "too many wrong tokens from this address"},
            },
        },
    }
    paths["/signout"] = {
        "post": {
            "summary": "Sign out: the cookie removed (303 to /signin)",
            "security": [],
            "responses": {"303": {"description": "signed out"}},
        }
    }
    return paths


SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "a token of the tokens file (docs/operations.md)"},
    "cookie": {"type": "apiKey", "in": "cookie", "name": "emostream_token",
               "description": "set by signing in on the page (POST /signin)"},
}  # fmt: skip
REFUSED = {
    "401": _json("no token, or a wrong one (WWW-Authenticate says which)", "Problem"),
    "429": _json("too many wrong tokens from this address, or too many feeds", "Problem"),
}
