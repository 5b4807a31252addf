"""Study files are validated with errors that name the field and the allowed values."""

from __future__ import annotations

import pytest

from synscale.errors import InvalidInput
from synscale.study import parse_study

GOOD = """
name: toy
generators:
  - name: embedded
    cfg: [1, 2, 4]
strategies: [classname, clip_templates]
images_per_class: [8, 16, 32]
"""


def test_good_study_parses_with_defaults() -> None:
    spec = parse_study(GOOD)
    assert spec.generators[0].cfg == [1.0, 2.0, 4.0]
    assert spec.classes.set == "fashion-mnist" and spec.max_images_per_class == 32
    assert spec.study_id.startswith("toy-") and spec.study_id == parse_study(GOOD).study_id


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ("strategies: [classname, nonsense]", "unknown strategy 'nonsense'; allowed: classname"),
        ("images_per_class: [32, 16]", "images_per_class: sizes must be strictly increasing"),
        ("images_per_class: [0, 16]", "images_per_class: sizes must be in 1.."),
        ("colour: red", "colour: unknown field"),
        ("generators: []", "generators: List should have at least 1 item"),
    ],
)
def test_bad_fields_are_named(patch: str, expected: str) -> None:
    key = patch.split(":")[0]
    text = "\n".join(line for line in GOOD.splitlines() if not line.startswith(key)) + "\n" + patch
    if key == "generators":
        text = text.replace("  - name: embedded\n    cfg: [1, 2, 4]\n", "")
    with pytest.raises(InvalidInput) as err:
        parse_study(text)
    assert expected in str(err.value)


def test_negative_and_non_finite_cfg_are_rejected() -> None:
    for bad in ("-1", ".nan", ".inf"):
        with pytest.raises(InvalidInput, match=r"generators\[0\]\.cfg: .*finite and >= 0"):
            parse_study(GOOD.replace("cfg: [1, 2, 4]", f"cfg: [1, {bad}]"))


def test_resolution_must_be_a_multiple_of_8() -> None:
    with pytest.raises(InvalidInput, match=r"generators\[0\]\.resolution: .*multiple of 8"):
        parse_study(GOOD.replace("cfg: [1, 2, 4]", "cfg: [1]\n    resolution: 30"))


@pytest.mark.parametrize("text", ["- just\n- a list", "name: [unclosed", "42"])
def test_malformed_yaml_is_a_clear_error(text: str) -> None:
    with pytest.raises(InvalidInput, match="<study>"):
        parse_study(text)
