"""The claims table: constructed inputs with a known truth give each verdict for each claim type."""

from __future__ import annotations

import math

import numpy as np
import pytest

from synscale_analyzer import claims
from synscale_analyzer.analysis import Analysis, analyze, cfg_trends
from synscale_analyzer.correlation import PooledCorrelation
from synscale_analyzer.model import AnalysisInput, CellScoreRecord, ClassScoreRecord, EvalRecord, RunRecord

CLASSES = tuple((f"c{k}", f"class {k}") for k in range(10))
CFGS = (1.0, 2.0, 4.0)
STRATEGIES = ("classname", "clip_templates")


# -- score-based claims: cells with per-class F1 and diversity ---------------------------
def _scores(f1_per_cfg: float = 0.0, div_per_cfg: float = 0.0, rich_f1: float = 0.0,
            cfgs: tuple[float, ...] = CFGS, strategies: tuple[str, ...] = STRATEGIES,
            jitter: float = 0.0) -> tuple[CellScoreRecord, ...]:
    """Class k's F1 = 0.5 + 0.02k + f1_per_cfg·rank(cfg) (+ rich_f1 off the classname strategy)."""
    rng = np.random.default_rng(3)
    out = []
    for i, cfg in enumerate(cfgs):
        for strat in strategies:
            extra = rich_f1 if strat != "classname" else 0.0
            classes = {}
            for k, (cid, _) in enumerate(CLASSES):
                f1 = 0.5 + 0.02 * k + f1_per_cfg * i + extra + jitter * rng.normal()
                div = 0.3 + 0.01 * k + div_per_cfg * i + jitter * rng.normal()
                classes[cid] = ClassScoreRecord(cid, 64, f1, f1, f1, div)
            f1s = [c.f1 for c in classes.values()]
            divs = [c.diversity_std for c in classes.values()]
            out.append(CellScoreRecord("gen", cfg, strat, float(np.mean(f1s)), float(np.mean(divs)),
                                       classes))
    return tuple(out)


def _score_analysis(scores: tuple[CellScoreRecord, ...]) -> Analysis:
    inp = AnalysisInput("s", "s", CLASSES, (), scores, "id", ())
    return Analysis(inp, [], [], {}, cfg_trends(inp, []), [])


@pytest.mark.parametrize(("claim", "scores", "verdict"), [
    (claims.cfg_recognizability, _scores(f1_per_cfg=0.1, jitter=0.01), "reproduced"),
    (claims.cfg_recognizability, _scores(f1_per_cfg=-0.1, jitter=0.01), "contradicted"),
    (claims.cfg_recognizability, _scores(jitter=0.05), "inconclusive"),
    (claims.cfg_recognizability, _scores(f1_per_cfg=0.1, cfgs=(2.0,)), "inconclusive"),  # one CFG
    (claims.cfg_diversity, _scores(div_per_cfg=-0.03, jitter=0.005), "reproduced"),
    (claims.cfg_diversity, _scores(div_per_cfg=0.03, jitter=0.005), "contradicted"),
    (claims.cfg_diversity, _scores(jitter=0.05), "inconclusive"),
    (claims.prompt_diversity, _scores(rich_f1=-0.08, jitter=0.01), "reproduced"),
    (claims.prompt_diversity, _scores(rich_f1=0.08, jitter=0.01), "contradicted"),
    (claims.prompt_diversity, _scores(jitter=0.05), "inconclusive"),
    (claims.prompt_diversity, _scores(rich_f1=-0.08, strategies=("clip_templates",)), "inconclusive"),
    # quality vs diversity over cells: CFG raises F1 and lowers diversity -> inverse relation
    (claims.quality_diversity, _scores(f1_per_cfg=0.1, div_per_cfg=-0.03, rich_f1=0.05), "reproduced"),
    (claims.quality_diversity, _scores(f1_per_cfg=0.1, div_per_cfg=0.03, rich_f1=0.05), "contradicted"),
    (claims.quality_diversity, _scores(f1_per_cfg=0.1, cfgs=(1.0,)), "inconclusive"),  # 2 cells
])
def test_score_claims(claim, scores, verdict) -> None:  # type: ignore[no-untyped-def]
    row = claim(_score_analysis(scores))
    assert row.verdict == verdict, row.shows
    assert row.paper and row.test and row.shows


# -- slope-based claims: simulated runs with known laws ----------------------------------
SIZES = (4, 8, 16, 32, 64, 128)


def _study(laws: dict[tuple[str, float, str], tuple[float, float, float]], noise: float = 0.02,
           seeds: tuple[int, ...] = (0, 1, 2), test_images: int = 5000, ood_amp: float = 0.0) -> Analysis:
    """`laws`: (source, cfg, strategy) → (A, α on the ID set, α on the OOD set); err = A·N^−α.

    Errors are binomial draws of `test_images` test images around the law, times a lognormal
    seed-to-seed jitter of `noise`; `ood_amp` replaces A on the OOD set (0: the same A).
    """
    rng = np.random.default_rng(11)
    runs = []
    for (source, cfg, strat), (amp, a_id, a_ood) in laws.items():
        for n in SIZES:
            for seed in seeds:
                evals = {}
                for es, alpha in (("id", a_id), ("ood", a_ood)):
                    a0 = ood_amp if es == "ood" and ood_amp else amp
                    p = min(0.9, a0 * n ** (-alpha) * math.exp(rng.normal(0, noise)))
                    err = rng.binomial(test_images, p) / test_images
                    evals[es] = EvalRecord(es, 1 - err, err, {}, test_images)
                synthetic = source == "synthetic"
                runs.append(RunRecord(f"{source}-{cfg}-{strat}-{n}-{seed}", source, "cnn", n, seed,  # type: ignore[arg-type]
                                      evals, "gen" if synthetic else "", cfg if synthetic else None, strat))
    inp = AnalysisInput("s", "s", CLASSES, tuple(runs), (), "id", ("ood",), fits=("power_law",),
                        bootstrap=100)
    return analyze(inp)


REAL = ("real", 0.0, "")


def _syn(cfg: float = 1.0, strat: str = "classname") -> tuple[str, float, str]:
    return ("synthetic", cfg, strat)


@pytest.mark.parametrize(("laws", "noise", "verdict"), [
    ({REAL: (0.8, 0.5, 0.5), _syn(): (0.8, 0.2, 0.2), _syn(2.0): (0.8, 0.15, 0.15)}, 0.02, "reproduced"),
    ({REAL: (0.8, 0.1, 0.1), _syn(): (0.8, 0.4, 0.4), _syn(2.0): (0.8, 0.15, 0.15)}, 0.02, "contradicted"),
    ({REAL: (0.8, 0.3, 0.3), _syn(): (0.8, 0.3, 0.3)}, 0.02, "inconclusive"),
])
def test_synthetic_scales_worse_than_real(laws, noise, verdict) -> None:  # type: ignore[no-untyped-def]
    row = claims.synthetic_vs_real(_study(laws, noise))
    assert row.verdict == verdict, row.shows


@pytest.mark.parametrize(("laws", "noise", "verdict"), [
    # ID gap −0.3; OOD gap 0 -> synthetic relatively better OOD
    ({REAL: (0.8, 0.5, 0.3), _syn(): (0.8, 0.2, 0.3)}, 0.02, "reproduced"),
    # ID gap −0.1; OOD gap −0.4 -> relatively worse OOD
    ({REAL: (0.8, 0.4, 0.45), _syn(): (0.8, 0.3, 0.05)}, 0.02, "contradicted"),
    ({REAL: (0.8, 0.4, 0.3), _syn(): (0.8, 0.3, 0.2)}, 0.02, "inconclusive"),  # the same gap
    # the gap closes only because both stop scaling OOD (synthetic slope below 0): not "better"
    ({REAL: (0.8, 0.4, 0.03), _syn(): (0.8, 0.15, -0.03)}, 0.02, "inconclusive"),
])
def test_ood_scaling(laws, noise, verdict) -> None:  # type: ignore[no-untyped-def]
    row = claims.ood_scaling(_study(laws, noise))
    assert row.verdict == verdict, row.shows


@pytest.mark.parametrize(("laws", "verdict"), [
    # high CFG: lower error at N = 4, flatter, so higher error at N = 128
    ({REAL: (0.8, 0.5, 0.5), _syn(1.0): (0.9, 0.4, 0.4), _syn(4.0): (0.5, 0.1, 0.1)}, "reproduced"),
    # high CFG worse at every size
    ({REAL: (0.8, 0.5, 0.5), _syn(1.0): (0.5, 0.2, 0.2), _syn(4.0): (0.8, 0.2, 0.2)}, "contradicted"),
    ({REAL: (0.8, 0.5, 0.5), _syn(1.0): (0.6, 0.2, 0.2), _syn(4.0): (0.6, 0.2, 0.2)}, "inconclusive"),
])
def test_high_cfg_helps_small_n_hurts_large_n(laws, verdict) -> None:  # type: ignore[no-untyped-def]
    row = claims.cfg_crossover(_study(laws))
    assert row.verdict == verdict, row.shows


def _pooled(rho: float, p: float) -> PooledCorrelation:
    return PooledCorrelation("alpha", "f1", 10, 30, 3, rho, p, (rho - 0.2, rho + 0.2))


@pytest.mark.parametrize(("pooled", "verdict"), [
    ({"recognizability": _pooled(0.7, 0.002), "diversity": _pooled(0.1, 0.6)}, "reproduced"),
    ({"recognizability": _pooled(-0.7, 0.002)}, "contradicted"),
    ({"recognizability": _pooled(0.2, 0.4)}, "inconclusive"),
    ({}, "inconclusive"),
])
def test_class_quality_tracks_class_scalability(pooled, verdict) -> None:  # type: ignore[no-untyped-def]
    inp = AnalysisInput("s", "s", CLASSES, (), (), "id", ())
    row = claims.class_scalability(Analysis(inp, [], [], pooled, [], []))
    assert row.verdict == verdict, row.shows


def test_the_table_has_the_eight_claims_in_order_and_the_json_shape() -> None:
    analysis = _study({REAL: (0.8, 0.5, 0.5), _syn(1.0): (0.8, 0.2, 0.2), _syn(4.0): (0.7, 0.15, 0.15)})
    rows = analysis.claims
    assert [r.key for r in rows] == [
        "cfg_recognizability", "cfg_diversity", "prompts_recognizability", "quality_vs_diversity",
        "synthetic_scales_worse_id", "synthetic_ood_scaling", "class_quality_tracks_scaling",
        "cfg_small_vs_large_n"]
    assert all(r.verdict in claims.VERDICTS for r in rows)
    assert rows[4].verdict == "reproduced"
    doc = rows[0].to_dict()
    assert set(doc) == {"claim", "paper", "this_study", "test", "verdict", "p"}


def test_verdict_rule() -> None:
    assert claims.verdict_of(1, 0) == "reproduced"
    assert claims.verdict_of(0, 2) == "contradicted"
    assert claims.verdict_of(1, 1) == "inconclusive"
    assert claims.verdict_of(0, 0) == "inconclusive"
    assert claims.signed_verdict(0.3, 0.01, -1) == "contradicted"
    assert claims.signed_verdict(0.3, 0.2, +1) == "inconclusive"
    assert claims.signed_verdict(0.3, math.nan, +1) == "inconclusive"


def test_findings_say_whether_real_data_is_clearly_below_chance_on_each_ood_set() -> None:
    below = _study({REAL: (0.8, 0.4, 0.3), _syn(): (0.8, 0.2, 0.2)})
    line = next(f for f in below.findings if f.startswith("Real data at its largest N on the OOD sets"))
    assert "every OOD set clearly below the chance error 0.90" in line
    at_chance = _study({REAL: (0.8, 0.4, 0.0), _syn(): (0.8, 0.2, 0.2)}, ood_amp=0.95)
    line = next(f for f in at_chance.findings if f.startswith("Real data at its largest N on the OOD sets"))
    assert "not clearly below on ood" in line
