"""The written rule for training length, the schedule and recipe errors."""

from __future__ import annotations

import pytest

from synscale.errors import InvalidInput
from synscale.study import TrainingRecipe
from synscale_trainer.recipe import lr_factor, parse_recipe, total_steps, warmup_steps


def test_steps_follow_epochs_with_floor_and_ceiling() -> None:
    r = TrainingRecipe(epochs=10, min_steps=200, max_steps=5000, batch_size=100)
    assert total_steps(r, 1000) == 200  # 100 by epochs: the floor wins
    assert total_steps(r, 10_000) == 1000  # 10 epochs
    assert total_steps(r, 10_001) == 1001  # ceil
    assert total_steps(r, 1_000_000) == 5000  # the ceiling wins


def test_steps_never_decrease_with_n() -> None:
    r = TrainingRecipe()
    steps = [total_steps(r, 10 * n) for n in (1, 10, 100, 1000, 10_000, 100_000)]
    assert steps == sorted(steps)


def test_warmup_then_cosine_to_zero() -> None:
    assert warmup_steps(1000) == 50
    assert lr_factor(0, 1000) == pytest.approx(1 / 50)
    assert lr_factor(49, 1000) == pytest.approx(1.0)
    assert lr_factor(50, 1000) == pytest.approx(1.0)
    assert lr_factor(525, 1000) == pytest.approx(0.5, abs=1e-3)
    assert lr_factor(1000, 1000) == pytest.approx(0.0)


def test_recipe_json_errors_name_the_field() -> None:
    with pytest.raises(InvalidInput, match="recipe_json: batch_size"):
        parse_recipe('{"batch_size": 0}', kind="supervised", arch="embedded-cnn")
    with pytest.raises(InvalidInput, match="recipe_json"):
        parse_recipe("{not json", kind="supervised", arch="embedded-cnn")
    with pytest.raises(InvalidInput, match="min_steps"):
        total_steps(TrainingRecipe(min_steps=10, max_steps=5), 100)
    default = parse_recipe("", kind="clip", arch="embedded-clip")
    assert (default.kind, default.arch) == ("clip", "embedded-clip")


NEW_FIELDS = ("amp", "compile", "parallel", "data_streams")


def test_parallel_fields_are_left_out_of_the_json_at_their_defaults() -> None:
    # a recipe written before the fields existed keeps its bytes, hence its run id
    default = TrainingRecipe(batch_size=64)
    assert not any(f'"{name}"' in default.model_dump_json() for name in NEW_FIELDS)
    assert TrainingRecipe.model_validate_json(default.model_dump_json()) == default
    chosen = TrainingRecipe(amp="bf16", compile=True, parallel="fsdp", data_streams=16)
    text = chosen.model_dump_json()
    assert all(f'"{name}"' in text for name in NEW_FIELDS)
    assert TrainingRecipe.model_validate_json(text) == chosen


def test_unknown_parallel_mode_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidInput, match="parallel"):
        parse_recipe('{"parallel": "pipeline"}', kind="supervised", arch="embedded-cnn")
    with pytest.raises(InvalidInput, match="data_streams"):
        parse_recipe('{"data_streams": 0}', kind="supervised", arch="embedded-cnn")
