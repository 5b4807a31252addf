"""synscale.settings: one error type naming the variable, one device rule."""

from __future__ import annotations

import pytest

from synscale.errors import InvalidInput
from synscale.service import ConfigError
from synscale.settings import Env, SettingsError, pick_device


def test_readers_parse_or_name_the_variable() -> None:
    env = Env({"A": "3", "B": " 2.5 ", "C": "yes", "D": "", "BAD": "x"})
    assert (env.integer("A", 0), env.number("B", 0.0), env.flag("C", False)) == (3, 2.5, True)
    assert (env.integer("D", 7), env.text("D", "dflt"), env.flag("MISSING", True)) == (7, "dflt", True)
    readers = (lambda: env.integer("BAD", 0), lambda: env.number("BAD", 0.0), lambda: env.flag("BAD", False))
    for read in readers:
        with pytest.raises(SettingsError, match=r"^BAD: must be"):
            read()
    with pytest.raises(SettingsError, match=r"^A: must be >= 5, got 3"):
        env.integer("A", 0, minimum=5)


def test_one_error_type_for_every_setting() -> None:
    assert ConfigError is SettingsError and issubclass(SettingsError, InvalidInput)


def test_one_device_rule() -> None:
    assert pick_device(lambda: True, {}) == "cuda" and pick_device(lambda: False, {}) == "cpu"
    assert pick_device(lambda: True, {"SYNSCALE_DEVICE": "cpu"}) == "cpu"
    assert pick_device(lambda: False, {"SYNSCALE_DEVICE": "cuda:1"}) == "cuda:1"
    with pytest.raises(SettingsError, match="SYNSCALE_DEVICE: must be cpu, cuda"):
        pick_device(lambda: False, {"SYNSCALE_DEVICE": "gpu0"})
