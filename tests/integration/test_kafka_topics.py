"""Topic creation on the real broker: the configured replication is what Kafka is asked for."""

from __future__ import annotations

import pytest

from synscale.bus.base import BusError
from synscale.config import RuntimeConfig, make_bus

pytestmark = pytest.mark.infra


def test_replication_comes_from_the_environment_and_is_checked_by_the_broker(
    infra_env: dict[str, str], unique: str,
) -> None:
    env = {"SYNSCALE_RUNTIME": "distributed", **infra_env}
    ok = make_bus(RuntimeConfig.from_env(env))
    try:
        ok.ensure_topic(f"repl-ok-{unique}", 2)  # one local broker: replication 1 fits
    finally:
        ok.close()
    wide = make_bus(RuntimeConfig.from_env({**env, "SYNSCALE_KAFKA_REPLICATION": "3"}))
    try:
        # The single local broker cannot hold 3 replicas: the broker's refusal, named, not a hang.
        with pytest.raises(BusError, match=f"could not create topic repl-3-{unique}") as err:
            wide.ensure_topic(f"repl-3-{unique}", 2)
        assert "InvalidReplicationFactor" in str(err.value) and "only 1 broker" in str(err.value)
    finally:
        wide.close()
