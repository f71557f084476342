"""The dashboard API's Prometheus metrics (prefix ``emostream_``): requests, feed clients
and the live emotion shifts."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

API_REQUESTS = Counter(
    "emostream_api_requests_total",
    "Dashboard API requests, by route and status.",
    ["route", "status"],
)
API_FEED_CLIENTS = Gauge("emostream_api_feed_clients", "Open Server-Sent Events connections.")
API_FEEDS_REFUSED = Counter(
    "emostream_api_feeds_refused_total",
    "Live feeds refused at a cap: all (api_feed_clients_max) or per token.",
    ["cap"],
)
API_AUTH_FAILURES = Counter(
    "emostream_api_auth_failures_total",
    "Requests refused for their token: wrong_token, or rate_limited (the address made too "
    "many wrong attempts).",
    ["reason"],
)
for _cap in ("all", "token"):
    API_FEEDS_REFUSED.labels(_cap)
for _reason in ("wrong_token", "rate_limited"):
    API_AUTH_FAILURES.labels(_reason)
SHIFT_SCORE = Gauge(
    "emostream_emotion_shift_score",
    "z-score of a channel's share of a label now against its own baseline, while flagged "
    "(worker/api/shifts.py); at most SHIFT_SERIES series.",
    ["source", "channel", "kind", "label"],
)
SHIFT_REPORTS = Counter(
    "emostream_api_shift_reports_total",
    "Passes of the shift gauges over the live counts (one a minute while the API runs).",
)
SHIFTS = Gauge("emostream_emotion_shifts", "Channel labels flagged as shifted right now.")
SHIFT_SERIES = 50


def show_shifts(found: list[dict], shown: set[tuple]) -> set[tuple]:
    """Set the shift gauges to ``found`` (strongest SHIFT_SERIES); remove the series of
    shifts that ended. Returns the label sets now shown."""
    SHIFTS.set(len(found))
    now = set()
    for s in found[:SHIFT_SERIES]:
        labels = (s["source"], s["channel"], s["kind"], s["label"])
        SHIFT_SCORE.labels(*labels).set(s["score"])
        now.add(labels)
    for labels in shown - now:
        SHIFT_SCORE.remove(*labels)
    return now
