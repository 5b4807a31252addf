"""An unreachable broker is a clear error naming the address, not a hang."""

from __future__ import annotations

import pytest

from synscale.bus.base import BusUnavailable


def test_unreachable_kafka_names_the_address() -> None:
    from synscale.bus.kafka import KafkaBus

    with pytest.raises(BusUnavailable, match=r"127\.0\.0\.1:9"):
        KafkaBus("127.0.0.1:9", request_timeout_ms=1500)


def test_no_raw_kafka_error_escapes_while_the_broker_is_down() -> None:
    """A bus built degraded (no broker yet) raises only BusUnavailable, which workers wait out."""
    from synscale.bus.kafka import KafkaBus
    from synscale.errors import is_transient

    bus = KafkaBus("127.0.0.1:9", request_timeout_ms=1000, connect=False)
    bus.flush()  # nothing was ever sent: nothing to wait for
    for call in (bus.ping, lambda: bus.ensure_topic("t.dlq"), lambda: bus.publish("t.dlq", b"letter")):
        with pytest.raises(BusUnavailable, match=r"127\.0\.0\.1:9") as caught:
            call()
        assert is_transient(caught.value)
    bus.close()
