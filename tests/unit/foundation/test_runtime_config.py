"""Settings from the environment: values reach the bus, bad values name their variable."""

from __future__ import annotations

import pytest

from synscale.config import RuntimeConfig


def test_kafka_replication_defaults_to_one_and_is_read() -> None:
    assert RuntimeConfig.from_env({}).kafka_replication == 1
    assert RuntimeConfig.from_env({"SYNSCALE_KAFKA_REPLICATION": "3"}).kafka_replication == 3


@pytest.mark.parametrize("raw", ["0", "-1", "three", ""])
def test_bad_kafka_replication_names_the_variable(raw: str) -> None:
    with pytest.raises(ValueError, match="SYNSCALE_KAFKA_REPLICATION must be an integer >= 1"):
        RuntimeConfig.from_env({"SYNSCALE_KAFKA_REPLICATION": raw})


def test_env_int_default_value_and_errors_naming_the_variable() -> None:
    from synscale.config import env_int
    from synscale.errors import InvalidInput

    assert env_int({}, "N", 7) == 7 and env_int({"N": ""}, "N", 7) == 7 and env_int({"N": "3"}, "N", 7) == 3
    with pytest.raises(InvalidInput, match=r"^N: must be an integer, got 'x'$"):
        env_int({"N": "x"}, "N", 7)
    with pytest.raises(InvalidInput, match=r"^N: must be >= 1, got 0$"):
        env_int({"N": "0"}, "N", 7, minimum=1)
