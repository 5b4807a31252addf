"""word2sen and in_captions through real (tiny, randomly initialised) transformers models.

What is asserted is the logic around the model -- sampling is seeded, every kept
sentence names the class, duplicates are dropped, results are cached -- not wording.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from synscale_prompter.classes import ClassDef
from synscale_prompter.models import model_fingerprint, seed_of
from synscale_prompter.strategies import StrategyOptions, make_strategy
from synscale_prompter.strategies.text import dedup_key, name_pattern, select_sentences
from synscale_prompter.strategies.word2sen import MAX_ROUNDS

pytestmark = pytest.mark.slow  # imports torch + transformers and builds three models

TENCH = ClassDef("n01440764", "tench", 0)


@pytest.mark.parametrize("arch", ["t5", "gpt2"])
def test_word2sen_with_a_real_model_keeps_only_distinct_sentences_naming_the_class(
        arch: str, tiny_models: dict[str, Path], cache_store) -> None:  # type: ignore[no-untyped-def]
    k = 4
    strategy = make_strategy("word2sen", StrategyOptions(
        word2sen_model=str(tiny_models[arch]), word2sen_k=k, cache=cache_store))
    generator = strategy.generator  # type: ignore[attr-defined]
    generator.settings["max_new_tokens"] = 8
    kept = strategy.sentences(TENCH)  # type: ignore[attr-defined]

    # Replay the model's raw samples (seeded, so identical) and apply the filter by hand.
    raw: list[str] = []
    for round_ in range(strategy.model_calls):  # type: ignore[attr-defined]
        raw += generator.generate("tench", k, seed_of(generator.fingerprint, "tench", k, round_))
    assert kept == select_sentences(raw, "tench", k)
    assert kept, "the tiny vocabulary makes some samples contain 'tench'"
    assert all(name_pattern("tench").search(s) for s in kept)
    assert len({dedup_key(s) for s in kept}) == len(kept)
    assert any(not name_pattern("tench").search(s) for s in raw), "some samples were dropped"
    assert len(kept) == k or strategy.model_calls == MAX_ROUNDS  # type: ignore[attr-defined]
    assert set(strategy.prompts(TENCH, 0, 12, "s")) <= set(kept)

    # Cached per (model, class, K): a fresh strategy reads the list without the model.
    again = make_strategy("word2sen", StrategyOptions(
        word2sen_model=str(tiny_models[arch]), word2sen_k=k, cache=cache_store))
    again.generator.settings["max_new_tokens"] = 8  # type: ignore[attr-defined]
    assert again.sentences(TENCH) == kept  # type: ignore[attr-defined]
    assert again.model_calls == 0 and again.generator._loaded is None  # type: ignore[attr-defined]


def test_model_fingerprint_is_content_not_path(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_models["t5"], copy)
    assert model_fingerprint(copy) == model_fingerprint(tiny_models["t5"])
    assert model_fingerprint(tiny_models["gpt2"]) != model_fingerprint(tiny_models["t5"])


def test_in_captions_with_a_real_captioner_on_fashion_mnist(
        tiny_models: dict[str, Path], fashion_set, cache_store) -> None:  # type: ignore[no-untyped-def]
    options = StrategyOptions(class_set="fashion-mnist", captioner_model=str(tiny_models["captioner"]),
                              captions_per_class=3, cache=cache_store)
    strategy = make_strategy("in_captions", options)
    sneaker = fashion_set.get("sneaker")
    raw = strategy.captioner.caption(strategy.source.images(sneaker, 3))  # type: ignore[attr-defined]
    assert len(raw) == 3 and all(raw), "one non-empty caption per real image"
    captions = strategy.captions(sneaker)  # type: ignore[attr-defined]
    assert captions == list(dict.fromkeys(c.strip() for c in raw))  # deduplicated, in order
    prompts = strategy.prompts(sneaker, 0, 10, "s")
    assert {p.split(", ", 1)[0] for p in prompts} == {"sneaker"}
    assert {p.split(", ", 1)[1] for p in prompts} <= set(captions)
    fresh = make_strategy("in_captions", options)
    assert fresh.prompts(sneaker, 0, 10, "s") == prompts
    assert fresh.model_calls == 0  # type: ignore[attr-defined]
