"""BayesianGaussianMixture (mean field) against scikit-learn and its own invariants."""
import os
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.mixture import BayesianGaussianMixture as SkBGM

import fastvem
from fastvem.datasets import load_old_faithful, make_gaussian_mixture

from conftest import COVARIANCE_TYPES, max_rel

warnings.simplefilter("ignore")
PRIOR_TYPES = ["dirichlet_process", "dirichlet_distribution"]


def _as_float(v):
    return float(np.ravel(v)[0])      # scikit-learn's tied bound is a length-1 array


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("name", ["faithful", "iris"])
def test_equals_sklearn_from_same_initial_responsibilities(name, covariance_type, prior_type):
    X = load_old_faithful()[0] if name == "faithful" else load_iris().data
    kw = dict(n_components=3, covariance_type=covariance_type, random_state=0, max_iter=20,
              tol=0, weight_concentration_prior_type=prior_type)
    ref = SkBGM(**kw).fit(X)
    ours = fastvem.BayesianGaussianMixture(**kw).fit(X)
    assert ours.n_iter_ == ref.n_iter_
    for attr in ("means_", "covariances_", "weights_", "precisions_cholesky_",
                 "mean_precision_", "degrees_of_freedom_", "covariance_prior_", "mean_prior_"):
        assert max_rel(getattr(ours, attr), getattr(ref, attr)) < 1e-9, attr
    wc_ours, wc_ref = ours.weight_concentration_, ref.weight_concentration_
    assert max_rel(np.asarray(wc_ours), np.asarray(wc_ref)) < 1e-9
    assert ours.lower_bound_ == pytest.approx(_as_float(ref.lower_bound_), rel=1e-10)
    np.testing.assert_allclose(ours.lower_bounds_, [_as_float(v) for v in ref.lower_bounds_],
                               rtol=1e-10)
    np.testing.assert_allclose(ours.score_samples(X), ref.score_samples(X), rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_explicit_priors_equal_sklearn(prior_type):
    X = load_iris().data
    D = X.shape[1]
    kw = dict(n_components=4, covariance_type="full", random_state=1, max_iter=10, tol=0,
              weight_concentration_prior_type=prior_type, weight_concentration_prior=0.5,
              mean_precision_prior=0.3, mean_prior=np.full(D, 2.0),
              degrees_of_freedom_prior=D + 2.5, covariance_prior=2.0 * np.eye(D))
    ref = SkBGM(**kw).fit(X)
    ours = fastvem.BayesianGaussianMixture(**kw).fit(X)
    assert max_rel(ours.means_, ref.means_) < 1e-9
    assert ours.lower_bound_ == pytest.approx(_as_float(ref.lower_bound_), rel=1e-10)


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_elbo_never_decreases(covariance_type, prior_type):
    X, _, _ = make_gaussian_mixture(3000, 3, 4, covariance_type, separation=1.5, random_state=3)
    gm = fastvem.BayesianGaussianMixture(n_components=6, covariance_type=covariance_type,
                                         weight_concentration_prior_type=prior_type,
                                         random_state=0, tol=0, max_iter=80).fit(X)
    lb = np.asarray(gm.lower_bounds_)
    assert np.all(np.diff(lb) >= -1e-9 * np.abs(lb).max()), np.diff(lb).min()


def test_dirichlet_process_switches_off_extra_components():
    X, labels, truth = make_gaussian_mixture(4000, 2, 3, "full", separation=6.0, random_state=2)
    gm = fastvem.BayesianGaussianMixture(n_components=8, weight_concentration_prior=1e-3,
                                         random_state=0, max_iter=500, tol=1e-6).fit(X)
    assert (gm.weights_ > 0.02).sum() == 3
    big = np.sort(gm.weights_[gm.weights_ > 0.02])
    np.testing.assert_allclose(big, np.sort(truth["weights"]), atol=0.03)


def test_identical_for_any_thread_count():
    X, _, _ = make_gaussian_mixture(20000, 3, 3, "diag", separation=2.0, random_state=4)
    kw = dict(n_components=4, covariance_type="diag", random_state=0, max_iter=10, tol=0)
    a = fastvem.BayesianGaussianMixture(n_threads=1, **kw).fit(X)
    b = fastvem.BayesianGaussianMixture(n_threads=2, **kw).fit(X)
    np.testing.assert_array_equal(a.means_, b.means_)
    assert a.lower_bounds_ == b.lower_bounds_


@pytest.mark.parametrize("bad, match", [
    (dict(weight_concentration_prior=-1.0), "weight_concentration_prior"),
    (dict(weight_concentration_prior_type="beta"), "weight_concentration_prior_type"),
    (dict(mean_precision_prior=0.0), "mean_precision_prior"),
    (dict(mean_prior=[1.0, 2.0, 3.0]), "mean_prior"),
    (dict(degrees_of_freedom_prior=0.5), "degrees_of_freedom_prior"),
    (dict(covariance_prior=np.array([[1.0, 2.0], [2.0, 1.0]])), "covariance_prior"),
    (dict(covariance_prior=np.eye(3)), "covariance_prior"),
    (dict(covariance_type="diag", covariance_prior=[-1.0, 1.0]), "covariance_prior"),
])
def test_bad_priors_are_refused(bad, match):
    X = load_old_faithful()[0]
    with pytest.raises((ValueError, TypeError), match=match):
        fastvem.BayesianGaussianMixture(n_components=2, **bad).fit(X)


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_save_load_round_trip(tmp_path, prior_type):
    X = load_old_faithful()[0]
    gm = fastvem.BayesianGaussianMixture(n_components=3, random_state=0,
                                         weight_concentration_prior_type=prior_type).fit(X)
    path = os.path.join(tmp_path, "bgm.npz")
    gm.save(path)
    back = fastvem.load(path)
    assert isinstance(back, fastvem.BayesianGaussianMixture)
    np.testing.assert_array_equal(back.predict(X), gm.predict(X))
    np.testing.assert_allclose(back.score_samples(X), gm.score_samples(X), rtol=0, atol=0)
    assert back.lower_bound_ == gm.lower_bound_


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_gaussian_mixture_meanfield_is_the_same_fit(covariance_type):
    """GaussianMixture(method='meanfield') takes the same priors and runs the same
    fit; its bound is reported per sample (like its other methods' objectives)."""
    X = load_iris().data
    kw = dict(covariance_type=covariance_type, random_state=0, max_iter=15, tol=0,
              weight_concentration_prior_type="dirichlet_distribution",
              weight_concentration_prior=0.2)
    a = fastvem.BayesianGaussianMixture(n_components=3, **kw).fit(X)
    b = fastvem.GaussianMixture(3, method="meanfield", **kw).fit(X)
    np.testing.assert_array_equal(a.means_, b.means_)
    np.testing.assert_array_equal(a.weight_concentration_, b.weight_concentration_)
    assert b.lower_bound_ * X.shape[0] == pytest.approx(a.lower_bound_, rel=1e-12)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_meanfield_score_is_the_student_t_posterior_predictive(covariance_type):
    """GaussianMixture(method='meanfield').score_samples = log sum_k E[pi_k] St(x | ...),
    checked against scipy's Student-t densities (diag: a product of univariate t's)."""
    from scipy import stats
    from scipy.special import logsumexp
    from fastvem.families.gaussian import GaussianFamily
    X = np.random.default_rng(0).normal(size=(300, 3)) @ np.diag([1.0, 2.0, 0.5]) + 1.0
    g = fastvem.GaussianMixture(2, method="meanfield", covariance_type=covariance_type,
                                random_state=0).fit(X)
    q, conc = g._get_posterior()
    K, D = q["means"].shape
    dof, u = GaussianFamily(covariance_type).predictive_student_t(q)
    w = g._weight_prior().mean_weights(conc)
    expected = []
    for x in X[:20]:
        terms = []
        for k in range(K):
            if covariance_type == "diag":
                lp = stats.t(df=dof[k], loc=q["means"][k], scale=1 / u[k]).logpdf(x).sum()
            else:
                P = u[k] @ u[k].T if covariance_type in ("full", "tied") else np.eye(D) * u[k] ** 2
                lp = stats.multivariate_t(loc=q["means"][k], shape=np.linalg.inv(P),
                                          df=dof[k]).logpdf(x)
            terms.append(np.log(w[k]) + lp)
        expected.append(logsumexp(terms))
    np.testing.assert_allclose(g.score_samples(X[:20]), expected, rtol=1e-10, atol=1e-10)
    # the predictive is a proper density and on held-out data near the em plug-in
    Xt = np.random.default_rng(1).normal(size=(2000, 3)) @ np.diag([1.0, 2.0, 0.5]) + 1.0
    em = fastvem.GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    assert abs(g.score(Xt) - em.score(Xt)) < 0.05
