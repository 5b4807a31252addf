"""Class sets of a study: Fashion-MNIST, ImageNet-1k and custom lists, in ONE label order.

Every service needs the study's classes — the prompter writes prompts per class, the
generator names shard folders by class id, the scorer's reference classifier and the
trainer's head need integer labels, the analyzer plans runs over them — so they are
resolved here, once, from the study spec (docs/architecture.md, "Domain core").

The label order, everywhere:

- a built-in set is in its dataset's order (Fashion-MNIST's labels; ImageNet-1k's sorted
  WordNet ids, the order of torchvision's ImageFolder and of every published checkpoint);
- a custom list is in the order it is written;
- restricting a set to some ids (`classes.ids`) keeps the set's order, whatever order the
  ids were listed in. The run's label of a class is its position in the (restricted) set;
  `ClassDef.index` keeps its label in the full set, which is what reference classifiers
  and real datasets speak.

This module is torch-free and WordNet-free: names and ids only (ImageNet's are vendored in
`synscale/data/imagenet1k.tsv`). Glosses and hypernyms come from WordNet in the prompter,
which passes a `resolve` callback when it parses custom entries that name a synset.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import yaml

from synscale.errors import InvalidInput
from synscale.ids import safe_component

CUSTOM_FIELDS = ("id", "name", "description", "hypernym", "wordnet")
REQUIRED_FIELDS = ("id", "name")
WNID_RE = re.compile(r"^([nvar])(\d{8})$")
SYNSET_NAME_RE = re.compile(r"^.+\.[nvasr]\.\d{2}$")
IMAGENET_FILE = "imagenet1k.tsv"
BUILTIN_SETS = ("fashion-mnist", "imagenet")
CLASS_SET_INFO = {
    "imagenet": (1000, "ImageNet-1k: WordNet ids, open_clip clean names, WordNet glosses and hypernyms"),
    "fashion-mnist": (10, "Fashion-MNIST: the embedded default, mapped to WordNet by hand"),
    "custom": (0, "your own list {id, name, description?, hypernym?} from YAML, CSV or the request"),
}


@dataclass(frozen=True)
class ClassDef:
    """One class: what prompts say (`name`), what keys say (`id`), its full-set label."""

    id: str
    name: str
    index: int  # label in the full class set (dataset label for built-in sets)
    description: str = ""  # WordNet gloss, or given by hand
    hypernym: str = ""  # name of the parent concept
    wnid: str = ""  # WordNet synset ("n01440764") the class is mapped to, if any


@dataclass(frozen=True)
class Resolved:
    """What a WordNet lookup adds to a custom entry (the prompter's `resolve` returns it)."""

    wnid: str
    description: str
    hypernym: str


class Resolver(Protocol):
    def __call__(self, ref: str) -> Resolved:
        """Look `ref` ('n01440764' or 'dog.n.01') up; raise InvalidInput when it is unknown."""


@dataclass(frozen=True)
class ClassSet:
    """An ordered set of classes; a class's position is the label a run trains with."""

    name: str  # imagenet | fashion-mnist | custom
    classes: tuple[ClassDef, ...]
    description: str = ""
    full_ids: tuple[str, ...] = field(default=(), compare=False)  # the unrestricted set's ids

    def __post_init__(self) -> None:
        if not self.classes:
            raise InvalidInput("classes", f"class set {self.name!r} is empty")
        if not self.full_ids:
            object.__setattr__(self, "full_ids", self.ids)

    def __len__(self) -> int:
        return len(self.classes)

    def __iter__(self) -> Iterator[ClassDef]:
        return iter(self.classes)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.classes)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    @property
    def restricted(self) -> bool:
        return len(self.classes) != len(self.full_ids)

    @property
    def id_to_index(self) -> dict[str, int]:
        """Class id -> label in this set (its position)."""
        return {c.id: i for i, c in enumerate(self.classes)}

    @property
    def folder_to_index(self) -> dict[str, int]:
        """Class folder name under a cell prefix (layout: safe_component(id)) -> label."""
        return {safe_component(c.id): i for i, c in enumerate(self.classes)}

    def get(self, class_id: str, field: str = "class_id") -> ClassDef:
        for c in self.classes:
            if c.id == class_id:
                return c
        raise InvalidInput(field, f"unknown class {class_id!r} in class set {self.name!r}"
                                  f" ({len(self)} classes, e.g. {', '.join(self.ids[:3])})")

    def select(self, ids: Sequence[str] | None, field: str = "class_ids") -> ClassSet:
        """The classes with these ids, in the set's own order; None or [] keeps all."""
        if not ids:
            return self
        wanted: set[str] = set()
        for i, class_id in enumerate(ids):
            self.get(class_id, f"{field}[{i}]")
            if class_id in wanted:
                raise InvalidInput(f"{field}[{i}]", f"class {class_id!r} is listed twice")
            wanted.add(class_id)
        return replace(self, classes=tuple(c for c in self.classes if c.id in wanted),
                       full_ids=self.full_ids)

    def infos(self) -> list[dict[str, Any]]:
        """The classes as synscale.v1.ClassInfo fields (label = position in this set)."""
        return [{"id": c.id, "name": c.name, "description": c.description,
                 "hypernym": c.hypernym, "index": i} for i, c in enumerate(self.classes)]


# ----------------------------------------------------------------------- built-in
@cache
def imagenet() -> ClassSet:
    """ImageNet-1k: sorted WordNet ids (label order) and open_clip's clean names (vendored)."""
    rows: list[ClassDef] = []
    text = resources.files("synscale.data").joinpath(IMAGENET_FILE).read_text(encoding="utf-8")
    for line in text.splitlines():
        index, wnid, name = line.split("\t")
        if int(index) != len(rows):
            raise ValueError(f"{IMAGENET_FILE} is out of order at label {index}")
        rows.append(ClassDef(id=wnid, name=name, index=len(rows), wnid=wnid))
    return ClassSet("imagenet", tuple(rows), "ImageNet-1k (ILSVRC-2012), 1000 WordNet noun synsets")


@cache
def fashion_mnist() -> ClassSet:
    """The 10 Fashion-MNIST classes in the dataset's label order."""
    from synscale.datasets.fashion_mnist import CLASSES

    return ClassSet("fashion-mnist",
                    tuple(ClassDef(id=i, name=n, index=k) for k, (i, n) in enumerate(CLASSES)),
                    "Fashion-MNIST (Zalando), 10 clothing classes")


BUILTIN: dict[str, Callable[[], ClassSet]] = {"imagenet": imagenet, "fashion-mnist": fashion_mnist}


# ------------------------------------------------------------------------- custom
def _entry_label(source: str, i: int, entry: Mapping[str, Any]) -> str:
    raw_id = entry.get("id")
    shown = f" (id {raw_id!r})" if isinstance(raw_id, str | int) and str(raw_id).strip() else ""
    return f"{source}: entry {i}{shown}"


def _text(value: Any, where: str, field: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidInput(f"{where}.{field}", f"must be text, got {type(value).__name__}")
    return str(value).strip()


def _resolve(ref: str, values: Mapping[str, str], where: str, resolve: Resolver) -> Resolved:
    field = "wordnet" if values["wordnet"] else "id"
    if not (WNID_RE.match(ref) or SYNSET_NAME_RE.match(ref)):
        raise InvalidInput(f"{where}.wordnet", f"{ref!r} is neither a WordNet id "
                                               "(n01440764) nor a synset name (dog.n.01)")
    try:
        return resolve(ref)
    except InvalidInput:
        raise InvalidInput(f"{where}.{field}", f"unknown WordNet id {ref!r}") from None


def custom_from_entries(entries: Iterable[Any], source: str = "classes",
                        resolve: Resolver | None = None) -> ClassSet:
    """Validate hand-written entries {id, name, description?, hypernym?, wordnet?}.

    Errors name the entry and field, because custom lists are typed by hand:
    "classes.yaml: entry 3 (id 'cat').id: duplicate id, first used by entry 1". With
    `resolve`, an id that looks like a WordNet id ("n01440764") or an explicit `wordnet`
    synset must exist, and fills the description and hypernym the entry leaves empty.
    """
    classes: list[ClassDef] = []
    first_use: dict[str, int] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise InvalidInput(f"{source}: entry {i}",
                               f"must be a mapping with id and name, got {type(entry).__name__}")
        where = _entry_label(source, i, entry)
        unknown = sorted(set(map(str, entry)) - set(CUSTOM_FIELDS))
        if unknown:
            raise InvalidInput(where, f"unknown field(s) {', '.join(unknown)}; "
                                      f"allowed: {', '.join(CUSTOM_FIELDS)}")
        values = {f: _text(entry.get(f), where, f) for f in CUSTOM_FIELDS}
        for field_name in REQUIRED_FIELDS:
            if not values[field_name]:
                raise InvalidInput(f"{where}.{field_name}", f"{field_name} is empty")
        class_id = values["id"]
        if class_id in first_use:
            raise InvalidInput(f"{where}.id", f"duplicate id, first used by entry {first_use[class_id]}")
        first_use[class_id] = i
        ref = values["wordnet"] or (class_id if WNID_RE.match(class_id) else "")
        info = _resolve(ref, values, where, resolve) if ref and resolve else None
        classes.append(ClassDef(
            id=class_id, name=values["name"], index=i,
            description=values["description"] or (info.description if info else ""),
            hypernym=values["hypernym"] or (info.hypernym if info else ""),
            wnid=info.wnid if info else (ref if WNID_RE.match(ref) else ""),
        ))
    if not classes:
        raise InvalidInput(source, "the class list is empty")
    return ClassSet("custom", tuple(classes), f"custom classes from {source}")


def _parse_yaml(text: str, source: str) -> list[Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(source, f"not valid YAML: {exc}") from None
    if isinstance(data, Mapping) and "classes" in data:
        data = data["classes"]
    if not isinstance(data, list):
        raise InvalidInput(source, "expected a list of classes (or a mapping with key 'classes')")
    return data


def _parse_csv(text: str, source: str) -> list[Any]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [f for f in REQUIRED_FIELDS if f not in header]
    if missing:
        raise InvalidInput(f"{source}: header", f"missing column(s) {', '.join(missing)}; the header "
                                                "must name id, name[, description, hypernym, wordnet]")
    rows: list[dict[str, Any]] = []
    for row in reader:
        if None in row:  # more cells than header columns
            raise InvalidInput(f"{source}: entry {len(rows)}", "more cells than header columns")
        rows.append({k.strip(): v for k, v in row.items() if k is not None})
    return rows


_PARSERS: dict[str, Callable[[str, str], list[Any]]] = {
    ".yaml": _parse_yaml, ".yml": _parse_yaml, ".csv": _parse_csv,
}


def load_custom(path: Path | str, resolve: Resolver | None = None) -> ClassSet:
    """A custom class list from a .yaml/.yml or .csv file."""
    p = Path(path)
    parser = _PARSERS.get(p.suffix.lower())
    if parser is None:
        raise InvalidInput(str(p), "custom classes must be a .yaml, .yml or .csv file")
    if not p.is_file():
        raise InvalidInput(str(p), "class list file does not exist")
    return custom_from_entries(parser(p.read_text(encoding="utf-8"), str(p)), str(p), resolve)


# ------------------------------------------------------------------------- lookup
def get_class_set(name: str, *, custom: Sequence[Any] | None = None, file: str | None = None,
                  ids: Sequence[str] | None = None, field: str = "class_set",
                  resolve: Resolver | None = None) -> ClassSet:
    """A built-in set by name, or a custom one from entries or a file; optionally restricted."""
    if name in BUILTIN:
        full = BUILTIN[name]()
    elif name == "custom":
        if custom:
            full = custom_from_entries(custom, "classes", resolve)
        elif file:
            full = load_custom(file, resolve)
        else:
            raise InvalidInput("classes", "class set 'custom' needs classes (entries or a file)")
    else:
        raise InvalidInput(field, f"unknown class set {name!r}; known: {', '.join(CLASS_SET_INFO)}")
    return full.select(ids, "classes.ids" if field == "classes.set" else "class_ids")


def class_set_for_spec(spec: Any, resolve: Resolver | None = None) -> ClassSet:
    """The class set a study's `classes:` section describes (synscale.study.ClassesSpec)."""
    custom = [c.model_dump() for c in spec.custom] if spec.custom else None
    return get_class_set(spec.set, custom=custom, file=spec.file, ids=spec.ids, field="classes.set",
                         resolve=resolve)


def from_infos(name: str, infos: Sequence[Any]) -> ClassSet:
    """The class set a job carries (synscale.v1.ClassInfo, in label order) back as a ClassSet.

    A built-in set keeps its full ids (so real data and eval sets can be relabelled); a
    custom one is exactly the classes carried.
    """
    if name in BUILTIN:
        return BUILTIN[name]().select([c.id for c in infos])
    return ClassSet(name or "custom", tuple(
        ClassDef(id=c.id, name=c.name, index=i, description=c.description, hypernym=c.hypernym)
        for i, c in enumerate(infos)))
