from synscale.v1 import common_pb2 as _common_pb2
from synscale.v1 import prompter_pb2 as _prompter_pb2
from synscale.v1 import study_pb2 as _study_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GenerationJob(_message.Message):
    __slots__ = ("job", "generator", "prompts", "class_index", "bucket", "shard_size", "class_info")
    JOB_FIELD_NUMBER: _ClassVar[int]
    GENERATOR_FIELD_NUMBER: _ClassVar[int]
    PROMPTS_FIELD_NUMBER: _ClassVar[int]
    CLASS_INDEX_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    SHARD_SIZE_FIELD_NUMBER: _ClassVar[int]
    CLASS_INFO_FIELD_NUMBER: _ClassVar[int]
    job: _common_pb2.JobIdentity
    generator: _study_pb2.GeneratorSpec
    prompts: _containers.RepeatedCompositeFieldContainer[_prompter_pb2.Prompt]
    class_index: int
    bucket: str
    shard_size: int
    class_info: _common_pb2.ClassInfo
    def __init__(self, job: _Optional[_Union[_common_pb2.JobIdentity, _Mapping]] = ..., generator: _Optional[_Union[_study_pb2.GeneratorSpec, _Mapping]] = ..., prompts: _Optional[_Iterable[_Union[_prompter_pb2.Prompt, _Mapping]]] = ..., class_index: _Optional[int] = ..., bucket: _Optional[str] = ..., shard_size: _Optional[int] = ..., class_info: _Optional[_Union[_common_pb2.ClassInfo, _Mapping]] = ...) -> None: ...

class ShardReady(_message.Message):
    __slots__ = ("shard", "reannounced")
    SHARD_FIELD_NUMBER: _ClassVar[int]
    REANNOUNCED_FIELD_NUMBER: _ClassVar[int]
    shard: _common_pb2.ShardRef
    reannounced: bool
    def __init__(self, shard: _Optional[_Union[_common_pb2.ShardRef, _Mapping]] = ..., reannounced: _Optional[bool] = ...) -> None: ...

class GenerateRequest(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: GenerationJob
    def __init__(self, job: _Optional[_Union[GenerationJob, _Mapping]] = ...) -> None: ...

class GenerateProgress(_message.Message):
    __slots__ = ("done", "total", "shard", "message", "reannounced")
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    SHARD_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REANNOUNCED_FIELD_NUMBER: _ClassVar[int]
    done: int
    total: int
    shard: _common_pb2.ShardRef
    message: str
    reannounced: bool
    def __init__(self, done: _Optional[int] = ..., total: _Optional[int] = ..., shard: _Optional[_Union[_common_pb2.ShardRef, _Mapping]] = ..., message: _Optional[str] = ..., reannounced: _Optional[bool] = ...) -> None: ...

class DescribeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DescribeResponse(_message.Message):
    __slots__ = ("backends", "loaded_models", "device", "batch_size", "max_images_per_job")
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    LOADED_MODELS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_IMAGES_PER_JOB_FIELD_NUMBER: _ClassVar[int]
    backends: _containers.RepeatedScalarFieldContainer[str]
    loaded_models: _containers.RepeatedScalarFieldContainer[str]
    device: str
    batch_size: int
    max_images_per_job: int
    def __init__(self, backends: _Optional[_Iterable[str]] = ..., loaded_models: _Optional[_Iterable[str]] = ..., device: _Optional[str] = ..., batch_size: _Optional[int] = ..., max_images_per_job: _Optional[int] = ...) -> None: ...
