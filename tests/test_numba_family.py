"""User-defined exponential families in numba (fastvem.families.ExponentialFamily):
a Poisson and a diagonal-Gaussian family written as row functions equal the
built-in PoissonMixture and GaussianMixture(covariance_type='diag') from the same
start, iterate for iterate; the row functions are checked before any kernel."""
import numpy as np
import pytest

numba = pytest.importorskip("numba")
from numba import njit  # noqa: E402

import fastvem  # noqa: E402
from fastvem.families import ExponentialFamily  # noqa: E402
from fastvem.families.numba_family import (example_diagonal_gaussian,  # noqa: E402
                                           example_poisson)

POISSON = example_poisson()
GAUSS = example_diagonal_gaussian()
poisson_log_h = POISSON.log_base_measure
poisson_log_a = POISSON.log_partition
poisson_to_eta = POISSON.mean_to_natural
poisson_stats = POISSON.statistics


@pytest.mark.parametrize("method", ["em", "crisp"])
def test_numba_poisson_equals_builtin(method):
    rng = np.random.default_rng(0)
    rates = rng.uniform(1.0, 9.0, (3, 5))
    X = rng.poisson(rates[rng.integers(3, size=3000)]).astype(np.float64)
    w0, r0 = np.full(3, 1 / 3), rng.uniform(2.0, 6.0, (3, 5))
    ref = fastvem.PoissonMixture(3, method=method, weights_init=w0, rates_init=r0,
                                 max_iter=6, tol=0.0)
    ours = fastvem.Mixture(POISSON, 3, method=method, weights_init=w0,
                           natural_params_init=np.log(r0), max_iter=6, tol=0.0)
    with pytest.warns(Warning):
        ref.fit(X)
    with pytest.warns(Warning):
        ours.fit(X)
    np.testing.assert_allclose(ours.weights_, ref.weights_, rtol=1e-10)
    np.testing.assert_allclose(np.exp(ours.natural_params_), ref.rates_, rtol=1e-10)
    np.testing.assert_allclose(ours.lower_bounds_, ref.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-10)


@pytest.mark.parametrize("method", ["em", "crisp"])
def test_numba_diagonal_gaussian_equals_gaussian_mixture(method):
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(m, s, (800, 3)) for m, s in ((-2, 0.5), (0, 1.0), (3, 0.8))])
    w0 = np.full(3, 1 / 3)
    mu0 = X[[10, 900, 1700]]
    var0 = np.full((3, 3), 1.0)
    ref = fastvem.GaussianMixture(3, covariance_type="diag", method=method, reg_covar=0.0,
                                  weights_init=w0, means_init=mu0, precisions_init=1 / var0,
                                  max_iter=6, tol=0.0)
    eta0 = np.hstack([mu0 / var0, -0.5 / var0])
    ours = fastvem.Mixture(GAUSS, 3, method=method, weights_init=w0, natural_params_init=eta0,
                           max_iter=6, tol=0.0)
    with pytest.warns(Warning):
        ref.fit(X)
    with pytest.warns(Warning):
        ours.fit(X)
    eta = ours.natural_params_
    var = -0.5 / eta[:, 3:]
    np.testing.assert_allclose(ours.weights_, ref.weights_, rtol=1e-9)
    np.testing.assert_allclose(eta[:, :3] * var, ref.means_, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(var, ref.covariances_, rtol=1e-8)
    np.testing.assert_allclose(ours.lower_bounds_, ref.lower_bounds_, rtol=1e-10)


def test_numba_family_thread_invariance_and_refusals():
    rng = np.random.default_rng(2)
    X = rng.poisson(4.0, (20000, 4)).astype(np.float64)
    a, b = (fastvem.Mixture(POISSON, 2, max_iter=5, tol=0.0, random_state=0,
                            n_threads=t).fit(X) for t in (1, 3))
    assert np.array_equal(a.natural_params_, b.natural_params_)
    with pytest.raises(ValueError, match="conjugate"):
        fastvem.Mixture(POISSON, 2, method="meanfield").fit(X)

    @njit
    def bad_stats(x, t):                      # writes NaN
        for d in range(t.shape[0]):
            t[d] = np.nan

    with pytest.raises(ValueError, match="non-finite"):
        fastvem.Mixture(ExponentialFamily(lambda D: D, bad_stats, poisson_log_h, poisson_log_a,
                                          poisson_to_eta), 2).fit(X)

    @njit
    def short_stats(x, t):                    # writes only the first entry
        t[0] = x[0]

    with pytest.raises(ValueError, match="non-finite"):
        fastvem.Mixture(ExponentialFamily(lambda D: D, short_stats, poisson_log_h,
                                          poisson_log_a, poisson_to_eta), 2).fit(X)
    with pytest.raises(TypeError, match="njit"):
        ExponentialFamily(lambda D: D, lambda x, t: None, poisson_log_h, poisson_log_a,
                          poisson_to_eta)
    with pytest.raises(ValueError, match="n_statistics"):
        fastvem.Mixture(ExponentialFamily(lambda D: 0, poisson_stats, poisson_log_h,
                                          poisson_log_a, poisson_to_eta), 2).fit(X)
