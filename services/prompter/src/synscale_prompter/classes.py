"""The prompter's view of class sets: synscale.classes enriched from WordNet.

Class sets, their one label order and custom-list validation live in the domain core
(`synscale.classes`, docs/architecture.md); every service resolves them there. The
prompter alone reads WordNet (the description and hypernym strategies need glosses and
parent concepts), so this module adds those fields: ImageNet ids are synsets, the
Fashion-MNIST classes are mapped to synsets by hand below, and custom entries that name a
synset are looked up while they are validated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from synscale import classes as core
from synscale.classes import CLASS_SET_INFO, ClassDef, ClassSet, Resolved

__all__ = ["BUILTIN", "CLASS_SET_INFO", "ClassDef", "ClassSet", "class_set_for_spec", "custom_from_entries",
           "enrich",
           "fashion_mnist", "get_class_set", "imagenet", "load_custom"]


def _wordnet_resolve(ref: str) -> Resolved:
    from synscale_prompter.wordnet import wordnet

    info = wordnet().lookup(ref)
    return Resolved(wnid=info.wnid, description=info.gloss, hypernym=info.hypernym)


@lru_cache(maxsize=1)
def imagenet() -> ClassSet:
    """ImageNet-1k with each synset's WordNet gloss and hypernym."""
    base = core.imagenet()
    out = []
    for c in base:
        info = _wordnet_resolve(c.id)
        out.append(replace(c, description=info.description, hypernym=info.hypernym, wnid=info.wnid))
    return replace(base, classes=tuple(out))


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
    from synscale_prompter.wordnet import wordnet

    base = core.fashion_mnist()
    out = []
    for c in base:
        wnid = FASHION_MNIST_WORDNET[c.id]
        if wnid is not None:
            info = _wordnet_resolve(wnid)
            out.append(replace(c, description=info.description, hypernym=info.hypernym, wnid=info.wnid))
            continue
        manual = FASHION_MNIST_MANUAL[c.id]
        parent = wordnet().lookup(manual["hypernym_wnid"])
        out.append(replace(c, description=manual["description"], hypernym=parent.lemmas[0]))
    return replace(base, classes=tuple(out))


BUILTIN = {"imagenet": imagenet, "fashion-mnist": fashion_mnist}


def enrich(cs: ClassSet) -> ClassSet:
    """A built-in set (maybe restricted) with the WordNet fields of its classes."""
    if cs.name not in BUILTIN:
        return cs
    full = BUILTIN[cs.name]()
    return full if not cs.restricted else full.select(cs.ids)


def custom_from_entries(entries: Any, source: str = "classes", resolve_wordnet: bool = True) -> ClassSet:
    """synscale.classes.custom_from_entries with WordNet filling in named synsets."""
    return core.custom_from_entries(entries, source, _wordnet_resolve if resolve_wordnet else None)


def load_custom(path: Path | str) -> ClassSet:
    return core.load_custom(path, _wordnet_resolve)


def get_class_set(name: str, *, custom: Sequence[Any] | None = None, file: str | None = None,
                  ids: Sequence[str] | None = None, field: str = "class_set") -> ClassSet:
    """synscale.classes.get_class_set, with WordNet glosses and hypernyms."""
    return enrich(core.get_class_set(name, custom=custom, file=file, ids=ids, field=field,
                                      resolve=_wordnet_resolve))


def class_set_for_spec(spec: Any) -> ClassSet:
    """The class set of a study's `classes:` section, with WordNet glosses and hypernyms."""
    return enrich(core.class_set_for_spec(spec, _wordnet_resolve))

