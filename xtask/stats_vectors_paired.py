"""Reference values for shared/src/stats/paired.rs, from SciPy.

Run by `cargo xtask stats-vectors` in a pinned venv of its own (.inferloop/stats-venv),
which writes shared/src/stats/vectors/paired.json; the Rust tests compare against it, so
CI needs no Python. For each 2x2 table of (production right, candidate right):
McNemar's exact test as `scipy.stats.binomtest` on the discordant pairs, each model's
Wilson interval from SciPy, Newcombe's paired difference interval (method 10, as
Altman et al., Statistics with Confidence, 2000, give it) built from those, and the
minimum detectable difference (z_0.95 + z_0.80) * sqrt(max(b + c, 1)) / n.
"""

import json
import math
import sys

import numpy as np
import scipy
from scipy.stats import binomtest, norm


def wilson(k, n, confidence):
    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return [float(ci.low), float(ci.high)]


def newcombe(a, b, c, d, confidence):
    n = a + b + c + d
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson(a + b, n, confidence)
    l2, u2 = wilson(a + c, n, confidence)
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    association = a * d - b * c
    if association > n / 2:
        corrected = association - n / 2
    elif association < 0:
        corrected = association
    else:
        corrected = 0.0
    phi = corrected / math.sqrt(margins) if margins > 0 else 0.0
    theta = p1 - p2
    lower = theta - math.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0))
    upper = theta + math.sqrt(max((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0))
    return [lower, upper]


def case(name, a, b, c, d):
    n = a + b + c + d
    discordant = b + c
    if discordant:
        two = binomtest(b, discordant, 0.5).pvalue
        greater = binomtest(b, discordant, 0.5, alternative="greater").pvalue
    else:
        two = greater = 1.0
    levels = []
    for confidence in (0.90, 0.95):
        levels.append(
            {
                "confidence": confidence,
                "z": float(norm.ppf(0.5 + confidence / 2)),
                "wilson_candidate": wilson(a + b, n, confidence),
                "newcombe": newcombe(a, b, c, d, confidence),
            }
        )
    z = norm.ppf(0.95) + norm.ppf(0.80)
    return {
        "name": name,
        "both_right": a,
        "only_candidate_right": b,
        "only_baseline_right": c,
        "both_wrong": d,
        "p_two_sided": float(two),
        "p_greater": float(greater),
        "levels": levels,
        "mdd_005_080": float(z * math.sqrt(max(discordant, 1)) / n),
    }


def main(out):
    cases = [
        case("small", 8, 5, 4, 31),
        case("candidate_better_small", 10, 9, 1, 4),
        case("negative_association", 3, 20, 25, 2),
        case("no_discordance", 450, 0, 0, 50),
        case("tied_discordance", 900, 15, 15, 70),
        case("one_sided_loss", 1900, 0, 15, 89),
        case("test_split_like", 1950, 12, 9, 33),
        case("holdout_like", 120, 40, 10, 30),
        case("large_discordance", 600, 300, 250, 850),
        case("all_right", 100, 0, 0, 0),
        case("all_wrong", 0, 0, 0, 40),
        case("one_sample", 0, 1, 0, 0),
    ]
    doc = {
        "generated_by": "xtask/stats_vectors_paired.py",
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "cases": cases,
    }
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
