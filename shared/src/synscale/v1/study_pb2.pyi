from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GeneratorSpec(_message.Message):
    __slots__ = ("name", "backend", "model_path", "resolution", "steps", "scheduler", "dtype", "batch_size", "cfg_grid", "negative_prompt", "options", "eta")
    class OptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    MODEL_PATH_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    CFG_GRID_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_PROMPT_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    ETA_FIELD_NUMBER: _ClassVar[int]
    name: str
    backend: str
    model_path: str
    resolution: int
    steps: int
    scheduler: str
    dtype: str
    batch_size: int
    cfg_grid: _containers.RepeatedScalarFieldContainer[float]
    negative_prompt: str
    options: _containers.ScalarMap[str, str]
    eta: float
    def __init__(self, name: _Optional[str] = ..., backend: _Optional[str] = ..., model_path: _Optional[str] = ..., resolution: _Optional[int] = ..., steps: _Optional[int] = ..., scheduler: _Optional[str] = ..., dtype: _Optional[str] = ..., batch_size: _Optional[int] = ..., cfg_grid: _Optional[_Iterable[float]] = ..., negative_prompt: _Optional[str] = ..., options: _Optional[_Mapping[str, str]] = ..., eta: _Optional[float] = ...) -> None: ...

class StudySubmission(_message.Message):
    __slots__ = ("study_id", "spec_yaml", "submitted_at")
    STUDY_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_YAML_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    study_id: str
    spec_yaml: str
    submitted_at: str
    def __init__(self, study_id: _Optional[str] = ..., spec_yaml: _Optional[str] = ..., submitted_at: _Optional[str] = ...) -> None: ...

class StudyEvent(_message.Message):
    __slots__ = ("study_id", "stage", "detail", "done", "total")
    STUDY_ID_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    study_id: str
    stage: str
    detail: str
    done: int
    total: int
    def __init__(self, study_id: _Optional[str] = ..., stage: _Optional[str] = ..., detail: _Optional[str] = ..., done: _Optional[int] = ..., total: _Optional[int] = ...) -> None: ...

class ReportReady(_message.Message):
    __slots__ = ("study_id", "bucket", "html_key", "markdown_key", "json_key")
    STUDY_ID_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    HTML_KEY_FIELD_NUMBER: _ClassVar[int]
    MARKDOWN_KEY_FIELD_NUMBER: _ClassVar[int]
    JSON_KEY_FIELD_NUMBER: _ClassVar[int]
    study_id: str
    bucket: str
    html_key: str
    markdown_key: str
    json_key: str
    def __init__(self, study_id: _Optional[str] = ..., bucket: _Optional[str] = ..., html_key: _Optional[str] = ..., markdown_key: _Optional[str] = ..., json_key: _Optional[str] = ...) -> None: ...

class StudyRef(_message.Message):
    __slots__ = ("study_id",)
    STUDY_ID_FIELD_NUMBER: _ClassVar[int]
    study_id: str
    def __init__(self, study_id: _Optional[str] = ...) -> None: ...

class StageProgress(_message.Message):
    __slots__ = ("stage", "done", "total")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    stage: str
    done: int
    total: int
    def __init__(self, stage: _Optional[str] = ..., done: _Optional[int] = ..., total: _Optional[int] = ...) -> None: ...

class Reissue(_message.Message):
    __slots__ = ("stage", "count", "reason", "at")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    stage: str
    count: int
    reason: str
    at: str
    def __init__(self, stage: _Optional[str] = ..., count: _Optional[int] = ..., reason: _Optional[str] = ..., at: _Optional[str] = ...) -> None: ...

class StudyStatus(_message.Message):
    __slots__ = ("study_id", "state", "stages", "error", "report", "reissued")
    STUDY_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    REISSUED_FIELD_NUMBER: _ClassVar[int]
    study_id: str
    state: str
    stages: _containers.RepeatedCompositeFieldContainer[StageProgress]
    error: str
    report: ReportReady
    reissued: _containers.RepeatedCompositeFieldContainer[Reissue]
    def __init__(self, study_id: _Optional[str] = ..., state: _Optional[str] = ..., stages: _Optional[_Iterable[_Union[StageProgress, _Mapping]]] = ..., error: _Optional[str] = ..., report: _Optional[_Union[ReportReady, _Mapping]] = ..., reissued: _Optional[_Iterable[_Union[Reissue, _Mapping]]] = ...) -> None: ...

class SubmitStudyRequest(_message.Message):
    __slots__ = ("spec_yaml",)
    SPEC_YAML_FIELD_NUMBER: _ClassVar[int]
    spec_yaml: str
    def __init__(self, spec_yaml: _Optional[str] = ...) -> None: ...

class PlanRequest(_message.Message):
    __slots__ = ("study_id", "target_per_class", "budget_images", "budget_gpu_hours", "cost_per_image", "max_pilot_n", "confidence", "max_extrapolation", "max_shift")
    class CostPerImageEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    STUDY_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_PER_CLASS_FIELD_NUMBER: _ClassVar[int]
    BUDGET_IMAGES_FIELD_NUMBER: _ClassVar[int]
    BUDGET_GPU_HOURS_FIELD_NUMBER: _ClassVar[int]
    COST_PER_IMAGE_FIELD_NUMBER: _ClassVar[int]
    MAX_PILOT_N_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    MAX_EXTRAPOLATION_FIELD_NUMBER: _ClassVar[int]
    MAX_SHIFT_FIELD_NUMBER: _ClassVar[int]
    study_id: str
    target_per_class: int
    budget_images: int
    budget_gpu_hours: float
    cost_per_image: _containers.ScalarMap[str, float]
    max_pilot_n: int
    confidence: float
    max_extrapolation: float
    max_shift: float
    def __init__(self, study_id: _Optional[str] = ..., target_per_class: _Optional[int] = ..., budget_images: _Optional[int] = ..., budget_gpu_hours: _Optional[float] = ..., cost_per_image: _Optional[_Mapping[str, float]] = ..., max_pilot_n: _Optional[int] = ..., confidence: _Optional[float] = ..., max_extrapolation: _Optional[float] = ..., max_shift: _Optional[float] = ...) -> None: ...

class CellPrediction(_message.Message):
    __slots__ = ("label", "target_n", "predicted", "lo", "hi", "p_best", "note")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    TARGET_N_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_FIELD_NUMBER: _ClassVar[int]
    LO_FIELD_NUMBER: _ClassVar[int]
    HI_FIELD_NUMBER: _ClassVar[int]
    P_BEST_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    label: str
    target_n: int
    predicted: float
    lo: float
    hi: float
    p_best: float
    note: str
    def __init__(self, label: _Optional[str] = ..., target_n: _Optional[int] = ..., predicted: _Optional[float] = ..., lo: _Optional[float] = ..., hi: _Optional[float] = ..., p_best: _Optional[float] = ..., note: _Optional[str] = ...) -> None: ...

class PlanReply(_message.Message):
    __slots__ = ("study_id", "verdict", "decided", "best", "cells", "allocation", "allocation_gain", "allocation_gain_lo", "allocation_gain_hi", "followup_yaml", "plan_json", "markdown")
    class AllocationEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    STUDY_ID_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    DECIDED_FIELD_NUMBER: _ClassVar[int]
    BEST_FIELD_NUMBER: _ClassVar[int]
    CELLS_FIELD_NUMBER: _ClassVar[int]
    ALLOCATION_FIELD_NUMBER: _ClassVar[int]
    ALLOCATION_GAIN_FIELD_NUMBER: _ClassVar[int]
    ALLOCATION_GAIN_LO_FIELD_NUMBER: _ClassVar[int]
    ALLOCATION_GAIN_HI_FIELD_NUMBER: _ClassVar[int]
    FOLLOWUP_YAML_FIELD_NUMBER: _ClassVar[int]
    PLAN_JSON_FIELD_NUMBER: _ClassVar[int]
    MARKDOWN_FIELD_NUMBER: _ClassVar[int]
    study_id: str
    verdict: str
    decided: bool
    best: str
    cells: _containers.RepeatedCompositeFieldContainer[CellPrediction]
    allocation: _containers.ScalarMap[str, int]
    allocation_gain: float
    allocation_gain_lo: float
    allocation_gain_hi: float
    followup_yaml: str
    plan_json: str
    markdown: str
    def __init__(self, study_id: _Optional[str] = ..., verdict: _Optional[str] = ..., decided: _Optional[bool] = ..., best: _Optional[str] = ..., cells: _Optional[_Iterable[_Union[CellPrediction, _Mapping]]] = ..., allocation: _Optional[_Mapping[str, int]] = ..., allocation_gain: _Optional[float] = ..., allocation_gain_lo: _Optional[float] = ..., allocation_gain_hi: _Optional[float] = ..., followup_yaml: _Optional[str] = ..., plan_json: _Optional[str] = ..., markdown: _Optional[str] = ...) -> None: ...
