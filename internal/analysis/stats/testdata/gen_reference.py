#!/usr/bin/python3
"""Writes reference.json: scipy.stats.mannwhitneyu results for fixed samples.

Regenerate (Debian: apt-get install python3-scipy) from the package directory:

    /usr/bin/python3 testdata/gen_reference.py > testdata/reference.json

The samples are generated from a fixed seed, so the output only changes when
this script or SciPy changes. The Go test (reference_test.go) reads the JSON;
it never needs SciPy.
"""
import json
import sys

import numpy as np
import scipy
from scipy.stats import mannwhitneyu

rng = np.random.default_rng(20261127)


def r(a):
    # Round-trip exact decimal text: repr of a Python float is exact.
    return [float(v) for v in a]


cases = []


def add(name, x, y, methods=("asymptotic",)):
    x, y = r(x), r(y)
    for method in methods:
        for alt in ("two-sided", "greater", "less"):
            res = mannwhitneyu(x, y, use_continuity=True, alternative=alt, method=method)
            cases.append({
                "name": name,
                "x": x,
                "y": y,
                "method": method,
                "alternative": alt,
                "u": float(res.statistic),
                "p": float(res.pvalue),
            })


# Small samples without ties: exact and asymptotic.
add("textbook-3x3", [30, 14, 6], [12, 15, 16], ("exact", "asymptotic"))
add("separated-5x5", [1, 2, 3, 4, 5], [6, 7, 8, 9, 10], ("exact", "asymptotic"))
add("one-each", [1.5], [2.5], ("exact", "asymptotic"))
add("1x10", [5.5], list(range(10)), ("exact", "asymptotic"))
for i, (n1, n2) in enumerate([(4, 7), (8, 8), (10, 13), (15, 9), (20, 20), (12, 20), (20, 3)]):
    add(f"normal-{n1}x{n2}", rng.normal(0, 1, n1), rng.normal(0.4 * (i % 3), 1, n2), ("exact", "asymptotic"))

# Ties, unequal sizes, heavy tails: asymptotic only.
add("ties-small", [1, 2, 2, 3, 3, 3], [2, 3, 4, 4, 5])
add("ties-integers", rng.integers(0, 5, 30), rng.integers(0, 6, 25))
add("ties-latency-ms", np.round(rng.lognormal(4, 0.5, 80)), np.round(rng.lognormal(4.1, 0.5, 60)))
add("mostly-equal", [1] * 40 + [2], [1] * 30 + [2, 2])
add("all-equal", [7.0] * 10, [7.0] * 12)
add("unequal-5x200", rng.normal(0, 1, 5), rng.normal(0, 1, 200))
add("unequal-300x17", rng.normal(0.2, 1, 300), rng.normal(0, 1, 17))
add("cauchy-50x50", rng.standard_cauchy(50), rng.standard_cauchy(50))
add("pareto-100x120", rng.pareto(1.1, 100), rng.pareto(1.3, 120))
add("lognormal-heavy-200x200", rng.lognormal(3, 2, 200), rng.lognormal(3.3, 2, 200))
add("far-apart-100x100", rng.normal(0, 1, 100), rng.normal(10, 1, 100))
add("large-1000x1000", rng.normal(0, 1, 1000), rng.normal(0.05, 1, 1000))
add("negative-and-zero", [-3, -1, 0, 0, 2, -0.5], [0, 1, 1, 4, -2, 3, 3])
add("bursty-errors", [0] * 90 + [1] * 10, [0] * 97 + [1] * 3)
add("exponential-40x25", rng.exponential(1, 40), rng.exponential(1.5, 25))
add("tiny-scale", rng.normal(0, 1e-9, 30), rng.normal(1e-10, 1e-9, 30))

json.dump({"scipy": scipy.__version__, "numpy": np.__version__, "cases": cases}, sys.stdout, indent=1)
sys.stdout.write("\n")
