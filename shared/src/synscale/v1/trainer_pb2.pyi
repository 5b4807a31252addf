from synscale.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TrainingJob(_message.Message):
    __slots__ = ("study_id", "run_id", "kind", "arch", "cells", "n_per_class", "real_per_class", "seed", "eval_sets", "recipe_json", "bucket", "class_set", "real_path", "eval_paths", "image_size", "eval_limit", "class_ids", "classes", "class_n_per_class")
    class EvalPathsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class ClassNPerClassEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    STUDY_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    CELLS_FIELD_NUMBER: _ClassVar[int]
    N_PER_CLASS_FIELD_NUMBER: _ClassVar[int]
    REAL_PER_CLASS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    EVAL_SETS_FIELD_NUMBER: _ClassVar[int]
    RECIPE_JSON_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    CLASS_SET_FIELD_NUMBER: _ClassVar[int]
    REAL_PATH_FIELD_NUMBER: _ClassVar[int]
    EVAL_PATHS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    EVAL_LIMIT_FIELD_NUMBER: _ClassVar[int]
    CLASS_IDS_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    CLASS_N_PER_CLASS_FIELD_NUMBER: _ClassVar[int]
    study_id: str
    run_id: str
    kind: str
    arch: str
    cells: _containers.RepeatedCompositeFieldContainer[_common_pb2.CellId]
    n_per_class: int
    real_per_class: int
    seed: int
    eval_sets: _containers.RepeatedScalarFieldContainer[str]
    recipe_json: str
    bucket: str
    class_set: str
    real_path: str
    eval_paths: _containers.ScalarMap[str, str]
    image_size: int
    eval_limit: int
    class_ids: _containers.RepeatedScalarFieldContainer[str]
    classes: _containers.RepeatedCompositeFieldContainer[_common_pb2.ClassInfo]
    class_n_per_class: _containers.ScalarMap[str, int]
    def __init__(self, study_id: _Optional[str] = ..., run_id: _Optional[str] = ..., kind: _Optional[str] = ..., arch: _Optional[str] = ..., cells: _Optional[_Iterable[_Union[_common_pb2.CellId, _Mapping]]] = ..., n_per_class: _Optional[int] = ..., real_per_class: _Optional[int] = ..., seed: _Optional[int] = ..., eval_sets: _Optional[_Iterable[str]] = ..., recipe_json: _Optional[str] = ..., bucket: _Optional[str] = ..., class_set: _Optional[str] = ..., real_path: _Optional[str] = ..., eval_paths: _Optional[_Mapping[str, str]] = ..., image_size: _Optional[int] = ..., eval_limit: _Optional[int] = ..., class_ids: _Optional[_Iterable[str]] = ..., classes: _Optional[_Iterable[_Union[_common_pb2.ClassInfo, _Mapping]]] = ..., class_n_per_class: _Optional[_Mapping[str, int]] = ...) -> None: ...

class EvalMetrics(_message.Message):
    __slots__ = ("set_name", "top1", "top5", "loss", "per_class", "n", "per_class_n", "correct")
    class PerClassEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class PerClassNEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    SET_NAME_FIELD_NUMBER: _ClassVar[int]
    TOP1_FIELD_NUMBER: _ClassVar[int]
    TOP5_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    PER_CLASS_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    PER_CLASS_N_FIELD_NUMBER: _ClassVar[int]
    CORRECT_FIELD_NUMBER: _ClassVar[int]
    set_name: str
    top1: float
    top5: float
    loss: float
    per_class: _containers.ScalarMap[str, float]
    n: int
    per_class_n: _containers.ScalarMap[str, int]
    correct: bytes
    def __init__(self, set_name: _Optional[str] = ..., top1: _Optional[float] = ..., top5: _Optional[float] = ..., loss: _Optional[float] = ..., per_class: _Optional[_Mapping[str, float]] = ..., n: _Optional[int] = ..., per_class_n: _Optional[_Mapping[str, int]] = ..., correct: _Optional[bytes] = ...) -> None: ...

class RunResult(_message.Message):
    __slots__ = ("study_id", "run_id", "job", "evals", "checkpoint_key", "status", "error", "train_seconds", "steps", "train_images", "train_loss", "device")
    STUDY_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    EVALS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_KEY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    TRAIN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    TRAIN_IMAGES_FIELD_NUMBER: _ClassVar[int]
    TRAIN_LOSS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    study_id: str
    run_id: str
    job: TrainingJob
    evals: _containers.RepeatedCompositeFieldContainer[EvalMetrics]
    checkpoint_key: str
    status: str
    error: str
    train_seconds: float
    steps: int
    train_images: int
    train_loss: float
    device: str
    def __init__(self, study_id: _Optional[str] = ..., run_id: _Optional[str] = ..., job: _Optional[_Union[TrainingJob, _Mapping]] = ..., evals: _Optional[_Iterable[_Union[EvalMetrics, _Mapping]]] = ..., checkpoint_key: _Optional[str] = ..., status: _Optional[str] = ..., error: _Optional[str] = ..., train_seconds: _Optional[float] = ..., steps: _Optional[int] = ..., train_images: _Optional[int] = ..., train_loss: _Optional[float] = ..., device: _Optional[str] = ...) -> None: ...

class StartRunResponse(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class RunRef(_message.Message):
    __slots__ = ("run_id", "study_id")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STUDY_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    study_id: str
    def __init__(self, run_id: _Optional[str] = ..., study_id: _Optional[str] = ...) -> None: ...

class RunProgress(_message.Message):
    __slots__ = ("run_id", "state", "step", "total_steps", "loss", "result")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    state: str
    step: int
    total_steps: int
    loss: float
    result: RunResult
    def __init__(self, run_id: _Optional[str] = ..., state: _Optional[str] = ..., step: _Optional[int] = ..., total_steps: _Optional[int] = ..., loss: _Optional[float] = ..., result: _Optional[_Union[RunResult, _Mapping]] = ...) -> None: ...
