"""A tight component far from the pass's reference point (a single row far out, on
data with a large offset): its statistics are sums about that point, whose
second moments cancel against the mean's square; GaussianFamily takes them again
about the component's own mean (families/gaussian.py: _far_components), so the
covariance is exact -- reg_covar I for one row -- as scikit-learn's two-pass
full covariance is.  Also: precision factors and covariances agree after a
jitter, and statistics about different points add exactly."""
import warnings

import numpy as np
import pytest
from sklearn import mixture
from sklearn.datasets import load_breast_cancer

import fastvem
from fastvem.families.gaussian import GaussianFamily
from fastvem.stats import GaussianStats


def _quiet(est, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X)


def _far_row(D=20, scale=1e5, seed=0):
    """Two clusters of 50 rows, one at the origin and one at scale, and one row
    drawn far from both; the three means as a start."""
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(0, 1, (50, D)), rng.normal(scale, 1, (50, D)),
                   rng.uniform(-scale, scale, (1, D))])
    means = np.vstack([X[:50].mean(0), X[50:100].mean(0), X[100]])
    return X, means


def test_full_covariance_of_a_far_row_equals_scikit_learn():
    X, means = _far_row()
    kw = dict(n_components=3, covariance_type="full", max_iter=5, tol=0, means_init=means,
              weights_init=np.ones(3) / 3)
    sk = _quiet(mixture.GaussianMixture(**kw), X)
    fv = _quiet(fastvem.GaussianMixture(**kw), X)
    np.testing.assert_allclose(fv.covariances_[2], 1e-6 * np.eye(X.shape[1]), rtol=1e-9,
                               atol=1e-15)
    np.testing.assert_allclose(fv.covariances_, sk.covariances_, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(fv.precisions_cholesky_, sk.precisions_cholesky_, rtol=1e-6,
                               atol=1e-9)
    assert abs(fv.lower_bound_ - sk.lower_bound_) < 1e-8 * abs(sk.lower_bound_)
    np.testing.assert_allclose(fv.score_samples(X), sk.score_samples(X), rtol=1e-9)
    for p, c in zip(fv.precisions_, fv.covariances_):
        np.testing.assert_allclose(p @ c, np.eye(X.shape[1]), atol=1e-8)


def _two_pass_em(X, means, n_iter, covariance_type, reg=1e-6):
    """EM for diag / spherical Gaussians with every variance from sums centred at
    the component's own mean (the slow, obviously exact oracle)."""
    from scipy.special import logsumexp
    N, D = X.shape
    K = len(means)
    weights = np.full(K, 1.0 / K)
    var = np.ones((K, D))          # the start: the given means, unit variances
    for _ in range(n_iter):
        logp = (np.log(weights) - 0.5 * np.sum(np.log(2 * np.pi * var), 1)
                - 0.5 * np.sum((X[:, None, :] - means[None]) ** 2 / var[None], 2))
        resp = np.exp(logp - logsumexp(logp, 1, keepdims=True))
        nk = resp.sum(0) + 10 * np.finfo(float).eps
        weights = nk / N
        means = resp.T @ X / nk[:, None]
        sq = np.stack([resp[:, k] @ (X - means[k]) ** 2 for k in range(K)]) / nk[:, None]
        var = (sq + reg if covariance_type == "diag"
               else np.repeat(sq.mean(1, keepdims=True) + reg, D, 1))
    return weights, means, var


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_variance_of_a_far_row_is_reg_covar(covariance_type):
    """scikit-learn's diag and spherical M-steps cancel too (E[x^2] - mean^2, not
    centred), so the reference here is a two-pass NumPy oracle: a component of one
    row has variance reg_covar, the clusters their centred variances."""
    X, means = _far_row()
    fv = _quiet(fastvem.GaussianMixture(3, covariance_type=covariance_type, max_iter=5, tol=0,
                                        means_init=means, weights_init=np.ones(3) / 3,
                                        precisions_init=np.ones((3, X.shape[1]))
                                        if covariance_type == "diag" else np.ones(3)), X)
    w, m, var = _two_pass_em(X, means, 5, covariance_type)
    np.testing.assert_allclose(fv.covariances_[2], 1e-6, rtol=1e-9)
    got = fv.covariances_ if covariance_type == "diag" else fv.covariances_[:, None]
    np.testing.assert_allclose(np.broadcast_to(got, var.shape), var, rtol=1e-9)
    np.testing.assert_allclose(fv.means_, m, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(fv.weights_, w, rtol=1e-12)


def test_breast_cancer_singleton_component_equals_scikit_learn():
    """Eight full components on breast_cancer (features up to ~4,000): one of
    them ends holding one row."""
    X = load_breast_cancer().data
    kw = dict(n_components=8, covariance_type="full", random_state=0, max_iter=100)
    sk = _quiet(mixture.GaussianMixture(**kw), X)
    fv = _quiet(fastvem.GaussianMixture(**kw), X)
    k = int(np.argmin(sk.weights_))
    assert abs(sk.weights_[k] * len(X) - 1) < 1e-9           # the case this test is about
    np.testing.assert_allclose(fv.weights_, sk.weights_, atol=1e-10)
    np.testing.assert_allclose(fv.covariances_[k], sk.covariances_[k], rtol=1e-9, atol=1e-15)
    # the covariances span ten decades: their inverses agree to the condition number
    scale = np.abs(sk.precisions_).max(axis=(1, 2), keepdims=True)
    assert np.all(np.abs(fv.precisions_ - sk.precisions_)
                  <= 1e-5 * np.abs(sk.precisions_) + 1e-9 * scale)
    assert abs(fv.lower_bound_ - sk.lower_bound_) < 1e-9 * abs(sk.lower_bound_)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_far_row_fits_saves_and_loads(tmp_path, dtype):
    """The default fit (k-means start) on income-like data with one far row: every
    covariance positive definite, the model saves and loads."""
    rng = np.random.default_rng(1)
    D = 12
    X = np.vstack([rng.normal(5e4, 5e3, (200, D)), rng.normal(1.2e5, 1e4, (200, D)),
                   rng.normal(4e5, 1.0, (1, D))]).astype(dtype)
    gm = _quiet(fastvem.GaussianMixture(3, covariance_type="full", random_state=0), X)
    assert np.all(np.linalg.eigvalsh(gm.covariances_.astype(np.float64)) > 0)
    path = tmp_path / "gm.npz"
    gm.save(path)
    back = fastvem.load(path)
    np.testing.assert_array_equal(back.predict(X), gm.predict(X))


def test_chunks_and_threads_give_the_in_memory_fit():
    """The far row's component is taken again about its mean in the chunks that
    hold it; chunks whose sums are about other points add to it exactly."""
    X, means = _far_row(D=6)
    kw = dict(n_components=3, covariance_type="full", max_iter=4, tol=0, means_init=means,
              weights_init=np.ones(3) / 3)
    one = _quiet(fastvem.GaussianMixture(n_threads=1, **kw), X)
    three = _quiet(fastvem.GaussianMixture(n_threads=3, **kw), X)
    np.testing.assert_array_equal(one.covariances_, three.covariances_)
    chunks = _quiet(fastvem.GaussianMixture(**kw), [X[:40], X[40:90], X[90:]])
    np.testing.assert_allclose(chunks.covariances_[2], one.covariances_[2], rtol=1e-9)
    np.testing.assert_allclose(chunks.means_, one.means_, rtol=1e-12, atol=1e-9)


def test_sums_about_different_points_add_exactly():
    """A tight far cluster split in two sets, one about the cluster's mean (most of
    its weight) and one about the origin: their sum keeps the cluster's own point,
    and its covariance equals the two-pass one."""
    rng = np.random.default_rng(2)
    D = 3
    far = 1e6 + 1e-3 * rng.normal(size=(10, D))
    near = rng.normal(size=(30, D))
    fam = GaussianFamily("full", reg_covar=0.0)

    def stats(rows, resp, ref):
        s = fam.statistics_from_resp(np.ascontiguousarray(rows), None, resp, ref, 1)
        return s

    r_far = np.tile([0.0, 1.0], (10, 1))
    r_near = np.tile([1.0, 0.0], (30, 1))
    a = stats(np.vstack([near, far[:8]]), np.vstack([r_near, r_far[:8]]), np.zeros(D))
    b = stats(far[8:], r_far[8:], np.zeros(D))
    total = a + b
    assert isinstance(total, GaussianStats)
    np.testing.assert_allclose(total.nk, [30, 10])
    _, covs = fam._moments(total, total.nk)
    exact = np.cov(far.T, bias=True)
    np.testing.assert_allclose(covs[1], exact, rtol=1e-6, atol=1e-15)
    np.testing.assert_allclose(covs[0], np.cov(near.T, bias=True), rtol=1e-12)
