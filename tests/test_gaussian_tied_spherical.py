"""The tied and spherical Gaussian families (GaussianTied, GaussianSpherical:
``fastvem.Mixture('gaussian_tied' / 'gaussian_spherical')``, also a Product's
members): em equals scikit-learn's GaussianMixture(covariance_type='tied' /
'spherical') iterate for iterate from the same start on iris; crisp and vem fit;
SQUAREM is refused with the reason (mean field and gibbs:
tests/test_tied_spherical_posteriors.py)."""
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.mixture import GaussianMixture as SkGMM

import fastvem
from fastvem.families import GaussianSpherical, GaussianTied, Product


def _quiet(est, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X)


def _start(K, X, seed=1):
    rng = np.random.RandomState(seed)
    w0 = rng.dirichlet(np.full(K, 5.0))
    m0 = X[rng.choice(len(X), K, replace=False)]
    return w0, m0


@pytest.mark.parametrize("n_iter", [1, 4, 30])
def test_tied_em_equals_scikit_learn_on_iris(n_iter):
    X = load_iris().data
    K = 3
    w0, m0 = _start(K, X)
    c0 = np.cov(X.T)
    sk = _quiet(SkGMM(K, covariance_type="tied", weights_init=w0, means_init=m0,
                      precisions_init=np.linalg.inv(c0), max_iter=n_iter, tol=0), X)
    fam = GaussianTied(4)
    fam.prepare(X, fitting=True)
    est = _quiet(fastvem.Mixture(fam, K, max_iter=n_iter, tol=0, weights_init=w0,
                                 params_init=fam.theta_from(m0, np.tile(c0, (K, 1, 1)))), X)
    d = est.component_params_
    np.testing.assert_allclose(d["means"], sk.means_, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(d["covariance"], sk.covariances_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(est.weights_, sk.weights_, atol=1e-9)
    assert abs(est.lower_bound_ - sk.lower_bound_) < 1e-8
    np.testing.assert_allclose(est.score_samples(X), sk.score_samples(X), atol=1e-8)
    # every component holds the same covariance
    _, cov = fam._split(est.params_)
    assert np.allclose(cov, cov[0])


@pytest.mark.parametrize("n_iter", [1, 4, 30])
def test_spherical_em_equals_scikit_learn_on_iris(n_iter):
    X = load_iris().data
    K = 3
    w0, m0 = _start(K, X, seed=2)
    v0 = np.array([0.5, 1.0, 2.0])
    sk = _quiet(SkGMM(K, covariance_type="spherical", weights_init=w0, means_init=m0,
                      precisions_init=1.0 / v0, max_iter=n_iter, tol=0), X)
    fam = GaussianSpherical(4)
    fam.prepare(X, fitting=True)
    mu = m0 - fam.ref
    theta0 = np.hstack((mu, v0[:, None] + mu * mu))
    est = _quiet(fastvem.Mixture(fam, K, max_iter=n_iter, tol=0, weights_init=w0,
                                 params_init=theta0), X)
    d = est.component_params_
    np.testing.assert_allclose(d["means"], sk.means_, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(d["variances"], sk.covariances_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(est.weights_, sk.weights_, atol=1e-9)
    assert abs(est.lower_bound_ - sk.lower_bound_) < 1e-8
    np.testing.assert_allclose(est.score_samples(X), sk.score_samples(X), atol=1e-8)


@pytest.mark.parametrize("name", ["gaussian_tied", "gaussian_spherical"])
def test_point_methods_fit_and_squarem_is_refused(name):
    X = load_iris().data
    for method in ("em", "vem", "crisp"):
        est = _quiet(fastvem.Mixture(name, 3, method=method, random_state=0, max_iter=50), X)
        lb = np.asarray(est.lower_bounds_)
        if method != "crisp":
            assert np.all(np.diff(lb) >= -1e-10)       # the log-likelihood never decreases
        assert est.bic(X) > 0 and est.n_iter_ >= 1
    with pytest.raises(ValueError, match="unconstrained coordinates"):
        _quiet(fastvem.Mixture(name, 3, accelerate="squarem", random_state=0), X)


@pytest.mark.parametrize("name", ["gaussian_tied", "gaussian_spherical"])
def test_a_product_of_one_equals_the_family(name):
    """The product runs its members on the sparse form, the family alone on the
    Cholesky kernel: the same em iterates to round-off."""
    X = load_iris().data
    a = _quiet(fastvem.Mixture(name, 3, random_state=0, max_iter=20, tol=0), X)
    b = _quiet(fastvem.Mixture(Product([(name, [0, 1, 2, 3])]), 3, random_state=0,
                               max_iter=20, tol=0), X)
    np.testing.assert_allclose(b.params_, a.params_, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=1e-10)
