"""Reference values for shared/src/stats/drift.rs, from NumPy and SciPy.

Run by `cargo xtask stats-vectors` in a pinned venv of its own (.inferloop/stats-venv),
which writes shared/src/stats/vectors/drift.json; the Rust tests compare against it, so
CI needs neither NumPy nor SciPy. The definitions here are DESIGN.md §6a's.
"""

import json
import sys

import numpy as np
import scipy
from scipy import stats
from scipy.spatial import distance


def psi(ref, cur):
    """10 bins; inner edges the reference's deciles (linear), repeated edges merged,
    outer bins open; bin i holds edges[i-1] <= x < edges[i]; zero shares -> 0.0001."""
    ref = np.asarray(ref, dtype=float)
    cur = np.asarray(cur, dtype=float)
    edges = np.unique(np.quantile(ref, np.linspace(0.1, 0.9, 9)))
    r = np.bincount(np.digitize(ref, edges), minlength=len(edges) + 1) / len(ref)
    c = np.bincount(np.digitize(cur, edges), minlength=len(edges) + 1) / len(cur)
    r = np.where(r == 0, 0.0001, r)
    c = np.where(c == 0, 0.0001, c)
    return float(np.sum((c - r) * np.log(c / r))), [float(e) for e in edges]


def numeric_case(name, ref, cur):
    ref = [float(x) for x in ref]
    cur = [float(x) for x in cur]
    value, edges = psi(ref, cur)
    ks = stats.ks_2samp(ref, cur)
    sd = float(np.std(ref))
    return {
        "name": name,
        "reference": ref,
        "current": cur,
        "psi": value,
        "psi_edges": edges,
        "ks_statistic": float(ks.statistic),
        "ks_pvalue": float(ks.pvalue),
        "wasserstein": float(stats.wasserstein_distance(ref, cur)),
        "wasserstein_normalised": None if sd == 0 else float(stats.wasserstein_distance(ref, cur) / sd),
    }


def categorical_case(name, ref, cur):
    categories = sorted(set(ref) | set(cur))
    table = np.array([[ref.count(k) for k in categories], [cur.count(k) for k in categories]])
    if len(categories) < 2:
        chi = {"statistic": 0.0, "pvalue": 1.0, "dof": 0}
    else:
        res = stats.chi2_contingency(table, correction=False)
        chi = {"statistic": float(res.statistic), "pvalue": float(res.pvalue), "dof": int(res.dof)}
    js = float(distance.jensenshannon(table[0], table[1], base=2))
    return {"name": name, "reference": ref, "current": cur, "chi2": chi, "js_distance": js}


def main(out):
    rng = np.random.default_rng(20261201)
    numeric = [
        numeric_case("identical", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
        numeric_case("disjoint", list(range(20)), list(range(100, 130))),
        numeric_case("ties", [1, 1, 1, 2, 2, 3, 3, 3, 3, 4] * 3, [1, 2, 2, 2, 3, 3, 4, 4, 4, 4] * 2),
        numeric_case("constant_reference", [28.0] * 50, list(rng.integers(64, 512, 40))),
        numeric_case("tiny", [0.1, 0.5], [0.3]),
        numeric_case("normal_shift_200", list(rng.normal(0, 1, 200)), list(rng.normal(0.3, 1.2, 150))),
        numeric_case("normal_same_500", list(rng.normal(5, 2, 500)), list(rng.normal(5, 2, 500))),
        numeric_case("large_3000", list(rng.gamma(2.0, 1.5, 3000)), list(rng.gamma(2.2, 1.5, 2500))),
    ]
    categorical = [
        categorical_case("same", [0, 1, 2, 3] * 25, [0, 1, 2, 3] * 20),
        categorical_case("shifted", [0] * 10 + [1] * 40 + [2] * 50, [0] * 40 + [1] * 30 + [2] * 30),
        categorical_case("new_category", [1] * 30 + [2] * 30, [1] * 20 + [2] * 20 + [7] * 10),
        categorical_case("single_category", [4] * 30, [4] * 12),
        categorical_case("digits", list(rng.integers(0, 10, 500)), list(rng.choice(10, 300, p=[0.28] + [0.08] * 9))),
    ]
    for case in categorical:
        case["reference"] = [int(x) for x in case["reference"]]
        case["current"] = [int(x) for x in case["current"]]
    pvalues = [0.001, 0.04, 0.03, 0.2, 0.0004, 0.049, 0.8, 0.01, 0.01]
    corrections = {
        "pvalues": pvalues,
        "bonferroni": [min(1.0, p * len(pvalues)) for p in pvalues],
        "benjamini_hochberg": [float(p) for p in stats.false_discovery_control(pvalues, method="bh")],
    }
    doc = {
        "generated_by": "xtask/stats_vectors.py",
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "numeric": numeric,
        "categorical": categorical,
        "corrections": corrections,
    }
    with open(out, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
