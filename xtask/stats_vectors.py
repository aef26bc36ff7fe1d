"""Reference values for shared/src/stats/drift.rs, ks.rs and metrics.rs, from NumPy, SciPy
and scikit-learn.

Run by `cargo xtask stats-vectors` in a pinned venv of its own (.inferloop/stats-venv),
which writes shared/src/stats/vectors/drift.json; the Rust tests compare against it, so
CI needs neither NumPy nor SciPy. The definitions here are DESIGN.md §6a's.
"""

import json
import sys
import warnings

import numpy as np
import scipy
import sklearn
from scipy import stats
from scipy.spatial import distance
from sklearn import metrics

# ks_2samp's method="auto": exact when max(n1, n2) <= this.
KS_MAX_EXACT_N = 10000


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
    ks, method = ks_2samp(ref, cur)
    sd = float(np.std(ref))
    return {
        "name": name,
        "reference": ref,
        "current": cur,
        "psi": value,
        "psi_edges": edges,
        "ks_statistic": float(ks.statistic),
        "ks_pvalue": float(ks.pvalue),
        "ks_method": method,
        "wasserstein": float(stats.wasserstein_distance(ref, cur)),
        "wasserstein_normalised": None if sd == 0 else float(stats.wasserstein_distance(ref, cur) / sd),
    }


def ks_2samp(ref, cur):
    """SciPy's two-sided test with method="auto", and the method it really used: SciPy does
    not return it, and its exact computation may fall back to the asymptotic one (it warns
    when it does)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = stats.ks_2samp(ref, cur)
    fell_back = any("Exact calculation unsuccessful" in str(w.message) for w in caught)
    exact = max(len(ref), len(cur)) <= KS_MAX_EXACT_N and not fell_back
    return res, "exact" if exact else "asymptotic"


def ks_case(name, ref, cur, shared=None, expect=None):
    """A KS case; `shared` = how many leading values of the shared reference `ref` is (the
    large cases share one, to keep the file small)."""
    ref = [float(x) for x in ref]
    cur = [float(x) for x in cur]
    res, method = ks_2samp(ref, cur)
    if expect is not None:
        assert method == expect, f"{name}: SciPy used {method}, the case wants {expect}"
    case = {"name": name}
    if shared is None:
        case["reference"] = ref
    else:
        case["reference_shared"] = shared
    case.update(
        {
            "current": cur,
            "statistic": float(res.statistic),
            "pvalue": float(res.pvalue),
            "method": method,
        }
    )
    return case


def ks_cases(rng):
    def rounded(values, decimals=3):
        # Three decimals keep the large samples' JSON small; the ties they make are part
        # of the data SciPy is given.
        return [float(x) for x in np.round(values, decimals)]

    shared = rounded(rng.normal(0, 1, 12000))
    cases = [
        ks_case("identical", range(1, 11), range(1, 11), expect="exact"),
        ks_case("disjoint", range(20), range(100, 130), expect="exact"),
        ks_case("disjoint_equal_sizes", range(40), range(100, 140), expect="exact"),
        ks_case("ties", [1, 1, 1, 2, 2, 3, 3, 3, 3, 4] * 3, [1, 2, 2, 2, 3, 3, 4, 4, 4, 4] * 2),
        ks_case("n1_same", [0.5], [0.5], expect="exact"),
        ks_case("n1", [0.5], [0.3], expect="exact"),
        ks_case("n2_n1", [0.1, 0.5], [0.3], expect="exact"),
        ks_case("n2", [0.1, 0.5], [0.7, 0.9], expect="exact"),
        ks_case("n3", [1, 2, 3], [4, 5, 6], expect="exact"),
        ks_case("n3_n2", [1, 2, 3], [2.5, 0.5], expect="exact"),
        ks_case("unequal_7_19", rounded(rng.normal(0, 1, 7)), rounded(rng.normal(1, 1, 19)), expect="exact"),
        ks_case("unequal_200_150", rng.normal(0, 1, 200), rng.normal(0.3, 1.2, 150), expect="exact"),
        ks_case("unequal_coprime_997_1009", rounded(rng.normal(0, 1, 997)), rounded(rng.normal(0.1, 1, 1009)), expect="exact"),
        ks_case("equal_1000_shift", rounded(rng.normal(0, 1, 1000)), rounded(rng.normal(0.15, 1, 1000)), expect="exact"),
        ks_case("equal_1000_far", rounded(rng.normal(0, 1, 1000)), rounded(rng.normal(1.5, 1, 1000)), expect="exact"),
        # Interleaved equal samples: D = 1/n, and SciPy's exact sum comes out a hair above
        # 1, so it switches to the asymptotic distribution.
        ks_case("fallback_interleaved_5", [0, 2, 4, 6, 8], [1, 3, 5, 7, 9], expect="asymptotic"),
        ks_case("fallback_shifted_253", range(0, 506, 2), [x + 7 for x in range(0, 506, 2)], expect="asymptotic"),
        ks_case("exact_limit_10000_3000", shared[:KS_MAX_EXACT_N], rounded(rng.normal(0.05, 1, 3000)), shared=KS_MAX_EXACT_N, expect="exact"),
    ]
    above = shared[: KS_MAX_EXACT_N + 1]
    for name, cur in [
        ("asymptotic_10001_1", [0.25]),
        ("asymptotic_10001_7", rounded(rng.normal(0.5, 1, 7))),
        ("asymptotic_10001_60", rounded(rng.normal(0.2, 1, 60))),
        ("asymptotic_10001_60_far", rounded(rng.normal(1.0, 1, 60))),
        ("asymptotic_10001_300", rounded(rng.normal(0.1, 1, 300))),
        ("asymptotic_10001_2000_same", rounded(rng.normal(0, 1, 2000))),
    ]:
        cases.append(ks_case(name, above, cur, shared=len(above), expect="asymptotic"))
    cases += [
        ks_case("asymptotic_12000_11000", shared, rounded(rng.normal(0.03, 1, 11000)), shared=len(shared), expect="asymptotic"),
    ]
    return shared, cases


def kstwo_cases():
    """`scipy.stats.kstwo.sf(d, n)` across its algorithms' regions: Ruben-Gambino near both
    ends, Durbin's matrix, Pomeranz, Pelz-Good, Smirnov's sum and its large-n approximation."""
    ns = [1, 2, 3, 5, 10, 25, 50, 100, 140, 141, 200, 500, 1000, 5000, 10000, 50000, 100000, 100001, 1000000, 2000000]
    nxsquared = [0.05, 0.3, 0.754, 0.755, 1.0, 2.0, 2.19, 2.21, 3.9, 4.1, 10.0, 17.9, 18.1, 50.0, 200.0, 369.0, 371.0]
    cases = []
    for n in ns:
        ds = {np.sqrt(v / n) for v in nxsquared}
        ds |= {t / n for t in (0.4, 0.5, 0.75, 1.0, 1.5, n - 1.5, n - 1, n - 0.5)}
        ds |= {0.01, 0.1, 0.3, 0.5, 0.6, 0.9, 0.999, 1.0}
        # Durbin's matrix serves n <= 100000 while n·d^1.5 <= 1.4: both sides of that edge.
        ds |= {(1.4 / n) ** (2 / 3) * f for f in (0.97, 1.03)}
        for d in sorted(ds):
            if 0 < d <= 1:
                cases.append({"n": n, "d": float(d), "sf": float(stats.kstwo.sf(d, n))})
    return cases


def classification_cases(rng):
    def case(name, truth, predicted, probabilities=None):
        truth = [int(x) for x in truth]
        predicted = [int(x) for x in predicted]
        labels = list(range(10))
        p, r, f, support = metrics.precision_recall_fscore_support(truth, predicted, labels=labels, zero_division=0)
        out = {
            "name": name,
            "true": truth,
            "predicted": predicted,
            "accuracy": float(metrics.accuracy_score(truth, predicted)),
            "confusion_matrix": metrics.confusion_matrix(truth, predicted, labels=labels).tolist(),
            "per_class": {
                "precision": [float(x) for x in p],
                "recall": [float(x) for x in r],
                "f1": [float(x) for x in f],
                "support": [int(x) for x in support],
            },
        }
        # Macro and weighted averages over scikit-learn's default labels: those in either
        # vector (a digit nobody drew does not count as a 0).
        for average in ("macro", "weighted"):
            p, r, f, _ = metrics.precision_recall_fscore_support(truth, predicted, average=average, zero_division=0)
            out[average] = {"precision": float(p), "recall": float(r), "f1": float(f)}
        if probabilities is not None:
            probabilities = np.asarray(probabilities, dtype=float)
            with warnings.catch_warnings():
                # Some rows do not sum to 1 on purpose: scikit-learn warns, and does not
                # renormalise them.
                warnings.simplefilter("ignore", UserWarning)
                out["log_loss"] = float(metrics.log_loss(truth, probabilities, labels=labels))
            out["probabilities"] = [[float(x) for x in row] for row in probabilities]
        return out

    def noisy(truth, right):
        wrong = rng.integers(0, 10, len(truth))
        return np.where(rng.random(len(truth)) < right, truth, wrong)

    truth = rng.integers(0, 10, 300)
    # Six significant digits keep the JSON small; the rounded rows are what sklearn sees.
    probabilities = np.array([[float(f"{x:.6g}") for x in row] for row in rng.dirichlet(np.full(10, 0.3), 300)])
    # Clipping at eps: a true class given 0, or 1e-300, or exactly 1.
    probabilities[0] = np.eye(10)[(truth[0] + 1) % 10]
    probabilities[1] = np.full(10, 1e-300)
    probabilities[1][(truth[1] + 3) % 10] = 1.0 - 9e-300
    probabilities[2] = np.eye(10)[truth[2]]
    probabilities[3][truth[3]] = 1e-20
    # Rows that do not sum to 1 (scaled down, and one with a mass of 1.5).
    probabilities[4:10] *= 0.7
    probabilities[10] = np.full(10, 0.15)
    few = rng.integers(0, 6, 150)
    return [
        case("random_300", truth, noisy(truth, 0.7), probabilities),
        case("sklearn_docs", [0, 1, 2, 0, 1, 2], [0, 2, 1, 0, 0, 1], np.full((6, 10), 0.1)),
        # Digits 6-9 never drawn; the model also says 7 sometimes.
        case("absent_classes", few, np.where(rng.random(150) < 0.1, 7, noisy(few, 0.8) % 6)),
        case("single", [3], [5], [np.eye(10)[5] * 0.5 + 0.05]),
    ]


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
    ks_shared_reference, ks = ks_cases(rng)
    doc = {
        "generated_by": "xtask/stats_vectors.py",
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "sklearn": sklearn.__version__,
        "numeric": numeric,
        "categorical": categorical,
        "corrections": corrections,
        "ks_shared_reference": ks_shared_reference,
        "ks": ks,
        "kstwo_sf": kstwo_cases(),
        "classification": classification_cases(rng),
    }
    with open(out, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
