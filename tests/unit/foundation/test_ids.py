"""Deterministic, safe keys whatever class names or prompts contain."""

from __future__ import annotations

import pytest

from synscale import ids, layout

HOSTILE = [
    "../../etc", "..", "/root", "tab\tand\nnewline", "Ünïcødé 猫 🐈", "a" * 10_000, "x/../../y",
    "\x00\x1b[31m", "",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_class_names_give_safe_valid_keys(name: str) -> None:
    key = layout.shard_key("study", "gen", 2.0, "classname", name, 0, 64)
    assert ids.validate_key(key) == key
    assert ".." not in key.split("/") and not key.startswith("/")
    assert all(32 < ord(c) < 127 for c in key)
    assert len(key) < 400


def test_distinct_hostile_names_do_not_collide() -> None:
    comps = {ids.safe_component(n) for n in HOSTILE}
    assert len(comps) == len(HOSTILE)
    assert ids.safe_component("A") != ids.safe_component("a")


def test_plain_names_are_kept_readable() -> None:
    assert ids.safe_component("n01440764") == "n01440764"
    assert ids.safe_component("ankle-boot") == "ankle-boot"


def test_keys_and_seeds_are_deterministic() -> None:
    args = ("study", "embedded", 7.5, "clip_templates", "tshirt", 128, 64)
    assert layout.shard_key(*args) == layout.shard_key(*args)
    assert layout.shard_key(*args).endswith("/embedded/cfg7.5/clip_templates/tshirt/000000128-000064.tar")
    s1 = ids.image_seed("s", "g", "st", "c", 3)
    assert s1 == ids.image_seed("s", "g", "st", "c", 3) != ids.image_seed("s", "g", "st", "c", 4)
    assert 0 <= s1 < 2**63
    assert ids.job_id({"a": 1, "b": 2}) == ids.job_id({"b": 2, "a": 1})


@pytest.mark.parametrize("cfg", [float("nan"), float("inf")])
def test_non_finite_cfg_is_rejected(cfg: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        ids.format_cfg(cfg)
