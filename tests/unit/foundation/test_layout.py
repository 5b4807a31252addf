"""synscale.layout: every store key formats and parses back; one coverage rule, no gaps."""

from __future__ import annotations

import pytest

from synscale import ids, layout

STUDY = "toy-1a2b3c4d"
HOSTILE_CLASS = "Ünïcødé 猫/../x"


@pytest.mark.parametrize("class_id", ["tshirt", "n01440764", HOSTILE_CLASS])
@pytest.mark.parametrize(("cfg", "start", "count"), [(2.0, 0, 64), (7.5, 128, 7), (0.0, 999, 1)])
def test_shard_key_round_trip(class_id: str, cfg: float, start: int, count: int) -> None:
    key = layout.shard_key(STUDY, "sd 1.5", cfg, "clip_templates", class_id, start, count)
    parsed = layout.parse_shard_key(key)
    assert parsed == layout.ShardKey(STUDY, ids.cell_path("sd 1.5", cfg, "clip_templates"),
                                     ids.safe_component(class_id), start, count)
    prefix = layout.cell_prefix(STUDY, "sd 1.5", cfg, "clip_templates")
    assert key.startswith(prefix) and key.startswith(layout.images_prefix(STUDY))
    assert layout.parse_shard_in_cell(prefix, key) == (ids.safe_component(class_id), start, count)


@pytest.mark.parametrize("key", [
    f"studies/{STUDY}/images/g/cfg2/classname/tshirt/000000000-000064.npz",
    f"studies/{STUDY}/images/g/cfg2/classname/tshirt/0-64.tar",
    f"studies/{STUDY}/images/g/2/classname/tshirt/000000000-000064.tar",
    f"studies/{STUDY}/images/g/cfg2/classname/000000000-000064.tar",
    f"studies/{STUDY}/scores/g/cfg2/classname/tshirt/000000000-000064.tar",
])
def test_what_is_not_a_shard_key_is_not_misread(key: str) -> None:
    assert layout.parse_shard_key(key) is None


def test_partial_name_round_trip() -> None:
    for class_id in ("ankle-boot", "n01440764", HOSTILE_CLASS):
        name = layout.partial_name(class_id, 64, 32)
        assert layout.parse_partial_name(name) == (ids.safe_component(class_id), 64, 32)
        key = layout.score_key(STUDY, "g", 2.0, "classname", f"partials/{name}.npz")
        assert key.endswith(f"/scores/g/cfg2/classname/partials/{name}.npz")
    assert layout.parse_partial_name("tshirt-12-3") is None


def test_run_key_round_trip() -> None:
    for name in (layout.RESULT, layout.CHECKPOINT):
        key = layout.run_key(STUDY, "synthetic-cnn-n8-0123456789abcdef", name)
        assert key.startswith(layout.runs_prefix(STUDY))
        assert layout.parse_run_key(STUDY, key) == ("synthetic-cnn-n8-0123456789abcdef", name)
    assert layout.parse_run_key(STUDY, f"studies/{STUDY}/runs/x/sub/result.json") is None
    assert layout.parse_run_key("other", layout.run_key(STUDY, "r", layout.RESULT)) is None


def test_launched_key_round_trip() -> None:
    key = layout.launched_key(STUDY, "real-cnn-n4-00ff")
    assert key.startswith(layout.launched_prefix(STUDY))
    assert layout.parse_launched_key(STUDY, key) == "real-cnn-n4-00ff"
    assert layout.parse_launched_key(STUDY, layout.cancelled_key(STUDY)) is None


def test_study_level_keys() -> None:
    assert layout.spec_key(STUDY) == f"studies/{STUDY}/study.yaml"
    assert layout.cancelled_key(STUDY) == f"studies/{STUDY}/state/cancelled.json"
    assert layout.report_key(STUDY, "report.html") == f"studies/{STUDY}/report/report.html"
    assert layout.score_key(STUDY, "g", 7.5, "classname", layout.SCORES) == \
        f"studies/{STUDY}/scores/g/cfg7.5/classname/scores.json"


def test_one_coverage_rule_accepts_no_gap() -> None:
    assert layout.covered_prefix([(0, 4), (4, 4)]) == 8
    assert layout.covered_prefix([(4, 4), (0, 6)]) == 8  # overlaps and any order
    assert layout.covered_prefix([(0, 4), (5, 100)]) == 4  # images after a gap do not count
    assert layout.covered_prefix([(1, 10)]) == 0
    assert layout.covers([(0, 3), (3, 3)], 6) and not layout.covers([(0, 3), (4, 2)], 6)
    cov = layout.Coverage(cap=8)
    cov.add(0, 4)
    cov.add(6, 10)
    assert (cov.covered, cov.prefix) == (6, 4)
    cov.add(4, 2)
    assert (cov.covered, cov.prefix) == (8, 8)
