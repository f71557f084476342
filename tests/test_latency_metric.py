"""The end-to-end latency metric: a post's own ingested_at cannot move it."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from fixtures.api import result

from emostream.worker import metrics as m
from emostream.worker.pipeline import _count_written
from emostream.worker.store import Result


def _result(i: int, ingested_at: datetime) -> Result:
    """A stored result (``fixtures.api.result``) ingested at ``ingested_at``."""
    return replace(result(i, "joy"), ingested_at=ingested_at)


def _sum() -> float:
    samples = m.END_TO_END_SECONDS.collect()[0].samples
    return next(s.value for s in samples if s.name.endswith("_sum"))


def test_forged_ingested_at_is_counted_apart_not_observed():
    done = datetime.now(UTC)
    before_sum, before_out = _sum(), m.LATENCY_OUT_OF_RANGE._value.get()
    forged = [datetime(1, 1, 1, tzinfo=UTC), done + timedelta(days=365)]
    _count_written([_result(i, t) for i, t in enumerate(forged)], [True, True], done)
    assert _sum() == before_sum
    assert m.LATENCY_OUT_OF_RANGE._value.get() == before_out + 2
    _count_written([_result(9, done - timedelta(seconds=2))], [True], done)
    assert 1.9 < _sum() - before_sum < 2.1
