"""Which producer errors mean "this producer is broken, build a new one"."""

from __future__ import annotations

import kafka.errors as E
import pytest

from emostream.ingest.producer import breaks_the_producer


@pytest.mark.parametrize(
    "exc",
    [
        E.UnknownProducerIdError(),
        E.OutOfOrderSequenceNumberError(),
        E.InvalidProducerEpochError(),
        E.ProducerFencedError(),
        E.KafkaError("Cannot perform send because at least one previous idempotent request"),
    ],
)
def test_errors_of_the_producers_own_state_rebuild_it(exc):
    assert breaks_the_producer(exc)


@pytest.mark.parametrize(
    "exc",
    [
        E.KafkaTimeoutError("Batch expired"),
        E.MessageSizeTooLargeError("The message is 2000000 bytes"),
        E.NotLeaderForPartitionError(),
        E.KafkaConnectionError("refused"),
    ],
)
def test_errors_about_a_record_or_the_network_do_not(exc):
    assert not breaks_the_producer(exc)
