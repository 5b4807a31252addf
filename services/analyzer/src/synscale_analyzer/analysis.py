"""From finished runs and cell scores to fitted series, per-class scalability and comparisons.

A *series* is every run that differs only in N: (source, cell, recipe, eval set). Each is
fitted with the study's laws as binomial counts (k errors of n test images per run), checked
against chance, and compared with the others by tests (`comparisons.py`). Per-class
scalability fits each class's errors the same way (`class_slopes.py`), leaves out classes
whose slope the data cannot pin, and correlates the rest, at the class level
(`correlation.py`), with the class's recognizability (F1 of the reference classifier on its
synthetic images) and diversity (feature std) — the paper's explanation of why some classes
scale and others do not.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from synscale_analyzer import chance, comparisons
from synscale_analyzer.class_slopes import REASONS, ClassSlope, class_slope
from synscale_analyzer.comparisons import Arm, Comparison
from synscale_analyzer.correlation import Correlation, PooledCorrelation, correlate, pooled
from synscale_analyzer.fits import Fit, FitForm, fit
from synscale_analyzer.model import AnalysisInput, CellScoreRecord, RunRecord, Source, cell_label
from synscale_analyzer.model import num as _num

if TYPE_CHECKING:
    from synscale_analyzer.claims import Claim

__all__ = ["Analysis", "ClassSlope", "Correlation", "PerClass", "Point", "Series", "SeriesKey", "analyze",
           "correlate"]


@dataclass(frozen=True, order=True)
class SeriesKey:
    source: Source
    recipe: str
    eval_set: str
    generator: str = ""
    cfg: float = 0.0
    strategy: str = ""
    real_per_class: int = 0
    allocation: str = ""  # a per-class allocation's runs are their own series

    @property
    def cell(self) -> str:
        return cell_label(self.generator, self.cfg, self.strategy)

    @property
    def label(self) -> str:
        if self.source == "real":
            return "real"
        if self.source == "mixed":
            return f"{self.cell} + {self.real_per_class} real"
        return f"{self.cell} [{self.allocation}]" if self.allocation else self.cell

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label, "source": self.source, "recipe": self.recipe,
            "eval_set": self.eval_set, "generator": self.generator,
            "cfg": self.cfg if self.source != "real" else None, "strategy": self.strategy,
            "real_per_class": self.real_per_class, "allocation": self.allocation,
        }


class Point(NamedTuple):
    """One run's value on one eval set: error rate (or loss), its test images and per-image bits."""

    n: int
    seed: int
    value: float
    n_test: int = 0  # 0: not a count (a loss, or a result without n)
    classes: int = 0  # classes the set was evaluated on (for the chance rate)
    bits: np.ndarray | None = None


@dataclass
class Series:
    key: SeriesKey
    points: list[Point]
    fits: dict[str, Fit] = field(default_factory=dict)
    chance: chance.ChanceCheck | None = None

    def means(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct sizes and the mean value at each (over seeds)."""
        by_n: dict[int, list[float]] = defaultdict(list)
        for p in self.points:
            by_n[p.n].append(p.value)
        ns = sorted(by_n)
        return np.array(ns, float), np.array([float(np.mean(by_n[n])) for n in ns])

    @property
    def max_n(self) -> int:
        return max(p.n for p in self.points)

    @property
    def sizes(self) -> list[int]:
        return sorted({p.n for p in self.points})

    def value_at(self, n: int) -> float | None:
        vals = [p.value for p in self.points if p.n == n]
        return float(np.mean(vals)) if vals else None

    def arm(self, n: int) -> Arm:
        pts = [p for p in self.points if p.n == n]
        return Arm(tuple(p.value for p in pts), tuple(p.n_test for p in pts), tuple(p.bits for p in pts))

    @property
    def counted(self) -> bool:
        return all(p.n_test > 0 for p in self.points)

    @property
    def at_chance(self) -> bool:
        return self.chance is not None and self.chance.at_chance

    @property
    def power_law(self) -> Fit | None:
        return self.fits.get("power_law")

    @property
    def readable(self) -> bool:
        """A slope that may be read: fitted, and the series is not at chance."""
        return self.power_law is not None and self.power_law.ok and not self.at_chance


@dataclass
class PerClass:
    series: SeriesKey
    classes: list[ClassSlope]
    vs_recognizability: Correlation
    vs_diversity: Correlation

    @property
    def estimable(self) -> list[ClassSlope]:
        return [c for c in self.classes if c.estimable]


@dataclass(frozen=True)
class CfgTrend:
    """How a (generator, strategy)'s quality and diversity move along its CFG grid."""

    generator: str
    strategy: str
    cfgs: tuple[float, ...]
    f1: tuple[float, ...]
    diversity: tuple[float, ...]
    alpha: tuple[float, ...]  # ID slope of the cell's series (NaN when missing or at chance)


@dataclass
class Analysis:
    input: AnalysisInput
    series: list[Series]
    per_class: list[PerClass]
    pooled: dict[str, PooledCorrelation]
    cfg_trends: list[CfgTrend]
    failed_runs: list[RunRecord]
    comparisons: list[Comparison] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)  # the paper's claims, tested (claims.py)

    def series_for(self, eval_set: str, source: Source | None = None) -> list[Series]:
        return [s for s in self.series
                if s.key.eval_set == eval_set and (source is None or s.key.source == source)]

    def readable(self, eval_set: str, source: Source | None = None) -> list[Series]:
        return [s for s in self.series_for(eval_set, source) if s.readable]

    def family(self, name: str) -> list[Comparison]:
        return [c for c in self.comparisons if c.family == name]

    def score_of(self, generator: str, cfg: float, strategy: str) -> CellScoreRecord | None:
        for sc in self.input.scores:
            if sc.generator == generator and sc.strategy == strategy and float(sc.cfg) == float(cfg):
                return sc
        return None


def metric_value(run: RunRecord, eval_set: str, metric: str) -> float | None:
    ev = run.evals.get(eval_set)
    if ev is None:
        return None
    return float(ev.loss) if metric == "loss" else 1.0 - float(ev.top1)


def build_series(inp: AnalysisInput) -> list[Series]:
    """Group done runs into series, fit each with the study's laws and check it against chance."""
    groups: dict[SeriesKey, list[Point]] = defaultdict(list)
    for run in inp.runs:
        if run.status != "done":
            continue
        for eval_set, ev in run.evals.items():
            value = metric_value(run, eval_set, inp.metric)
            if value is None or not math.isfinite(value):
                continue
            key = SeriesKey(
                source=run.source, recipe=run.recipe, eval_set=eval_set,
                generator=run.generator, cfg=float(run.cfg or 0.0), strategy=run.strategy,
                real_per_class=run.real_per_class if run.source == "mixed" else 0, allocation=run.allocation,
            )
            counted = inp.metric == "error" and ev.n > 0
            groups[key].append(Point(run.n, run.seed, value, ev.n if counted else 0,
                                     len(ev.per_class) or len(inp.classes),
                                     ev.correct_bits() if counted else None))
    out = []
    for key in sorted(groups, key=_series_order):
        points = sorted(groups[key], key=lambda p: (p.n, p.seed))
        series = Series(key, points)
        n_test = [p.n_test for p in points] if series.counted else None
        for form in inp.fits:
            series.fits[form] = fit(
                [p.n for p in points], [p.value for p in points], form=_form(form), n_test=n_test,
                holdout_sizes=inp.holdout_sizes,
            )
        if series.counted:
            series.chance = chance.check([(p.n, p.value, p.n_test) for p in points],
                                         min(p.classes for p in points))
        out.append(series)
    return out


def _form(name: str) -> FitForm:
    if name not in ("power_law", "power_law_offset"):
        raise ValueError(f"unknown fit form {name!r}")
    return name  # type: ignore[return-value]


def _series_order(key: SeriesKey) -> tuple[Any, ...]:
    return ({"real": 0, "synthetic": 1, "mixed": 2}[key.source], key.eval_set, key.recipe,
            key.generator, key.strategy, key.cfg, key.real_per_class, key.allocation)


def per_class_slopes(inp: AnalysisInput, series: Series) -> list[ClassSlope]:
    """α per class from the per-class accuracies (and counts) of one synthetic series' runs."""
    score = _score(inp.scores, series.key)
    runs = [r for r in inp.runs if r.status == "done" and _matches(r, series.key)]
    out = []
    for class_id, _ in inp.classes:
        ns, errs, counts = [], [], []
        for r in runs:
            ev = r.evals.get(series.key.eval_set)
            if ev is None or class_id not in ev.per_class:
                continue
            ns.append(r.n)
            errs.append(1.0 - float(ev.per_class[class_id]))
            counts.append(ev.class_count(class_id))
        if not ns:
            continue
        cs = score.classes.get(class_id) if score else None
        out.append(class_slope(class_id, ns, errs, counts, cs.f1 if cs else math.nan,
                               cs.diversity_std if cs else math.nan))
    return out


def _score(scores: Iterable[CellScoreRecord], key: SeriesKey) -> CellScoreRecord | None:
    for sc in scores:
        if sc.generator == key.generator and sc.strategy == key.strategy and float(sc.cfg) == key.cfg:
            return sc
    return None


def _matches(run: RunRecord, key: SeriesKey) -> bool:
    return (run.source == key.source and run.recipe == key.recipe
            and run.generator == key.generator and float(run.cfg or 0.0) == key.cfg
            and run.strategy == key.strategy
            and (run.real_per_class if run.source == "mixed" else 0) == key.real_per_class
            and run.allocation == key.allocation)


def _per_class(
    inp: AnalysisInput, series: list[Series],
) -> tuple[list[PerClass], dict[str, PooledCorrelation]]:
    """Per-class slopes of each synthetic ID series; correlations over its estimable classes.

    The pooled correlation is over classes (class-level permutation), never over pairs.
    """
    per_class: list[PerClass] = []
    for s in series:
        if s.key.source != "synthetic" or s.key.eval_set != inp.id_set:
            continue
        slopes = per_class_slopes(inp, s)
        if not slopes:
            continue
        est = [c for c in slopes if c.estimable]
        alphas = [c.alpha for c in est]
        per_class.append(PerClass(
            series=s.key, classes=slopes,
            vs_recognizability=correlate(alphas, [c.f1 for c in est], "alpha", "f1"),
            vs_diversity=correlate(alphas, [c.diversity for c in est], "alpha", "diversity"),
        ))
    ids = [cid for cid, _ in inp.classes]
    grids = {}
    for attr in ("alpha", "f1", "diversity"):
        grid = np.full((len(per_class), len(ids)), np.nan)
        for i, pc in enumerate(per_class):
            for c in pc.classes:
                if c.estimable and c.class_id in ids:
                    grid[i, ids.index(c.class_id)] = getattr(c, attr)
        grids[attr] = grid
    pooled_corr = {
        name: pooled(grids["alpha"], grids[attr], "alpha", attr, seed=inp.seed)
        for name, attr in (("recognizability", "f1"), ("diversity", "diversity"))
    }
    return per_class, pooled_corr


def analyze(inp: AnalysisInput) -> Analysis:
    """The whole analysis; deterministic for a given input (resampling seeds derive from it)."""
    from synscale_analyzer.claims import check_claims
    from synscale_analyzer.findings import write_findings

    series = build_series(inp)
    per_class, pooled_corr = _per_class(inp, series)
    analysis = Analysis(
        input=inp, series=series, per_class=per_class, pooled=pooled_corr,
        cfg_trends=cfg_trends(inp, series), failed_runs=[r for r in inp.runs if r.status != "done"],
    )
    analysis.comparisons = compare(analysis)
    analysis.findings = write_findings(analysis)
    analysis.claims = check_claims(analysis)
    return analysis


def compare(analysis: Analysis) -> list[Comparison]:
    """Every test the findings rest on, Holm-corrected per family."""
    inp = analysis.input
    rng = np.random.default_rng(inp.seed * 7919 + 11)
    out: list[Comparison] = []
    for es in [inp.id_set, *inp.ood_sets]:
        out += _versus_real_tests(analysis, es, rng)
    id_slopes = [s for s in analysis.readable(inp.id_set) if s.key.source in ("real", "synthetic")]
    for i, a in enumerate(id_slopes):
        for b in id_slopes[i + 1:]:
            out.append(_slope_test(f"slopes on {inp.id_set}", a, b, a.key.label, b.key.label))
    for ood in inp.ood_sets:
        for s in analysis.readable(ood):
            ref = next((r for r in analysis.readable(inp.id_set) if _same_but_set(r.key, s.key)), None)
            if ref is not None:
                out.append(_slope_test("OOD vs ID slopes", s, ref, f"{s.key.label} on {ood}",
                                       f"{s.key.label} on {inp.id_set}"))
    return comparisons.corrected(out)


def _same_but_set(a: SeriesKey, b: SeriesKey) -> bool:
    return (a.source, a.recipe, a.generator, a.cfg, a.strategy, a.real_per_class, a.allocation) == \
        (b.source, b.recipe, b.generator, b.cfg, b.strategy, b.real_per_class, b.allocation)


def _slope_test(family: str, a: Series, b: Series, a_label: str, b_label: str) -> Comparison:
    fa, fb = a.power_law, b.power_law
    assert fa is not None and fb is not None
    est, ci, p = comparisons.slope_difference(fa.alpha, fa.alpha_se, fa.dof, fb.alpha, fb.alpha_se, fb.dof)
    return Comparison(family, a_label, b_label, a.key.eval_set, est, ci, p, "Welch t-test on α")


def _versus_real_tests(analysis: Analysis, eval_set: str, rng: np.random.Generator) -> list[Comparison]:
    reals = [s for s in analysis.series_for(eval_set, "real") if s.counted]
    if not reals:
        return []
    real = reals[0]
    out = []
    for s in analysis.series_for(eval_set):
        if s.key.source == "real" or not s.counted:
            continue
        for n in sorted(set(s.sizes) & set(real.sizes)):
            est, ci, p, method = comparisons.error_difference(s.arm(n), real.arm(n), rng,
                                                              rounds=max(analysis.input.bootstrap, 100))
            out.append(Comparison(f"error vs real at equal N on {eval_set}", s.key.label, "real", eval_set,
                                  est, ci, p, method, n=n))
    return out


def cfg_trends(inp: AnalysisInput, series: list[Series]) -> list[CfgTrend]:
    alpha_of: dict[tuple[str, str, float], float] = {}
    for s in series:
        pl = s.power_law
        if s.key.source == "synthetic" and s.key.eval_set == inp.id_set and pl is not None and s.readable:
            alpha_of.setdefault((s.key.generator, s.key.strategy, s.key.cfg), pl.alpha)
    groups: dict[tuple[str, str], list[CellScoreRecord]] = defaultdict(list)
    for sc in inp.scores:
        groups[(sc.generator, sc.strategy)].append(sc)
    out = []
    for (gen, strat), cells in sorted(groups.items()):
        cells = sorted(cells, key=lambda c: c.cfg)
        out.append(CfgTrend(
            generator=gen, strategy=strat, cfgs=tuple(float(c.cfg) for c in cells),
            f1=tuple(float(c.macro_f1) for c in cells),
            diversity=tuple(float(c.diversity) for c in cells),
            alpha=tuple(alpha_of.get((gen, strat, float(c.cfg)), math.nan) for c in cells),
        ))
    return out


def slope_rows(analysis: Analysis) -> list[dict[str, Any]]:
    """The slope table: the plain law for every series; the offset law only where identified."""
    rows = []
    for s in analysis.series:
        ns, means = s.means()
        for form, f in s.fits.items():
            if form != "power_law" and (not f.identified or s.at_chance):
                continue
            ext_n = 4 * int(ns[-1])
            ext = f.error_ci(ext_n) if f.ok else (math.nan, math.nan)
            rows.append({
                **s.key.to_dict(), "form": form, "at_chance": s.at_chance, "alpha": _num(f.alpha),
                "alpha_lo": _num(f.alpha_ci[0]), "alpha_hi": _num(f.alpha_ci[1]),
                "A": _num(f.A), "A_lo": _num(f.A_ci[0]), "A_hi": _num(f.A_ci[1]),
                "E": _num(f.E) if form != "power_law" else None,
                "E_lo": _num(f.E_ci[0]) if form != "power_law" else None,
                "E_hi": _num(f.E_ci[1]) if form != "power_law" else None,
                "rmse_log": _num(f.rmse_log), "dispersion": _num(f.dispersion),
                "n_points": f.n_points, "max_n": int(ns[-1]), "value_at_max_n": _num(float(means[-1])),
                "extrapolation_n": ext_n,
                "extrapolated": _num(float(f.predict([ext_n])[0])) if f.ok else None,
                "extrapolated_lo": _num(ext[0]), "extrapolated_hi": _num(ext[1]),
                "holdout_rel_error": _num(f.holdout.rel_error) if f.holdout else None,
                "holdout_sizes": list(f.holdout.sizes) if f.holdout else [], "note": f.note,
            })
    return rows


def offset_summary(analysis: Analysis) -> tuple[int, int, dict[str, int]]:
    """(identified, fitted, reasons → count) for the offset law over all series."""
    fitted = [s.fits["power_law_offset"] for s in analysis.series if "power_law_offset" in s.fits]
    reasons: dict[str, int] = defaultdict(int)
    for f in fitted:
        if not f.identified:
            for part in f.note.removeprefix("not identified: ").split("; "):
                reasons[part.split(" (p = ")[0]] += 1
    return sum(f.identified for f in fitted), len(fitted), dict(reasons)


def class_summary(analysis: Analysis) -> tuple[int, int, dict[str, int]]:
    """(estimable, total, reason → count) over the (cell, class) pairs of the per-class fits."""
    total = [c for pc in analysis.per_class for c in pc.classes]
    reasons: dict[str, int] = defaultdict(int)
    for c in total:
        if not c.estimable:
            reasons[REASONS[c.reason]] += 1
    return sum(c.estimable for c in total), len(total), dict(reasons)


def factor_slopes(analysis: Analysis, factor: str) -> list[dict[str, Any]]:
    """Mean ID slope (plain power law) of readable synthetic series grouped by cfg, strategy or generator."""
    groups: dict[Any, list[float]] = defaultdict(list)
    for s in analysis.readable(analysis.input.id_set, "synthetic"):
        groups[getattr(s.key, factor)].append(s.power_law.alpha)  # type: ignore[union-attr]
    return [
        {factor: k, "mean_alpha": _num(float(np.mean(v))), "min_alpha": _num(min(v)),
         "max_alpha": _num(max(v)), "series": len(v)}
        for k, v in sorted(groups.items())
    ]


def eval_set_slopes(analysis: Analysis) -> list[dict[str, Any]]:
    """ID vs OOD: mean plain-law slope per eval set and source, over series not at chance."""
    sets = [analysis.input.id_set, *analysis.input.ood_sets]
    rows = []
    for source in ("real", "synthetic", "mixed"):
        row: dict[str, Any] = {"source": source}
        for es in sets:
            alphas = [s.power_law.alpha for s in analysis.readable(es, source)]  # type: ignore[arg-type,union-attr]
            chance_n = sum(s.at_chance for s in analysis.series_for(es, source))  # type: ignore[arg-type]
            row[es] = _num(float(np.mean(alphas))) if alphas else ("at chance" if chance_n else None)
        if any(row[es] is not None for es in sets):
            rows.append(row)
    return rows


def versus_real(analysis: Analysis, eval_set: str) -> list[dict[str, Any]]:
    """Each synthetic / mixed series against real at equal N: tested differences and fitted crossover."""
    from synscale_analyzer.fits import crossover

    reals = analysis.series_for(eval_set, "real")
    if not reals:
        return []
    real = reals[0]
    fam = analysis.family(f"error vs real at equal N on {eval_set}")
    rows = []
    for s in analysis.series_for(eval_set):
        if s.key.source == "real":
            continue
        tests = [c for c in fam if c.a == s.key.label]
        cross = None
        if s.readable and real.readable:
            cross = crossover(s.power_law, real.power_law)  # type: ignore[arg-type]
        rows.append({
            "label": s.key.label, "source": s.key.source, "eval_set": eval_set,
            "common_sizes": [c.n for c in tests],
            "sizes_lower_than_real": [c.n for c in tests if c.significant and c.estimate < 0],
            "sizes_higher_than_real": [c.n for c in tests if c.significant and c.estimate > 0],
            "sizes_indistinguishable": [c.n for c in tests if not c.significant],
            "sizes_better_than_real": [c.n for c in tests if c.estimate < 0],  # observed, untested
            "crossover_n": _num(cross) if cross is not None else None,
            "alpha": _num(s.power_law.alpha) if s.readable and s.power_law else None,
            "real_alpha": _num(real.power_law.alpha) if real.readable and real.power_law else None,
            "at_chance": s.at_chance, "real_at_chance": real.at_chance,
        })
    return rows
