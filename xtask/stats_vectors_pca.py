"""Reference values for shared/pca (crate inferloop-pca), from scikit-learn.

Run by `cargo xtask stats-vectors` in a pinned venv of its own (.inferloop/stats-venv),
which writes shared/src/stats/vectors/pca.json; the Rust tests compare against it, so CI
needs no Python. The method is NannyML's multivariate drift detection by data
reconstruction: `PCA(n_components=share, svd_solver="full")` fitted to reference rows,
and each row's error is the Euclidean norm of `x - inverse_transform(transform(x))`.

Each case stores the fit rows, the test rows, the share of variance asked for, the number
of components sklearn keeps, their cumulative explained variance ratio and the
reconstruction errors of the test rows and of the fit rows. The script refuses cases
whose answer would hang on rounding: a cumulative ratio within 1e-6 of the share (k could
differ by one), or kept and dropped singular values too close (the kept subspace, and so
the errors, would be ill-determined).
"""

import json
import sys

import numpy as np
import scipy
import sklearn
from sklearn.decomposition import PCA


def case(name, fit, test, share, pixels=False):
    """`fit`, `test`: 2-D arrays. With `pixels`, they are integers 0..255 and stored so;
    both sides divide by 255, so the float inputs are bit-identical."""
    fit = np.asarray(fit)
    test = np.asarray(test)
    if pixels:
        assert fit.dtype.kind == "i" and test.dtype.kind == "i"
        x_fit, x_test = fit / 255.0, test / 255.0
        stored_fit = [[int(v) for v in r] for r in fit]
        stored_test = [[int(v) for v in r] for r in test]
    else:
        x_fit, x_test = fit.astype(np.float64), test.astype(np.float64)
        stored_fit = [[float(v) for v in r] for r in x_fit]
        stored_test = [[float(v) for v in r] for r in x_test]
    n, dims = x_fit.shape
    model = PCA(n_components=share, svd_solver="full").fit(x_fit)
    k = int(model.n_components_)
    # Every component's ratio, from the SVD sklearn itself ran (its kept ones are the
    # first k of these).
    s = scipy.linalg.svd(x_fit - x_fit.mean(axis=0), compute_uv=False)
    var = s**2 / (n - 1)
    ratio = var / var.sum()
    cumsum = np.cumsum(ratio)
    assert np.allclose(ratio[:k], model.explained_variance_ratio_, rtol=1e-12, atol=1e-15)
    assert abs(cumsum[k - 1] - share) > 1e-6, (name, "share too close to the kept ratio")
    if k >= 2:
        assert abs(cumsum[k - 2] - share) > 1e-6, (name, "share too close to the ratio")
    if k < len(s):
        assert s[k - 1] - s[k] > 1e-3 * s[0], (name, "kept subspace ill-determined")

    def errors(x):
        return [float(e) for e in np.linalg.norm(x - model.inverse_transform(model.transform(x)), axis=1)]

    return {
        "name": name,
        "dims": dims,
        "share": share,
        "pixels": pixels,
        "fit_rows": stored_fit,
        "test_rows": stored_test,
        "k": k,
        "explained_variance": float(cumsum[k - 1]),
        "test_errors": errors(x_test),
        "fit_errors": errors(x_fit),
    }


def low_rank(rng, n, dims, rank, noise, offset, decay=0.5):
    """Rows near a `rank`-dimensional affine subspace, with latent scales falling off by
    `decay` so the ratios are well separated."""
    scales = decay ** np.arange(rank)
    latent = rng.normal(size=(n, rank)) * scales
    loadings = rng.normal(size=(rank, dims))
    return offset + latent @ loadings + noise * rng.normal(size=(n, dims))


def stroke_images(rng, count, shift=0.0):
    """28×28 digit-like images as integers 0..255: a few jittered thick strokes from one
    of three templates on a black background (most pixels 0), like MNIST."""
    templates = [
        [[(14, 5), (14, 23)]],  # a "1"
        [[(8, 8), (20, 8), (20, 14), (8, 14), (8, 22), (20, 22)]],  # a "2"-ish zigzag
        [[(9, 6), (19, 6), (19, 22), (9, 22), (9, 6)]],  # an "0"-ish box
    ]
    yy, xx = np.mgrid[0:28, 0:28]
    images = np.zeros((count, 784), dtype=np.int64)
    for i in range(count):
        strokes = templates[rng.integers(len(templates))]
        canvas = np.zeros((28, 28))
        dx, dy = rng.normal(0, 1.0, 2) + shift
        for stroke in strokes:
            pts = np.array(stroke, dtype=float) + rng.normal(0, 0.8, (len(stroke), 2))
            pts += (dx, dy)
            for (x0, y0), (x1, y1) in zip(pts[:-1], pts[1:]):
                for t in np.linspace(0.0, 1.0, 30):
                    cx, cy = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
                    d2 = (xx - cx) ** 2 + (yy - cy) ** 2
                    canvas = np.maximum(canvas, np.exp(-d2 / (2 * 0.9**2)))
        pixels = np.round(255 * canvas * rng.uniform(0.8, 1.0))
        pixels[pixels < 20] = 0  # sparse: a hard black background
        images[i] = pixels.astype(np.int64).reshape(-1)
    return images


def main(out):
    rng = np.random.default_rng(20261214)
    cases = []

    # Small structured data, several shares (so several k) on the same rows; the test
    # rows are from the same distribution and from a drifted one (another subspace).
    data = low_rank(rng, 40, 8, 4, 0.1, offset=rng.normal(0, 3, 8), decay=0.85)
    fit, same = data[:30], data[30:]
    drifted = same + rng.normal(0, 1.0, same.shape)
    for share in [0.5, 0.65, 0.9, 0.99]:
        cases.append(case(f"low_rank_30x8_share_{share}", fit, np.vstack([same, drifted]), share))

    # Tall: many more rows than dims (faer takes its QR-first path).
    data = low_rank(rng, 220, 5, 2, 0.2, offset=np.arange(5.0))
    cases.append(case("tall_200x5", data[:200], data[200:], 0.9))

    # Wide: fewer rows than dims; the centred matrix has rank n-1 < dims.
    data = low_rank(rng, 18, 40, 4, 0.05, offset=rng.normal(0, 1, 40), decay=0.7)
    cases.append(case("wide_12x40_share_0.6", data[:12], data[12:], 0.6))
    cases.append(case("wide_12x40_share_0.95", data[:12], data[12:], 0.95))

    # The fewest rows: two rows span one direction, all the variance.
    data = rng.normal(0, 1, (5, 5))
    cases.append(case("two_rows", data[:2], data[2:], 0.5))

    # A constant column (0.3: its mean is not exactly 0.3 in floating point).
    data = low_rank(rng, 35, 6, 3, 0.1, offset=np.zeros(6))
    data[:25, 2] = 0.3
    cases.append(case("constant_column_25x6", data[:25], data[25:], 0.9))

    # Image-like: 40 fit and 10 test rows of 784 pixels (integers /255), two of the test
    # rows shifted off the fitted strokes.
    fit = stroke_images(rng, 40)
    test = np.vstack([stroke_images(rng, 8), stroke_images(rng, 2, shift=4.0)])
    cases.append(case("image_like_40x784", fit, test, 0.65, pixels=True))

    doc = {
        "generated_by": "xtask/stats_vectors_pca.py",
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
