"""Every strategy on ImageNet-1k and Fashion-MNIST; determinism; dedup and filtering."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from synscale.errors import InvalidInput
from synscale.ids import digest
from synscale_prompter.builder import build_prompts, prepare_strategy
from synscale_prompter.classes import ClassDef, custom_from_entries
from synscale_prompter.imagenet_meta import openai_templates
from synscale_prompter.strategies import REGISTRY, StrategyOptions, draw, make_strategy, strategy_names
from synscale_prompter.strategies.text import dedupe, name_pattern, select_sentences
from synscale_prompter.strategies.word2sen import MAX_ROUNDS

IMAGENET_SAMPLE = ("n01440764", "n02123045", "n07753592")  # tench, tabby cat, banana
FASHION_SAMPLE = ("tshirt", "sneaker", "ankle-boot")
SETS = {"imagenet": IMAGENET_SAMPLE, "fashion-mnist": FASHION_SAMPLE}


@pytest.fixture(params=sorted(SETS))
def sample(request, imagenet_set, fashion_set):  # type: ignore[no-untyped-def]
    full = imagenet_set if request.param == "imagenet" else fashion_set
    return full.select(SETS[request.param])


class ScriptedGenerator:
    """word2sen's model part, replaced: returns scripted sentences, records its calls."""

    def __init__(self, script: Sequence[str], fingerprint: str = "scripted-v1") -> None:
        self.fingerprint = fingerprint
        self.script = list(script)
        self.calls: list[tuple[str, int, int]] = []

    def generate(self, name: str, count: int, seed: int) -> list[str]:
        self.calls.append((name, count, seed))
        return [s.format(name=name) for s in self.script]


class ScriptedCaptioner:
    fingerprint = "scripted-captioner-v1"

    def __init__(self, captions: Sequence[str]) -> None:
        self.captions = list(captions)
        self.seen: list[Any] = []

    def caption(self, images: Sequence[Any]) -> list[str]:
        self.seen.extend(images)
        return [self.captions[i % len(self.captions)] for i in range(len(images))]


class Blanks:
    """An image source of grey squares (ImageNet has no real images on this machine)."""

    fingerprint = "blanks"

    def images(self, cls: ClassDef, count: int) -> list[Any]:
        from PIL import Image

        return [Image.new("RGB", (8, 8), (i, i, i)) for i in range(count)]


def test_registry_lists_the_six_in_study_order() -> None:
    assert strategy_names() == ["classname", "classname_description", "classname_hypernym",
                                "clip_templates", "word2sen", "in_captions"]
    assert [n for n in strategy_names() if REGISTRY[n].needs_model] == ["word2sen", "in_captions"]
    with pytest.raises(InvalidInput, match=r"^strategy: unknown strategy 'nope'"):
        make_strategy("nope")


def test_classname(sample) -> None:  # type: ignore[no-untyped-def]
    prompts = build_prompts(prepare_strategy("classname", sample), sample, 0, 3, "seed-0")
    assert [p.text for p in prompts] == [c.name for c in sample for _ in range(3)]
    assert [(p.class_id, p.index, p.strategy) for p in prompts[:2]] == [
        (sample.classes[0].id, 0, "classname"), (sample.classes[0].id, 1, "classname")]


def test_classname_description_and_hypernym(sample) -> None:  # type: ignore[no-untyped-def]
    for cls in sample:
        assert prepare_strategy("classname_description", sample).prompt(cls, 0, "x") == \
            f"{cls.name}, {cls.description}"
        assert prepare_strategy("classname_hypernym", sample).prompt(cls, 7, "x") == \
            f"{cls.name}, {cls.hypernym}"


def test_wordnet_prompts_by_value(imagenet_set, fashion_set) -> None:  # type: ignore[no-untyped-def]
    hyper = prepare_strategy("classname_hypernym", imagenet_set)
    assert hyper.prompt(imagenet_set.get("n01440764"), 0, "s") == "tench, cyprinid"
    assert hyper.prompt(fashion_set.get("sneaker"), 0, "s") == "sneaker, shoe"
    desc = prepare_strategy("classname_description", fashion_set)
    assert desc.prompt(fashion_set.get("tshirt"), 0, "s") == "T-shirt, a close-fitting pullover shirt"


def test_clip_templates_draw_per_image(sample) -> None:  # type: ignore[no-untyped-def]
    strategy = prepare_strategy("clip_templates", sample)
    cls = sample.classes[0]
    texts = strategy.prompts(cls, 0, 400, "study-a")
    rendered = {t.replace("{}", cls.name) for t in openai_templates()}
    assert set(texts) <= rendered
    assert len(set(texts)) > 60  # 400 draws from 80 templates cover most of them
    expected = openai_templates()[draw("study-a", "clip_templates", cls.id, 5, 80)]
    assert texts[5] == expected.replace("{}", cls.name)


def test_draw_is_a_digest_of_its_inputs() -> None:
    assert draw("s", "clip_templates", "n01440764", 3, 80) == \
        int(digest("prompt", "s", "clip_templates", "n01440764", 3, length=15), 16) % 80
    # Pinned: a change here would silently change every study's prompts.
    assert [draw("seed-0", "clip_templates", "n01440764", i, 80) for i in range(5)] == [54, 71, 3, 41, 40]
    tench = ClassDef("n01440764", "tench", 0)
    assert make_strategy("clip_templates").prompts(tench, 0, 3, "seed-0") == [
        "a cartoon tench.", "the plushie tench.", "a photo of the hard to see tench."]
    with pytest.raises(ValueError):
        draw("s", "x", "c", 0, 0)


def test_prompts_are_pure_functions_of_study_class_strategy_index(imagenet_set) -> None:  # type: ignore[no-untyped-def]
    cls = imagenet_set.get("n01440764")
    one = make_strategy("clip_templates")
    other = make_strategy("clip_templates")
    whole = one.prompts(cls, 0, 50, "study-a")
    assert other.prompts(cls, 20, 10, "study-a") == whole[20:30]  # any chunking, any instance
    assert [other.prompt(cls, i, "study-a") for i in reversed(range(50))] == whole[::-1]
    assert other.prompts(cls, 0, 50, "study-b") != whole  # the study is an input
    neighbour = imagenet_set.get("n01443537")
    assert [t.replace("goldfish", "tench") for t in one.prompts(neighbour, 0, 50, "study-a")] != whole


def test_missing_gloss_is_named() -> None:
    custom = custom_from_entries([{"id": "a", "name": "apple", "hypernym": "fruit"},
                                  {"id": "b", "name": "bear"}], "x")
    with pytest.raises(InvalidInput, match=r"^classes\[0\].description: class 'a' \(apple\) has no"):
        prepare_strategy("classname_description", custom)
    with pytest.raises(InvalidInput, match=r"^classes\[1\].hypernym: class 'b'"):
        prepare_strategy("classname_hypernym", custom)


# ------------------------------------------------------------------ text filtering
@pytest.mark.parametrize(("name", "text", "match"), [
    ("T-shirt", "She wore a tshirt.", True),
    ("T-shirt", "Two T shirts on a line.", True),
    ("T-shirt", "A T-Shirt!", True),
    ("T-shirt", "A tea shirt.", False),
    ("ankle boot", "Brown ankle-boots in the rain.", True),
    ("ankle boot", "A boot.", False),
    ("kite (bird of prey)", "A kite circles overhead.", True),
    ("baluster / handrail", "Hold the handrail.", True),
    ("tench", "The tenches swim.", True),
    ("tench", "A trench.", False),
    ("bag", "A handbag.", False),
    ("bag", "The baggage.", False),
])
def test_name_pattern(name: str, text: str, match: bool) -> None:
    assert bool(name_pattern(name).search(text)) is match


def test_dedupe_and_select() -> None:
    raw = ["A tench swims.", "a tench swims", "  A  tench swims. ", "", "\"The tench.\"",
           "A trench.", "Tench\nsecond line", "The lake is big."]
    assert dedupe(raw) == ["A tench swims.", "The tench.", "A trench.", "Tench", "The lake is big."]
    assert select_sentences(raw, "tench", 10) == ["A tench swims.", "The tench.", "Tench"]
    assert select_sentences(raw, "tench", 2) == ["A tench swims.", "The tench."]


# ------------------------------------------------------------------ word2sen
SCRIPT = ["A {name} in the lake.", "a {name} in the lake", "Nothing to see here.",
          "The {name} is big.", "THE {name} IS BIG!", "", "A photo of a {name}."]


def test_word2sen_dedupes_filters_and_caches(sample, cache_store) -> None:  # type: ignore[no-untyped-def]
    generator = ScriptedGenerator(SCRIPT)
    options = StrategyOptions(word2sen_k=3, sentence_generator=generator, cache=cache_store)
    strategy = prepare_strategy("word2sen", sample, options)
    for cls in sample:
        sentences = strategy.sentences(cls)
        assert sentences == [f"A {cls.name} in the lake.", f"The {cls.name} is big.",
                             f"A photo of a {cls.name}."]
        prompts = strategy.prompts(cls, 0, 30, "study-a")
        assert set(prompts) <= set(sentences) and len(set(prompts)) == 3
    assert len(generator.calls) == len(sample)  # K reached in one round per class
    again = ScriptedGenerator(["never used {name}"])
    cached = prepare_strategy("word2sen", sample, StrategyOptions(
        word2sen_k=3, sentence_generator=again, cache=cache_store))
    assert cached.prompts(sample.classes[0], 0, 30, "study-a") == \
        strategy.prompts(sample.classes[0], 0, 30, "study-a")
    assert again.calls == []  # one model run per (model, class, K)


def test_word2sen_samples_more_rounds_then_falls_back(cache_store) -> None:  # type: ignore[no-untyped-def]
    cls = ClassDef("sneaker", "sneaker", 7)
    short = ScriptedGenerator(["A {name}.", "A shoe."])
    strategy = make_strategy("word2sen", StrategyOptions(word2sen_k=5, sentence_generator=short,
                                                         cache=cache_store))
    assert strategy.sentences(cls) == ["A sneaker."]
    assert len(short.calls) == MAX_ROUNDS
    assert len({seed for _, _, seed in short.calls}) == MAX_ROUNDS  # each round samples anew
    silent = ScriptedGenerator(["A shoe.", "Nothing."], fingerprint="another-model")
    strategy = make_strategy("word2sen", StrategyOptions(word2sen_k=5, sentence_generator=silent,
                                                         cache=cache_store))
    assert strategy.prompts(cls, 0, 3, "s") == ["sneaker"] * 3


def test_word2sen_needs_a_model_dir(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match=r"^word2sen_model: needs a local model directory"):
        make_strategy("word2sen")
    with pytest.raises(InvalidInput, match=r"^word2sen_model: .* \(no config.json\)"):
        make_strategy("word2sen", StrategyOptions(word2sen_model=str(tmp_path)))


# ------------------------------------------------------------------ in_captions
def test_in_captions_on_imagenet(imagenet_set, cache_store) -> None:  # type: ignore[no-untyped-def]
    sample = imagenet_set.select(IMAGENET_SAMPLE)
    captioner = ScriptedCaptioner(["a fish on a table.", "A fish on a table", "", "a man holding it"])
    options = StrategyOptions(captions_per_class=4, captioner=captioner, image_source=Blanks(),
                              cache=cache_store)
    strategy = prepare_strategy("in_captions", sample, options)
    tench = sample.get("n01440764")
    assert strategy.captions(tench) == ["a fish on a table.", "a man holding it"]
    assert set(strategy.prompts(tench, 0, 20, "s")) == {"tench, a fish on a table.",
                                                        "tench, a man holding it"}
    assert len(captioner.seen) == 4


def test_in_captions_on_fashion_mnist_reads_real_images(fashion_set, cache_store) -> None:  # type: ignore[no-untyped-def]
    captioner = ScriptedCaptioner(["a black and white photo", "a shoe on white"])
    options = StrategyOptions(captions_per_class=3, captioner=captioner, cache=cache_store)
    strategy = prepare_strategy("in_captions", fashion_set, options)
    sneaker = fashion_set.get("sneaker")
    prompts = strategy.prompts(sneaker, 0, 10, "s")
    assert set(prompts) <= {"sneaker, a black and white photo", "sneaker, a shoe on white"}
    assert [(im.mode, im.size) for im in captioner.seen] == [("RGB", (32, 32))] * 3
    from synscale.datasets import fashion_mnist

    split = fashion_mnist.load("train")
    first = split.per_class_indices()[7][0]
    assert (captioner.seen[0].getchannel(0).tobytes() == split.images[first].tobytes())
    again = ScriptedCaptioner(["unused"])
    cached = prepare_strategy("in_captions", fashion_set, StrategyOptions(
        captions_per_class=3, captioner=again, cache=cache_store))
    assert cached.prompts(sneaker, 0, 10, "s") == prompts and again.seen == []


def test_in_captions_needs_real_images_outside_fashion_mnist(imagenet_set) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match=r"^real_path: in_captions on class set 'imagenet' needs"):
        prepare_strategy("in_captions", imagenet_set, StrategyOptions(captioner=ScriptedCaptioner(["x"])))
    with pytest.raises(InvalidInput, match=r"^captioner_model: needs a local model directory"):
        prepare_strategy("in_captions", imagenet_set, StrategyOptions(image_source=Blanks()))


def test_image_folder_source(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    from synscale.errors import PreconditionFailed
    from synscale_prompter.images import ImageFolderImages

    folder = tmp_path / "n01440764"
    folder.mkdir()
    for i in (2, 0, 1):
        Image.new("L", (4, 4), i * 50).save(folder / f"img{i}.png")
    (folder / "notes.txt").write_text("not an image")
    source = ImageFolderImages(str(tmp_path))
    images = source.images(ClassDef("n01440764", "tench", 0), 2)
    assert [im.getpixel((0, 0)) for im in images] == [(0, 0, 0), (50, 50, 50)]
    with pytest.raises(PreconditionFailed, match="no real images of class 'n01443537'"):
        source.images(ClassDef("n01443537", "goldfish", 1), 2)
