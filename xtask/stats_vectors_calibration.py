"""Reference values for shared/src/stats/calibration.rs, from scikit-learn.

Run by `cargo xtask stats-vectors` in a pinned venv of its own (.inferloop/stats-venv),
which writes shared/src/stats/vectors/calibration.json; the Rust tests compare against
it, so CI needs no Python. The calibrator is DESIGN.md §6a's label-free estimate: the
isotonic regression of "was the prediction right" on the model's top probability,
`IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1, increasing=True)`.
"""

import json
import sys

import numpy as np
import scipy
import sklearn
from sklearn.isotonic import IsotonicRegression

# Where every case is also evaluated: the unit interval, plus points outside it (clipped
# to the fitted range, as sklearn's out_of_bounds="clip" does).
GRID = [-0.5, -1e-9] + [float(x) for x in np.linspace(0.0, 1.0, 101)] + [1.0 + 1e-9, 1.5]


def case(name, rng, top, correct, window_size=200):
    top = [float(x) for x in top]
    correct = [bool(c) for c in correct]
    model = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1, increasing=True)
    model.fit(np.array(top), np.array(correct, dtype=float))
    # A window drawn from the calibration inputs with some jitter, so it has both points
    # the calibrator has seen and points between them.
    window = np.clip(rng.choice(top, window_size) + rng.normal(0, 0.01, window_size), 0.0, 1.0)
    window = [float(x) for x in window]
    return {
        "name": name,
        "top_probabilities": top,
        "correct": correct,
        "grid": GRID,
        "grid_predict": [float(y) for y in model.predict(np.array(GRID))],
        "inputs_predict": [float(y) for y in model.predict(np.array(top))],
        "window": window,
        "window_predict_mean": float(np.mean(model.predict(np.array(window)))),
    }


def model_like(rng, n, saturated_share=0.15):
    """Top probabilities as a digit model gives them: most near 1, a tail down to ~0.2,
    and a share exactly 1.0 (float32 softmax saturates), so there are many ties; the model
    is somewhat overconfident (right with probability p**1.5)."""
    top = 1.0 - 0.8 * rng.beta(0.6, 6.0, n)
    top = np.where(rng.random(n) < saturated_share, 1.0, np.round(top, 4))
    correct = rng.random(n) < top**1.5
    return top, correct


def main(out):
    rng = np.random.default_rng(20261207)
    u = rng.random(60)
    near = [0.3, 0.3 + 4e-16, 0.3 + 3e-15, 0.7, 0.7 + 2e-16, 0.9]
    cases = [
        case(
            "ties",
            rng,
            [0.5, 0.5, 0.5, 0.6, 0.6, 0.7, 0.7, 0.7, 0.7, 0.9, 0.9, 1.0, 1.0, 1.0],
            [1, 0, 0, 1, 1, 0, 1, 1, 0, 1, 0, 1, 1, 1],
        ),
        # sklearn merges x values closer than float64's resolution (1e-15) to the first
        # of them; 4e-16 and 2e-16 apart merge, 3e-15 apart does not.
        case("near_ties", rng, near, [0, 1, 1, 0, 1, 1]),
        case("monotone", rng, np.sort(u), np.sort(u) > 0.4),
        case("noisy_monotone", rng, u, rng.random(60) < u),
        case("anti_monotone", rng, u, u < 0.5),
        case("all_correct", rng, rng.uniform(0.3, 1.0, 40), [True] * 40),
        case("all_wrong", rng, rng.uniform(0.3, 1.0, 40), [False] * 40),
        case("one_point", rng, [0.8], [True]),
        case("one_x_value", rng, [0.6] * 5, [1, 0, 1, 1, 0]),
        case("two_points", rng, [0.9, 0.4], [True, False]),
        case("three_points_violating", rng, [0.2, 0.5, 0.9], [True, False, True]),
        case("model_like_2000", rng, *model_like(rng, 2000), window_size=500),
    ]
    doc = {
        "generated_by": "xtask/stats_vectors_calibration.py",
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "sklearn": sklearn.__version__,
        "cases": cases,
    }
    with open(out, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
