"""An unreachable broker is a clear error naming the address, not a hang."""

from __future__ import annotations

import pytest

from synscale.bus.base import BusUnavailable


def test_unreachable_kafka_names_the_address() -> None:
    from synscale.bus.kafka import KafkaBus

    with pytest.raises(BusUnavailable, match=r"127\.0\.0\.1:9"):
        KafkaBus("127.0.0.1:9", request_timeout_ms=1500)
