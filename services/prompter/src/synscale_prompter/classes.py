"""Class sets: ImageNet-1k, Fashion-MNIST, and custom lists from YAML or CSV.

A class set is an ordered tuple of `ClassDef`; the position in the full set is the
label (`ClassDef.index`). Restricting a set to some ids keeps each class's label, so
the label always matches the dataset's (the reference classifier and the real-data
loaders speak dataset labels).

Validation errors name the offending entry and field, because custom lists are typed
by hand: "classes.yaml: entry 3 (id 'cat'): duplicate id, first used by entry 1".
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from synscale.errors import InvalidInput
from synscale_prompter.imagenet_meta import imagenet_classes
from synscale_prompter.wordnet import SYNSET_NAME_RE, WNID_RE, SynsetInfo, wordnet

CUSTOM_FIELDS = ("id", "name", "description", "hypernym", "wordnet")
REQUIRED_FIELDS = ("id", "name")


@dataclass(frozen=True)
class ClassDef:
    """One class as the prompt strategies see it."""

    id: str
    name: str
    index: int  # label in the full class set
    description: str = ""  # WordNet gloss, or given by hand
    hypernym: str = ""  # name of the parent concept
    wnid: str = ""  # WordNet synset ("n01440764") the class is mapped to, if any


@dataclass(frozen=True)
class ClassSet:
    name: str  # imagenet | fashion-mnist | custom
    classes: tuple[ClassDef, ...]
    description: str = ""

    def __post_init__(self) -> None:
        if not self.classes:
            raise InvalidInput("classes", f"class set {self.name!r} is empty")

    def __len__(self) -> int:
        return len(self.classes)

    def __iter__(self) -> Iterator[ClassDef]:
        return iter(self.classes)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.classes)

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
        wanted = {}
        for i, class_id in enumerate(ids):
            self.get(class_id, f"{field}[{i}]")
            wanted[class_id] = i
        return replace(self, classes=tuple(c for c in self.classes if c.id in wanted))


def _from_synset(info: SynsetInfo) -> dict[str, str]:
    return {"description": info.gloss, "hypernym": info.hypernym, "wnid": info.wnid}


@lru_cache(maxsize=1)
def imagenet() -> ClassSet:
    """ImageNet-1k: WordNet ids in canonical order, open_clip's clean names, WordNet glosses."""
    wn = wordnet()
    classes = tuple(
        ClassDef(id=wnid, name=name, index=i, **_from_synset(wn.lookup(wnid)))
        for i, (wnid, name) in enumerate(imagenet_classes())
    )
    return ClassSet("imagenet", classes, "ImageNet-1k (ILSVRC-2012), 1000 WordNet noun synsets")


# Fashion-MNIST -> WordNet 3.0, chosen by hand (reasoning in docs/prompter.md).
# None: no synset names the class itself; description and hypernym are given below.
FASHION_MNIST_WORDNET: Mapping[str, str | None] = {
    "tshirt": "n03595614",  # jersey.n.03: jersey, T-shirt, tee shirt
    "trouser": "n04489008",  # trouser.n.01: trouser, pant
    "pullover": "n04021028",  # pullover.n.01: pullover, slipover
    "dress": "n03236735",  # dress.n.01: dress, frock
    "coat": "n03057021",  # coat.n.01
    "sandal": "n04133789",  # sandal.n.01
    "shirt": "n04197391",  # shirt.n.01
    "sneaker": "n03472535",  # gym_shoe.n.01: gym shoe, sneaker, tennis shoe
    "bag": "n02774152",  # bag.n.04: bag, handbag, pocketbook, purse
    "ankle-boot": None,  # WordNet has no ankle boot; boot.n.01 is its hypernym
}
FASHION_MNIST_MANUAL: Mapping[str, Mapping[str, str]] = {
    "ankle-boot": {
        "description": "a boot whose shaft ends just above the ankle",
        "hypernym_wnid": "n02872752",  # boot.n.01
    },
}


@lru_cache(maxsize=1)
def fashion_mnist() -> ClassSet:
    """The 10 Fashion-MNIST classes in label order, mapped to WordNet where a synset fits."""
    from synscale.datasets.fashion_mnist import CLASSES

    wn = wordnet()
    out = []
    for i, (class_id, name) in enumerate(CLASSES):
        wnid = FASHION_MNIST_WORDNET[class_id]
        if wnid is not None:
            out.append(ClassDef(id=class_id, name=name, index=i, **_from_synset(wn.lookup(wnid))))
            continue
        manual = FASHION_MNIST_MANUAL[class_id]
        parent = wn.lookup(manual["hypernym_wnid"])
        out.append(ClassDef(id=class_id, name=name, index=i, description=manual["description"],
                            hypernym=parent.lemmas[0]))
    return ClassSet("fashion-mnist", tuple(out), "Fashion-MNIST (Zalando), 10 clothing classes")


# ---------------------------------------------------------------------------- custom
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


def custom_from_entries(entries: Iterable[Any], source: str = "classes",
                        resolve_wordnet: bool = True) -> ClassSet:
    """Validate hand-written entries {id, name, description?, hypernym?, wordnet?}.

    An id that looks like a WordNet id ("n01440764") must exist in WordNet; so must an
    explicit `wordnet` synset ("n02084071" or "dog.n.01"). A resolved synset fills the
    description and hypernym that the entry leaves empty.
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
        for field in REQUIRED_FIELDS:
            if not values[field]:
                raise InvalidInput(f"{where}.{field}", f"{field} is empty")
        class_id = values["id"]
        if class_id in first_use:
            raise InvalidInput(f"{where}.id",
                               f"duplicate id, first used by entry {first_use[class_id]}")
        first_use[class_id] = i
        ref = values["wordnet"] or (class_id if WNID_RE.match(class_id) else "")
        info = None
        if ref and resolve_wordnet:
            if not (WNID_RE.match(ref) or SYNSET_NAME_RE.match(ref)):
                raise InvalidInput(f"{where}.wordnet", f"{ref!r} is neither a WordNet id "
                                                       "(n01440764) nor a synset name (dog.n.01)")
            try:
                info = wordnet().lookup(ref)
            except InvalidInput:
                field = "wordnet" if values["wordnet"] else "id"
                raise InvalidInput(f"{where}.{field}", f"unknown WordNet id {ref!r}") from None
        classes.append(ClassDef(
            id=class_id, name=values["name"], index=i,
            description=values["description"] or (info.gloss if info else ""),
            hypernym=values["hypernym"] or (info.hypernym if info else ""),
            wnid=info.wnid if info else "",
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


def load_custom(path: Path | str) -> ClassSet:
    """A custom class list from a .yaml/.yml or .csv file."""
    p = Path(path)
    parser = _PARSERS.get(p.suffix.lower())
    if parser is None:
        raise InvalidInput(str(p), "custom classes must be a .yaml, .yml or .csv file")
    if not p.is_file():
        raise InvalidInput(str(p), "class list file does not exist")
    return custom_from_entries(parser(p.read_text(encoding="utf-8"), str(p)), str(p))


# ------------------------------------------------------------------------- lookup
BUILTIN: dict[str, Callable[[], ClassSet]] = {"imagenet": imagenet, "fashion-mnist": fashion_mnist}
CLASS_SET_INFO = {
    "imagenet": (1000, "ImageNet-1k: WordNet ids, open_clip clean names, WordNet glosses and hypernyms"),
    "fashion-mnist": (10, "Fashion-MNIST: the embedded default, mapped to WordNet by hand"),
    "custom": (0, "your own list {id, name, description?, hypernym?} from YAML, CSV or the request"),
}


def get_class_set(name: str, *, custom: Sequence[Any] | None = None, file: str | None = None,
                  ids: Sequence[str] | None = None, field: str = "class_set") -> ClassSet:
    """A built-in set by name, or a custom one from entries or a file; optionally restricted."""
    if name in BUILTIN:
        full = BUILTIN[name]()
    elif name == "custom":
        if custom:
            full = custom_from_entries(custom, "classes")
        elif file:
            full = load_custom(file)
        else:
            raise InvalidInput("classes", "class set 'custom' needs classes (entries or a file)")
    else:
        raise InvalidInput(field, f"unknown class set {name!r}; known: {', '.join(CLASS_SET_INFO)}")
    return full.select(ids, "classes.ids" if field == "classes.set" else "class_ids")


def class_set_for_spec(spec: Any) -> ClassSet:
    """The class set a study's `classes:` section describes (synscale.study.ClassesSpec)."""
    custom = [c.model_dump() for c in spec.custom] if spec.custom else None
    return get_class_set(spec.set, custom=custom, file=spec.file, ids=spec.ids, field="classes.set")
