"""The study file (YAML): what to generate, score, train and fit.

Validation errors name the field path and the allowed values, because a study file is
the main thing a user writes by hand. Every stage reads the same parsed `StudySpec`.
"""

from __future__ import annotations

import math
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from synscale.errors import InvalidInput
from synscale.ids import digest, safe_component

CLASS_SETS = ("fashion-mnist", "imagenet", "custom")
STRATEGIES = (
    "classname",
    "classname_description",
    "classname_hypernym",
    "clip_templates",
    "word2sen",
    "in_captions",
)
BACKENDS = ("embedded", "sd", "sdxl", "deepfloyd_if", "amused", "auto")
MAX_IMAGES_PER_CLASS = 10_000_000
MAX_NODES = 1024  # a TrainJob's numNodes; beyond this a study is misconfigured, not large
MAX_GPUS_PER_NODE = 64
FitForm = Literal["power_law", "power_law_offset"]
FIT_FORMS: tuple[FitForm, ...] = ("power_law", "power_law_offset")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClassEntry(_Strict):
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    description: str = ""
    hypernym: str = ""


class ClassesSpec(_Strict):
    set: Literal["fashion-mnist", "imagenet", "custom"] = "fashion-mnist"
    ids: list[str] | None = None  # restrict a built-in set to these ids
    custom: list[ClassEntry] | None = None  # inline custom classes
    file: str | None = None  # custom classes from YAML or CSV

    @model_validator(mode="after")
    def _custom_needs_entries(self) -> ClassesSpec:
        if self.set == "custom" and not (self.custom or self.file):
            raise ValueError("set 'custom' needs 'custom' entries or a 'file'")
        return self


class GeneratorConfig(_Strict):
    name: str = Field(min_length=1)
    backend: Literal["embedded", "sd", "sdxl", "deepfloyd_if", "amused", "auto"] = "embedded"
    model_path: str = ""
    resolution: int = 32
    steps: int = Field(25, ge=1, le=1000)
    scheduler: str = "ddim"
    eta: float = 1.0
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    batch_size: int = Field(64, ge=1, le=4096)
    cfg: list[float] = Field(default_factory=lambda: [1.0, 2.0, 4.0], min_length=1)
    negative_prompt: str = ""
    options: dict[str, str] = Field(default_factory=dict)

    @field_validator("cfg")
    @classmethod
    def _finite_cfg(cls, v: list[float]) -> list[float]:
        for x in v:
            if not math.isfinite(x) or x < 0:
                raise ValueError(f"CFG values must be finite and >= 0, got {x}")
        if len(set(v)) != len(v):
            raise ValueError(f"CFG values must be distinct, got {v}")
        return v

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, v: int) -> int:
        if v <= 0 or v % 8 != 0 or v > 2048:
            raise ValueError(f"resolution must be a positive multiple of 8 up to 2048, got {v}")
        return v


class RealSpec(_Strict):
    set: Literal["fashion-mnist", "imagenet", "none"] = "fashion-mnist"
    path: str = ""  # ImageFolder root for ImageNet
    per_class: list[int] = Field(default_factory=list)  # real-only size grid
    mix_real_per_class: int = 0  # real images added to every synthetic run (0 = none)


class ScoringSpec(_Strict):
    recognizability: bool = True
    diversity: bool = True
    fid: bool = True
    lpips: bool = True
    lpips_pairs: int = Field(64, ge=0)
    fid_samples_per_class: int = Field(100, ge=2)
    # CAS (train on the cell's images, test on real; Fashion-MNIST classes): a CNN per cell.
    cas: bool = False
    cas_per_class: int = Field(1000, ge=1)  # images per class it trains on (index < this)


class TrainingRecipe(_Strict):
    name: str = "embedded-cnn"
    kind: Literal["supervised", "clip"] = "supervised"
    arch: str = "embedded-cnn"
    epochs: float = Field(10.0, gt=0)
    min_steps: int = Field(200, ge=1)
    max_steps: int = Field(20_000, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(5e-4, ge=0)
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    augment: bool = True
    seeds: list[int] = Field(default_factory=lambda: [0])
    # Placement (docs/scaling.md, "Training on Kubernetes"): more than one node, or more
    # than one GPU on a node, makes the trainer run the job as a Kubeflow TrainJob of
    # `nodes` pods with `gpus_per_node` GPUs (and as many torchrun processes) each.
    nodes: int = Field(1, ge=1, le=MAX_NODES)
    gpus_per_node: int = Field(0, ge=0, le=MAX_GPUS_PER_NODE)
    # Data-parallel execution (docs/scaling.md "Multi-node training").
    amp: Literal["auto", "off", "bf16"] = "auto"  # auto: bf16/fp16 on CUDA, none on CPU
    compile: bool = False  # torch.compile the model
    parallel: Literal["ddp", "fsdp"] = "ddp"  # how torchrun ranks share the model
    data_streams: int = Field(8, ge=1)  # canonical data streams; world sizes must be <= this

    @property
    def distributed(self) -> bool:
        """Whether the recipe needs more than one training process."""
        return self.nodes > 1 or self.gpus_per_node > 1

    def recipe_json(self) -> str:
        """The recipe as a TrainingJob carries it (execution fields only when not default)."""
        return self.model_dump_json()

    @model_serializer(mode="wrap")
    def _omit_defaults(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Leave execution fields out while at their defaults.

        The global batch and schedule do not depend on placement or parallelism, so they
        are not part of what a run computes; omitting them keeps the run ids of recipes
        written before these fields existed unchanged.
        """
        data: dict[str, Any] = handler(self)
        for name in _OMIT_WHEN_DEFAULT:
            if name in data and data[name] == type(self).model_fields[name].default:
                del data[name]
        return data


_OMIT_WHEN_DEFAULT = ("nodes", "gpus_per_node", "amp", "compile", "parallel", "data_streams")


class EvaluationSpec(_Strict):
    id: str = "fashion-mnist-test"
    # The calibrated embedded suite (synscale_trainer.ood.SHIFTS; docs/trainer.md).
    ood: list[str] = Field(
        default_factory=lambda: [
            "rotation", "scale", "translation", "blur", "contrast", "elastic", "edge-sketch"
        ]
    )
    limit: int = Field(0, ge=0)  # evaluate on the first `limit` images of each set (0 = all)


class AnalysisSpec(_Strict):
    fits: list[FitForm] = Field(default_factory=lambda: list(FIT_FORMS))
    metric: Literal["error", "loss"] = "error"
    bootstrap: int = Field(200, ge=0)
    holdout_sizes: int = Field(1, ge=0)


class PromptOptions(_Strict):
    word2sen_model: str = ""  # local transformers directory
    word2sen_k: int = Field(20, ge=1, le=1000)
    captioner_model: str = ""  # local image-to-text directory
    captions_per_class: int = Field(20, ge=1, le=10_000)  # real images captioned per class


class StudySpec(_Strict):
    name: str = Field(min_length=1)
    seed: int = 0
    classes: ClassesSpec = Field(default_factory=ClassesSpec)
    generators: list[GeneratorConfig] = Field(min_length=1)
    strategies: list[str] = Field(default_factory=lambda: ["classname"], min_length=1)
    # The size grid (images per class, one run per size) and, optionally, per-class
    # allocations: a mapping {class id: images} trains one run on exactly those images of
    # each class (the planner's `allocation`, docs/planner.md). Generation makes the largest
    # count for every class, so uniform sizes stay nested subsets and scores compare classes
    # on equal sets.
    images_per_class: list[int | dict[str, int]] = Field(min_length=1)
    prompts: PromptOptions = Field(default_factory=PromptOptions)
    real: RealSpec = Field(default_factory=RealSpec)
    scoring: ScoringSpec = Field(default_factory=ScoringSpec)
    training: list[TrainingRecipe] = Field(default_factory=lambda: [TrainingRecipe()])
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)

    @field_validator("strategies")
    @classmethod
    def _known_strategies(cls, v: list[str]) -> list[str]:
        for s in v:
            if s not in STRATEGIES:
                raise ValueError(f"unknown strategy {s!r}; allowed: {', '.join(STRATEGIES)}")
        if len(set(v)) != len(v):
            raise ValueError("strategies must be distinct")
        return v

    @field_validator("images_per_class")
    @classmethod
    def _sizes(cls, v: list[int | dict[str, int]]) -> list[int | dict[str, int]]:
        sizes = [n for n in v if isinstance(n, int)]
        if any(n <= 0 or n > MAX_IMAGES_PER_CLASS for n in sizes):
            raise ValueError(f"sizes must be in 1..{MAX_IMAGES_PER_CLASS}, got {sizes}")
        if sorted(set(sizes)) != sizes:
            raise ValueError(f"sizes must be strictly increasing, got {sizes}")
        allocations = [a for a in v if isinstance(a, dict)]
        for i, alloc in enumerate(allocations):
            if not alloc:
                raise ValueError(f"allocation {i} is empty: give images per class as {{class id: images}}")
            bad = {k: n for k, n in alloc.items() if n <= 0 or n > MAX_IMAGES_PER_CLASS}
            if bad:
                raise ValueError(f"allocation {i}: images per class must be in 1..{MAX_IMAGES_PER_CLASS}, "
                                 f"got {bad}")
        if len({tuple(sorted(a.items())) for a in allocations}) != len(allocations):
            raise ValueError("allocations must be distinct")
        return v

    @model_validator(mode="after")
    def _unique_generators(self) -> StudySpec:
        names = [g.name for g in self.generators]
        if len(set(names)) != len(names):
            raise ValueError(f"generator names must be distinct, got {names}")
        if "in_captions" in self.strategies and not self.prompts.captioner_model:
            raise ValueError("strategy 'in_captions' needs prompts.captioner_model")
        if "word2sen" in self.strategies and not self.prompts.word2sen_model:
            raise ValueError("strategy 'word2sen' needs prompts.word2sen_model")
        return self

    @cached_property
    def study_id(self) -> str:
        """Readable and content-addressed: editing the file makes a new study.

        Computed once per (frozen) spec: every event handler asks for it, and hashing the
        whole dumped spec each time made that cost grow with the study (docs/scaling.md).
        """
        return f"{safe_component(self.name, 40)}-{digest(self.model_dump(mode='json'), length=8)}"

    @property
    def sizes(self) -> list[int]:
        """The uniform size grid (the integer entries of images_per_class)."""
        return [n for n in self.images_per_class if isinstance(n, int)]

    @property
    def allocations(self) -> list[dict[str, int]]:
        """Per-class allocations (the mapping entries of images_per_class), in file order."""
        return [a for a in self.images_per_class if isinstance(a, dict)]

    @property
    def max_images_per_class(self) -> int:
        """Images generated per class: the largest size or allocated count."""
        return max([*self.sizes, *(n for a in self.allocations for n in a.values())])

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def _format_errors(source: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in err["loc"]).replace(".[", "[")
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        lines.append(f"  {loc or '<root>'}: {msg}")
    return f"{source}: invalid study\n" + "\n".join(lines)


def parse_study(text: str, source: str = "<study>") -> StudySpec:
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(source, f"not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput(source, f"the study must be a mapping, got {type(data).__name__}")
    try:
        return StudySpec.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(source, _format_errors(source, exc).split("\n", 1)[1].strip()) from None


def load_study(path: Path | str) -> StudySpec:
    p = Path(path)
    if not p.is_file():
        raise InvalidInput(str(p), "study file does not exist")
    return parse_study(p.read_text(), str(p))
