"""Empty components of the discrete mixtures are re-seeded (em, vem, crisp) by
splitting the heaviest live component, as GaussianMixture re-seeds: each family's
split gives valid parameters, and a fit started with a dead component finds
every cluster."""
import warnings

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

import fastvem
from fastvem.families import (Bernoulli, Categorical, GaussianDiag, Multinomial, Poisson,
                              Product)


def _check_valid(fam, theta):
    if isinstance(fam, Bernoulli):
        assert np.all((theta >= 0) & (theta <= 1))
    elif isinstance(fam, Categorical):       # Multinomial too
        for block in fam.blocks(theta[None]):
            assert np.all(block >= 0) and np.isclose(block.sum(), 1.0)
    elif isinstance(fam, Poisson):
        assert np.all(theta > 0)
    elif isinstance(fam, GaussianDiag):
        assert np.all(fam.describe(theta[None])["variances"] > 0)


@pytest.mark.parametrize("make", [
    lambda r: (Bernoulli(5), r.uniform(0, 1, 5)),
    lambda r: (Bernoulli(3), np.array([0.0, 1.0, 1.0])),             # no variance: no move
    lambda r: (Poisson(4), r.uniform(0.1, 9, 4)),
    lambda r: (Categorical([3, 4]), np.concatenate([r.dirichlet(np.ones(3)),
                                                    r.dirichlet(np.ones(4))])),
    lambda r: (Categorical([3]), np.array([0.0, 1.0, 0.0])),         # a certain code
    lambda r: (Multinomial(6), r.dirichlet(np.ones(6))),
])
def test_each_split_is_valid_and_moves_the_widest_statistic(make):
    fam, theta = make(np.random.RandomState(0))
    a, b = fam.split(theta)
    _check_valid(fam, a)
    _check_valid(fam, b)
    spread = theta * (1 - theta) if not isinstance(fam, Poisson) else theta
    if np.max(spread) > 0:
        assert not np.allclose(a, b)
        d = int(np.argmax(np.abs(a - b)))
        assert spread[d] == np.max(spread)
    else:
        assert np.all(np.isfinite(a)) and np.all(np.isfinite(b))


def test_gaussian_and_product_splits():
    X = np.random.RandomState(1).randn(50, 3) * [1.0, 5.0, 2.0]
    fam = GaussianDiag(3)
    fam.prepare(X, fitting=True)
    theta = fam.theta_from(np.array([[1.0, 2.0, 3.0]]), np.array([[1.0, 4.0, 2.0]]))[0]
    a, b = fam.split(theta)
    da, db = fam.describe(a[None]), fam.describe(b[None])
    np.testing.assert_allclose(da["variances"], [[1.0, 4.0, 2.0]])
    np.testing.assert_allclose(da["means"] - db["means"], [[0.0, 2.0, 0.0]])   # one sd apart
    prod = Product([("gaussian_diag", [0]), ("poisson", [1])])
    prod.prepare(np.abs(X[:, :2]).round(), fitting=True)
    a, b = prod.split(np.array([0.5, 1.25, 3.0]))
    assert a.shape == (3,) and not np.allclose(a, b)


def _dead_start(est_cls, X, z, K, theta_kw, theta0):
    """crisp (and em) from parameters where component K-1 duplicates component 0:
    ties go to the lowest index, so K-1 wins no row and is empty after one step."""
    w0 = np.full(K, 1.0 / K)
    fits = {}
    for method in ("crisp", "em"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits[method] = est_cls(K, method=method, weights_init=w0, max_iter=100,
                                   **{theta_kw: theta0}).fit(X)
    return fits


def _bernoulli_data():
    rng = np.random.RandomState(3)
    K, N = 3, 3000
    z = rng.randint(K, size=N)
    probs = np.array([[0.9] * 8, [0.1] * 8, [0.9] * 4 + [0.1] * 4])
    return (rng.rand(N, 8) < probs[z]).astype(float), z, rng


def _stuck(fit_fn):
    """fit_fn() with the re-seeding switched off."""
    from fastvem.families import base
    original = base.Family.reseed
    try:
        base.Family.reseed = lambda self, w, t, empty: (w, t, [])
        return fit_fn()
    finally:
        base.Family.reseed = original


@pytest.mark.parametrize("family", ["bernoulli", "poisson"])
def test_crisp_from_a_dead_component_uses_every_component(family):
    """From a start whose third component wins no row, crisp re-seeds it and ends
    with three components holding weight and a better objective and partition than
    the same start without re-seeding (stuck at two clusters, weight 0)."""
    X, z, rng = _bernoulli_data()
    K = 3
    if family == "bernoulli":
        cls, kw, theta0 = fastvem.BernoulliMixture, "probabilities_init", \
            np.array([[0.6] * 8, [0.3] * 8, [0.6] * 8])
    else:
        rates = np.array([[1.0] * 4, [8.0] * 4, [1.0, 1.0, 8.0, 8.0]])
        X = rng.poisson(rates[z]).astype(float)
        cls, kw, theta0 = fastvem.PoissonMixture, "rates_init", \
            np.array([[2.0] * 4, [6.0] * 4, [2.0] * 4])
    fit = _dead_start(cls, X, z, K, kw, theta0)["crisp"]
    stuck = _stuck(lambda: _dead_start(cls, X, z, K, kw, theta0)["crisp"])
    assert any("re-seeded empty components [2]" in text for _, text in fit.trace_["events"])
    assert stuck.trace_["events"] == [] and stuck.weights_[2] == 0.0
    assert np.all(fit.weights_ > 0.2)
    assert fit.lower_bound_ > stuck.lower_bound_ + 0.05
    assert adjusted_rand_score(z, fit.predict(X)) > adjusted_rand_score(z, stuck.predict(X)) + 0.1


def test_reseeded_categorical_and_product_fits_stay_valid():
    rng = np.random.RandomState(5)
    N = 2000
    z = rng.randint(2, size=N)
    X = np.column_stack([(z + (rng.rand(N) < 0.1)) % 3, rng.randint(2, size=N),
                         rng.normal(3.0 * z, 1.0)])
    fam = Product([("categorical", [0, 1]), ("gaussian_diag", [2])])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fastvem.Mixture(fam, 4, method="crisp", random_state=0, max_iter=50).fit(X)
    assert np.all(np.isfinite(fit.params_))
    for block in fit.component_params_[0]["probabilities"]:
        np.testing.assert_allclose(block.sum(1), 1.0)
    assert np.all(fit.component_params_[1]["variances"] > 0)
    # four components on two clusters: a refinement of the truth, each component
    # holding (almost) one class
    pred = fit.predict(X)
    purity = sum(np.bincount(z[pred == k]).max() for k in np.unique(pred)) / len(z)
    assert purity > 0.9
