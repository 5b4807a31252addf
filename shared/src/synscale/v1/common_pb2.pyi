from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ClassInfo(_message.Message):
    __slots__ = ("id", "name", "description", "hypernym", "index")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    HYPERNYM_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    hypernym: str
    index: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., hypernym: _Optional[str] = ..., index: _Optional[int] = ...) -> None: ...

class CellId(_message.Message):
    __slots__ = ("generator", "cfg", "strategy")
    GENERATOR_FIELD_NUMBER: _ClassVar[int]
    CFG_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    generator: str
    cfg: float
    strategy: str
    def __init__(self, generator: _Optional[str] = ..., cfg: _Optional[float] = ..., strategy: _Optional[str] = ...) -> None: ...

class JobIdentity(_message.Message):
    __slots__ = ("study_id", "cell", "class_id", "seed_start", "seed_count")
    STUDY_ID_FIELD_NUMBER: _ClassVar[int]
    CELL_FIELD_NUMBER: _ClassVar[int]
    CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    SEED_START_FIELD_NUMBER: _ClassVar[int]
    SEED_COUNT_FIELD_NUMBER: _ClassVar[int]
    study_id: str
    cell: CellId
    class_id: str
    seed_start: int
    seed_count: int
    def __init__(self, study_id: _Optional[str] = ..., cell: _Optional[_Union[CellId, _Mapping]] = ..., class_id: _Optional[str] = ..., seed_start: _Optional[int] = ..., seed_count: _Optional[int] = ...) -> None: ...

class ShardRef(_message.Message):
    __slots__ = ("bucket", "key", "sha256", "count", "size_bytes", "job", "shard_index")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    SHARD_INDEX_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    sha256: str
    count: int
    size_bytes: int
    job: JobIdentity
    shard_index: int
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., sha256: _Optional[str] = ..., count: _Optional[int] = ..., size_bytes: _Optional[int] = ..., job: _Optional[_Union[JobIdentity, _Mapping]] = ..., shard_index: _Optional[int] = ...) -> None: ...

class DeadLetter(_message.Message):
    __slots__ = ("topic", "partition", "offset", "key", "value", "error", "attempts", "failed_at", "consumer_group")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    FAILED_AT_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_GROUP_FIELD_NUMBER: _ClassVar[int]
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    error: str
    attempts: int
    failed_at: str
    consumer_group: str
    def __init__(self, topic: _Optional[str] = ..., partition: _Optional[int] = ..., offset: _Optional[int] = ..., key: _Optional[bytes] = ..., value: _Optional[bytes] = ..., error: _Optional[str] = ..., attempts: _Optional[int] = ..., failed_at: _Optional[str] = ..., consumer_group: _Optional[str] = ...) -> None: ...
