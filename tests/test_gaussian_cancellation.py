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


def test_far_components_cost_one_more_e_step_whatever_their_number(monkeypatch):
    """Four tight clusters far apart on unscaled data: every component's sums cancel
    about the pass's point, and all four are summed again in one more E-step over
    the rows (not one pass each); the covariances equal scikit-learn's."""
    from fastvem._ext import _gaussian
    rng = np.random.default_rng(4)
    centres = np.array([[0.0, 0.0, 0.0], [1e5, 0.0, 0.0], [0.0, 1e5, 0.0], [0.0, 0.0, 1e5]])
    X = np.vstack([c + 1e-2 * rng.normal(size=(100, 3)) for c in centres])
    calls = {"fit_pass": 0, "estep": 0}
    for name in calls:
        real = getattr(_gaussian, name)

        def counted(*args, _real=real, _name=name):
            calls[_name] += 1
            return _real(*args)
        monkeypatch.setattr(_gaussian, name, counted)
    kw = dict(n_components=4, covariance_type="full", max_iter=3, tol=0,
              means_init=centres, weights_init=np.full(4, 0.25))
    fv = _quiet(fastvem.GaussianMixture(**kw), X)
    assert calls["fit_pass"] == 3 and calls["estep"] == 3      # one each per iteration
    sk = _quiet(mixture.GaussianMixture(**kw), X)
    np.testing.assert_allclose(fv.covariances_, sk.covariances_, rtol=1e-7, atol=1e-13)
    np.testing.assert_allclose(fv.means_, sk.means_, rtol=1e-12)


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
