"""Fixtures for the analyzer tests: hand-made analysis inputs with known scaling laws."""

from __future__ import annotations

import numpy as np
import pytest

from synscale_analyzer.model import (
    AnalysisInput,
    CellScoreRecord,
    ClassScoreRecord,
    EvalRecord,
    RunRecord,
)

CLASSES = (("c0", "alpha"), ("c1", "beta"), ("c2", "gamma"), ("c3", "delta"), ("c4", "epsilon"))


def make_input(
    sizes: tuple[int, ...] = (8, 16, 32, 64, 128), seeds: tuple[int, ...] = (0, 1),
    cfgs: tuple[float, ...] = (1.0, 2.0, 4.0), strategies: tuple[str, ...] = ("classname", "clip_templates"),
    real_alpha: float = 0.5, noise: float = 0.03, mix: int = 16, seed: int = 0,
) -> AnalysisInput:
    """Synthetic cell (cfg c, strategy s) has α = 0.2 + 0.05·rank(c) + 0.04·rank(s).

    Per class k its slope is scaled by (0.6 + 0.2·k) and its F1 rises with k, so per-class
    scalability correlates positively with recognizability by construction.
    """
    rng = np.random.default_rng(seed)
    runs: list[RunRecord] = []
    scores: list[CellScoreRecord] = []
    sets = ("id", "ood-a")

    def evals(alpha: float, amp: float, n: int) -> dict[str, EvalRecord]:
        out = {}
        for j, es in enumerate(sets):
            a = alpha * (1.0 if j == 0 else 0.7)
            per_class = {}
            for k, (cid, _) in enumerate(CLASSES):
                err = min(0.95, amp * n ** (-a * (0.6 + 0.2 * k)) * float(np.exp(rng.normal(0, noise))))
                per_class[cid] = 1.0 - err
            err_all = min(0.95, amp * n ** (-a) * float(np.exp(rng.normal(0, noise))))
            out[es] = EvalRecord(es, top1=1.0 - err_all, loss=2 * err_all, per_class=per_class, n=1000)
        return out

    for n in sizes:
        for s in seeds:
            runs.append(RunRecord(f"real-{n}-{s}", "real", "cnn", n, s, evals(real_alpha, 0.9, n)))
    for i, cfg in enumerate(cfgs):
        for j, strat in enumerate(strategies):
            alpha = 0.2 + 0.05 * i + 0.04 * j
            for n in sizes:
                for s in seeds:
                    runs.append(RunRecord(f"syn-{cfg}-{strat}-{n}-{s}", "synthetic", "cnn", n, s,
                                          evals(alpha, 0.95, n), "gen", cfg, strat))
                    if mix:
                        runs.append(RunRecord(f"mix-{cfg}-{strat}-{n}-{s}", "mixed", "cnn", n, s,
                                              evals(alpha + 0.05, 0.8, n), "gen", cfg, strat, mix))
            classes = {
                cid: ClassScoreRecord(cid, 100, 0.5 + 0.1 * k, 0.5 + 0.1 * k, 0.4 + 0.1 * k - 0.05 * i,
                                      0.6 - 0.05 * i + 0.01 * k)
                for k, (cid, _) in enumerate(CLASSES)
            }
            scores.append(CellScoreRecord("gen", cfg, strat, macro_f1=0.7 - 0.05 * abs(i - 1),
                                          diversity=0.6 - 0.05 * i, classes=classes, fid=10.0 + i))
    return AnalysisInput(
        study_id="toy-0000", study_name="toy", classes=CLASSES, runs=tuple(runs), scores=tuple(scores),
        id_set="id", ood_sets=("ood-a",), bootstrap=50, holdout_sizes=1, seed=0,
    )


@pytest.fixture(name="make_input", scope="session")
def make_input_fixture():  # type: ignore[no-untyped-def]
    """The builder above (the suite imports test modules by path, so helpers come as fixtures)."""
    return make_input
