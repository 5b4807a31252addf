"""From finished runs and cell scores to fitted series, per-class scalability and comparisons.

A *series* is every run that differs only in N: (source, cell, recipe, eval set). Each is
fitted with the study's laws. Per-class scalability fits the plain power law to one class's
error and correlates those slopes, across classes, with the class's recognizability (F1 of
the reference classifier on its synthetic images) and diversity (feature std) — the
paper's explanation of why some classes scale and others do not.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from synscale_analyzer.fits import Fit, FitForm, fit
from synscale_analyzer.model import AnalysisInput, CellScoreRecord, RunRecord, Source, cell_label


@dataclass(frozen=True, order=True)
class SeriesKey:
    source: Source
    recipe: str
    eval_set: str
    generator: str = ""
    cfg: float = 0.0
    strategy: str = ""
    real_per_class: int = 0

    @property
    def cell(self) -> str:
        return cell_label(self.generator, self.cfg, self.strategy)

    @property
    def label(self) -> str:
        if self.source == "real":
            return "real"
        if self.source == "mixed":
            return f"{self.cell} + {self.real_per_class} real"
        return self.cell

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label, "source": self.source, "recipe": self.recipe,
            "eval_set": self.eval_set, "generator": self.generator,
            "cfg": self.cfg if self.source != "real" else None, "strategy": self.strategy,
            "real_per_class": self.real_per_class,
        }


@dataclass
class Series:
    key: SeriesKey
    points: list[tuple[int, int, float]]  # (N, seed, metric value)
    fits: dict[str, Fit] = field(default_factory=dict)

    def means(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct sizes and the mean value at each (over seeds)."""
        by_n: dict[int, list[float]] = defaultdict(list)
        for n, _, v in self.points:
            by_n[n].append(v)
        ns = sorted(by_n)
        return np.array(ns, float), np.array([float(np.mean(by_n[n])) for n in ns])

    @property
    def max_n(self) -> int:
        return max(n for n, _, _ in self.points)

    def value_at(self, n: int) -> float | None:
        vals = [v for m, _, v in self.points if m == n]
        return float(np.mean(vals)) if vals else None

    @property
    def power_law(self) -> Fit | None:
        return self.fits.get("power_law")


@dataclass(frozen=True)
class Correlation:
    """Pearson and Spearman correlation of two per-class quantities (NaN when undefined)."""

    x: str
    y: str
    n: int
    pearson_r: float
    pearson_p: float
    spearman_rho: float
    spearman_p: float

    def to_dict(self) -> dict[str, Any]:
        return {k: _num(v) if isinstance(v, float) else v for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class ClassSlope:
    class_id: str
    alpha: float
    f1: float
    diversity: float
    err_at_max: float


@dataclass
class PerClass:
    series: SeriesKey
    classes: list[ClassSlope]
    vs_recognizability: Correlation
    vs_diversity: Correlation


@dataclass(frozen=True)
class CfgTrend:
    """How a (generator, strategy)'s quality and diversity move along its CFG grid."""

    generator: str
    strategy: str
    cfgs: tuple[float, ...]
    f1: tuple[float, ...]
    diversity: tuple[float, ...]
    alpha: tuple[float, ...]  # ID slope of the cell's series (NaN when missing)


@dataclass
class Analysis:
    input: AnalysisInput
    series: list[Series]
    per_class: list[PerClass]
    pooled: dict[str, Correlation]
    cfg_trends: list[CfgTrend]
    failed_runs: list[RunRecord]
    findings: list[str] = field(default_factory=list)

    def series_for(self, eval_set: str, source: Source | None = None) -> list[Series]:
        return [s for s in self.series
                if s.key.eval_set == eval_set and (source is None or s.key.source == source)]

    def score_of(self, generator: str, cfg: float, strategy: str) -> CellScoreRecord | None:
        for sc in self.input.scores:
            if sc.generator == generator and sc.strategy == strategy and float(sc.cfg) == float(cfg):
                return sc
        return None


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(f"{x:.10g}")


def metric_value(run: RunRecord, eval_set: str, metric: str) -> float | None:
    ev = run.evals.get(eval_set)
    if ev is None:
        return None
    return float(ev.loss) if metric == "loss" else 1.0 - float(ev.top1)


def build_series(inp: AnalysisInput) -> list[Series]:
    """Group done runs into series and fit each with the study's laws."""
    groups: dict[SeriesKey, list[tuple[int, int, float]]] = defaultdict(list)
    for run in inp.runs:
        if run.status != "done":
            continue
        for eval_set in run.evals:
            value = metric_value(run, eval_set, inp.metric)
            if value is None or not math.isfinite(value):
                continue
            key = SeriesKey(
                source=run.source, recipe=run.recipe, eval_set=eval_set,
                generator=run.generator, cfg=float(run.cfg or 0.0), strategy=run.strategy,
                real_per_class=run.real_per_class if run.source == "mixed" else 0,
            )
            groups[key].append((run.n, run.seed, value))
    out = []
    for index, key in enumerate(sorted(groups, key=_series_order)):
        points = sorted(groups[key])
        series = Series(key, points)
        for form in inp.fits:
            series.fits[form] = fit(
                [p[0] for p in points], [p[2] for p in points], form=_form(form),
                bootstrap=inp.bootstrap, holdout_sizes=inp.holdout_sizes,
                seed=inp.seed * 1_000_003 + index,
            )
        out.append(series)
    return out


def _form(name: str) -> FitForm:
    if name not in ("power_law", "power_law_offset"):
        raise ValueError(f"unknown fit form {name!r}")
    return name  # type: ignore[return-value]


def _series_order(key: SeriesKey) -> tuple[Any, ...]:
    return ({"real": 0, "synthetic": 1, "mixed": 2}[key.source], key.eval_set, key.recipe,
            key.generator, key.strategy, key.cfg, key.real_per_class)


def correlate(x: Sequence[float], y: Sequence[float], x_name: str, y_name: str) -> Correlation:
    xs, ys = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[keep], ys[keep]
    nan = math.nan
    if len(xs) < 3 or np.ptp(xs) == 0 or np.ptp(ys) == 0:
        return Correlation(x_name, y_name, len(xs), nan, nan, nan, nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pr = stats.pearsonr(xs, ys)
        sr = stats.spearmanr(xs, ys)
    return Correlation(x_name, y_name, len(xs), float(pr.statistic), float(pr.pvalue),
                       float(sr.statistic), float(sr.pvalue))


def per_class_slopes(inp: AnalysisInput, series: Series) -> list[ClassSlope]:
    """α per class from the per-class accuracies of one synthetic series' runs."""
    score = _score(inp.scores, series.key)
    runs = [r for r in inp.runs if r.status == "done" and _matches(r, series.key)]
    out = []
    for class_id, _ in inp.classes:
        ns, errs = [], []
        for r in runs:
            ev = r.evals.get(series.key.eval_set)
            if ev is None or class_id not in ev.per_class:
                continue
            ns.append(r.n)
            errs.append(1.0 - float(ev.per_class[class_id]))
        if not ns:
            continue
        f = fit(ns, errs, "power_law", bootstrap=0)
        max_n = max(ns)
        cs = score.classes.get(class_id) if score else None
        out.append(ClassSlope(
            class_id=class_id, alpha=f.alpha,
            f1=cs.f1 if cs else math.nan, diversity=cs.diversity_std if cs else math.nan,
            err_at_max=float(np.mean([e for n, e in zip(ns, errs, strict=True) if n == max_n])),
        ))
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
            and (run.real_per_class if run.source == "mixed" else 0) == key.real_per_class)


def analyze(inp: AnalysisInput) -> Analysis:
    """The whole analysis; deterministic for a given input (bootstrap seeds derive from it)."""
    from synscale_analyzer.findings import write_findings

    series = build_series(inp)
    per_class: list[PerClass] = []
    pooled_alpha, pooled_f1, pooled_div = [], [], []
    for s in series:
        if s.key.source != "synthetic" or s.key.eval_set != inp.id_set:
            continue
        slopes = per_class_slopes(inp, s)
        if not slopes:
            continue
        alphas = [c.alpha for c in slopes]
        per_class.append(PerClass(
            series=s.key, classes=slopes,
            vs_recognizability=correlate(alphas, [c.f1 for c in slopes], "alpha", "f1"),
            vs_diversity=correlate(alphas, [c.diversity for c in slopes], "alpha", "diversity"),
        ))
        pooled_alpha += alphas
        pooled_f1 += [c.f1 for c in slopes]
        pooled_div += [c.diversity for c in slopes]
    pooled = {
        "recognizability": correlate(pooled_alpha, pooled_f1, "alpha", "f1"),
        "diversity": correlate(pooled_alpha, pooled_div, "alpha", "diversity"),
    }
    analysis = Analysis(
        input=inp, series=series, per_class=per_class, pooled=pooled,
        cfg_trends=cfg_trends(inp, series), failed_runs=[r for r in inp.runs if r.status != "done"],
    )
    analysis.findings = write_findings(analysis)
    return analysis


def cfg_trends(inp: AnalysisInput, series: list[Series]) -> list[CfgTrend]:
    alpha_of: dict[tuple[str, str, float], float] = {}
    for s in series:
        pl = s.power_law
        if s.key.source == "synthetic" and s.key.eval_set == inp.id_set and pl is not None:
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
    """The slope table: one row per series × fitted form."""
    rows = []
    for s in analysis.series:
        ns, means = s.means()
        for form, f in s.fits.items():
            rows.append({
                **s.key.to_dict(), "form": form, "alpha": _num(f.alpha),
                "alpha_lo": _num(f.alpha_ci[0]), "alpha_hi": _num(f.alpha_ci[1]),
                "A": _num(f.A), "E": _num(f.E), "rmse_log": _num(f.rmse_log),
                "n_points": f.n_points, "max_n": int(ns[-1]), "value_at_max_n": _num(float(means[-1])),
                "holdout_rel_error": _num(f.holdout.rel_error) if f.holdout else None,
                "holdout_sizes": list(f.holdout.sizes) if f.holdout else [],
            })
    return rows


def factor_slopes(analysis: Analysis, factor: str) -> list[dict[str, Any]]:
    """Mean ID slope (plain power law) of synthetic series grouped by cfg, strategy or generator."""
    groups: dict[Any, list[float]] = defaultdict(list)
    for s in analysis.series_for(analysis.input.id_set, "synthetic"):
        pl = s.power_law
        if pl is not None and pl.ok:
            groups[getattr(s.key, factor)].append(pl.alpha)
    return [
        {factor: k, "mean_alpha": _num(float(np.mean(v))), "min_alpha": _num(min(v)),
         "max_alpha": _num(max(v)), "series": len(v)}
        for k, v in sorted(groups.items())
    ]


def eval_set_slopes(analysis: Analysis) -> list[dict[str, Any]]:
    """ID vs OOD: the plain-power-law slope per eval set for real, mean synthetic and mean mixed."""
    sets = [analysis.input.id_set, *analysis.input.ood_sets]
    rows = []
    for source in ("real", "synthetic", "mixed"):
        row: dict[str, Any] = {"source": source}
        for es in sets:
            alphas = [s.power_law.alpha for s in analysis.series_for(es, source)  # type: ignore[arg-type]
                      if s.power_law is not None and s.power_law.ok]
            row[es] = _num(float(np.mean(alphas))) if alphas else None
        if any(row[es] is not None for es in sets):
            rows.append(row)
    return rows


def versus_real(analysis: Analysis, eval_set: str) -> list[dict[str, Any]]:
    """Each synthetic / mixed series against real at equal N: observed wins and fitted crossover."""
    from synscale_analyzer.fits import crossover

    reals = analysis.series_for(eval_set, "real")
    if not reals:
        return []
    real = reals[0]
    rows = []
    for s in analysis.series_for(eval_set):
        if s.key.source == "real":
            continue
        common = sorted({n for n, _, _ in s.points} & {n for n, _, _ in real.points})
        wins = [n for n in common
                if (v := s.value_at(n)) is not None and (r := real.value_at(n)) is not None and v < r]
        cross = None
        if s.power_law is not None and real.power_law is not None:
            cross = crossover(s.power_law, real.power_law)
        rows.append({
            "label": s.key.label, "source": s.key.source, "eval_set": eval_set,
            "common_sizes": common, "sizes_better_than_real": wins,
            "crossover_n": _num(cross) if cross is not None else None,
            "alpha": _num(s.power_law.alpha) if s.power_law else None,
            "real_alpha": _num(real.power_law.alpha) if real.power_law else None,
        })
    return rows
