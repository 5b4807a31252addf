"""What the paper claims, and what this study shows: one tested row per claim.

The paper is Fan et al., "Scaling Laws of Synthetic Images for Model Training … for Now"
(CVPR 2024). Each of its eight claims that a synscale study can check is turned into one
test from the statistics machinery (docs/statistics.md): per-class paired tests for the
score trends (classes are the replicates), slope t-tests (`fits.py`, `comparisons.py`),
paired bootstraps of the error at equal N, the chance floor (`chance.py`) and the
class-level correlations (`correlation.py`). The verdict is mechanical:

- **reproduced**: the test is significant (p < 0.05, Holm-corrected where a claim rests on
  several tests) in the paper's direction, and nothing is significant against it;
- **contradicted**: significant against the paper's direction, and nothing for it;
- **inconclusive**: neither (too few classes, sizes or seeds to tell, or mixed evidence),
  or the study lacks what the claim needs (one CFG value, no real data, no OOD set).

A toy study gets "inconclusive" rows; they say what is missing. ADR 0021 records why the
tests are these.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from scipy import stats

from synscale_analyzer import comparisons
from synscale_analyzer.correlation import correlate
from synscale_analyzer.model import num as _num

if TYPE_CHECKING:
    from synscale_analyzer.analysis import Analysis, Series
    from synscale_analyzer.model import CellScoreRecord

Verdict = Literal["reproduced", "contradicted", "inconclusive"]
LEVEL = 0.05
VERDICTS: tuple[Verdict, ...] = ("reproduced", "contradicted", "inconclusive")


@dataclass(frozen=True)
class Claim:
    """One row of the table: the paper's statement, this study's numbers, the test, the verdict."""

    key: str
    paper: str
    shows: str
    test: str
    verdict: Verdict
    p: float = math.nan  # the p-value the verdict rests on (Holm-corrected where several)

    def to_dict(self) -> dict[str, Any]:
        return {"claim": self.key, "paper": self.paper, "this_study": self.shows, "test": self.test,
                "verdict": self.verdict, "p": _num(self.p)}


def verdict_of(for_paper: int, against: int) -> Verdict:
    """The rule above, from the counts of significant results for and against the paper."""
    if for_paper and not against:
        return "reproduced"
    if against and not for_paper:
        return "contradicted"
    return "inconclusive"


def signed_verdict(estimate: float, p: float, paper_sign: int) -> Verdict:
    """Verdict of one test whose estimate the paper says has sign `paper_sign` (+1 / −1)."""
    if not (math.isfinite(p) and math.isfinite(estimate)) or p >= LEVEL or estimate == 0:
        return "inconclusive"
    return "reproduced" if np.sign(estimate) == paper_sign else "contradicted"


# -- score trends: per-class paired tests -----------------------------------------------
def _class_differences(
    hi: Sequence[CellScoreRecord], lo: Sequence[CellScoreRecord], attr: str,
) -> np.ndarray:
    """Per class, the mean over the pairs (hi[i], lo[i]) of hi's value − lo's value."""
    diffs: dict[str, list[float]] = {}
    for a, b in zip(hi, lo, strict=True):
        for cid, ca in a.classes.items():
            cb = b.classes.get(cid)
            if cb is None:
                continue
            d = float(getattr(ca, attr)) - float(getattr(cb, attr))
            if math.isfinite(d):
                diffs.setdefault(cid, []).append(d)
    return np.array([float(np.mean(v)) for _, v in sorted(diffs.items())])


def paired_classes(diffs: np.ndarray) -> tuple[float, float]:
    """(mean difference, two-sided Wilcoxon signed-rank p) over classes; NaN p below 5 classes."""
    diffs = diffs[np.isfinite(diffs)]
    if len(diffs) == 0:
        return math.nan, math.nan
    mean = float(np.mean(diffs))
    if len(diffs) < 5 or not np.any(diffs != 0):
        return mean, math.nan
    return mean, float(stats.wilcoxon(diffs).pvalue)


def _cfg_pairs(analysis: Analysis) -> tuple[list[CellScoreRecord], list[CellScoreRecord], float, float]:
    """(highest-CFG cells, lowest-CFG cells, lowest CFG, highest CFG), one pair per strategy."""
    hi, lo = [], []
    cfgs: set[float] = set()
    for tr in analysis.cfg_trends:
        if len(tr.cfgs) < 2:
            continue
        a = analysis.score_of(tr.generator, tr.cfgs[-1], tr.strategy)
        b = analysis.score_of(tr.generator, tr.cfgs[0], tr.strategy)
        if a is not None and b is not None:
            hi.append(a)
            lo.append(b)
            cfgs |= {tr.cfgs[0], tr.cfgs[-1]}
    return hi, lo, min(cfgs, default=math.nan), max(cfgs, default=math.nan)


def _trend_claim(analysis: Analysis, key: str, paper: str, attr: str, label: str, sign: int) -> Claim:
    hi, lo, c_lo, c_hi = _cfg_pairs(analysis)
    test = ("per-class difference (highest − lowest CFG, averaged over strategies), "
            "Wilcoxon signed-rank over classes")
    if not hi:
        return Claim(key, paper, "needs ≥ 2 CFG values with scores", test, "inconclusive")
    diffs = _class_differences(hi, lo, attr)
    mean, p = paired_classes(diffs)
    seqs = "; ".join(f"{tr.strategy}: " + " → ".join(f"{v:.2f}" for v in getattr(tr, label))
                     for tr in analysis.cfg_trends if len(tr.cfgs) >= 2)
    shows = (f"CFG {c_lo:g} → {c_hi:g}: mean per-class change {mean:+.3f} over {len(diffs)} classes "
             f"(p = {_p(p)}); cell values {seqs}")
    return Claim(key, paper, shows, test, signed_verdict(mean, p, sign), p)


def cfg_recognizability(analysis: Analysis) -> Claim:
    return _trend_claim(analysis, "cfg_recognizability",
                        "Higher classifier-free guidance gives more recognizable images.",
                        "f1", "f1", +1)


def cfg_diversity(analysis: Analysis) -> Claim:
    return _trend_claim(analysis, "cfg_diversity",
                        "Higher classifier-free guidance gives less diverse images.",
                        "diversity_std", "diversity", -1)


def prompt_diversity(analysis: Analysis, base: str = "classname") -> Claim:
    """Richer prompt strategies against the one-prompt-per-class baseline, at each CFG."""
    key, paper = ("prompts_recognizability",
                  "More diverse prompts give less recognizable images (but more diverse ones).")
    test = (f"per-class F1 difference (each other strategy − {base}, at the same generator and CFG, "
            "averaged), Wilcoxon signed-rank over classes")
    rich, plain = [], []
    for sc in analysis.input.scores:
        if sc.strategy == base:
            continue
        ref = analysis.score_of(sc.generator, sc.cfg, base)
        if ref is not None:
            rich.append(sc)
            plain.append(ref)
    if not rich:
        return Claim(key, paper, f"needs the '{base}' strategy and another one", test, "inconclusive")
    mean, p = paired_classes(_class_differences(rich, plain, "f1"))
    div, _ = paired_classes(_class_differences(rich, plain, "diversity_std"))
    strategies = sorted({sc.strategy for sc in rich})
    shows = (f"{', '.join(strategies)} vs {base}: mean per-class F1 change {mean:+.3f} (p = {_p(p)}); "
             f"diversity change {div:+.4f}")
    return Claim(key, paper, shows, test, signed_verdict(mean, p, -1), p)


def quality_diversity(analysis: Analysis) -> Claim:
    key, paper = ("quality_vs_diversity", "Recognizability and diversity are inversely related "
                  "(guidance and prompts trade one for the other).")
    test = "Spearman ρ of macro-F1 against diversity over the cells"
    scores = [sc for sc in analysis.input.scores
              if math.isfinite(sc.macro_f1) and math.isfinite(sc.diversity)]
    c = correlate([sc.macro_f1 for sc in scores], [sc.diversity for sc in scores], "f1", "diversity")
    if not math.isfinite(c.spearman_rho):
        return Claim(key, paper, f"needs ≥ 3 scored cells (has {len(scores)})", test, "inconclusive")
    shows = f"ρ = {c.spearman_rho:.2f} over {c.n} cells (p = {_p(c.spearman_p)})"
    return Claim(key, paper, shows, test, signed_verdict(c.spearman_rho, c.spearman_p, -1), c.spearman_p)


# -- scaling: slopes against slopes -----------------------------------------------------
def _alpha(s: Series) -> str:
    f = s.power_law
    assert f is not None
    return f"{f.alpha:.3f} [{f.alpha_ci[0]:.3f}, {f.alpha_ci[1]:.3f}]"


def synthetic_vs_real(analysis: Analysis) -> Claim:
    key, paper = ("synthetic_scales_worse_id", "In distribution, synthetic data scale worse than "
                  "real data (synthetic α 0.195–0.265 vs real 0.53 on ImageNet: 0.37–0.5×).")
    test = "Welch t-test on α (each synthetic cell vs real), Holm over the cells"
    id_set = analysis.input.id_set
    reals = analysis.readable(id_set, "real")
    synth = analysis.readable(id_set, "synthetic")
    if not reals or not synth:
        return Claim(key, paper, "needs readable real and synthetic ID slopes", test, "inconclusive")
    real = reals[0]
    tests = comparisons.corrected([_slope_test("claim", s, real) for s in synth])
    lower = sum(c.significant and c.estimate < 0 for c in tests)
    higher = sum(c.significant and c.estimate > 0 for c in tests)
    best = max(synth, key=lambda s: s.power_law.alpha)  # type: ignore[union-attr]
    ratio = best.power_law.alpha / real.power_law.alpha if real.power_law.alpha > 0 else math.nan  # type: ignore[union-attr]
    shows = (f"real α {_alpha(real)}; best synthetic {best.key.label} α {_alpha(best)} "
             f"({_ratio(ratio)} real); {lower} of {len(tests)} cells significantly flatter, "
             f"{higher} steeper")
    p = min((c.p_holm for c in tests if math.isfinite(c.p_holm)), default=math.nan)
    # Reproduced only when the steepest synthetic cell is itself significantly flatter.
    best_test = next(c for c in tests if c.a == best.key.label)
    for_paper = int(best_test.significant and best_test.estimate < 0)
    return Claim(key, paper, shows, test, verdict_of(for_paper, higher), best_test.p_holm if for_paper else p)


def _slope_test(family: str, a: Series, b: Series) -> comparisons.Comparison:
    fa, fb = a.power_law, b.power_law
    assert fa is not None and fb is not None
    est, ci, p = comparisons.slope_difference(fa.alpha, fa.alpha_se, fa.dof, fb.alpha, fb.alpha_se, fb.dof)
    return comparisons.Comparison(family, a.key.label, b.key.label, a.key.eval_set, est, ci, p,
                                  "Welch t-test on α")


def _combined(f1: Any, f2: Any) -> tuple[float, float, float]:
    """(α1 − α2, its se, Welch–Satterthwaite dof) of two fits."""
    se = math.sqrt(f1.alpha_se**2 + f2.alpha_se**2)
    den = sum(f.alpha_se**4 / f.dof if f.dof > 0 else math.inf for f in (f1, f2))
    return f1.alpha - f2.alpha, se, (se**4 / den if den > 0 else math.nan)


def _dof(d: float) -> int:
    return max(1, round(d)) if math.isfinite(d) else 0


def ood_scaling(analysis: Analysis) -> Claim:
    """Difference in differences: (synthetic − real) slope gap OOD minus the same gap ID."""
    key, paper = ("synthetic_ood_scaling", "Out of distribution synthetic data scale relatively "
                  "better: the synthetic-vs-real slope gap is smaller OOD than ID.")
    test = ("(α_syn − α_real) on each OOD set minus the same on the ID set, best ID synthetic cell; "
            "Welch t (Satterthwaite dof), Holm over OOD sets; a set counts for the paper only where "
            "the synthetic OOD slope's interval lies above 0; series at chance are left out")
    inp = analysis.input
    reals = analysis.readable(inp.id_set, "real")
    synth = analysis.readable(inp.id_set, "synthetic")
    if not reals or not synth or not inp.ood_sets:
        return Claim(key, paper, "needs readable real and synthetic ID slopes and an OOD set", test,
                     "inconclusive")
    real_id = reals[0]
    best = max(synth, key=lambda s: s.power_law.alpha)  # type: ignore[union-attr]
    id_gap = _combined(best.power_law, real_id.power_law)
    tests, parts = [], []
    for ood in inp.ood_sets:
        r = next((s for s in analysis.readable(ood, "real")), None)
        b = next((s for s in analysis.readable(ood, "synthetic") if s.key.cell == best.key.cell), None)
        if r is None or b is None:
            parts.append(f"{ood}: not readable")
            continue
        gap = _combined(b.power_law, r.power_law)
        est, ci, p = comparisons.slope_difference(gap[0], gap[1], _dof(gap[2]), id_gap[0], id_gap[1],
                                                  _dof(id_gap[2]))
        tests.append(comparisons.Comparison("claim", ood, inp.id_set, ood, est, ci, p, "Welch t"))
        parts.append(f"{ood}: synthetic α {b.power_law.alpha:.3f} vs real {r.power_law.alpha:.3f}")  # type: ignore[union-attr]
    if not tests:
        return Claim(key, paper, f"{best.key.label}: " + "; ".join(parts), test, "inconclusive")
    tests = comparisons.corrected(tests)
    gaps = "; ".join(f"{c.a}: gap change {c.estimate:+.3f} (Holm p = {_p(c.p_holm)})" for c in tests)
    shows = (f"{best.key.label}, ID: synthetic α {best.power_law.alpha:.3f} vs real "  # type: ignore[union-attr]
             f"{real_id.power_law.alpha:.3f}; " + "; ".join(parts) + f"; {gaps}")  # type: ignore[union-attr]
    # A gap that shrinks only because synthetic stops scaling OOD (its slope not above 0)
    # is not the paper's "scales relatively better": such a set counts for neither side.
    scales = {ood: s.power_law.alpha_ci[0] > 0  # type: ignore[union-attr]
              for ood in inp.ood_sets for s in analysis.readable(ood, "synthetic")
              if s.key.cell == best.key.cell}
    for_paper = sum(c.significant and c.estimate > 0 and scales.get(c.a, False) for c in tests)
    against = sum(c.significant and c.estimate < 0 for c in tests)
    p = min((c.p_holm for c in tests if math.isfinite(c.p_holm)), default=math.nan)
    return Claim(key, paper, shows, test, verdict_of(for_paper, against), p)


def class_scalability(analysis: Analysis) -> Claim:
    key, paper = ("class_quality_tracks_scaling", "Per class, recognizability tracks scalability "
                  "(classes generated more recognizably scale better); diversity less so.")
    test = ("mean within-cell Spearman ρ of per-class α with per-class F1 (and with diversity), "
            "class-level permutation test")
    rec, div = analysis.pooled.get("recognizability"), analysis.pooled.get("diversity")
    if rec is None or not math.isfinite(rec.rho):
        return Claim(key, paper, "needs ≥ 3 classes with estimable per-class slopes", test, "inconclusive")
    shows = f"α vs F1: ρ = {rec.rho:.2f} (p = {_p(rec.p)}, {rec.classes} classes, {rec.cells} cells)"
    if div is not None and math.isfinite(div.rho):
        shows += f"; α vs diversity: ρ = {div.rho:.2f} (p = {_p(div.p)})"
    return Claim(key, paper, shows, test, signed_verdict(rec.rho, rec.p, +1), rec.p)


def cfg_crossover(analysis: Analysis, rng: np.random.Generator | None = None) -> Claim:
    """High vs low CFG error at the smallest and at the largest common N, per strategy."""
    key, paper = ("cfg_small_vs_large_n", "High guidance is better at small N and worse at large N "
                  "(its diverse-less images stop helping sooner).")
    test = ("error(highest CFG) − error(lowest CFG) at the smallest and at the largest N, paired "
            "bootstrap over test images and seeds, Holm over strategies × the two ends")
    rng = rng or np.random.default_rng(analysis.input.seed * 7919 + 23)
    inp = analysis.input
    by: dict[tuple[str, str], list[Series]] = {}
    for s in analysis.series_for(inp.id_set, "synthetic"):
        if s.counted and not s.at_chance:
            by.setdefault((s.key.generator, s.key.strategy), []).append(s)
    tests: list[comparisons.Comparison] = []
    for (_, strat), group in sorted(by.items()):
        if len(group) < 2:
            continue
        group.sort(key=lambda s: s.key.cfg)
        lo, hi = group[0], group[-1]
        common = sorted(set(lo.sizes) & set(hi.sizes))
        if len(common) < 2:
            continue
        for end, n in (("small", common[0]), ("large", common[-1])):
            est, ci, p, method = comparisons.error_difference(hi.arm(n), lo.arm(n), rng,
                                                              rounds=max(inp.bootstrap, 100))
            tests.append(comparisons.Comparison(end, f"{strat} cfg {hi.key.cfg:g}", f"cfg {lo.key.cfg:g}",
                                                inp.id_set, est, ci, p, method, n=n))
    if not tests:
        return Claim(key, paper, "needs ≥ 2 CFG values of one strategy at ≥ 2 common sizes", test,
                     "inconclusive")
    tests = comparisons.corrected([_refamily(c) for c in tests])
    shows = "; ".join(f"{c.a} − {c.b} at N = {c.n}: {c.estimate:+.3f} (Holm p = {_p(c.p_holm)})"
                      for c in tests)
    for_small = _count(tests, "small", lambda e: e < 0)
    for_large = _count(tests, "large", lambda e: e > 0)
    against = _count(tests, "small", lambda e: e > 0) + _count(tests, "large", lambda e: e < 0)
    p = max((c.p_holm for c in tests if c.significant), default=math.nan)
    return Claim(key, paper, shows, test, verdict_of(int(for_small > 0 and for_large > 0), against),
                 p if math.isfinite(p) else min((c.p_holm for c in tests), default=math.nan))


def _refamily(c: comparisons.Comparison) -> comparisons.Comparison:
    """Both ends in one Holm family; the end stays readable in `method`."""
    from dataclasses import replace

    return replace(c, family="cfg ends", method=f"{c.family}|{c.method}")


def _count(tests: Sequence[comparisons.Comparison], end: str, direction: Callable[[float], bool]) -> int:
    return sum(c.significant and c.method.startswith(f"{end}|") and direction(c.estimate) for c in tests)


CLAIMS: tuple[Callable[[Analysis], Claim], ...] = (
    cfg_recognizability, cfg_diversity, prompt_diversity, quality_diversity,
    synthetic_vs_real, ood_scaling, class_scalability, cfg_crossover,
)
"""The table's rows, in the issue's order."""


def check_claims(analysis: Analysis) -> list[Claim]:
    return [claim(analysis) for claim in CLAIMS]


def _p(p: float) -> str:
    return f"{p:.2g}" if math.isfinite(p) else "n/a"


def _ratio(r: float) -> str:
    return f"{r:.2f}×" if math.isfinite(r) else "n/a ×"
