"""The planner: from a pilot study's fitted laws to each cell's predicted error at a target size.

Why Monte Carlo from the fits and not one extrapolated number: the decision a pilot supports
is "which recipe is best at N", and that depends on how well each law is known. Every cell's
law is drawn from the fit's own joint uncertainty — (log A, α[, E]) from a multivariate
Student-t with the fit's quasi-likelihood covariance and its m − p degrees of freedom, the
distribution whose intervals cover in docs/statistics.md — so the plain law's predicted
interval is exactly its validated t-band at the target. Where the floor law
err = E + A·N^−α is identified, half the draws come from it: the interval then spans both
forms (model uncertainty), and the prediction is the median of the mixture. A cell's draws
are independent of the others' (each series is fitted on its own), so the share of joint
draws in which a cell has the lowest error is its probability of being best.

The planner refuses instead of guessing (`Plan.refusals`, `Candidate.note`): fewer than 3
pilot sizes, a series at chance, a slope known only to ±1, a target beyond
`max_extrapolation` × the largest pilot size, or no candidate left. It predicts but "cannot
decide" when the best cell's probability of being best is below `confidence`
(docs/planner.md, ADR 0029).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synscale_analyzer.analysis import Series, build_series
from synscale_analyzer.fits import Fit
from synscale_analyzer.model import AnalysisInput
from synscale_analyzer.model import num as _num

MIN_PILOT_SIZES = 3
MAX_ALPHA_HALF_WIDTH = 1.0  # as for per-class slopes: α known only to ±1 is not a slope
DEFAULT_MAX_EXTRAPOLATION = 16.0
DEFAULT_CONFIDENCE = 0.8
DEFAULT_DRAWS = 4000
LEVEL = 0.95


@dataclass(frozen=True)
class Candidate:
    """One series' prediction at its target size (NaN numbers and a `note` when refused)."""

    label: str
    source: str
    generator: str
    cfg: float | None
    strategy: str
    target_n: int
    pilot_sizes: tuple[int, ...]
    predicted: float = math.nan
    lo: float = math.nan
    hi: float = math.nan
    p_best: float = math.nan
    forms: tuple[str, ...] = ()
    alpha: float = math.nan
    alpha_ci: tuple[float, float] = (math.nan, math.nan)
    note: str = ""

    @property
    def planned(self) -> bool:
        return not self.note

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label, "source": self.source, "generator": self.generator, "cfg": self.cfg,
            "strategy": self.strategy, "target_n": self.target_n, "pilot_sizes": list(self.pilot_sizes),
            "predicted": _num(self.predicted), "lo": _num(self.lo), "hi": _num(self.hi),
            "p_best": _num(self.p_best), "forms": list(self.forms), "alpha": _num(self.alpha),
            "alpha_ci": [_num(x) for x in self.alpha_ci], "note": self.note,
        }


@dataclass
class Plan:
    """Ranked candidates (best first); `refusals` empty and `decided` True when the pilot decides."""

    eval_set: str
    candidates: list[Candidate]
    refusals: list[str] = field(default_factory=list)
    confidence: float = DEFAULT_CONFIDENCE
    level: float = LEVEL
    draws: int = DEFAULT_DRAWS
    max_extrapolation: float = DEFAULT_MAX_EXTRAPOLATION
    pilot_max_n: int = 0
    real: Candidate | None = None  # the real-data reference, predicted the same way (not ranked)

    @property
    def ranked(self) -> list[Candidate]:
        return [c for c in self.candidates if c.planned]

    @property
    def best(self) -> Candidate | None:
        ranked = self.ranked
        return ranked[0] if ranked and not self.refusals else None

    @property
    def decided(self) -> bool:
        return self.best is not None and self.best.p_best >= self.confidence

    @property
    def verdict(self) -> str:
        if self.refusals:
            return "refused: " + "; ".join(self.refusals)
        best = self.best
        assert best is not None
        if not self.decided:
            plausible = [c.label for c in self.ranked if c.p_best >= 0.05]
            return (f"cannot decide: the best cell {best.label} is best in {best.p_best:.0%} of draws "
                    f"(< {self.confidence:.0%}); plausible: {', '.join(plausible)}")
        return f"{best.label} is best with probability {best.p_best:.0%}"

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {
            "eval_set": self.eval_set, "verdict": self.verdict, "decided": self.decided,
            "best": best.label if best else None, "refusals": list(self.refusals),
            "confidence": self.confidence, "level": self.level, "draws": self.draws,
            "max_extrapolation": self.max_extrapolation, "pilot_max_n": self.pilot_max_n,
            "candidates": [c.to_dict() for c in self.candidates],
            "real": self.real.to_dict() if self.real else None,
            "method": METHOD,
        }


METHOD = ("each law drawn from its fit's multivariate t (quasi-binomial covariance, m − p dof); "
          "where the floor law is identified, half the draws from it; prediction = median, "
          "interval = percentiles of the draws; P(best) = share of joint draws in which the cell "
          "has the lowest error")


def pilot_input(inp: AnalysisInput, max_pilot_n: int | None) -> AnalysisInput:
    """The same study seen only up to `max_pilot_n` per class (all runs when None)."""
    if max_pilot_n is None:
        return inp
    from dataclasses import replace

    return replace(inp, runs=tuple(r for r in inp.runs if r.n <= max_pilot_n))


def law_draws(f: Fit, n: float, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Errors at size `n` under `draws` laws from the fit's multivariate t (clipped to [0, 1])."""
    k = 2 if f.form == "power_law" else 3
    mean = np.array([math.log(f.A), f.alpha, f.E][:k])
    cov = np.asarray(f.cov, float)[:k, :k]
    z = rng.multivariate_normal(np.zeros(k), cov, size=draws, method="eigh")
    scale = np.sqrt(f.dof / rng.chisquare(f.dof, size=draws))
    theta = mean + z * scale[:, None]
    err = np.exp(np.clip(theta[:, 0] - theta[:, 1] * math.log(n), -700.0, 700.0))
    if k == 3:
        err = err + np.maximum(theta[:, 2], 0.0)
    return np.asarray(np.clip(err, 0.0, 1.0))


def _usable(f: Fit | None) -> bool:
    return f is not None and f.ok and f.identified and f.dof > 0 and bool(np.all(np.isfinite(f.cov)))


def _refusal(s: Series) -> str:
    """Why a series cannot be extrapolated ("" when it can)."""
    sizes = s.sizes
    if len(sizes) < MIN_PILOT_SIZES:
        return f"{len(sizes)} pilot size(s); the planner needs at least {MIN_PILOT_SIZES}"
    if s.at_chance:
        return "at chance at every pilot size: no law to extrapolate"
    pl = s.power_law
    if not _usable(pl):
        return f"no usable fit of the plain law ({pl.note if pl else 'not fitted'})"
    assert pl is not None
    half = (pl.alpha_ci[1] - pl.alpha_ci[0]) / 2
    if not half <= MAX_ALPHA_HALF_WIDTH:
        return f"slope not identified: α = {pl.alpha:.2f} ± {half:.2f} (needs ± {MAX_ALPHA_HALF_WIDTH:g})"
    return ""


def series_draws(s: Series, n: float, draws: int, rng: np.random.Generator,
                 ) -> tuple[np.ndarray, tuple[str, ...]]:
    """Draws of the series' error at `n`: the plain law, mixed half-and-half with an identified floor law."""
    fits = (s.fits.get("power_law"), s.fits.get("power_law_offset"))
    forms = [f for f in fits if f is not None and _usable(f)]
    assert forms, "series_draws needs a series without a refusal"
    parts = np.array_split(np.arange(draws), len(forms))
    out = np.concatenate([law_draws(f, n, len(idx), rng) for f, idx in zip(forms, parts, strict=True)])
    return out, tuple(f.form for f in forms)


def _candidate(s: Series, target: int, note: str = "") -> Candidate:
    pl = s.power_law
    return Candidate(
        label=s.key.label, source=s.key.source, generator=s.key.generator,
        cfg=s.key.cfg if s.key.source != "real" else None, strategy=s.key.strategy, target_n=target,
        pilot_sizes=tuple(s.sizes), alpha=pl.alpha if pl and pl.ok else math.nan,
        alpha_ci=pl.alpha_ci if pl and pl.ok else (math.nan, math.nan), note=note)


def plan_series(
    series: Sequence[Series], targets: Mapping[str, int], *, eval_set: str,
    confidence: float = DEFAULT_CONFIDENCE, max_extrapolation: float = DEFAULT_MAX_EXTRAPOLATION,
    draws: int = DEFAULT_DRAWS, level: float = LEVEL, seed: int = 0,
) -> Plan:
    """Predict, rank and judge the synthetic series at `targets` (label → images per class).

    A series without a target (e.g. real under a GPU-hour budget) is left out; real data,
    when in `targets`, is predicted as the reference but not ranked: the planner chooses a
    recipe for generating images.
    """
    if not 0 < confidence <= 1:
        raise ValueError(f"confidence must be in (0, 1], got {confidence}")
    rng = np.random.default_rng(seed)
    pilot_max = max((s.max_n for s in series), default=0)
    out = Plan(eval_set, [], confidence=confidence, level=level, draws=draws,
               max_extrapolation=max_extrapolation, pilot_max_n=pilot_max)
    tail = (1 - level) / 2
    samples: dict[str, np.ndarray] = {}
    made: list[Candidate] = []
    for s in series:
        if s.key.source == "mixed" or s.key.label not in targets:
            continue
        target = int(targets[s.key.label])
        note = _refusal(s)
        if not note and target > max_extrapolation * s.max_n:
            note = (f"target {target} is {target / s.max_n:.0f}× the largest pilot size {s.max_n} "
                    f"(the planner extrapolates at most {max_extrapolation:g}×)")
        if note:
            made.append(_candidate(s, target, note))
            continue
        d, forms = series_draws(s, target, draws, rng)
        samples[s.key.label] = d
        lo, mid, hi = np.quantile(d, [tail, 0.5, 1 - tail])
        made.append(Candidate(**{**_candidate(s, target).__dict__, "predicted": float(mid), "lo": float(lo),
                                 "hi": float(hi), "forms": forms}))
    real = [c for c in made if c.source == "real"]
    out.real = real[0] if real else None
    cands = [c for c in made if c.source != "real"]
    ranked_labels = [c.label for c in cands if c.planned]
    if ranked_labels:
        joint = np.stack([samples[lbl] for lbl in ranked_labels])
        wins = np.bincount(np.argmin(joint, axis=0), minlength=len(ranked_labels)) / joint.shape[1]
        p_of = dict(zip(ranked_labels, wins.tolist(), strict=True))
        cands = [Candidate(**{**c.__dict__, "p_best": p_of[c.label]}) if c.planned else c for c in cands]
    cands.sort(key=lambda c: (not c.planned, c.predicted if c.planned else math.inf, c.label))
    out.candidates = cands
    if not series:
        out.refusals.append("the pilot has no finished runs")
    elif not cands:
        out.refusals.append("the pilot has no synthetic series to plan")
    elif not ranked_labels:
        out.refusals.append("no synthetic cell can be extrapolated (see each cell's note)")
    return out


def targets_for(series: Sequence[Series], *, per_class: int | None = None, budget_images: int | None = None,
                budget_gpu_hours: float | None = None, cost_per_image: Mapping[str, float] | None = None,
                classes: int = 0) -> dict[str, int]:
    """Images per class at which each series is judged, from a size or a budget.

    `budget_images` is the total of synthetic images (over all classes); `budget_gpu_hours`
    divides by each generator's cost (GPU-hours per image) so a cheaper generator gets more
    images. Real data is judged at the per-class target (or the image budget's) and left out
    under a GPU-hour budget (it costs no generation).
    """
    given = [x is not None for x in (per_class, budget_images, budget_gpu_hours)]
    if sum(given) != 1:
        raise ValueError("give exactly one of a per-class target, an image budget or a GPU-hour budget")
    if per_class is not None:
        if per_class < 1:
            raise ValueError(f"the target must be >= 1 image per class, got {per_class}")
        return {s.key.label: per_class for s in series}
    if classes < 1:
        raise ValueError("a budget needs the number of classes")
    if budget_images is not None:
        n = budget_images // classes
        if n < 1:
            raise ValueError(f"a budget of {budget_images} images is less than one per class "
                             f"({classes} classes)")
        return {s.key.label: n for s in series}
    assert budget_gpu_hours is not None
    costs = dict(cost_per_image or {})
    out = {}
    for s in series:
        if s.key.source != "synthetic":
            continue
        if s.key.generator not in costs:
            raise ValueError(f"no cost per image for generator {s.key.generator!r} "
                             f"(give --cost {s.key.generator}=GPU_HOURS_PER_IMAGE)")
        cost = costs[s.key.generator]
        if not cost > 0:
            raise ValueError(f"the cost per image of {s.key.generator!r} must be > 0, got {cost}")
        n = int(budget_gpu_hours / cost // classes)
        if n < 1:
            raise ValueError(f"{budget_gpu_hours} GPU-hours buy less than one {s.key.generator} "
                             "image per class")
        out[s.key.label] = n
    return out


def plan_study(inp: AnalysisInput, *, max_pilot_n: int | None = None, per_class: int | None = None,
               budget_images: int | None = None, budget_gpu_hours: float | None = None,
               cost_per_image: Mapping[str, float] | None = None, **kwargs: Any) -> tuple[Plan, list[Series]]:
    """Fit the pilot (the study's runs up to `max_pilot_n`) and plan on its ID set."""
    pilot = pilot_input(inp, max_pilot_n)
    series = [s for s in build_series(pilot) if s.key.eval_set == pilot.id_set]
    targets = targets_for(series, per_class=per_class, budget_images=budget_images,
                          budget_gpu_hours=budget_gpu_hours, cost_per_image=cost_per_image,
                          classes=len(pilot.classes))
    return plan_series(series, targets, eval_set=pilot.id_set, seed=pilot.seed, **kwargs), series
