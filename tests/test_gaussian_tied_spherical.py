"""The tied and spherical Gaussian families (GaussianTied, GaussianSpherical:
``fastvem.Mixture('gaussian_tied' / 'gaussian_spherical')``, also a Product's
members): em equals scikit-learn's GaussianMixture(covariance_type='tied' /
'spherical') iterate for iterate from the same start on iris; crisp and vem fit;
SQUAREM keeps the tie and reaches em's fixed point (mean field and gibbs:
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
def test_point_methods_fit(name):
    X = load_iris().data
    for method in ("em", "vem", "crisp"):
        est = _quiet(fastvem.Mixture(name, 3, method=method, random_state=0, max_iter=50), X)
        lb = np.asarray(est.lower_bounds_)
        if method != "crisp":
            assert np.all(np.diff(lb) >= -1e-10)       # the log-likelihood never decreases
        assert est.bic(X) > 0 and est.n_iter_ >= 1


def _tied(fam, theta):
    """True when theta's components share one covariance (tied) or each component's
    features share one variance (spherical), to round-off (theta holds the mean
    parameters E[x], E[x x^T], so a covariance is a difference)."""
    _, cov = fam._split(theta)
    ref = cov[0] if isinstance(fam, GaussianTied) else cov[:, :1]
    return bool(np.allclose(cov, ref, rtol=1e-11, atol=1e-13))


@pytest.mark.parametrize("family", [GaussianTied, GaussianSpherical])
def test_squarem_extrapolation_keeps_the_tie(family):
    """SQUAREM's extrapolation theta0 - 2 a r + a^2 v in the family's unconstrained
    coordinates, from three tied iterates, gives a tied theta."""
    X = load_iris().data
    fam = family(4)
    fam.prepare(X, fitting=True)
    iterates = [_quiet(fastvem.Mixture(fam, 3, random_state=0, max_iter=n, tol=0), X).params_
                for n in (1, 2, 3)]
    assert all(_tied(fam, t) for t in iterates)
    u0, u1, u2 = (fam.to_unconstrained(t) for t in iterates)
    r, v = u1 - u0, u2 - 2 * u1 + u0
    for a in (-0.5, -1.7, -4.0):
        out = fam.from_unconstrained(u0 - 2 * a * r + a * a * v)
        assert out is not None and _tied(fam, out)


@pytest.mark.parametrize("name", ["gaussian_tied", "gaussian_spherical"])
def test_squarem_reaches_the_em_fixed_point(name):
    X = load_iris().data
    em = _quiet(fastvem.Mixture(name, 3, random_state=0, tol=1e-12, max_iter=3000), X)
    sq = _quiet(fastvem.Mixture(name, 3, random_state=0, tol=1e-12, max_iter=3000,
                                accelerate="squarem"), X)
    assert em.converged_ and sq.converged_
    lb = np.asarray(sq.lower_bounds_)
    assert np.all(np.diff(lb) >= -1e-12 * np.abs(lb[1:]))   # the safeguard keeps it monotone
    assert abs(sq.lower_bound_ - em.lower_bound_) < 1e-9
    np.testing.assert_allclose(sq.params_, em.params_, rtol=1e-4, atol=1e-5)
    assert _tied(sq.family_, sq.params_)


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
