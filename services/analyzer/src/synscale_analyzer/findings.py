"""The report's findings: short sentences computed from the numbers, never hand-written.

Each finding states the figure it rests on (slope with its interval, sizes, correlations),
so a reader can check it against the tables below it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from synscale_analyzer.analysis import Analysis, CfgTrend, Correlation, Series


def _a(s: Series) -> str:
    f = s.power_law
    if f is None or not f.ok:
        return "n/a"
    lo, hi = f.alpha_ci
    ci = f" [{lo:.3f}, {hi:.3f}]" if math.isfinite(lo) and math.isfinite(hi) else ""
    return f"α = {f.alpha:.3f}{ci}"


def _ok(s: Series) -> bool:
    return s.power_law is not None and s.power_law.ok


def write_findings(analysis: Analysis) -> list[str]:
    out: list[str] = []
    id_set = analysis.input.id_set
    metric = "error" if analysis.input.metric == "error" else "loss"
    synthetic = [s for s in analysis.series_for(id_set, "synthetic") if _ok(s)]
    reals = [s for s in analysis.series_for(id_set, "real") if _ok(s)]
    mixed = [s for s in analysis.series_for(id_set, "mixed") if _ok(s)]
    real = reals[0] if reals else None

    if synthetic:
        best = max(synthetic, key=lambda s: s.power_law.alpha)  # type: ignore[union-attr]
        worst = min(synthetic, key=lambda s: s.power_law.alpha)  # type: ignore[union-attr]
        text = (f"Best-scaling synthetic cell on {id_set}: {best.key.label} ({_a(best)}); "
                f"worst: {worst.key.label} ({_a(worst)}).")
        if real is not None:
            text += f" Real data: {_a(real)}."
        out.append(text)
        lowest = min(synthetic, key=lambda s: s.means()[1][-1])
        ns, means = lowest.means()
        out.append(f"Lowest {metric} at the largest size: {lowest.key.label} "
                   f"({means[-1]:.3f} at N = {int(ns[-1])} per class).")
    if synthetic and real is not None:
        out.append(_versus_real(synthetic, real, metric))
    if mixed and real is not None:
        out.append(_mixed(mixed, synthetic, real, metric))
    caveat = _uncertain(synthetic + reals + mixed)
    if caveat:
        out.append(caveat)
    out += [t for t in (_cfg(tr) for tr in analysis.cfg_trends) if t]
    out += _ood(analysis)
    out += _per_class(analysis.pooled)
    if analysis.failed_runs:
        out.append(f"{len(analysis.failed_runs)} training run(s) failed and are left out of the fits "
                   f"(first: {analysis.failed_runs[0].run_id}: {analysis.failed_runs[0].error[:120]}).")
    return out


def _versus_real(synthetic: list[Series], real: Series, metric: str) -> str:
    from synscale_analyzer.fits import crossover

    wins: list[str] = []
    future: list[tuple[float, str]] = []
    for s in synthetic:
        common = sorted({n for n, _, _ in s.points} & {n for n, _, _ in real.points})
        beat = [n for n in common if (s.value_at(n) or math.inf) < (real.value_at(n) or -math.inf)]
        if beat:
            wins.append(f"{s.key.label} at N = {', '.join(map(str, beat))}")
            continue
        cross = crossover(s.power_law, real.power_law)  # type: ignore[arg-type]
        if (cross is not None and math.isfinite(cross) and cross > s.max_n
                and s.power_law.alpha > max(real.power_law.alpha, 0.0)):  # type: ignore[union-attr]
            future.append((cross, s.key.label))
    if wins:
        return (f"Synthetic data beat real data at equal size in {len(wins)} of {len(synthetic)} "
                f"cells: " + "; ".join(wins[:4]) + ("; …" if len(wins) > 4 else "") + ".")
    if future:
        cross, label = min(future)
        return (f"No synthetic cell beats real data at the sizes trained; {label} scales faster "
                f"than real and its fitted law would overtake real at about N ≈ {cross:,.0f} per class "
                f"(an extrapolation).")
    return (f"Real data have the lower {metric} at every size trained, and no synthetic cell scales "
            f"faster than real ({_a(real)}): under the fitted laws synthetic never catches up.")


def _uncertain(series: list[Series]) -> str:
    """Say so when the intervals cannot tell the slopes from zero (too few sizes or seeds)."""
    with_ci = [s for s in series if all(math.isfinite(x) for x in s.power_law.alpha_ci)]  # type: ignore[union-attr]
    flat = [s for s in with_ci if s.power_law.alpha_ci[0] <= 0.0 <= s.power_law.alpha_ci[1]]  # type: ignore[union-attr]
    if not flat:
        return ""
    return (f"Caution: {len(flat)} of {len(with_ci)} slopes on this set are not distinguishable from 0 "
            f"(their 95% interval contains 0); more sizes, larger N or more seeds are needed before "
            f"reading the comparisons above as more than trends.")


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
            f"{metric} in {better} of {compared} cells; mixed series scale with mean α = {mean_alpha:.3f} "
            f"(real alone {_a(real)}).")


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
    for ood in analysis.input.ood_sets:
        parts = []
        for source in ("real", "synthetic"):
            ids = [s.power_law.alpha for s in analysis.series_for(id_set, source) if _ok(s)]  # type: ignore[arg-type,union-attr]
            oods = [s.power_law.alpha for s in analysis.series_for(ood, source) if _ok(s)]  # type: ignore[arg-type,union-attr]
            if ids and oods:
                parts.append(f"{source} α {np.mean(ids):.3f} (ID) vs {np.mean(oods):.3f}")
        if parts:
            out.append(f"OOD '{ood}': " + "; ".join(parts) + ".")
    return out


def _per_class(pooled: dict[str, Correlation]) -> list[str]:
    out = []
    for name, c in pooled.items():
        if c.n >= 3 and math.isfinite(c.spearman_rho):
            out.append(f"Per-class scalability vs {name}: Spearman ρ = {c.spearman_rho:.2f} "
                       f"(p = {c.spearman_p:.2g}), Pearson r = {c.pearson_r:.2f} "
                       f"over {c.n} (cell, class) pairs.")
    return out
