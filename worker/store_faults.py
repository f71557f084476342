"""Which Redis errors are the store's fault (hold the batch, retry) and which one message's.

Redis can be away (connection refused, timeouts) or up and refusing writes: full under
``noeviction`` (OOM), running a long script (BUSY), a replica after a failover
(READONLY), a failed snapshot with ``stop-writes-on-bgsave-error`` (MISCONF), loading its
data (LOADING), or a cluster moving slots (MOVED, ASK, TRYAGAIN, CLUSTERDOWN). None of
these says anything about the posts in the batch: the worker holds the batch, commits
nothing, dead-letters nothing and retries with back-off. Only other errors go to
per-message containment (``worker/containment.py``).
"""

from __future__ import annotations

import redis.exceptions


class StoreUnavailable(Exception):
    """Redis answered, but cannot take writes now; ``kind`` names the reply."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


UNAVAILABLE_REPLIES = (
    "OOM", "BUSY", "READONLY", "MISCONF", "LOADING", "NOREPLICAS", "MASTERDOWN",
    "TRYAGAIN", "CLUSTERDOWN", "MOVED", "ASK",
)  # fmt: skip
"""Redis error replies that say the store, not the message, is at fault."""

UNAVAILABLE_ERRORS = {
    redis.exceptions.OutOfMemoryError: "oom",
    redis.exceptions.ReadOnlyError: "readonly",
    redis.exceptions.BusyLoadingError: "loading",
    redis.exceptions.TryAgainError: "tryagain",
    redis.exceptions.ClusterDownError: "clusterdown",
    redis.exceptions.MasterDownError: "masterdown",
    redis.exceptions.MovedError: "moved",
    redis.exceptions.AskError: "ask",
}
"""The same replies as redis-py's own exception classes (it strips their prefix)."""

REDIS_ERRORS = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    StoreUnavailable,
    OSError,
)
"""Errors that mean "Redis is away or cannot write now": the batch is held, nothing is
committed or dead-lettered, and the write is retried with back-off."""

FAULT_KINDS = (
    "connection", "timeout", "oom", "busy", "readonly", "misconf", "loading",
    "noreplicas", "masterdown", "tryagain", "clusterdown", "moved", "ask",
)  # fmt: skip
"""Every value of the ``kind`` label of ``emostream_redis_errors_total`` (bounded)."""


def _reply(message: str) -> str:
    """The server's reply inside redis-py's wording: a pipeline's command says
    "Command # 1 (...) of pipeline caused error: MISCONF ..."."""
    _, sep, after = message.partition(" of pipeline caused error: ")
    return after if sep else message


def unavailable_kind(exc: redis.exceptions.RedisError) -> str | None:
    """The fault's kind when a Redis error is the store's fault, else None (one message's)."""
    for cls, kind in UNAVAILABLE_ERRORS.items():
        if isinstance(exc, cls):
            return kind
    reply = _reply(str(exc)).split(" ", 1)[0].upper()
    if isinstance(exc, redis.exceptions.ResponseError) and reply in UNAVAILABLE_REPLIES:
        return reply.lower()
    return None


def fault_kind(exc: BaseException) -> str:
    """The ``kind`` label for an error in :data:`REDIS_ERRORS`."""
    if isinstance(exc, StoreUnavailable):
        return exc.kind
    if isinstance(exc, redis.exceptions.TimeoutError):
        return "timeout"
    return "connection"
