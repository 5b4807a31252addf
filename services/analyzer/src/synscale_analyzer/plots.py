"""The report's figures as PNG bytes (matplotlib, no pyplot global state).

Figures are built on bare `Figure` objects and saved without the software/date metadata,
so the same numbers give the same bytes (a resumed study reproduces its report exactly).
"""

from __future__ import annotations

import io
import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from synscale_analyzer.analysis import Analysis, Series

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def to_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def _cfg_colors(cfgs: Sequence[float]) -> dict[float, tuple[float, float, float, float]]:
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    ordered = sorted(set(cfgs))
    span = max(len(ordered) - 1, 1)
    return {c: cmap(0.1 + 0.75 * i / span) for i, c in enumerate(ordered)}


def _curve(ax: Axes, s: Series, color: object, label: str, style: str = "-", band: bool = True,
           lw: float = 1.6, alpha: float = 1.0) -> None:
    ns, means = s.means()
    if s.at_chance:  # no law is drawn through noise: points only, marked
        ax.plot(ns, means, ":", marker="x", ms=4, color="grey", lw=0.8, alpha=alpha,
                label=f"{label} (at chance)")
        return
    ax.plot(ns, means, linestyle="none", marker="o", ms=4, color=color, alpha=alpha)
    f = s.power_law
    if f is None or not f.ok:
        ax.plot(ns, means, style, color=color, label=label, lw=lw, alpha=alpha)
        return
    grid = np.geomspace(ns[0], ns[-1], 50)
    ax.plot(grid, f.predict(grid), style, color=color, lw=lw, alpha=alpha,
            label=f"{label} (α={f.alpha:.2f})")
    if band:
        lo, hi = f.band(grid)  # the validated pointwise t-interval of the fit
        if np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)):
            ax.fill_between(grid, lo, hi, color=color, alpha=0.15 * alpha, lw=0)


def _loglog(ax: Axes, title: str, ylabel: str) -> None:
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:.2g}")
    ax.yaxis.set_major_formatter(plain)
    ax.autoscale_view()
    lo, hi = ax.get_ylim()
    # Within one decade the only ticks are minor ones: label them, plainly; across decades
    # the decade labels suffice and minor labels would overlap.
    ax.yaxis.set_minor_formatter(plain if lo > 0 and hi / lo < 10 else NullFormatter())
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("images per class (N)", fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.grid(True, which="both", alpha=0.25)
    ax.tick_params(which="both", labelsize=7)
    ax.legend(fontsize=6, loc="best")


def _ylabel(analysis: Analysis, eval_set: str) -> str:
    return f"{'top-1 error' if analysis.input.metric == 'error' else 'loss'} on {eval_set}"


def scaling_curves(analysis: Analysis, eval_set: str) -> bytes | None:
    """One panel per (generator, strategy): a line per CFG, real (black) and mixed (dotted)."""
    synth = analysis.series_for(eval_set, "synthetic")
    reals = analysis.series_for(eval_set, "real")
    mixed = analysis.series_for(eval_set, "mixed")
    if not (synth or reals):
        return None
    panels: dict[tuple[str, str], list[Series]] = defaultdict(list)
    for s in synth:
        panels[(s.key.generator, s.key.strategy)].append(s)
    keys = sorted(panels) or [("", "real")]
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.4 * rows), layout="constrained")
    colors = _cfg_colors([s.key.cfg for s in synth + mixed] or [0.0])
    for i, key in enumerate(keys):
        ax = fig.add_subplot(rows, cols, i + 1)
        for r in reals:
            _curve(ax, r, "black", "real", "--")
        for s in sorted(panels.get(key, []), key=lambda s: s.key.cfg):
            _curve(ax, s, colors[s.key.cfg], f"CFG {s.key.cfg:g}")
        for m in mixed:
            if (m.key.generator, m.key.strategy) == key:
                _curve(ax, m, colors[m.key.cfg], f"CFG {m.key.cfg:g} +{m.key.real_per_class} real",
                       ":", band=False, lw=1.2)
        title = f"{key[0]} · {key[1]}" if key[0] else "real data"
        _loglog(ax, title, _ylabel(analysis, eval_set))
    fig.suptitle(f"Scaling on {eval_set} (binomial fit: err = A·N^−α, shaded: 95% t-interval)", fontsize=10)
    return to_png(fig)


def eval_set_curves(analysis: Analysis) -> bytes | None:
    """ID vs OOD: one panel per eval set; real, every synthetic cell (thin) and the best ID cell."""
    sets = [analysis.input.id_set, *analysis.input.ood_sets]
    sets = [e for e in sets if analysis.series_for(e)]
    if not sets:
        return None
    best_label = _best_label(analysis)
    cols = min(3, len(sets))
    rows = math.ceil(len(sets) / cols)
    fig = Figure(figsize=(4.0 * cols, 3.2 * rows), layout="constrained")
    for i, es in enumerate(sets):
        ax = fig.add_subplot(rows, cols, i + 1)
        for s in analysis.series_for(es, "synthetic"):
            if s.key.label != best_label:
                ns, means = s.means()
                ax.plot(ns, means, "-", color="tab:blue", alpha=0.25, lw=0.8)
        for r in analysis.series_for(es, "real"):
            _curve(ax, r, "black", "real", "--")
        for s in analysis.series_for(es):
            if s.key.label == best_label:
                _curve(ax, s, "tab:red", f"best ID cell: {best_label}")
        _loglog(ax, es + (" (ID)" if es == analysis.input.id_set else " (OOD)"), _ylabel(analysis, es))
    fig.suptitle("In-distribution vs out-of-distribution scaling (thin blue: other synthetic cells)",
                 fontsize=10)
    return to_png(fig)


def _best_label(analysis: Analysis) -> str:
    synth = analysis.readable(analysis.input.id_set, "synthetic")
    if not synth:
        return ""
    return max(synth, key=lambda s: s.power_law.alpha).key.label  # type: ignore[union-attr]


def slope_chart(analysis: Analysis) -> bytes | None:
    """Plain-power-law α with its bootstrap interval for every ID series."""
    series = [s for s in analysis.series_for(analysis.input.id_set)
              if s.power_law is not None and s.power_law.ok]
    if not series:
        return None
    fig = Figure(figsize=(6.5, 0.28 * len(series) + 1.4))
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(series))
    alphas = np.array([s.power_law.alpha for s in series])  # type: ignore[union-attr]
    lo = np.array([s.power_law.alpha_ci[0] for s in series])  # type: ignore[union-attr]
    hi = np.array([s.power_law.alpha_ci[1] for s in series])  # type: ignore[union-attr]
    err = np.vstack([np.nan_to_num(alphas - lo), np.nan_to_num(hi - alphas)])
    colors = ["lightgrey" if s.at_chance else "black" if s.key.source == "real"
              else "tab:green" if s.key.source == "mixed" else "tab:blue" for s in series]
    bars = ax.barh(y, alphas, color=colors, alpha=0.6)
    for bar, s in zip(bars, series, strict=True):
        if s.at_chance:
            bar.set_hatch("//")
    ax.errorbar(alphas, y, xerr=err, fmt="none", ecolor="black", capsize=2, lw=0.8)
    ax.set_yticks(y, [s.key.label + (" (at chance)" if s.at_chance else "") for s in series], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("scaling ability α (slope of log error vs log N), 95% CI", fontsize=8)
    ax.set_title(f"Slopes on {analysis.input.id_set} (black: real, blue: synthetic, green: mixed)",
                 fontsize=9)
    ax.axvline(0, color="grey", lw=0.6)
    ax.tick_params(which="both", labelsize=7)
    return to_png(fig)


def quality_diversity(analysis: Analysis) -> bytes | None:
    """Recognizability vs diversity per cell, joined along each CFG grid."""
    scores = analysis.input.scores
    if not scores:
        return None
    fig = Figure(figsize=(5.6, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    colors = _cfg_colors([s.cfg for s in scores])
    strategies = sorted({s.strategy for s in scores})
    for tr in analysis.cfg_trends:
        marker = MARKERS[strategies.index(tr.strategy) % len(MARKERS)]
        ax.plot(tr.diversity, tr.f1, "-", color="grey", lw=0.7, alpha=0.6)
        for c, f1, div in zip(tr.cfgs, tr.f1, tr.diversity, strict=True):
            ax.scatter([div], [f1], color=colors[c], marker=marker, s=36, zorder=3)
            ax.annotate(f"{c:g}", (div, f1), fontsize=6, xytext=(3, 3), textcoords="offset points")
    for i, st in enumerate(strategies):
        ax.scatter([], [], color="grey", marker=MARKERS[i % len(MARKERS)], label=st)
    ax.set_xlabel("diversity (per-class feature std, mean over classes)", fontsize=8)
    ax.set_ylabel("recognizability (macro-F1 of the reference classifier)", fontsize=8)
    ax.set_title("Recognizability vs diversity per cell (labels: CFG)", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(True, alpha=0.25)
    ax.tick_params(which="both", labelsize=7)
    return to_png(fig)


def class_scalability(analysis: Analysis) -> bytes | None:
    """Per-class α against per-class recognizability and diversity, pooled over cells."""
    if not analysis.per_class:
        return None
    fig = Figure(figsize=(9.0, 3.8), layout="constrained")
    colors = _cfg_colors([pc.series.cfg for pc in analysis.per_class])
    for j, (attr, name) in enumerate((("f1", "recognizability"), ("diversity", "diversity"))):
        ax = fig.add_subplot(1, 2, j + 1)
        for pc in analysis.per_class:
            est = pc.estimable
            xs = np.array([getattr(c, attr) for c in est], float)
            ys = np.array([c.alpha for c in est], float)
            err = np.array([[c.alpha - c.alpha_ci[0] for c in est], [c.alpha_ci[1] - c.alpha for c in est]])
            if len(est):
                ax.errorbar(xs, ys, yerr=err, fmt="o", ms=3, color=colors[pc.series.cfg], alpha=0.6, lw=0.6)
        corr = analysis.pooled[name]
        rho = f"mean within-cell ρ={corr.rho:.2f}, class-permutation p={corr.p:.2g}, {corr.classes} classes" \
            if math.isfinite(corr.rho) else "correlation undefined"
        ax.set_title(f"per-class α vs {name} ({rho})", fontsize=8)
        ax.set_xlabel(f"per-class {name}" + (" (F1)" if attr == "f1" else " (feature std)"), fontsize=8)
        ax.set_ylabel("per-class scaling ability α", fontsize=8)
        ax.grid(True, alpha=0.25)
        ax.tick_params(which="both", labelsize=7)
    for c, col in colors.items():
        fig.axes[0].scatter([], [], color=col, label=f"CFG {c:g}")
    fig.axes[0].legend(fontsize=6)
    return to_png(fig)


def sample_grid(
    title: str, columns: Sequence[str], rows: Sequence[str], images: dict[tuple[str, str], list[np.ndarray]],
    per_cell: int,
) -> bytes:
    """Rows = classes, columns = (CFG, strategy); `per_cell` images side by side in each cell."""
    height = 0.6 * len(rows) + 0.8
    fig = Figure(figsize=(max(2.0, 0.55 * per_cell * len(columns)) + 1.0, height))
    axes = fig.subplots(len(rows), len(columns), squeeze=False)
    for i, row in enumerate(rows):
        for j, col in enumerate(columns):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            tiles = images.get((row, col), [])[:per_cell]
            if tiles:
                ax.imshow(_tile(tiles, per_cell), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            if i == 0:
                ax.set_title(col, fontsize=6)
            if j == 0:
                ax.set_ylabel(row, fontsize=6, rotation=0, ha="right", va="center")
            for spine in ax.spines.values():
                spine.set_linewidth(0.3)
    fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(wspace=0.05, hspace=0.05, top=1 - 0.55 / height, bottom=0.1 / height)
    return to_png(fig)


def _tile(tiles: list[np.ndarray], per_cell: int) -> np.ndarray:
    """Concatenate images horizontally (greyscale; RGB is reduced to luminance)."""
    grey = [t if t.ndim == 2 else (t[..., :3] @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
            for t in tiles]
    h = max(t.shape[0] for t in grey)
    w = max(t.shape[1] for t in grey)
    canvas = np.zeros((h, w * per_cell + (per_cell - 1)), np.uint8)
    for k, t in enumerate(grey):
        canvas[: t.shape[0], k * (w + 1): k * (w + 1) + t.shape[1]] = t
    return canvas
