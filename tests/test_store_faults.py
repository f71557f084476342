"""Which Redis errors hold the batch (the store's fault) and which are one message's."""

from __future__ import annotations

import pytest
import redis.exceptions
from redis.exceptions import ResponseError

from emostream.worker.store_faults import (
    FAULT_KINDS,
    StoreUnavailable,
    fault_kind,
    unavailable_kind,
)


@pytest.mark.parametrize(
    "exc, kind",
    [
        (redis.exceptions.OutOfMemoryError("command not allowed when used memory"), "oom"),
        (redis.exceptions.ReadOnlyError("You can't write against a replica."), "readonly"),
        (redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"), "loading"),
        (ResponseError("BUSY Redis is busy running a script."), "busy"),
        (ResponseError("MISCONF Redis is configured to save RDB"), "misconf"),
        (ResponseError("NOREPLICAS Not enough good replicas."), "noreplicas"),
        (ResponseError("Command # 1 (EVALSHA c1) of pipeline caused error: MISCONF x"), "misconf"),
        (redis.exceptions.MovedError("3999 127.0.0.1:6381"), "moved"),
        (redis.exceptions.TryAgainError("Multiple keys request during rehashing"), "tryagain"),
    ],
)  # fmt: skip
def test_replies_that_refuse_writes_are_the_stores_fault(exc, kind):
    assert unavailable_kind(exc) == kind
    assert kind in FAULT_KINDS
    assert fault_kind(StoreUnavailable(kind, str(exc))) == kind


@pytest.mark.parametrize(
    "exc",
    [
        redis.exceptions.ResponseError("WRONGTYPE Operation against a key holding the wrong kind"),
        redis.exceptions.ResponseError("ERR value is not an integer or out of range"),
        redis.exceptions.DataError("Invalid input of type: 'dict'."),
        ResponseError("Command # 2 (HSET k) of pipeline caused error: WRONGTYPE Operation"),
        redis.exceptions.ResponseError("BUSYKEY Target key name already exists."),
    ],
)
def test_errors_about_the_data_are_contained_per_message(exc):
    assert unavailable_kind(exc) is None


def test_away_is_counted_as_connection_or_timeout():
    assert fault_kind(redis.exceptions.ConnectionError("refused")) == "connection"
    assert fault_kind(redis.exceptions.TimeoutError("read")) == "timeout"
    assert fault_kind(OSError("reset")) == "connection"
