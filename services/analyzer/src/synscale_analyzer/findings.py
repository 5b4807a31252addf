"""The report's findings: short sentences computed from the numbers, never hand-written.

Each finding states the figure it rests on (slope with its interval, the test and its
Holm-corrected p-value, the number of classes), so a reader can check it against the
tables below it. A comparison that a test cannot tell apart is written as
"indistinguishable"; a series at chance is named once and never read as a slope.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from synscale_analyzer.analysis import Analysis, CfgTrend, Series
    from synscale_analyzer.comparisons import Comparison
    from synscale_analyzer.correlation import PooledCorrelation


def _a(s: Series) -> str:
    f = s.power_law
    if f is None or not f.ok:
        return "n/a"
    lo, hi = f.alpha_ci
    ci = f" [{lo:.3f}, {hi:.3f}]" if math.isfinite(lo) and math.isfinite(hi) else ""
    return f"α = {f.alpha:.3f}{ci}"


def _p(c: Comparison) -> str:
    return f"Holm p = {c.p_holm:.2g}"


def write_findings(analysis: Analysis) -> list[str]:
    out: list[str] = []
    id_set = analysis.input.id_set
    metric = "error" if analysis.input.metric == "error" else "loss"
    synthetic = analysis.readable(id_set, "synthetic")
    reals = analysis.readable(id_set, "real")
    mixed = analysis.readable(id_set, "mixed")
    real = reals[0] if reals else None

    if synthetic:
        best = max(synthetic, key=lambda s: s.power_law.alpha)  # type: ignore[union-attr]
        worst = min(synthetic, key=lambda s: s.power_law.alpha)  # type: ignore[union-attr]
        text = (f"Best-scaling synthetic cell on {id_set}: {best.key.label} ({_a(best)}); "
                f"worst: {worst.key.label} ({_a(worst)}).")
        if real is not None:
            text += f" Real data: {_a(real)}."
        out.append(text + _slope_family(analysis, best, worst))
        lowest = min(synthetic, key=lambda s: s.means()[1][-1])
        ns, means = lowest.means()
        out.append(f"Lowest {metric} at the largest size: {lowest.key.label} "
                   f"({means[-1]:.3f} at N = {int(ns[-1])} per class).")
    if synthetic and real is not None:
        out.append(_versus_real(analysis, synthetic, real, metric))
    if mixed and real is not None:
        out.append(_mixed(mixed, synthetic, real, metric))
    caveat = _uncertain(synthetic + reals + mixed)
    if caveat:
        out.append(caveat)
    out += _chance(analysis)
    out += _real_below_chance(analysis)
    out += [t for t in (_cfg(tr) for tr in analysis.cfg_trends) if t]
    out += _ood(analysis)
    out += _per_class(analysis)
    if analysis.failed_runs:
        out.append(f"{len(analysis.failed_runs)} training run(s) failed and are left out of the fits "
                   f"(first: {analysis.failed_runs[0].run_id}: {analysis.failed_runs[0].error[:120]}).")
    return out


def _slope_family(analysis: Analysis, best: Series, worst: Series) -> str:
    """How many slope differences among the cells (and real) a test can tell apart."""
    fam = analysis.family(f"slopes on {analysis.input.id_set}")
    if not fam or best is worst:
        return ""
    bw = next((c for c in fam if {c.a, c.b} == {best.key.label, worst.key.label}), None)
    sig = sum(c.significant for c in fam)
    text = f" Of {len(fam)} pairwise slope differences, {sig} are significant (Welch t, Holm)"
    if bw is not None:
        text += (f"; best vs worst is {'significant' if bw.significant else 'indistinguishable'} "
                 f"(Δα = {abs(bw.estimate):.3f}, {_p(bw)})")
    return text + "."


def _versus_real(analysis: Analysis, synthetic: list[Series], real: Series, metric: str) -> str:
    from synscale_analyzer.fits import crossover

    fam = analysis.family(f"error vs real at equal N on {analysis.input.id_set}")
    labels = {s.key.label for s in synthetic}
    tests = [c for c in fam if c.a in labels]
    wins: dict[str, list[int]] = {}
    for c in tests:
        if c.significant and c.estimate < 0 and c.n is not None:
            wins.setdefault(c.a, []).append(c.n)
    if wins:
        parts = [f"{label} at N = {', '.join(map(str, ns))}" for label, ns in wins.items()]
        return (f"Synthetic data beat real data at equal size in {len(wins)} of {len(synthetic)} cells "
                f"(lower {metric}, {tests[0].method}, Holm over {len(tests)} comparisons): "
                + "; ".join(parts[:4]) + ("; …" if len(parts) > 4 else "") + ".")
    observed = sorted({c.a for c in tests if c.estimate < 0})
    if observed:
        return (f"Synthetic and real data are indistinguishable at equal size wherever synthetic looked "
                f"better: {len(observed)} of {len(synthetic)} cells had a lower observed {metric} than real "
                f"at some N, but none of those differences is significant ({len(tests)} comparisons, "
                f"{tests[0].method}, Holm).")
    future: list[tuple[float, str]] = []
    slope_fam = {frozenset((c.a, c.b)): c for c in analysis.family(f"slopes on {analysis.input.id_set}")}
    for s in synthetic:
        cross = crossover(s.power_law, real.power_law)  # type: ignore[arg-type]
        test = slope_fam.get(frozenset((s.key.label, real.key.label)))
        if (cross is not None and math.isfinite(cross) and cross > s.max_n
                and s.power_law.alpha > max(real.power_law.alpha, 0.0)  # type: ignore[union-attr]
                and test is not None and test.significant):
            future.append((cross, s.key.label))
    if future:
        cross, label = min(future)
        return (f"No synthetic cell beats real data at the sizes trained; {label} scales significantly "
                f"faster than real and its fitted law would overtake real at about N ≈ {cross:,.0f} per "
                f"class (an extrapolation).")
    return (f"Real data have the lower {metric} at every size trained, and no synthetic cell scales "
            f"significantly faster than real ({_a(real)}): under the fitted laws synthetic never catches up.")


def _uncertain(series: list[Series]) -> str:
    """Say so when the intervals cannot tell the slopes from zero (too few sizes or seeds)."""
    with_ci = [s for s in series if all(math.isfinite(x) for x in s.power_law.alpha_ci)]  # type: ignore[union-attr]
    flat = [s for s in with_ci if s.power_law.alpha_ci[0] <= 0.0 <= s.power_law.alpha_ci[1]]  # type: ignore[union-attr]
    if not flat:
        return ""
    return (f"Caution: {len(flat)} of {len(with_ci)} slopes on this set are not distinguishable from 0 "
            f"(their 95% interval contains 0); more sizes, larger N or more seeds are needed before "
            f"reading the comparisons above as more than trends.")


def _chance(analysis: Analysis) -> list[str]:
    out = []
    for es in [analysis.input.id_set, *analysis.input.ood_sets]:
        at = [s for s in analysis.series_for(es) if s.at_chance]
        if not at:
            continue
        total = len(analysis.series_for(es))
        rate = at[0].chance.chance_error if at[0].chance else math.nan
        names = ", ".join(s.key.label for s in at[:3]) + (", …" if len(at) > 3 else "")
        out.append(f"At chance on '{es}': {len(at)} of {total} series are not significantly below the chance "
                   f"error {rate:.2f} at any size (exact binomial test, Bonferroni over sizes): {names}. "
                   f"Their slopes are left out of every finding.")
    return out


def _real_below_chance(analysis: Analysis) -> list[str]:
    """Real data's error at its largest N on each OOD set against the chance error.

    "Clearly below chance" means the one-sided exact (Clopper–Pearson) 95% upper bound of
    the error, seeds pooled (k errors of n test images), lies below 1 − 1/classes: an OOD
    set on which even real data is at chance cannot show how anything scales there.
    """
    from scipy import stats

    parts, at = [], []
    chance_error = math.nan
    for es in analysis.input.ood_sets:
        real = next((s for s in analysis.series_for(es, "real") if s.counted and s.chance), None)
        if real is None or real.chance is None:
            continue
        chance_error = real.chance.chance_error
        pts = [p for p in real.points if p.n == real.max_n]
        k = round(sum(p.value * p.n_test for p in pts))
        n = sum(p.n_test for p in pts)
        test = stats.binomtest(k, n, chance_error, alternative="less")
        upper = float(test.proportion_ci(0.95).high)
        parts.append(f"{es} {k / n:.3f} (≤ {upper:.3f})")
        if upper >= chance_error:
            at.append(es)
    if not parts:
        return []
    verdict = ("every OOD set clearly below" if not at
               else f"not clearly below on {', '.join(at)}; the others below")
    return [f"Real data at its largest N on the OOD sets: {'; '.join(parts)} (error, one-sided exact 95% "
            f"upper bound, seeds pooled): {verdict} the chance error {chance_error:.2f}."]


def _mixed(mixed: list[Series], synthetic: list[Series], real: Series, metric: str) -> str:
    synth_by_cell = {s.key.cell: s for s in synthetic}
    better = 0
    compared = 0
    for m in mixed:
        s = synth_by_cell.get(m.key.cell)
        if s is None:
            continue
        compared += 1
        better += int(m.means()[1][-1] < s.means()[1][-1])
    mean_alpha = float(np.mean([m.power_law.alpha for m in mixed]))  # type: ignore[union-attr]
    return (f"Adding {mixed[0].key.real_per_class} real images per class lowered the largest-size "
            f"{metric} in {better} of {compared} cells (observed); mixed series scale with mean "
            f"α = {mean_alpha:.3f} (real alone {_a(real)}).")


def _trend(values: tuple[float, ...]) -> str:
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < 2:
        return "n/a"
    diffs = np.diff(finite)
    if np.all(diffs <= 0):
        return "falls"
    if np.all(diffs >= 0):
        return "rises"
    peak = int(np.argmax(finite))
    return "peaks in the middle" if 0 < peak < len(finite) - 1 else "moves non-monotonically"


def _cfg(tr: CfgTrend) -> str:
    if len(tr.cfgs) < 2:
        return ""
    best = int(np.nanargmax(tr.f1)) if any(math.isfinite(v) for v in tr.f1) else 0
    seq_f1 = " → ".join(f"{v:.2f}" for v in tr.f1)
    seq_div = " → ".join(f"{v:.3f}" for v in tr.diversity)
    cfgs = ", ".join(f"{c:g}" for c in tr.cfgs)
    return (f"{tr.generator}/{tr.strategy}, CFG {cfgs}: recognizability {_trend(tr.f1)} "
            f"({seq_f1}; best at CFG {tr.cfgs[best]:g}), diversity {_trend(tr.diversity)} ({seq_div}).")


def _ood(analysis: Analysis) -> list[str]:
    out = []
    id_set = analysis.input.id_set
    fam = analysis.family("OOD vs ID slopes")
    for ood in analysis.input.ood_sets:
        parts = []
        for source in ("real", "synthetic"):
            ids = [s.power_law.alpha for s in analysis.readable(id_set, source)]  # type: ignore[arg-type,union-attr]
            oods = [s.power_law.alpha for s in analysis.readable(ood, source)]  # type: ignore[arg-type,union-attr]
            if ids and oods:
                parts.append(f"{source} α {np.mean(ids):.3f} (ID) vs {np.mean(oods):.3f}")
        tests = [c for c in fam if c.eval_set == ood]
        if parts:
            sig = [c for c in tests if c.significant]
            text = f"OOD '{ood}': " + "; ".join(parts) + "."
            if tests:
                rest = len(tests) - len(sig)
                text += (f" OOD − ID slope differences: {len(sig)} of {len(tests)} significant "
                         "(Welch t, Holm)"
                         + (f"; {rest} indistinguishable." if rest else "."))
            out.append(text)
        elif analysis.series_for(ood) and not analysis.readable(ood):
            out.append(f"OOD '{ood}': every series is at chance or unfitted; no OOD slope is read.")
    return out


def _per_class(analysis: Analysis) -> list[str]:
    from synscale_analyzer.analysis import class_summary

    if not analysis.per_class:
        return []
    est, total, reasons = class_summary(analysis)
    why = ", ".join(f"{n}× {r}" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1]))
    out = [f"Per-class slopes: {est} of {total} (cell, class) pairs estimable"
           + (f"; not estimable: {why}." if why else ".")]
    for name, c in analysis.pooled.items():
        out += [_pooled(name, c)] if math.isfinite(c.rho) else []
    return out


def _pooled(name: str, c: PooledCorrelation) -> str:
    verdict = "significant" if c.p < 0.05 else "not significant"
    return (f"Per-class scalability vs {name}: mean within-cell Spearman ρ = {c.rho:.2f} "
            f"[{c.ci[0]:.2f}, {c.ci[1]:.2f}] over {c.classes} classes in {c.cells} cells "
            f"({c.pairs} estimable pairs), class-level permutation p = {c.p:.2g} ({verdict}).")
