from synscale.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Prompt(_message.Message):
    __slots__ = ("class_id", "strategy", "index", "text")
    CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    class_id: str
    strategy: str
    index: int
    text: str
    def __init__(self, class_id: _Optional[str] = ..., strategy: _Optional[str] = ..., index: _Optional[int] = ..., text: _Optional[str] = ...) -> None: ...

class PromptJob(_message.Message):
    __slots__ = ("study_id", "class_set", "cls", "strategy", "index_start", "n", "seed")
    STUDY_ID_FIELD_NUMBER: _ClassVar[int]
    CLASS_SET_FIELD_NUMBER: _ClassVar[int]
    CLS_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    INDEX_START_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    study_id: str
    class_set: str
    cls: _common_pb2.ClassInfo
    strategy: str
    index_start: int
    n: int
    seed: int
    def __init__(self, study_id: _Optional[str] = ..., class_set: _Optional[str] = ..., cls: _Optional[_Union[_common_pb2.ClassInfo, _Mapping]] = ..., strategy: _Optional[str] = ..., index_start: _Optional[int] = ..., n: _Optional[int] = ..., seed: _Optional[int] = ...) -> None: ...

class BuildPromptsRequest(_message.Message):
    __slots__ = ("class_set", "classes", "strategy", "n", "seed", "class_ids", "study_id", "index_start", "word2sen_model", "word2sen_k", "captioner_model", "real_path", "captions_per_class")
    CLASS_SET_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    CLASS_IDS_FIELD_NUMBER: _ClassVar[int]
    STUDY_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_START_FIELD_NUMBER: _ClassVar[int]
    WORD2SEN_MODEL_FIELD_NUMBER: _ClassVar[int]
    WORD2SEN_K_FIELD_NUMBER: _ClassVar[int]
    CAPTIONER_MODEL_FIELD_NUMBER: _ClassVar[int]
    REAL_PATH_FIELD_NUMBER: _ClassVar[int]
    CAPTIONS_PER_CLASS_FIELD_NUMBER: _ClassVar[int]
    class_set: str
    classes: _containers.RepeatedCompositeFieldContainer[_common_pb2.ClassInfo]
    strategy: str
    n: int
    seed: int
    class_ids: _containers.RepeatedScalarFieldContainer[str]
    study_id: str
    index_start: int
    word2sen_model: str
    word2sen_k: int
    captioner_model: str
    real_path: str
    captions_per_class: int
    def __init__(self, class_set: _Optional[str] = ..., classes: _Optional[_Iterable[_Union[_common_pb2.ClassInfo, _Mapping]]] = ..., strategy: _Optional[str] = ..., n: _Optional[int] = ..., seed: _Optional[int] = ..., class_ids: _Optional[_Iterable[str]] = ..., study_id: _Optional[str] = ..., index_start: _Optional[int] = ..., word2sen_model: _Optional[str] = ..., word2sen_k: _Optional[int] = ..., captioner_model: _Optional[str] = ..., real_path: _Optional[str] = ..., captions_per_class: _Optional[int] = ...) -> None: ...

class BuildPromptsResponse(_message.Message):
    __slots__ = ("prompts",)
    PROMPTS_FIELD_NUMBER: _ClassVar[int]
    prompts: _containers.RepeatedCompositeFieldContainer[Prompt]
    def __init__(self, prompts: _Optional[_Iterable[_Union[Prompt, _Mapping]]] = ...) -> None: ...

class ListStrategiesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StrategyInfo(_message.Message):
    __slots__ = ("name", "description", "needs_model")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    NEEDS_MODEL_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    needs_model: bool
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., needs_model: _Optional[bool] = ...) -> None: ...

class ListStrategiesResponse(_message.Message):
    __slots__ = ("strategies",)
    STRATEGIES_FIELD_NUMBER: _ClassVar[int]
    strategies: _containers.RepeatedCompositeFieldContainer[StrategyInfo]
    def __init__(self, strategies: _Optional[_Iterable[_Union[StrategyInfo, _Mapping]]] = ...) -> None: ...

class ListClassSetsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ClassSetInfo(_message.Message):
    __slots__ = ("name", "num_classes", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NUM_CLASSES_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    num_classes: int
    description: str
    def __init__(self, name: _Optional[str] = ..., num_classes: _Optional[int] = ..., description: _Optional[str] = ...) -> None: ...

class ListClassSetsResponse(_message.Message):
    __slots__ = ("class_sets",)
    CLASS_SETS_FIELD_NUMBER: _ClassVar[int]
    class_sets: _containers.RepeatedCompositeFieldContainer[ClassSetInfo]
    def __init__(self, class_sets: _Optional[_Iterable[_Union[ClassSetInfo, _Mapping]]] = ...) -> None: ...
