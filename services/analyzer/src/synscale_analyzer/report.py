"""The study report: one self-contained HTML page, Markdown, CSV tables and a JSON document.

The HTML embeds its figures as base64 PNGs and has no scripts or external references, so
it opens anywhere (and offline) and renders without console errors. Markdown links the
same figures as sibling files. JSON carries every number the page shows; it is what the
interrupted-vs-straight test compares.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from synscale_analyzer import plots
from synscale_analyzer.analysis import (
    Analysis,
    Correlation,
    class_summary,
    eval_set_slopes,
    factor_slopes,
    offset_summary,
    slope_rows,
    versus_real,
)
from synscale_analyzer.model import num as _n
from synscale_analyzer.planning import planner_section

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#1b1b1b;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.82rem;margin:.6rem 0}
th,td{border:1px solid #ddd;padding:.2rem .45rem;text-align:right}th{background:#f3f3f3}
td.l,th.l{text-align:left}img{max-width:100%;height:auto}
.muted{color:#666;font-size:.85rem}li{margin:.25rem 0}figure{margin:1rem 0}
figcaption{font-size:.8rem;color:#555}
"""


@dataclass(frozen=True)
class Figure:
    name: str  # file name, e.g. fig-scaling-id.png
    title: str
    caption: str
    png: bytes


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        if not math.isfinite(x):
            return "–"
        return f"{x:.{digits}g}" if abs(x) >= 1000 or (x != 0 and abs(x) < 1e-3) else f"{x:.{digits}f}"
    if isinstance(x, list | tuple):
        return ", ".join(_fmt(v, digits) for v in x)
    return str(x)


def _ci(row: dict[str, Any], key: str = "alpha") -> str:
    """Estimate [interval]; α in fixed decimals (a slope of −0.000535 reads as −0.001)."""
    if row.get(key) is None:
        return "–"

    def fmt(v: Any) -> str:
        return f"{v:.3f}" if key == "alpha" and isinstance(v, float) and math.isfinite(v) else _fmt(v)

    lo, hi = row.get(f"{key}_lo"), row.get(f"{key}_hi")
    ci = f" [{fmt(lo)}, {fmt(hi)}]" if lo is not None and hi is not None else ""
    return f"{fmt(row[key])}{ci}"


def _pair(values: Sequence[float | None]) -> str:
    return f"[{_fmt(values[0])}, {_fmt(values[1])}]"


class Table:
    """A table rendered to HTML, Markdown and CSV from the same rows."""

    def __init__(self, headers: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1,
                 extra: str = "") -> None:
        self.extra = extra  # a sentence computed from the data, after the section's fixed note
        self.headers = list(headers)
        self.rows = [list(r) for r in rows]
        self.left = left  # how many leading columns are text (left-aligned)

    def html(self) -> str:
        def cell(tag: str, i: int, v: Any) -> str:
            cls = ' class="l"' if i < self.left else ""
            return f"<{tag}{cls}>{html.escape(_fmt(v))}</{tag}>"

        head = "".join(cell("th", i, h) for i, h in enumerate(self.headers))
        body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>"
                       for r in self.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def markdown(self) -> str:
        def esc(v: Any) -> str:
            return _fmt(v).replace("|", "\\|")

        lines = ["| " + " | ".join(esc(h) for h in self.headers) + " |",
                 "|" + "|".join("---" if i < self.left else "---:" for i in range(len(self.headers))) + "|"]
        lines += ["| " + " | ".join(esc(v) for v in r) + " |" for r in self.rows]
        return "\n".join(lines)


def to_csv(rows: Sequence[dict[str, Any]]) -> bytes:
    if not rows:
        return b""
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in r.items()})
    return buf.getvalue().encode()


def _corr_cells(c: Correlation) -> list[Any]:
    return [c.n, c.pearson_r, _pair(c.r_ci), c.pearson_p, c.spearman_rho, c.spearman_p]


def build_figures(analysis: Analysis, sample_grids: Sequence[Figure] = ()) -> list[Figure]:
    figs: list[Figure] = []
    inp = analysis.input

    def add(name: str, title: str, caption: str, png: bytes | None) -> None:
        if png:
            figs.append(Figure(name, title, caption, png))

    add("fig-scaling-id.png", f"Scaling curves on {inp.id_set}",
        "Log-log error against images per class. Points: mean over seeds; lines: the fitted power "
        "law err = A·N^−α fitted to the binomial error counts; shaded: its pointwise 95% t-interval "
        "(the interval the coverage simulation validates). Grey dashed, no line: at chance. Black dashed: "
        "real data; dotted: synthetic plus real (mixed). A steeper line (larger α) scales better.",
        plots.scaling_curves(analysis, inp.id_set))
    add("fig-scaling-ood.png", "In-distribution vs out-of-distribution",
        "One panel per evaluation set: real (black), the best-scaling synthetic cell on the ID set "
        "(red) and the other synthetic cells (thin blue).", plots.eval_set_curves(analysis))
    add("fig-slopes.png", "Slopes with intervals",
        "Plain power-law α per series on the ID set with 95% t-intervals; hatched grey: at chance "
        "(not read as a slope).",
        plots.slope_chart(analysis))
    add("fig-quality-diversity.png", "Recognizability vs diversity",
        "Each point is a cell (generator × CFG × strategy), labelled with its CFG; lines join a "
        "strategy's CFG grid.", plots.quality_diversity(analysis))
    add("fig-class-scalability.png", "Per-class scalability",
        "Each point is one estimable class in one synthetic cell: its own error slope α (bar: 95% "
        "t-interval) against its recognizability and diversity; classes that are not estimable are "
        "left out.", plots.class_scalability(analysis))
    return figs + list(sample_grids)


def report_json(analysis: Analysis) -> dict[str, Any]:
    inp = analysis.input
    return {
        "study_id": inp.study_id,
        "study_name": inp.study_name,
        "metric": inp.metric,
        "id_set": inp.id_set,
        "ood_sets": list(inp.ood_sets),
        "classes": [list(c) for c in inp.classes],
        "claims": [c.to_dict() for c in analysis.claims],
        "findings": analysis.findings,
        "series": [
            {**s.key.to_dict(), "points": [[p.n, p.seed, p.value, p.n_test] for p in s.points],
             "fits": {k: f.to_dict() for k, f in s.fits.items()},
             "chance": s.chance.to_dict() if s.chance else None}
            for s in analysis.series
        ],
        "slopes": slope_rows(analysis),
        "by_cfg": factor_slopes(analysis, "cfg"),
        "by_strategy": factor_slopes(analysis, "strategy"),
        "by_generator": factor_slopes(analysis, "generator"),
        "by_eval_set": eval_set_slopes(analysis),
        "versus_real": [r for es in [inp.id_set, *inp.ood_sets] for r in versus_real(analysis, es)],
        "comparisons": [c.to_dict() for c in analysis.comparisons],
        "scores": [
            {"cell": sc.cell, "generator": sc.generator, "cfg": sc.cfg, "strategy": sc.strategy,
             "macro_f1": _n(sc.macro_f1), "diversity": _n(sc.diversity), "fid": _n(sc.fid),
             "lpips": _n(sc.lpips), "scored": sc.scored, "skipped": sc.skipped}
            for sc in inp.scores
        ],
        "per_class": [
            {"cell": pc.series.cell, "recipe": pc.series.recipe, "eval_set": pc.series.eval_set,
             "classes": [{"class_id": c.class_id, "alpha": _n(c.alpha),
                          "alpha_lo": _n(c.alpha_ci[0]), "alpha_hi": _n(c.alpha_ci[1]),
                          "estimable": c.estimable, "reason": c.reason, "detail": c.detail,
                          "test_images": c.test_images, "f1": _n(c.f1),
                          "diversity": _n(c.diversity), "err_at_max": _n(c.err_at_max)}
                         for c in pc.classes],
             "vs_recognizability": pc.vs_recognizability.to_dict(),
             "vs_diversity": pc.vs_diversity.to_dict()}
            for pc in analysis.per_class
        ],
        "pooled_correlations": {k: c.to_dict() for k, c in analysis.pooled.items()},
        "cfg_trends": [
            {"generator": t.generator, "strategy": t.strategy, "cfgs": list(t.cfgs),
             "f1": [_n(v) for v in t.f1], "diversity": [_n(v) for v in t.diversity],
             "alpha": [_n(v) for v in t.alpha]}
            for t in analysis.cfg_trends
        ],
        "failed_runs": [{"run_id": r.run_id, "error": r.error} for r in analysis.failed_runs],
        "runs": len(inp.runs),
        "meta": inp.meta,
    }


def _tables(analysis: Analysis, doc: dict[str, Any]) -> dict[str, Table]:
    inp = analysis.input
    slope_table = Table(
        ["series", "eval set", "fit", "α [95% CI]", "A [95% CI]", "E [95% CI]", "error at max N", "max N",
         "error at 4× max N [95% CI]", "extrapolation error"],
        [[r["label"], r["eval_set"], r["form"], "at chance" if r["at_chance"] else _ci(r),
          "–" if r["at_chance"] else _ci(r, "A"), _ci(r, "E") if r["E"] is not None else "–",
          r["value_at_max_n"], r["max_n"], "–" if r["at_chance"] else _ci(r, "extrapolated"),
          r["holdout_rel_error"]]
         for r in sorted(doc["slopes"], key=lambda r: (r["eval_set"] != inp.id_set, r["eval_set"],
                                                       r["form"] != "power_law"))],
        left=6,
    )
    identified, fitted, why = offset_summary(analysis)
    if fitted:
        reasons = "; ".join(f"{n}× {r}" for r, n in sorted(why.items(), key=lambda kv: -kv[1]))
        slope_table.extra = (f"Offset law E + A·N^−α identified in {identified} of {fitted} series"
                             + (f" (not identified: {reasons})." if reasons else "."))
    tables = {"slopes": slope_table}
    for factor in ("cfg", "strategy", "generator"):
        rows = doc[f"by_{factor}"]
        if len(rows) > 1:
            tables[f"by_{factor}"] = Table(
                [factor, "mean α", "min α", "max α", "series"],
                [[r[factor], r["mean_alpha"], r["min_alpha"], r["max_alpha"], r["series"]] for r in rows],
            )
    sets = [inp.id_set, *inp.ood_sets]
    if doc["by_eval_set"]:
        tables["by_eval_set"] = Table(["source", *sets],
                                      [[r["source"], *[r.get(s) for s in sets]] for r in doc["by_eval_set"]])
    if doc["versus_real"]:
        tables["versus_real"] = Table(
            ["series", "eval set", "α", "real α", "N: significantly lower", "N: significantly higher",
             "N: indistinguishable", "fitted crossover N"],
            [[r["label"], r["eval_set"], r["alpha"], r["real_alpha"],
              ", ".join(map(str, r["sizes_lower_than_real"])) or "none",
              ", ".join(map(str, r["sizes_higher_than_real"])) or "none",
              ", ".join(map(str, r["sizes_indistinguishable"])) or "none", r["crossover_n"]]
             for r in doc["versus_real"] if r["eval_set"] == inp.id_set],
            left=2,
        )
    tests = [c for c in doc["comparisons"] if not c["family"].startswith("error vs real")]
    if tests:
        tables["slope_tests"] = Table(
            ["family", "a", "b", "Δα (a − b)", "95% CI", "p", "Holm p", "verdict"],
            [[c["family"], c["a"], c["b"], c["difference"], _pair(c["ci"]), c["p"], c["p_holm"],
              c["verdict"].replace("a lower", "a flatter").replace("a higher", "a steeper")]
             for c in tests],
            left=3,
        )
    if doc["scores"]:
        tables["scores"] = Table(
            ["cell", "macro-F1 (recognizability)", "diversity", "FID", "LPIPS", "images scored"],
            [[s["cell"], s["macro_f1"], s["diversity"], s["fid"], s["lpips"], s["scored"]]
             for s in doc["scores"]],
        )
    if analysis.per_class:
        rows = [[pc.series.cell, "recognizability", *_corr_cells(pc.vs_recognizability)]
                for pc in analysis.per_class]
        rows += [[pc.series.cell, "diversity", *_corr_cells(pc.vs_diversity)] for pc in analysis.per_class]
        rows += [[f"all cells (pooled over {c.classes} classes, class-level permutation)", name, c.classes,
                  "–", "–", "–", c.rho, c.p] for name, c in analysis.pooled.items()]
        tables["per_class"] = Table(
            ["cell", "α vs", "classes", "Pearson r", "95% CI", "p", "Spearman ρ", "p"], rows, left=2)
        ids = [cid for cid, _ in inp.classes]
        grid = {(pc.series.cell, c.class_id): c for pc in analysis.per_class for c in pc.classes}
        est, total, why = class_summary(analysis)
        reasons = ", ".join(f"{n}× {r}" for r, n in sorted(why.items(), key=lambda kv: -kv[1]))
        tables["class_slopes"] = Table(
            ["cell", *ids],
            [[pc.series.cell, *[_class_cell(grid.get((pc.series.cell, cid))) for cid in ids]]
             for pc in analysis.per_class],
            extra=f"{est} of {total} (cell, class) pairs estimable"
            + (f"; not estimable: {reasons}." if reasons else "."),
        )
    return tables


def _class_cell(c: Any) -> str:
    if c is None:
        return "–"
    if not c.estimable:
        return f"n.e. ({c.reason.replace('_', ' ')})"
    return f"{c.alpha:.2f} [{c.alpha_ci[0]:.2f}, {c.alpha_ci[1]:.2f}]"


SECTIONS = (
    ("slopes", "Slopes (scaling ability α)",
     "α is the slope of log error against log N: error shrinks by 2^α each time N doubles. The plain "
     "law is a binomial GLM on the error counts; intervals are 95% t-intervals (quasi-binomial "
     "dispersion), validated by simulation (docs/statistics.md). 'at chance': the series is never "
     "significantly below the chance error, so no slope is read. Offset-law rows appear only where "
     "the floor E is identified. Extrapolation error: the law fitted without the largest size(s), "
     "its relative error there."),
    ("by_cfg", "Slope by CFG", "Mean ID α of synthetic series at each guidance scale."),
    ("by_strategy", "Slope by prompt strategy", "Mean ID α of synthetic series per prompt strategy."),
    ("by_generator", "Slope by generator", "Mean ID α of synthetic series per generator."),
    ("by_eval_set", "In-distribution vs OOD slopes", "Mean α per evaluation set and data source."),
    ("versus_real", "Synthetic vs real", "Error at equal N against real data, tested (paired "
     "bootstrap over test images and seeds where the results carry per-image correctness, else an "
     "unpaired binomial test), Holm-corrected over all sizes and series of the eval set; and where "
     "the fitted laws cross."),
    ("slope_tests", "Slope comparisons", "Differences of plain-law α: series against series on the "
     "ID set, and each series' OOD slope against its ID slope; Welch t-tests on the fits' standard "
     "errors, Holm-corrected within "
     "each family. 'indistinguishable': corrected p ≥ 0.05."),
    ("scores", "Recognizability and diversity per cell", ""),
    ("per_class", "Per-class scalability vs recognizability and diversity",
     "Correlation, across estimable classes, of each class's slope α with its F1 and its feature std "
     "(Pearson r with a Fisher-z interval). Pooled: the mean within-cell Spearman ρ, tested by "
     "permuting class labels (n = classes, not (cell, class) pairs)."),
    ("class_slopes", "Per-class slopes", "α [95% CI] per class and cell; n.e.: not estimable, with the "
     "reason (too few test images per class, 0 errors at most sizes or at the largest size, or an "
     "interval wider than ±1)."),
)
FIGURE_AFTER = {
    "fig-scaling-id.png": None, "fig-scaling-ood.png": "by_eval_set", "fig-slopes.png": "slopes",
    "fig-quality-diversity.png": "scores", "fig-class-scalability.png": "class_slopes",
}


def render(analysis: Analysis, sample_grids: Sequence[Figure] = ()) -> dict[str, bytes]:
    """All report files by name: report.html, report.md, report.json, *.csv and figure PNGs."""
    figs = build_figures(analysis, sample_grids)
    doc = report_json(analysis)
    planner_doc, planner_md = planner_section(analysis)  # the planner's own section (planning.py)
    doc["planner"] = planner_doc
    tables = _tables(analysis, doc)
    files: dict[str, bytes] = {
        "report.json": json.dumps(doc, indent=1, sort_keys=True).encode(),
        "slopes.csv": to_csv(doc["slopes"]),
        "points.csv": to_csv([{**s.key.to_dict(), "n": p.n, "seed": p.seed, "value": p.value,
                               "n_test": p.n_test} for s in analysis.series for p in s.points]),
        "comparisons.csv": to_csv(doc["comparisons"]),
        "scores.csv": to_csv(doc["scores"]),
        "per_class.csv": to_csv([{"cell": pc["cell"], **c}
                                 for pc in doc["per_class"] for c in pc["classes"]]),
    }
    for f in figs:
        files[f.name] = f.png
    files["report.html"] = _html(analysis, figs, tables).encode()
    files["report.md"] = (_markdown(analysis, figs, tables) + planner_md).encode()
    return files


def _summary(analysis: Analysis) -> str:
    inp = analysis.input
    cells = sorted({s.key.cell for s in analysis.series if s.key.source != "real"})
    sizes = sorted({p.n for s in analysis.series for p in s.points})
    return (f"{len(inp.classes)} classes · {len(cells)} synthetic cells · sizes per class "
            f"{', '.join(map(str, sizes))} · {len(inp.runs)} training runs · metric: "
            f"{'top-1 error' if inp.metric == 'error' else 'loss'} · ID set {inp.id_set}, OOD sets "
            f"{', '.join(inp.ood_sets) or 'none'}")


def _ordered(figs: Sequence[Figure], tables: dict[str, Table]) -> list[tuple[str, Any]]:
    """Interleave figures and tables: each figure after the section it illustrates."""
    by_after: dict[str | None, list[Figure]] = {}
    for f in figs:
        by_after.setdefault(FIGURE_AFTER.get(f.name, "__end__"), []).append(f)
    items: list[tuple[str, Any]] = [("figure", f) for f in by_after.get(None, [])]
    for key, title, note in SECTIONS:
        if key in tables:
            items.append(("section", (title, note, tables[key])))
        items += [("figure", f) for f in by_after.get(key, [])]
    if by_after.get("__end__"):
        items.append(("heading", "Samples per class × CFG × strategy"))
        items += [("figure", f) for f in by_after["__end__"]]
    return items


def _html(analysis: Analysis, figs: Sequence[Figure], tables: dict[str, Table]) -> str:
    inp = analysis.input
    out = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>synscale report — {html.escape(inp.study_name)}</title>",
        # Inline-only policy: the page never fetches anything (no favicon request either).
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">",
        '<link rel="icon" href="data:,">',
        f"<style>{CSS}</style></head><body>",
        f"<h1>Scaling study: {html.escape(inp.study_name)}</h1>",
        f'<p class="muted">study {html.escape(inp.study_id)} · {html.escape(_summary(analysis))}</p>',
        *_claims_html(analysis),
        "<h2>Findings</h2><ul>",
        *[f"<li>{html.escape(f)}</li>" for f in analysis.findings],
        "</ul>",
    ]
    for kind, item in _ordered(figs, tables):
        if kind == "figure":
            data = base64.b64encode(item.png).decode()
            out.append(f'<figure><img alt="{html.escape(item.title)}" src="data:image/png;base64,{data}">'
                       f"<figcaption><b>{html.escape(item.title)}.</b> {html.escape(item.caption)}"
                       "</figcaption></figure>")
        elif kind == "heading":
            out.append(f"<h2>{html.escape(item)}</h2>")
        else:
            title, note, table = item
            note = " ".join(t for t in (note, table.extra) if t)
            out.append(f"<h2>{html.escape(title)}</h2>")
            if note:
                out.append(f'<p class="muted">{html.escape(note)}</p>')
            out.append(table.html())
    out.append(_how_to_read_html())
    out.append("</body></html>")
    return "\n".join(out)


# -- the first section: the paper's claims (claims.py) ------------------------------------
CLAIMS_TITLE = "What the paper claims, and what this study shows"
CLAIMS_NOTE = (
    "One row per claim of Fan et al. (CVPR 2024) that this study can check, each with the test it "
    "rests on. Reproduced / contradicted: significant (p < 0.05, Holm-corrected where a claim rests "
    "on several tests) for / against the paper, and nothing significant the other way; inconclusive: "
    "neither, or the study lacks what the claim needs."
)


def claims_table(analysis: Analysis) -> Table:
    return Table(["the paper claims", "this study shows", "test", "verdict"],
                 [[c.paper, c.shows, c.test, c.verdict] for c in analysis.claims], left=4)


def _claims_html(analysis: Analysis) -> list[str]:
    if not analysis.claims:
        return []
    return [f"<h2>{html.escape(CLAIMS_TITLE)}</h2>", f'<p class="muted">{html.escape(CLAIMS_NOTE)}</p>',
            claims_table(analysis).html()]


def _claims_markdown(analysis: Analysis) -> list[str]:
    if not analysis.claims:
        return []
    return [f"## {CLAIMS_TITLE}", "", CLAIMS_NOTE, "", claims_table(analysis).markdown(), ""]


HOW_TO_READ = (
    "Each curve is one data source trained at growing N (images per class), evaluated on a fixed "
    "test set. On log-log axes a power law err = A·N^−α is a straight line; its slope α is the "
    "paper's scaling ability: the larger α, the more each doubling of data helps. A curve that is "
    "lower is better now; a curve that is steeper will be better later. The offset form "
    "err = E + A·N^−α adds an error floor E that more data cannot remove."
)


def _how_to_read_html() -> str:
    return f"<h2>How to read this report</h2><p>{html.escape(HOW_TO_READ)}</p>"


def _markdown(analysis: Analysis, figs: Sequence[Figure], tables: dict[str, Table]) -> str:
    inp = analysis.input
    out = [f"# Scaling study: {inp.study_name}", "", f"study `{inp.study_id}` · {_summary(analysis)}", "",
           *_claims_markdown(analysis), "## Findings", ""]
    out += [f"- {f}" for f in analysis.findings]
    for kind, item in _ordered(figs, tables):
        out.append("")
        if kind == "figure":
            out += [f"![{item.title}]({item.name})", "", f"*{item.title}.* {item.caption}"]
        elif kind == "heading":
            out.append(f"## {item}")
        else:
            title, note, table = item
            note = " ".join(t for t in (note, table.extra) if t)
            out += [f"## {title}", ""]
            if note:
                out += [note, ""]
            out.append(table.markdown())
    out += ["", "## How to read this report", "", HOW_TO_READ, ""]
    return "\n".join(out)
