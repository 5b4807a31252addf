"""Fixtures of the generator tests: tiny pipelines of each family, the tiny embedded backend, jobs.

Tiny pipelines are built once per session (a few hundred KB each, seconds to build) and
loaded back through the backends from their directories, as real models would be.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from synscale.bus.memory import MemoryBus
from synscale.runtime import ServiceContext
from synscale.store.file import FileStore
from synscale.v1 import generator_pb2, study_pb2
from synscale_generator.embedded.testing import register_tiny
from synscale_generator.output import make_job

os.environ.setdefault("HF_HUB_OFFLINE", "1")
STANDIN = "standin"


@pytest.fixture(scope="session", autouse=True)
def _quiet_and_registered() -> None:
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    diffusers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    register_tiny(STANDIN)  # the production embedded serving path on a tiny random UNet


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """family -> directory of a tiny saved pipeline of that family (built on first use)."""
    from synscale_generator.backends.tiny import BUILDERS, build_tiny_if

    root = tmp_path_factory.mktemp("tiny-pipelines")
    built: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in built:
            if family == "deepfloyd_if_stage2":
                build_tiny_if(root / "deepfloyd_if_s1", stage2=root / family)
            else:
                BUILDERS[family](root / family)
            built[family] = root / family
        return built[family]

    return get


@pytest.fixture
def file_store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "store", "gen-test")


@pytest.fixture
def memory_ctx(file_store: FileStore) -> Iterator[ServiceContext]:
    yield ServiceContext(bus=MemoryBus(2), store=file_store)


def standin_spec(name: str = "gen", **fields: object) -> study_pb2.GeneratorSpec:
    spec = study_pb2.GeneratorSpec(name=name, backend=STANDIN, steps=2, batch_size=4)
    for key, value in fields.items():
        if key == "options":
            spec.options.update(value)  # type: ignore[arg-type]
        else:
            setattr(spec, key, value)
    return spec


def standin_job(
    class_id: str = "bag", n: int = 3, cfg: float = 2.0, **kw: object,
) -> generator_pb2.GenerationJob:
    spec = kw.pop("spec", None) or standin_spec()
    texts = kw.pop("texts", None) or [f"a photo of a {class_id} {i}" for i in range(n)]
    return make_job("study-t", spec, cfg, "classname", class_id, texts, **kw)  # type: ignore[arg-type]


@pytest.fixture
def job_for() -> Callable[..., generator_pb2.GenerationJob]:
    """Builder of stand-in GenerationJobs: job_for(class_id, n, cfg, spec=..., texts=...)."""
    return standin_job


@pytest.fixture
def spec_for() -> Callable[..., study_pb2.GeneratorSpec]:
    """Builder of stand-in GeneratorSpecs: spec_for(name, **fields)."""
    return standin_spec


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny models gain nothing from 2 threads, and on a CPU shared with other jobs the
    OpenMP barriers of 2 threads make them ~10x slower; restore the setting afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
