"""The container images' properties, checked by parsing the Dockerfiles (no Docker engine here).

What the issue asks of every image: multi-stage (wheels built in a builder stage), a
non-root user, pinned base images, installs resolved against constraints.txt, a health
check, `python -m synscale_<svc>` as entrypoint; CPU images for prompter and analyzer
with no torch anywhere in their dependency closure; CUDA bases for the GPU services.
"""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[3]
CPU_SERVICES = ("prompter", "analyzer")
GPU_SERVICES = ("generator", "scorer", "trainer")
SERVICES = CPU_SERVICES + GPU_SERVICES


@dataclass
class Stage:
    image: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, op: str) -> list[str]:
        return [arg for o, arg in self.instructions if o == op]


def parse(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with continuation lines joined."""
    lines: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # comment inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    assert not pending, f"{path}: dangling line continuation"
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        op, _, rest = line.partition(" ")
        op = op.upper()
        if op == "FROM":
            words = rest.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], words[0])
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else ""
            stages.append(Stage(image, name))
        elif op == "ARG" and not stages:
            key, _, default = rest.partition("=")
            args[key.strip()] = default.strip()
        elif stages:
            stages[-1].instructions.append((op, rest.strip()))
    return args, stages


def dockerfile(svc: str) -> Path:
    return ROOT / "services" / svc / "Dockerfile"


def pinned(image: str) -> bool:
    """An exact version tag (x.y.z...) or a digest; never a floating tag like 'latest'."""
    if "@sha256:" in image:
        return bool(re.search(r"@sha256:[0-9a-f]{64}$", image))
    _, _, tag = image.rpartition(":")
    return bool(re.match(r"^v?\d+\.\d+\.\d+", tag))


def _declared(project: Path) -> list[str]:
    """Requirement names a project's pyproject.toml declares (markers applied, no extras)."""
    deps = tomllib.loads((project / "pyproject.toml").read_text())["project"]["dependencies"]
    reqs = [Requirement(d) for d in deps]
    return [r.name for r in reqs if r.marker is None or r.marker.evaluate({"extra": ""})]


def closure(svc: str) -> set[str]:
    """Every distribution the service's image installs: its pyproject's and shared's
    declared dependencies (read from source, so a new one is caught before reinstalling)
    and, transitively, what those installed distributions require."""
    seen: set[str] = set()
    todo = _declared(ROOT / "services" / svc) + _declared(ROOT / "shared")
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for spec in requires:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen | {f"synscale-{svc}"}


@pytest.mark.parametrize("svc", SERVICES)
def test_multi_stage_builds_wheels_then_installs_them(svc: str) -> None:
    _, stages = parse(dockerfile(svc))
    names = [s.name for s in stages]
    assert "builder" in names and names[-1] == "runtime", names
    builder = stages[names.index("builder")]
    assert any("build-wheels.sh /wheels" in r and f"services/{svc}" in r
               for r in builder.all("RUN")), "builder stage must build the wheels"
    runtime = stages[-1]
    installs = [r for r in runtime.all("RUN") if "pip install" in r]
    assert installs, "runtime stage must pip install"
    for run in installs:
        assert "from=builder,source=/wheels" in run, "install from the builder's wheels"
        assert "--no-index" in run and "-c /tmp/constraints.txt" in run
        assert re.search(rf"\bsynscale-{svc}\b", run)
    # The shared helper really resolves against constraints.txt.
    helper = (ROOT / "deploy" / "docker" / "build-wheels.sh").read_text()
    assert "pip wheel" in helper and "-c constraints.txt" in helper


@pytest.mark.parametrize("svc", SERVICES)
def test_runtime_runs_as_non_root_with_healthcheck_and_module_entrypoint(svc: str) -> None:
    _, stages = parse(dockerfile(svc))
    runtime = stages[-1]
    users = runtime.all("USER")
    assert users, "the runtime stage must switch to a non-root USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"} and (not user.isdigit() or int(user) >= 1000)
    assert runtime.all("HEALTHCHECK") and "healthcheck.py" in runtime.all("HEALTHCHECK")[-1]
    assert json.loads(runtime.all("ENTRYPOINT")[-1]) == ["python", "-m", f"synscale_{svc}"]
    exposed = {p for e in runtime.all("EXPOSE") for p in e.split()}
    assert {"50051", "9090"} <= exposed


@pytest.mark.parametrize("svc", SERVICES)
def test_base_images_are_pinned_and_of_the_right_kind(svc: str) -> None:
    _, stages = parse(dockerfile(svc))
    for stage in stages:
        assert pinned(stage.image), f"{svc}: FROM {stage.image} is not pinned"
    base = stages[-1].image
    if svc in CPU_SERVICES:
        assert base.startswith("python:") and "slim" in base
    else:
        assert base.startswith(("nvidia/cuda:", "pytorch/pytorch:"))


def test_all_images_share_one_pin_per_base() -> None:
    """One place to bump: every Dockerfile names the same python and CUDA tags."""
    pins: dict[str, set[str]] = {}
    for svc in SERVICES:
        args, _ = parse(dockerfile(svc))
        for key, value in args.items():
            pins.setdefault(key, set()).add(value)
    assert all(len(v) == 1 for v in pins.values()), pins


@pytest.mark.parametrize("svc", CPU_SERVICES)
def test_cpu_images_carry_no_torch(svc: str) -> None:
    _, stages = parse(dockerfile(svc))
    for stage in stages:
        for op, arg in stage.instructions:
            if op == "RUN":
                assert "torch" not in arg, f"{svc}: torch on an install line: {arg}"
                assert f"synscale-{svc}[" not in arg, "no extras (the prompter's pull torch)"
    deps = closure(svc)
    assert f"synscale-{svc}" in deps and "synscale" in deps
    assert not {"torch", "torchvision", "triton"} & deps, sorted(deps)


@pytest.mark.parametrize("svc", GPU_SERVICES)
def test_gpu_images_get_torch_from_their_dependencies(svc: str) -> None:
    assert "torch" in closure(svc)


def _ignored(rel: str, patterns: list[str]) -> bool:
    """.dockerignore semantics: last matching pattern wins; a match on a parent counts."""
    parts = rel.split("/")
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat = pat.rstrip("/")
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(c, pat) or (pat.startswith("**/") and (
                fnmatch.fnmatch(c, pat[3:]) or fnmatch.fnmatch(c, pat))) for c in candidates):
            result = not negate
    return result


def test_dockerignore_keeps_context_small_but_sends_what_images_copy() -> None:
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    for junk in (".venv/bin/python", ".infra/env", ".git/HEAD", "runs/x",
                 "shared/src/synscale/__pycache__/x.pyc", "services/scorer/src/x.egg-info/PKG-INFO"):
        assert _ignored(junk, patterns), f"{junk} would be sent to the build"
    for svc in SERVICES:
        _, stages = parse(dockerfile(svc))
        for stage in stages:
            for copy in stage.all("COPY"):
                words = copy.split()
                if any(w.startswith("--from=") for w in words):
                    continue
                for src in words[:-1]:
                    assert (ROOT / src).exists(), f"{svc}: COPY {src} does not exist"
                    assert not _ignored(src.rstrip("/") + "/x.py" if src.endswith("/") else src,
                                        patterns), f"{svc}: COPY {src} is excluded by .dockerignore"
