from synscale.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ClassScore(_message.Message):
    __slots__ = ("class_id", "n", "precision", "recall", "f1", "diversity_std", "lpips", "fid")
    CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    RECALL_FIELD_NUMBER: _ClassVar[int]
    F1_FIELD_NUMBER: _ClassVar[int]
    DIVERSITY_STD_FIELD_NUMBER: _ClassVar[int]
    LPIPS_FIELD_NUMBER: _ClassVar[int]
    FID_FIELD_NUMBER: _ClassVar[int]
    class_id: str
    n: int
    precision: float
    recall: float
    f1: float
    diversity_std: float
    lpips: float
    fid: float
    def __init__(self, class_id: _Optional[str] = ..., n: _Optional[int] = ..., precision: _Optional[float] = ..., recall: _Optional[float] = ..., f1: _Optional[float] = ..., diversity_std: _Optional[float] = ..., lpips: _Optional[float] = ..., fid: _Optional[float] = ...) -> None: ...

class ScoreResult(_message.Message):
    __slots__ = ("study_id", "cell", "classes", "macro_f1", "diversity", "fid", "kid_mean", "kid_std", "lpips", "scored", "skipped", "bucket", "json_key", "table_key", "cas", "cas_low", "cas_high")
    STUDY_ID_FIELD_NUMBER: _ClassVar[int]
    CELL_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    MACRO_F1_FIELD_NUMBER: _ClassVar[int]
    DIVERSITY_FIELD_NUMBER: _ClassVar[int]
    FID_FIELD_NUMBER: _ClassVar[int]
    KID_MEAN_FIELD_NUMBER: _ClassVar[int]
    KID_STD_FIELD_NUMBER: _ClassVar[int]
    LPIPS_FIELD_NUMBER: _ClassVar[int]
    SCORED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    JSON_KEY_FIELD_NUMBER: _ClassVar[int]
    TABLE_KEY_FIELD_NUMBER: _ClassVar[int]
    CAS_FIELD_NUMBER: _ClassVar[int]
    CAS_LOW_FIELD_NUMBER: _ClassVar[int]
    CAS_HIGH_FIELD_NUMBER: _ClassVar[int]
    study_id: str
    cell: _common_pb2.CellId
    classes: _containers.RepeatedCompositeFieldContainer[ClassScore]
    macro_f1: float
    diversity: float
    fid: float
    kid_mean: float
    kid_std: float
    lpips: float
    scored: int
    skipped: int
    bucket: str
    json_key: str
    table_key: str
    cas: float
    cas_low: float
    cas_high: float
    def __init__(self, study_id: _Optional[str] = ..., cell: _Optional[_Union[_common_pb2.CellId, _Mapping]] = ..., classes: _Optional[_Iterable[_Union[ClassScore, _Mapping]]] = ..., macro_f1: _Optional[float] = ..., diversity: _Optional[float] = ..., fid: _Optional[float] = ..., kid_mean: _Optional[float] = ..., kid_std: _Optional[float] = ..., lpips: _Optional[float] = ..., scored: _Optional[int] = ..., skipped: _Optional[int] = ..., bucket: _Optional[str] = ..., json_key: _Optional[str] = ..., table_key: _Optional[str] = ..., cas: _Optional[float] = ..., cas_low: _Optional[float] = ..., cas_high: _Optional[float] = ...) -> None: ...

class ScoreShardsRequest(_message.Message):
    __slots__ = ("study_id", "cell", "shards")
    STUDY_ID_FIELD_NUMBER: _ClassVar[int]
    CELL_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    study_id: str
    cell: _common_pb2.CellId
    shards: _containers.RepeatedCompositeFieldContainer[_common_pb2.ShardRef]
    def __init__(self, study_id: _Optional[str] = ..., cell: _Optional[_Union[_common_pb2.CellId, _Mapping]] = ..., shards: _Optional[_Iterable[_Union[_common_pb2.ShardRef, _Mapping]]] = ...) -> None: ...

class GetScoresRequest(_message.Message):
    __slots__ = ("study_id", "cell")
    STUDY_ID_FIELD_NUMBER: _ClassVar[int]
    CELL_FIELD_NUMBER: _ClassVar[int]
    study_id: str
    cell: _common_pb2.CellId
    def __init__(self, study_id: _Optional[str] = ..., cell: _Optional[_Union[_common_pb2.CellId, _Mapping]] = ...) -> None: ...
