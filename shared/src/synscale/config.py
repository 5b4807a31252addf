"""Runtime configuration from the environment, and factories for bus and store.

Services are configured only by environment variables (12-factor) so the same image runs
under Helm, under the local launcher and in tests. Nothing here holds a credential
default: the local launcher generates its own and exports them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from synscale.bus.base import Bus
from synscale.store.base import ObjectStore

TOPIC_NAMES = (
    "study-submissions",
    "prompt-jobs",
    "generation-jobs",
    "shards-ready",
    "scores",
    "training-jobs",
    "run-results",
    "study-events",
    "reports",
)



def env_int(env: Mapping[str, str], name: str, default: int, minimum: int | None = None) -> int:
    """An integer setting (synscale.settings.Env.integer): a bad value is a SettingsError
    naming the variable, so a service refuses to start on it."""
    from synscale.settings import Env

    return Env(env).integer(name, default, minimum)

@dataclass(frozen=True)
class Topics:
    """Topic names and partition counts; prefix and counts are configurable per deployment."""

    prefix: str = "synscale"
    partitions: dict[str, int] = field(default_factory=dict)
    default_partitions: int = 6

    def name(self, logical: str) -> str:
        if logical not in TOPIC_NAMES:
            raise KeyError(f"unknown topic {logical!r}; known: {', '.join(TOPIC_NAMES)}")
        return f"{self.prefix}.{logical}"

    def partitions_of(self, logical: str) -> int:
        return self.partitions.get(logical, self.default_partitions)

    def ensure_all(self, bus: Bus) -> None:
        for logical in TOPIC_NAMES:
            bus.ensure_topic(self.name(logical), self.partitions_of(logical))

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Topics:
        env = dict(os.environ if env is None else env)
        parts = {
            logical: int(env[f"SYNSCALE_PARTITIONS_{logical.upper().replace('-', '_')}"])
            for logical in TOPIC_NAMES
            if f"SYNSCALE_PARTITIONS_{logical.upper().replace('-', '_')}" in env
        }
        return cls(
            prefix=env.get("SYNSCALE_TOPIC_PREFIX", "synscale"),
            partitions=parts,
            default_partitions=int(env.get("SYNSCALE_PARTITIONS", "6")),
        )


@dataclass(frozen=True)
class RuntimeConfig:
    runtime: str = "embedded"  # embedded | distributed
    data_dir: Path = Path("runs")
    bucket: str = "synscale"
    kafka_bootstrap: str = ""
    s3_endpoint: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_secure: bool = False
    # Replicas of the topics the services create themselves (the chart creates them up front in
    # Strimzi mode); 1 suits the single local broker, a cluster wants 3.
    kafka_replication: int = 1
    topics: Topics = field(default_factory=Topics)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> RuntimeConfig:
        env = dict(os.environ if env is None else env)
        runtime = env.get("SYNSCALE_RUNTIME", "embedded")
        if runtime not in {"embedded", "distributed"}:
            raise ValueError(f"SYNSCALE_RUNTIME must be 'embedded' or 'distributed', got {runtime!r}")
        return cls(
            runtime=runtime,
            data_dir=Path(env.get("SYNSCALE_DATA_DIR", "runs")),
            bucket=env.get("S3_BUCKET", "synscale"),
            kafka_bootstrap=env.get("KAFKA_BOOTSTRAP_SERVERS", ""),
            s3_endpoint=env.get("S3_ENDPOINT", ""),
            s3_access_key=env.get("S3_ACCESS_KEY", ""),
            s3_secret_key=env.get("S3_SECRET_KEY", ""),
            s3_secure=env.get("S3_SECURE", "false").lower() in {"1", "true", "yes"},
            kafka_replication=_replication(env.get("SYNSCALE_KAFKA_REPLICATION", "1")),
            topics=Topics.from_env(env),
        )


def _replication(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"SYNSCALE_KAFKA_REPLICATION must be an integer >= 1, got {raw!r}")
    return value


def make_store(cfg: RuntimeConfig, *, connect: bool = True) -> ObjectStore:
    """The run's store; `connect=False` reaches no server yet (a service starting degraded)."""
    if cfg.runtime == "embedded" or not cfg.s3_endpoint:
        from synscale.store.file import FileStore

        return FileStore(cfg.data_dir / "store", cfg.bucket)
    from synscale.store.minio import MinioStore

    return MinioStore(cfg.s3_endpoint, cfg.s3_access_key, cfg.s3_secret_key, cfg.bucket, secure=cfg.s3_secure,
                      connect=connect)


def make_bus(cfg: RuntimeConfig, client_id: str = "synscale", *, connect: bool = True) -> Bus:
    """The run's bus; `connect=False` reaches no broker yet (a service starting degraded)."""
    if cfg.runtime == "embedded" or not cfg.kafka_bootstrap:
        from synscale.bus.memory import MemoryBus

        return MemoryBus(cfg.topics.default_partitions)
    from synscale.bus.kafka import KafkaBus

    return KafkaBus(
        cfg.kafka_bootstrap, client_id=client_id, default_partitions=cfg.topics.default_partitions,
        replication_factor=cfg.kafka_replication, connect=connect,
    )
