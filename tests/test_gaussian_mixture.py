"""GaussianMixture against scikit-learn, the NumPy oracle and its own invariants."""
import warnings

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SkGM

import fastvem
from fastvem.datasets import load_old_faithful, make_gaussian_mixture

from conftest import COVARIANCE_TYPES, max_rel, sklearn_init
import oracle

warnings.simplefilter("ignore")


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("name", ["faithful", "iris", "wine", "digits", "synthetic"])
def test_equals_sklearn_from_same_init(datasets, name, covariance_type):
    X = datasets[name]
    K = 3
    reg = 1e-3 if name == "digits" else 1e-6
    init = sklearn_init(X, K, covariance_type, reg_covar=reg)
    kw = dict(max_iter=15, tol=0, reg_covar=reg, **init)
    ref = SkGM(K, covariance_type=covariance_type, **kw).fit(X)
    ours = fastvem.GaussianMixture(K, covariance_type=covariance_type, **kw).fit(X)
    assert ours.n_iter_ == ref.n_iter_ == 15
    for attr in ("means_", "covariances_", "weights_", "precisions_", "precisions_cholesky_"):
        assert max_rel(getattr(ours, attr), getattr(ref, attr)) < 1e-8, attr
    assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-9)
    np.testing.assert_allclose(ours.lower_bounds_, ref.lower_bounds_, rtol=1e-9)
    np.testing.assert_allclose(ours.score_samples(X), ref.score_samples(X), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-8)
    assert ours.bic(X) == pytest.approx(ref.bic(X), rel=1e-9)
    assert ours.aic(X) == pytest.approx(ref.aic(X), rel=1e-9)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_default_kmeans_init_matches_sklearn(covariance_type):
    X = load_old_faithful()[0]
    a = SkGM(2, covariance_type=covariance_type, random_state=3, n_init=2).fit(X)
    b = fastvem.GaussianMixture(2, covariance_type=covariance_type, random_state=3, n_init=2).fit(X)
    assert max_rel(b.means_, a.means_) < 1e-8
    assert b.n_iter_ == a.n_iter_
    np.testing.assert_array_equal(b.predict(X), a.predict(X))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_one_iteration_equals_numpy_oracle(covariance_type):
    X, _, truth = make_gaussian_mixture(1500, 3, 3, covariance_type, separation=2.0,
                                        random_state=1)
    rng = np.random.default_rng(0)
    weights = np.array([0.2, 0.3, 0.5])
    means = truth["means"] + rng.normal(scale=0.5, size=truth["means"].shape)
    covs = truth["covariances"] * 1.3
    from fastvem.families.gaussian import precision_cholesky, precisions_from_cholesky
    prec = precisions_from_cholesky(precision_cholesky(covs, covariance_type), covariance_type)
    gm = fastvem.GaussianMixture(3, covariance_type=covariance_type, max_iter=1, tol=0,
                                 weights_init=weights, means_init=means,
                                 precisions_init=prec).fit(X)
    w, mu, cov, ll = oracle.em_step(X, weights, means, covs, covariance_type, 1e-6)
    assert max_rel(gm.weights_, w) < 1e-10
    assert max_rel(gm.means_, mu) < 1e-10
    assert max_rel(gm.covariances_, cov) < 1e-9
    assert gm.lower_bound_ == pytest.approx(ll, rel=1e-10)


@pytest.mark.parametrize("method", ["em", "vem", "crisp"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_objective_never_decreases(method, covariance_type):
    X, _, _ = make_gaussian_mixture(4000, 3, 4, covariance_type, separation=1.5, random_state=2)
    gm = fastvem.GaussianMixture(4, covariance_type=covariance_type, method=method, tol=0,
                                 max_iter=60, random_state=0).fit(X)
    lb = np.asarray(gm.lower_bounds_)
    assert not gm.trace_["events"]       # no re-seeding happened: the law must hold
    scale = np.abs(lb).max()
    assert np.all(np.diff(lb) >= -1e-12 * scale), np.diff(lb).min()
    assert len(gm.trace_["seconds"]) == len(lb) == gm.n_iter_


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_vem_equals_em_for_mixtures(covariance_type):
    X = load_old_faithful()[0]
    a = fastvem.GaussianMixture(2, covariance_type=covariance_type, method="em", random_state=0).fit(X)
    b = fastvem.GaussianMixture(2, covariance_type=covariance_type, method="vem", random_state=0).fit(X)
    np.testing.assert_array_equal(a.means_, b.means_)
    assert a.lower_bounds_ == b.lower_bounds_


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_crisp_recovers_separated_truth(covariance_type):
    from sklearn.metrics import adjusted_rand_score
    X, labels, truth = make_gaussian_mixture(5000, 4, 3, covariance_type, separation=6.0,
                                             random_state=4)
    gm = fastvem.GaussianMixture(3, covariance_type=covariance_type, method="crisp",
                                 random_state=0, n_init=2).fit(X)
    assert adjusted_rand_score(labels, gm.predict(X)) > 0.99
    order = [int(np.argmin(((gm.means_ - m) ** 2).sum(1))) for m in truth["means"]]
    np.testing.assert_allclose(gm.means_[order], truth["means"], atol=0.15)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_em_recovers_ground_truth(covariance_type):
    X, labels, truth = make_gaussian_mixture(20000, 3, 3, covariance_type, separation=5.0,
                                             random_state=5)
    gm = fastvem.GaussianMixture(3, covariance_type=covariance_type, random_state=0,
                                 tol=1e-8, max_iter=300).fit(X)
    order = [int(np.argmin(((gm.means_ - m) ** 2).sum(1))) for m in truth["means"]]
    np.testing.assert_allclose(gm.means_[order], truth["means"], atol=0.1)
    np.testing.assert_allclose(gm.weights_[order], truth["weights"], atol=0.02)
    cov = gm.covariances_ if covariance_type == "tied" else gm.covariances_[order]
    np.testing.assert_allclose(cov, truth["covariances"], atol=0.12)


@pytest.mark.parametrize("method", ["em", "crisp"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_float32_agrees_with_float64(method, covariance_type):
    X, _, _ = make_gaussian_mixture(20000, 5, 4, covariance_type, separation=3.0, random_state=6)
    init = sklearn_init(X, 4, covariance_type)
    kw = dict(max_iter=10, tol=0, method=method, **init)
    g64 = fastvem.GaussianMixture(4, covariance_type=covariance_type, **kw).fit(X)
    g32 = fastvem.GaussianMixture(4, covariance_type=covariance_type, **kw).fit(X.astype(np.float32))
    assert g32.means_.dtype == g32.covariances_.dtype == g32.weights_.dtype == np.float32
    assert g32.precisions_cholesky_.dtype == np.float32
    assert max_rel(g32.means_, g64.means_) < 1e-4
    assert max_rel(g32.covariances_, g64.covariances_) < 1e-3
    assert g32.lower_bound_ == pytest.approx(g64.lower_bound_, rel=1e-5)
    assert g32.score_samples(X.astype(np.float32)).dtype == np.float64


@pytest.mark.parametrize("method", ["em", "crisp"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_identical_for_any_thread_count(method, covariance_type, dtype):
    X, _, _ = make_gaussian_mixture(30000, 4, 5, covariance_type, separation=2.0, random_state=8)
    X = X.astype(dtype)
    kw = dict(covariance_type=covariance_type, method=method, random_state=0, max_iter=8, tol=0,
              init_params="random_from_data")
    w = np.random.default_rng(0).uniform(0.5, 2.0, size=X.shape[0])
    a = fastvem.GaussianMixture(5, n_threads=1, **kw).fit(X, sample_weight=w)
    b = fastvem.GaussianMixture(5, n_threads=2, **kw).fit(X, sample_weight=w)
    c = fastvem.GaussianMixture(5, n_threads=3, **kw).fit(X, sample_weight=w)
    for attr in ("means_", "covariances_", "weights_"):
        np.testing.assert_array_equal(getattr(a, attr), getattr(b, attr))
        np.testing.assert_array_equal(getattr(a, attr), getattr(c, attr))
    assert a.lower_bounds_ == b.lower_bounds_ == c.lower_bounds_
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))


def test_integer_sample_weight_equals_repeated_rows():
    X = load_old_faithful()[0]
    rng = np.random.default_rng(0)
    w = rng.integers(0, 4, size=X.shape[0])
    init = sklearn_init(X, 2, "full")
    kw = dict(max_iter=10, tol=0, **init)
    a = fastvem.GaussianMixture(2, **kw).fit(X, sample_weight=w)
    b = fastvem.GaussianMixture(2, **kw).fit(np.repeat(X, w, axis=0))
    assert max_rel(a.means_, b.means_) < 1e-10
    assert max_rel(a.covariances_, b.covariances_) < 1e-9
    assert a.lower_bound_ == pytest.approx(b.lower_bound_, rel=1e-10)


def test_warm_start_continues():
    X = load_old_faithful()[0]
    full = fastvem.GaussianMixture(2, random_state=0, max_iter=6, tol=0).fit(X)
    warm = fastvem.GaussianMixture(2, random_state=0, max_iter=3, tol=0, warm_start=True)
    warm.fit(X)
    warm.fit(X)
    np.testing.assert_allclose(warm.means_, full.means_, rtol=1e-12)


def test_fit_predict_consistent_with_predict():
    X = load_old_faithful()[0]
    gm = fastvem.GaussianMixture(2, random_state=0)
    labels = gm.fit_predict(X)
    np.testing.assert_array_equal(labels, gm.predict(X))


def test_sample_shapes_and_moments():
    X, _, _ = make_gaussian_mixture(5000, 2, 2, "full", separation=5.0, random_state=9)
    gm = fastvem.GaussianMixture(2, random_state=0).fit(X)
    Xs, ys = gm.sample(20000)
    assert Xs.shape == (20000, 2) and ys.shape == (20000,)
    np.testing.assert_allclose(Xs.mean(0), X.mean(0), atol=0.15)
    np.testing.assert_allclose(np.bincount(ys) / 20000, gm.weights_, atol=0.02)


def test_verbose_prints_scikit_learns_lines(capsys):
    X = load_old_faithful()[0]
    fastvem.GaussianMixture(2, random_state=0, verbose=1, verbose_interval=2).fit(X)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Initialization 0" and out[1] == "  Iteration 2"
    assert out[-1] == "Initialization converged."
    fastvem.GaussianMixture(2, random_state=0, verbose=2, verbose_interval=1, max_iter=2,
                            tol=0).fit(X)
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("  Iteration 1\t time lapse ") and "objective change" in out[1]
    assert out[-1].startswith("Initialization did not converge. time lapse ")
    # gibbs: a bar over every sweep of every chain, on stderr, and no lines
    fastvem.GaussianMixture(2, method="gibbs", random_state=0, verbose=1, n_samples=10,
                            burn_in=5).fit(X)
    captured = capsys.readouterr()
    assert captured.out == "" and "/30" in captured.err


def test_empty_component_is_reseeded():
    X = np.vstack([np.random.default_rng(0).normal(size=(200, 2)) * 0.01,
                   np.random.default_rng(1).normal(size=(200, 2)) * 0.01 + 10])
    means = np.array([[0.0, 0.0], [10.0, 10.0], [100.0, 100.0]])   # third is far from all data
    gm = fastvem.GaussianMixture(3, method="crisp", means_init=means, max_iter=5, tol=0,
                                 random_state=0).fit(X)
    assert gm.trace_["events"], "an empty component should have been re-seeded"
    assert np.all(np.isfinite(gm.means_)) and np.all(np.isfinite(gm.covariances_))
    assert gm.weights_.sum() == pytest.approx(1.0)
    assert np.all(gm.weights_ > 0)


def test_callback_sees_every_iteration_and_can_stop():
    X = load_old_faithful()[0]
    seen = []

    def cb(it, objective, params):
        seen.append((it, objective, params["means"].copy()))
        return it == 3

    gm = fastvem.GaussianMixture(2, random_state=0, tol=0, max_iter=50).fit(X, callback=cb)
    assert [s[0] for s in seen] == [1, 2, 3]
    assert gm.n_iter_ == 3
    assert [s[1] for s in seen] == gm.lower_bounds_
    np.testing.assert_array_equal(seen[-1][2], gm.means_)
    with pytest.raises(TypeError, match="callback"):
        fastvem.GaussianMixture(2).fit(X, callback=3)


@pytest.mark.parametrize("init_params", ["kmeans", "random", "k-means++", "random_from_data"])
def test_no_n_by_k_array_during_a_fit(init_params):
    """The initialisation builds its responsibilities in blocks of rows too: the
    traced peak of a whole fit stays well below N x K float64 (25.6 MB here)."""
    import tracemalloc
    X = np.random.default_rng(0).normal(size=(50_000, 4))
    tracemalloc.start()
    try:
        fastvem.GaussianMixture(64, covariance_type="diag", max_iter=2, init_params=init_params,
                                random_state=0).fit(X)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.5 * X.shape[0] * 64 * 8, peak
