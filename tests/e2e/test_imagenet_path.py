"""The paper's path in the deployed shape: an ImageNet study through five service processes,
each in its own virtualenv installed from its own pyproject.

What a deployment runs is what each Dockerfile installs: `shared` + one service, nothing
else of synscale. The heavy third-party wheels are shared through one base folder (the
"base image"), so the venvs install only `shared` and their service (`--no-deps`). Before
the domain core, the analyzer resolved ImageNet classes by importing the prompter, which
its image does not carry, and this study failed in the analyzer.

The study: three ImageNet-1k classes by WordNet id; the `sd` backend on a tiny random
Stable Diffusion pipeline saved to a local folder; a torchvision ResNet-18 reference
classifier from a local weights file (recognizability, diversity); real, validation and
ImageNet-Sketch-style OOD images as ImageFolder trees written here; a timm ResNet trained
on real and on synthetic images; the report.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image

from synscale import layout
from synscale.plan import plan_runs
from synscale.study import parse_study
from synscale.testing.modules import load_module

pytestmark = [pytest.mark.infra, pytest.mark.slow]
HERE = Path(__file__).resolve().parent
support = load_module("synscale_e2e_support", HERE / "_support.py")
STUDY_TIMEOUT_S = 1500  # a hang guard, not a speed check
WNIDS = ("n01440764", "n01443537", "n01484850")  # tench, goldfish, great white shark
NAMES = ("tench", "goldfish", "great white shark")


def _image_folder(root: Path, per_class: int, seed: int, sketch: bool = False) -> Path:
    """<root>/<wnid>/<i>.png: small RGB images, a distinct colour per class (greyscale
    line drawings for the sketch-style OOD set)."""
    rng = np.random.default_rng(seed)
    for k, wnid in enumerate(WNIDS):
        (root / wnid).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            base = np.zeros((32, 32, 3), np.uint8) + np.array([80 * k, 255 - 80 * k, 120], np.uint8)
            noisy = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
            if sketch:
                grey = 255 - np.abs(np.diff(noisy.mean(axis=2), axis=0, prepend=0)).clip(0, 255)
                noisy = np.repeat(grey[..., None], 3, axis=2).astype(np.uint8)
            Image.fromarray(noisy).save(root / wnid / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import torch
    import torchvision

    from synscale_generator.backends.tiny import build_tiny_sd

    root = tmp_path_factory.mktemp("imagenet-assets")
    sd = build_tiny_sd(root / "tiny-sd")
    torch.manual_seed(0)
    reference = root / "resnet18-random.pt"
    torch.save(torchvision.models.resnet18(weights=None, num_classes=1000).state_dict(), reference)
    evals = root / "eval"
    return {
        "sd": sd, "reference": reference, "real": _image_folder(root / "real", 4, 1),
        "eval": evals, "val": _image_folder(evals / "imagenet-val", 2, 2),
        "sketch": _image_folder(evals / "imagenet-sketch", 2, 3, sketch=True),
    }


@pytest.fixture(scope="module")
def pythons(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One venv per service from its own pyproject, over the shared base folder."""
    root = tmp_path_factory.mktemp("venvs")
    base = support.base_site_view(root / "base-site")
    return {name: str(support.service_venv(name, root, base)) for name in support.SERVICES}


def test_each_service_venv_holds_only_itself(pythons: dict[str, str]) -> None:
    for name, python in pythons.items():
        others = [f"synscale_{o}" for o in support.SERVICES if o != name]
        modules = [f"synscale_{name}", *others]
        probe = ("import importlib.util as u, json; "
                 f"print(json.dumps({{m: u.find_spec(m) is not None for m in {modules}}}))")
        found = json.loads(subprocess.run([python, "-c", probe], check=True, capture_output=True,
                                          text=True).stdout)
        assert found == {f"synscale_{name}": True, **dict.fromkeys(others, False)}, name


def _study(assets: dict[str, Path]) -> dict[str, Any]:
    return {
        "name": "imagenet-mini",
        "classes": {"set": "imagenet", "ids": list(WNIDS)},
        "generators": [{"name": "sd-tiny", "backend": "sd", "model_path": str(assets["sd"]),
                        "resolution": 16, "steps": 2, "eta": 0.5, "batch_size": 8, "cfg": [2.0]}],
        "strategies": ["classname", "classname_hypernym"],
        "images_per_class": [2, 4],
        "real": {"set": "imagenet", "path": str(assets["real"]), "per_class": [4]},
        "scoring": {"fid": False, "lpips": False},
        "training": [{"name": "resnet", "arch": "timm/resnet10t", "epochs": 1, "min_steps": 1,
                      "max_steps": 2, "batch_size": 4, "augment": False}],
        "evaluation": {"id": "imagenet-val", "ood": ["imagenet-sketch"]},
        "analysis": {"bootstrap": 10, "holdout_sizes": 0},
    }


@pytest.fixture(scope="module")
def store(infra_env: dict[str, str]) -> Any:
    from synscale.store.minio import MinioStore

    return MinioStore(infra_env["S3_ENDPOINT"], infra_env["S3_ACCESS_KEY"], infra_env["S3_SECRET_KEY"],
                      f"test-imagenet-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def deployment(infra_env: dict[str, str], store: Any, tmp_path_factory: pytest.TempPathFactory,
               pythons: dict[str, str], assets: dict[str, Path]) -> Iterator[Any]:
    """One deployment for the module's studies: five processes, one venv each."""
    env = support.service_env(infra_env, store.bucket, f"imagenet-{uuid.uuid4().hex[:8]}", {
        "SYNSCALE_SHARD_SIZE": "2",
        "SYNSCALE_SCORER_REFERENCE": f"torchvision:resnet18:{assets['reference']}",
        "SYNSCALE_EVAL_DIR": str(assets["eval"]),
    })
    with support.running(support.Deployment(env, tmp_path_factory.mktemp("logs"), pythons=pythons)) as d:
        yield d


def _submit(deployment: Any, spec: Any, tmp_path: Path) -> str:
    path = tmp_path / f"{spec.name}.yaml"
    path.write_text(spec.to_yaml())
    analyzer = deployment.procs["analyzer"].address
    done = deployment.cli("study", "submit", str(path), "--watch", "--address", analyzer,
                          timeout_s=STUDY_TIMEOUT_S)
    assert done.returncode == 0, done.stdout + done.stderr + deployment.logs()
    assert f"study {spec.study_id}: done" in done.stdout, done.stdout + deployment.logs()
    print(done.stdout)
    return str(done.stdout)


def test_imagenet_study_through_five_separately_installed_services(
    deployment: Any, store: Any, assets: dict[str, Path], tmp_path: Path,
) -> None:
    spec = parse_study(yaml.safe_dump(_study(assets)))
    _submit(deployment, spec, tmp_path)
    minio_store = store

    # every image of both cells, RGB at the study's resolution, under its WordNet id
    images = support.sample_counts(minio_store, spec.study_id)
    assert images == {("sd-tiny", 2.0, s, wnid, i): 1 for s in spec.strategies for wnid in WNIDS
                      for i in range(4)}
    # the scorer's reference (ResNet-18 over ImageNet-1k labels) scored each cell
    for strategy in spec.strategies:
        scores = json.loads(minio_store.get(layout.score_key(spec.study_id, "sd-tiny", 2.0, strategy,
                                                             layout.SCORES)))
        print(strategy, json.dumps({k: scores[k] for k in scores if not isinstance(scores[k], list | dict)}))
        assert [c["class_id"] for c in scores["classes"]] == list(WNIDS)
    # the trainer trained every planned run (real and synthetic) and evaluated ID + OOD
    planned = {r.run_id: r for r in plan_runs(spec, minio_store.bucket)}
    assert {r.source for r in planned.values()} == {"real", "synthetic"}
    results = {}
    for run_id in planned:
        result = json.loads(minio_store.get(layout.run_key(spec.study_id, run_id, layout.RESULT)))
        results[run_id] = result
        assert result["status"] == "done", result
        assert {e["set_name"] for e in result["evals"]} == {"imagenet-val", "imagenet-sketch"}
        assert [c["id"] for c in result["job"]["classes"]] == list(WNIDS)
    print(json.dumps({k: [(e["set_name"], e.get("top1", 0.0)) for e in r["evals"]]
                      for k, r in results.items()}))
    report = json.loads(minio_store.get(layout.report_key(spec.study_id, "report.json")))
    assert report["runs"] == len(planned)
    assert minio_store.exists(layout.report_key(spec.study_id, "report.html"))


CUSTOM = (("zebra", "striped zebra"), ("kettle", "tea kettle"), ("apple", "red apple"))


def test_custom_class_list_study_keeps_its_classes_through_the_services(
    deployment: Any, store: Any, assets: dict[str, Path], tmp_path: Path,
) -> None:
    """A custom list (written order = label order) with its own ImageFolder test set: the
    trainer is handed the list itself, not a guess (it used to read "" as Fashion-MNIST)."""
    ids = [cid for cid, _ in CUSTOM]
    test_root = assets["eval"] / "custom-test"
    for k, cid in enumerate(ids):
        (test_root / cid).mkdir(parents=True, exist_ok=True)
        for i in range(2):
            pixels = np.full((24, 24, 3), 60 * k + 10 * i, np.uint8)
            Image.fromarray(pixels).save(test_root / cid / f"{i}.png")
    study = {
        "name": "custom-mini",
        "classes": {"set": "custom", "custom": [{"id": c, "name": n} for c, n in CUSTOM]},
        "generators": [{"name": "sd-tiny", "backend": "sd", "model_path": str(assets["sd"]),
                        "resolution": 16, "steps": 2, "batch_size": 8, "cfg": [2.0]}],
        "strategies": ["classname"],
        "images_per_class": [2, 4],
        "real": {"set": "none"},
        "scoring": {"recognizability": False, "diversity": False, "fid": False, "lpips": True,
                    "lpips_pairs": 3},
        "training": [{"name": "resnet", "arch": "timm/resnet10t", "epochs": 1, "min_steps": 1,
                      "max_steps": 2, "batch_size": 4, "augment": False}],
        "evaluation": {"id": "folder:custom-test", "ood": []},
        "analysis": {"bootstrap": 10, "holdout_sizes": 0},
    }
    spec = parse_study(yaml.safe_dump(study))
    _submit(deployment, spec, tmp_path)
    images = support.sample_counts(store, spec.study_id)
    assert images == {("sd-tiny", 2.0, "classname", cid, i): 1 for cid in ids for i in range(4)}
    key = layout.score_key(spec.study_id, "sd-tiny", 2.0, "classname", layout.SCORES)
    scores = json.loads(store.get(key))
    assert [c["class_id"] for c in scores["classes"]] == ids
    print("custom lpips", [(c["class_id"], c["lpips"]) for c in scores["classes"]])
    for run in plan_runs(spec, store.bucket):
        result = json.loads(store.get(layout.run_key(spec.study_id, run.run_id, layout.RESULT)))
        assert result["status"] == "done", result
        assert result["job"]["class_set"] == "custom"
        assert [(c["id"], c["name"], c.get("index", 0)) for c in result["job"]["classes"]] == [
            (cid, name, k) for k, (cid, name) in enumerate(CUSTOM)]
        (evaluated,) = result["evals"]
        assert evaluated["set_name"] == "folder:custom-test" and int(evaluated["n"]) == 6
        assert set(evaluated["per_class"]) == set(ids)
    assert store.exists(layout.report_key(spec.study_id, "report.html"))


def test_every_service_stops_gracefully(deployment: Any) -> None:
    assert deployment.stop_all() == dict.fromkeys(support.SERVICES, 0), deployment.logs()
