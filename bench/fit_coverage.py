"""Coverage of the scaling-law intervals on simulated series with a known law; prints JSON.

Each series is err = A·N^−α observed as k errors of n test images (binomial), one point per
size and seed, fitted the way the analyzer fits a series. A nominal 95% interval should hold
the true α (and the true error extrapolated to 4× the largest N) in 92–98% of series
(docs/statistics.md). Settings: 5 sizes (4…64) and 9 sizes (4…1024), α ∈ {0.05, 0.3},
n ∈ {100, 500}; the error at N = 4 is 0.6 (demo-like).

    python bench/fit_coverage.py [--method new|old] [--series 1000] [--seeds 1] [--seed 0]
        [--offset-series 200]

`--method old` fits with the residual-bootstrap `fits.py` of main 5f784ab (read with
`git show`, so the old code need not live in the package): the "before" figures.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

OLD_COMMIT = "5f784ab"
OLD_PATH = "services/analyzer/src/synscale_analyzer/fits.py"
SIZE_SETS = {5: (4, 8, 16, 32, 64), 9: (4, 8, 16, 32, 64, 128, 256, 512, 1024)}
ALPHAS = (0.05, 0.3)
NS = (100, 500)
ERR_AT_4 = 0.6


def _old_fits() -> Any:
    """The residual-bootstrap fits module of main 5f784ab, imported from `git show`."""
    root = Path(__file__).resolve().parents[1]
    text = subprocess.run(["git", "show", f"{OLD_COMMIT}:{OLD_PATH}"], cwd=root, check=True,
                          capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "old_fits.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("old_fits", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_fits"] = module
    spec.loader.exec_module(module)
    return module


def simulate(sizes: tuple[int, ...], alpha: float, n: int, seeds: int, rng: np.random.Generator,
             series: int) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(sizes repeated per seed, k errors per series row, true error at 4× max N, true log A)."""
    amp = ERR_AT_4 * 4.0**alpha
    x = np.repeat(np.asarray(sizes, float), seeds)
    p = amp * x ** (-alpha)
    k = rng.binomial(n, p, size=(series, len(x))).astype(float)
    target = 4.0 * max(sizes)
    return x, k, float(amp * target ** (-alpha)), math.log(amp)


def coverage(method: str, series: int, seeds: int, seed: int, level: float = 0.95) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    if method == "old":
        fits = _old_fits()
    else:
        from synscale_analyzer import fits
    rows = []
    for m, sizes in SIZE_SETS.items():
        for alpha in ALPHAS:
            for n in NS:
                x, k, true_ext, _ = simulate(sizes, alpha, n, seeds, rng, series)
                target = 4.0 * max(sizes)
                hit_a = hit_e = 0
                widths = []
                started = time.perf_counter()
                for row in k:
                    if method == "old":
                        f = fits.fit(x, row / n, bootstrap=200, seed=int(rng.integers(1 << 30)), level=level)
                        lo, hi = f.band([target])
                        ext = (float(lo[0]), float(hi[0]))
                    else:
                        f = fits.fit(x, row / n, n_test=n, level=level)
                        ext = f.error_ci(target)
                    a_lo, a_hi = f.alpha_ci
                    hit_a += int(a_lo <= alpha <= a_hi)
                    hit_e += int(ext[0] <= true_ext <= ext[1])
                    widths.append(a_hi - a_lo)
                rows.append({
                    "sizes": m, "alpha": alpha, "n_test": n, "series": series,
                    "alpha_coverage": round(hit_a / series, 4),
                    "extrapolated_coverage": round(hit_e / series, 4),
                    "median_alpha_width": round(float(np.median(widths)), 4),
                    "seconds": round(time.perf_counter() - started, 2),
                })
    return {"method": method, "level": level, "seeds_per_size": seeds, "seed": seed,
            "err_at_N4": ERR_AT_4, "extrapolation_target": "4 x largest N", "rows": rows}


def offset_coverage(series: int, seed: int, level: float = 0.95) -> dict[str, Any]:
    """The offset law E + A·N^−α (new method only).

    Without a floor (the plain-law settings above) it should say "not identified" in ≥ 95% of
    series; with a floor E = 0.1 (α = 0.5, 9 sizes) the identified fits' intervals for E, α
    and the extrapolated error should cover.
    """
    from synscale_analyzer import fits

    rng = np.random.default_rng(seed + 1)
    no_floor = []
    for m, sizes in SIZE_SETS.items():
        for alpha in ALPHAS:
            for n in NS:
                x, k, _, _ = simulate(sizes, alpha, n, 1, rng, series)
                ident = sum(fits.fit(x, row / n, "power_law_offset", n_test=n).identified for row in k)
                no_floor.append({"sizes": m, "alpha": alpha, "n_test": n, "series": series,
                                 "identified": round(ident / series, 4)})
    floor = []
    sizes = SIZE_SETS[9]
    x = np.asarray(sizes, float)
    e_true, a_true = 0.1, 0.5
    amp = (ERR_AT_4 - e_true) * 4.0**a_true
    target = 4.0 * max(sizes)
    true_ext = e_true + amp * target ** (-a_true)
    for n in (500, 2000):
        k = rng.binomial(n, e_true + amp * x ** (-a_true), size=(series, len(x)))
        ident = cov_e = cov_a = cov_x = 0
        for row in k:
            f = fits.fit(x, row / n, "power_law_offset", n_test=n, level=level)
            if not f.identified:
                continue
            ident += 1
            cov_e += int(f.E_ci[0] <= e_true <= f.E_ci[1])
            cov_a += int(f.alpha_ci[0] <= a_true <= f.alpha_ci[1])
            lo, hi = f.error_ci(target)
            cov_x += int(lo <= true_ext <= hi)
        floor.append({"sizes": 9, "E": e_true, "alpha": a_true, "n_test": n, "series": series,
                      "identified": round(ident / series, 4),
                      "E_coverage": round(cov_e / max(ident, 1), 4),
                      "alpha_coverage": round(cov_a / max(ident, 1), 4),
                      "extrapolated_coverage": round(cov_x / max(ident, 1), 4)})
    return {"no_floor": no_floor, "floor": floor}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--method", choices=("new", "old"), default="new")
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=1, help="seeds (replicate runs) per size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--offset-series", type=int, default=0,
                    help="also simulate the offset law with this many series per setting (new method; slow)")
    args = ap.parse_args(argv)
    out = coverage(args.method, args.series, args.seeds, args.seed)
    if args.offset_series > 0 and args.method == "new":
        out["offset"] = offset_coverage(args.offset_series, args.seed)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
