"""Dead letters as an operator sees them: list, show and replay (`synscale dlq ...`).

A dead letter is what the consume loop gave up on (ADR 0014): the original key and value,
the error, the attempts, the consumer group, on `<topic>.dlq`. Only permanent failures
get there — an outage is waited out — so a letter is either junk or a bug to fix; after
the fix, `replay` republishes the original bytes to the original topic, where the
deterministic keys make a redone job idempotent. The analyzer's reconciler re-issues lost
study work by itself (ADR 0016); replay is for everything else.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from google.protobuf import text_format
from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtoMessage

from synscale.bus.base import DLQ_REASON_HEADER, DLQ_SUFFIX, Bus
from synscale.config import TOPIC_NAMES, RuntimeConfig, Topics
from synscale.errors import InvalidInput
from synscale.v1 import common_pb2

REPLAYED_FROM_HEADER = "synscale-replayed-from"


def _study_decoders() -> dict[str, tuple[type[ProtoMessage], Callable[[Any], str]]]:
    """How to find the study id in each topic's message (for filtering by study)."""
    from synscale.v1 import generator_pb2, scorer_pb2, study_pb2, trainer_pb2

    return {
        "study-submissions": (study_pb2.StudySubmission, lambda m: m.study_id),
        "generation-jobs": (generator_pb2.GenerationJob, lambda m: m.job.study_id),
        "shards-ready": (generator_pb2.ShardReady, lambda m: m.shard.job.study_id),
        "scores": (scorer_pb2.ScoreResult, lambda m: m.study_id),
        "training-jobs": (trainer_pb2.TrainingJob, lambda m: m.study_id),
        "run-results": (trainer_pb2.RunResult, lambda m: m.study_id),
    }


@dataclass(frozen=True)
class Letter:
    """One record of a dead-letter topic, decoded."""

    dlq_topic: str
    partition: int
    offset: int
    letter: common_pb2.DeadLetter
    reason: str  # the failure's class name (header), or the error's first word for old letters
    logical: str  # the source topic's logical name ("" when not one of ours)

    @property
    def id(self) -> str:
        """`<dlq topic>:<partition>:<offset>`, what `show` and `replay --id` take."""
        return f"{self.dlq_topic}:{self.partition}:{self.offset}"

    def original(self) -> ProtoMessage | None:
        kind = _study_decoders().get(self.logical)
        if kind is None:
            return None
        try:
            return kind[0].FromString(self.letter.value)
        except DecodeError:
            return None

    @property
    def study_id(self) -> str:
        decoded = self.original()
        kind = _study_decoders().get(self.logical)
        return kind[1](decoded) if decoded is not None and kind is not None else ""

    def matches(self, study: str | None, reason: str | None) -> bool:
        if study and self.study_id != study:
            return False
        wanted = (reason or "").lower()
        return not wanted or wanted in self.reason.lower() or wanted in self.letter.error.lower()


def dlq_topics(topics: Topics, only: Iterable[str] = ()) -> dict[str, str]:
    """{dead-letter topic: logical source topic} for `only` (logical or physical names)."""
    wanted = list(only)
    out: dict[str, str] = {}
    for logical in TOPIC_NAMES:
        physical = topics.name(logical)
        if not wanted or logical in wanted or physical in wanted or physical + DLQ_SUFFIX in wanted:
            out[physical + DLQ_SUFFIX] = logical
    unknown = [w for w in wanted if w not in TOPIC_NAMES and not any(
        w in (topics.name(t), topics.name(t) + DLQ_SUFFIX) for t in TOPIC_NAMES)]
    if unknown:
        raise InvalidInput("--topic", f"unknown topic(s) {unknown}; known: {', '.join(TOPIC_NAMES)}")
    return out


def _reason(headers: Iterable[tuple[str, bytes | None]], letter: common_pb2.DeadLetter) -> str:
    for k, v in headers:
        if k == DLQ_REASON_HEADER and v:
            return v.decode(errors="replace")
    return letter.error.split(":", 1)[0].strip()


def read_letters(bootstrap: str, topics: dict[str, str], timeout_s: float = 15.0) -> Iterator[Letter]:
    """Every record now on these dead-letter topics, oldest first per partition (no group)."""
    from kafka import KafkaConsumer, TopicPartition

    from synscale.bus.kafka import kafka_errors

    with kafka_errors("read dead letters", bootstrap):
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                 request_timeout_ms=int(timeout_s * 1000) + 1000)
    try:
        with kafka_errors("read dead letters", bootstrap):
            existing = consumer.topics()
            tps = [TopicPartition(t, p) for t in sorted(topics) if t in existing
                   for p in sorted(consumer.partitions_for_topic(t) or ())]
            if not tps:
                return
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            ends = consumer.end_offsets(tps)
            pending = {tp for tp in tps if ends.get(tp, 0) > consumer.position(tp)}
            while pending:
                records = consumer.poll(timeout_ms=int(timeout_s * 1000))
                if not records:
                    break  # nothing more within the timeout: the broker says no
                for tp, batch in sorted(records.items()):
                    for r in batch:
                        letter = common_pb2.DeadLetter.FromString(r.value)
                        yield Letter(r.topic, r.partition, r.offset, letter,
                                     _reason(r.headers or [], letter), topics[r.topic])
                    if consumer.position(tp) >= ends.get(tp, 0):
                        pending.discard(tp)
    finally:
        consumer.close()


def replay(bus: Bus, letters: Iterable[Letter]) -> int:
    """Republish each letter's original key and value, byte for byte, to its original topic."""
    n = 0
    for item in letters:
        letter = item.letter
        bus.publish(letter.topic, letter.value, key=letter.key or None,
                    headers=[(REPLAYED_FROM_HEADER, item.id.encode())])
        n += 1
    bus.flush()
    return n


# -- the `synscale dlq` commands ------------------------------------------------------------

def add_commands(subparsers: argparse._SubParsersAction) -> None:
    dlq = subparsers.add_parser("dlq", help="list, show and replay dead letters (distributed runtime)")
    sub = dlq.add_subparsers(dest="dlq_command", metavar="COMMAND")
    for name, helptext, func in (
        ("list", "one line per dead letter", cmd_list),
        ("show", "every field of dead letters, the original message decoded", cmd_show),
        ("replay", "republish the original bytes to the original topic", cmd_replay),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--topic", action="append", default=[],
                       help="source topic (logical like generation-jobs, or physical); repeatable")
        p.add_argument("--study", help="only letters of this study id")
        p.add_argument("--reason", help="only letters whose reason (class name) or error contains this")
        p.add_argument("--id", action="append", default=[], dest="ids",
                       help="only this letter, as printed by list (<dlq topic>:<partition>:<offset>)")
        if name == "list":
            p.add_argument("--json", action="store_true", help="JSON lines instead of a table")
        if name == "replay":
            p.add_argument("--dry-run", action="store_true", help="say what would be republished")
        p.set_defaults(func=func)


def _selected(args: argparse.Namespace) -> list[Letter]:
    cfg = RuntimeConfig.from_env()
    if not cfg.kafka_bootstrap:
        raise InvalidInput("KAFKA_BOOTSTRAP_SERVERS", "is not set; dead letters live on Kafka "
                           "(the embedded runtime reports them at the end of its run)")
    topics = dlq_topics(cfg.topics, args.topic)
    ids = set(args.ids)
    return [item for item in read_letters(cfg.kafka_bootstrap, topics)
            if (not ids or item.id in ids) and item.matches(args.study, args.reason)]


def _row(item: Letter) -> dict[str, Any]:
    letter = item.letter
    return {"id": item.id, "topic": letter.topic, "source": f"{letter.partition}@{letter.offset}",
            "study": item.study_id, "reason": item.reason, "attempts": letter.attempts,
            "group": letter.consumer_group, "failed_at": letter.failed_at,
            "error": letter.error.splitlines()[0][:160] if letter.error else ""}


def cmd_list(args: argparse.Namespace) -> int:
    rows = [_row(i) for i in _selected(args)]
    if args.json:
        for row in rows:
            print(json.dumps(row, sort_keys=True))
        return 0
    for row in rows:
        print(f"{row['id']}  {row['reason']:<20} attempts={row['attempts']} study={row['study'] or '-'} "
              f"group={row['group']} at={row['failed_at']}\n    {row['error']}")
    print(f"{len(rows)} dead letter(s)")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    items = _selected(args)
    for item in items:
        letter = item.letter
        print(f"== {item.id}")
        for key, value in _row(item).items():
            if key != "error":
                print(f"{key}: {value}")
        print(f"key: {letter.key!r}\nvalue: {len(letter.value)} bytes\nerror:\n{letter.error}")
        decoded = item.original()
        print("original:\n" + (text_format.MessageToString(decoded)[:4000] if decoded is not None
                              else "(not decodable as this topic's message)"))
    print(f"{len(items)} dead letter(s)")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from synscale.config import make_bus

    items = _selected(args)
    if not items:
        print("no dead letters match; nothing replayed")
        return 0
    if args.dry_run:
        for item in items:
            print(f"would replay {item.id} -> {item.letter.topic} ({len(item.letter.value)} bytes)")
        return 0
    bus = make_bus(RuntimeConfig.from_env(), client_id="synscale-dlq")
    try:
        n = replay(bus, items)
    finally:
        bus.close()
    for item in items:
        print(f"replayed {item.id} -> {item.letter.topic}")
    print(f"{n} dead letter(s) republished")
    return 0
