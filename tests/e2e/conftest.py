"""The embedded run of the toy study, once per session: every distributed test compares with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from synscale.testing.modules import load_module

support = load_module("synscale_e2e_support", Path(__file__).resolve().parent / "_support.py")


@pytest.fixture(scope="session")
def expected(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return support.embedded_expected(tmp_path_factory.mktemp("study"), tmp_path_factory.mktemp("embedded"))
