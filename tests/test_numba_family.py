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



def test_user_functions_with_a_wrong_signature_are_clear_errors():
    """A row function that numba cannot call as documented is a TypeError naming it
    (not numba's own error from inside the compile), before any kernel runs."""
    X = np.random.default_rng(3).poisson(4.0, (200, 3)).astype(np.float64)

    @njit
    def stats_one_arg(x):                     # statistics(x, t) expected
        return x[0]

    @njit
    def log_h_two_args(x, y):                 # log_base_measure(x) expected
        return 0.0

    @njit
    def log_a_two_args(eta, extra):           # log_partition(eta) expected
        return 0.0

    @njit
    def to_eta_one_arg(m):                    # mean_to_natural(m, eta) expected
        return m

    cases = [
        ((stats_one_arg, poisson_log_h, poisson_log_a, poisson_to_eta), r"statistics\(x, t\)"),
        ((poisson_stats, log_h_two_args, poisson_log_a, poisson_to_eta),
         r"log_base_measure\(x\)"),
        ((poisson_stats, poisson_log_h, log_a_two_args, poisson_to_eta), r"log_partition\(eta\)"),
        ((poisson_stats, poisson_log_h, poisson_log_a, to_eta_one_arg),
         r"mean_to_natural\(m, eta\)"),
    ]
    for funcs, name in cases:
        with pytest.raises(TypeError, match=name):
            fastvem.Mixture(ExponentialFamily(lambda D: D, *funcs), 2, max_iter=3,
                            random_state=0).fit(X)


def test_missing_numba_is_an_import_error_naming_the_extra(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "numba", None)       # import numba now fails
    with pytest.raises(ImportError, match=r"fastvem\[numba\]"):
        ExponentialFamily(lambda D: D, poisson_stats, poisson_log_h, poisson_log_a,
                          poisson_to_eta)

# ----------------------------------------------- conjugate: meanfield and gibbs
from fastvem.families import Conjugate, GaussianDiag  # noqa: E402

POISSON_CONJ = example_poisson(shape_prior=1.5, rate_prior=0.7)
BETA0, M0, B0 = 2.0, 0.5, 1.3
GAUSS_CONJ = example_diagonal_gaussian(BETA0, M0, B0)


def _fit(est, X):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X)


def _gauss_data():
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(m, s, (800, 3)) for m, s in ((-2, 0.5), (0, 1.0), (3, 0.8))])
    return X, X[[10, 900, 1700]], np.ones((3, 3))


def _builtin_gauss(X):
    """The built-in diagonal Gaussian with the Normal-Gamma prior the numba conjugate
    has (a0 = beta0 / 2 + 3 / 2, b0), about the origin."""
    fam = GaussianDiag(3, reg_covar=1e-300, mean_precision_prior=BETA0, mean_prior=M0,
                       degrees_of_freedom_prior=BETA0 + 3,
                       covariance_prior=2 * B0 / (BETA0 + 3), reference=np.zeros(3))
    fam.prepare(X, fitting=True)
    return fam


@pytest.mark.parametrize("n_iter", [1, 7])
def test_numba_poisson_meanfield_equals_builtin(n_iter):
    rng = np.random.default_rng(0)
    rates = rng.uniform(1.0, 9.0, (3, 5))
    X = rng.poisson(rates[rng.integers(3, size=3000)]).astype(np.float64)
    w0, r0 = np.full(3, 1 / 3), rng.uniform(2.0, 6.0, (3, 5))
    ref = _fit(fastvem.PoissonMixture(3, method="meanfield", weights_init=w0, rates_init=r0,
                                      shape_prior=1.5, rate_prior=0.7, max_iter=n_iter,
                                      tol=0.0), X)
    ours = _fit(fastvem.Mixture(POISSON_CONJ, 3, method="meanfield", weights_init=w0,
                                natural_params_init=np.log(r0), max_iter=n_iter, tol=0.0), X)
    np.testing.assert_allclose(ours.lower_bounds_, ref.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(ours.weights_, ref.weights_, rtol=1e-10)
    shape, rate = ref.posterior_
    np.testing.assert_allclose(ours.posterior_[0], shape, rtol=1e-10)      # tau = shape
    np.testing.assert_allclose(ours.posterior_[1], rate, rtol=1e-10)       # nu = rate
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-10)


@pytest.mark.parametrize("n_iter", [1, 7])
def test_numba_gaussian_meanfield_and_em_equal_builtin(n_iter):
    X, mu0, var0 = _gauss_data()
    w0 = np.full(3, 1 / 3)
    eta0 = np.hstack([mu0 / var0, -0.5 / var0])
    for method, fam_ours in (("meanfield", GAUSS_CONJ), ("em", GAUSS), ("crisp", GAUSS)):
        fam = _builtin_gauss(X)
        ref = _fit(fastvem.Mixture(fam, 3, method=method, weights_init=w0,
                                   params_init=fam.theta_from(mu0, var0), max_iter=n_iter,
                                   tol=0), X)
        ours = _fit(fastvem.Mixture(fam_ours, 3, method=method, weights_init=w0,
                                    natural_params_init=eta0, max_iter=n_iter, tol=0), X)
        np.testing.assert_allclose(ours.lower_bounds_, ref.lower_bounds_, rtol=1e-10)
        np.testing.assert_allclose(ours.weights_, ref.weights_, rtol=1e-10)
        if method == "meanfield":
            m, beta, a, b = fam.unpack_posterior(ref.posterior_)
            tau, nu = ours.posterior_[0], ours.posterior_[1][:, 0]
            np.testing.assert_allclose(tau[:, :3] / nu[:, None], m, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(nu[:, None] + 0 * beta, beta, rtol=1e-12)
            np.testing.assert_allclose(0.5 * nu[:, None] + 1.5 + 0 * a, a, rtol=1e-12)


def test_numba_gibbs_recovers_the_rates_and_is_reproducible():
    rng = np.random.default_rng(3)
    rates = np.array([[1.0, 8.0, 3.0], [7.0, 1.0, 5.0]])
    z = rng.integers(2, size=4000)
    X = rng.poisson(rates[z]).astype(np.float64)
    fits = [_fit(fastvem.Mixture(POISSON_CONJ, 2, method="gibbs", random_state=0, n_samples=40,
                                 burn_in=20, n_threads=t), X) for t in (1, 3)]
    assert np.array_equal(fits[0].natural_params_, fits[1].natural_params_)
    est = np.exp(fits[0].natural_params_)
    order = np.argsort(est[:, 0])
    np.testing.assert_allclose(est[order], rates, rtol=0.06)
    assert fits[0].posterior_samples_["theta"].shape == (2 * 40, 2, 3)     # two chains


def test_conjugate_refusals():
    X = np.random.default_rng(2).poisson(4.0, (500, 4)).astype(np.float64)
    c = POISSON_CONJ.conjugate
    fns = [c.expected_natural, c.expected_log_partition, c.log_normalizer, c.sample_natural,
           c.natural_to_mean]
    with pytest.raises(TypeError, match="must be a fastvem.families.Conjugate"):
        ExponentialFamily(lambda D: D, poisson_stats, poisson_log_h, poisson_log_a,
                          poisson_to_eta, conjugate={"expected_natural": fns[0]})
    with pytest.raises(TypeError, match="log_normalizer must be a numba.njit"):
        Conjugate(fns[0], fns[1], lambda tau, nu: 0.0, fns[3], fns[4], np.ones(4), 1.0)
    with pytest.raises(ValueError, match="prior_count must be a finite number > 0"):
        Conjugate(*fns, np.ones(4), 0.0)

    def family(conj):
        return ExponentialFamily(lambda D: D, poisson_stats, poisson_log_h, poisson_log_a,
                                 poisson_to_eta, conjugate=conj)

    with pytest.raises(ValueError, match="prior_statistics must be 4 finite values"):
        fastvem.Mixture(family(Conjugate(*fns, np.ones(3), 1.0)), 2,
                        method="meanfield").fit(X)

    @njit
    def nan_expectation(tau, nu, out):
        for d in range(out.shape[0]):
            out[d] = np.nan

    with pytest.raises(ValueError, match="expected_natural left non-finite values"):
        fastvem.Mixture(family(Conjugate(nan_expectation, *fns[1:], np.ones(4), 1.0)), 2,
                        method="meanfield", random_state=0).fit(X)

    @njit
    def long_mean(eta, m):
        for d in range(m.shape[0] + 1):
            m[d] = 1.0

    with pytest.raises(ValueError, match="natural_to_mean"):
        fastvem.Mixture(family(Conjugate(*fns[:4], long_mean, np.ones(4), 1.0)), 2,
                        method="meanfield", random_state=0).fit(X)
    # continuing a fit needs E[T(x)] at eta: a clear error without a conjugate
    est = fastvem.Mixture(POISSON, 2, max_iter=3, random_state=0)
    _fit(est, X)
    with pytest.raises(ValueError, match="natural_to_mean"):
        est.partial_fit(X)


def _two_state_counts(seed=0):
    rng = np.random.default_rng(seed)
    z = np.repeat(rng.integers(0, 2, 60), 10)
    X = rng.poisson(np.where(z[:, None] == 1, [6.0, 1.0], [1.0, 5.0])).astype(float)
    return X, z, [100] * 6


def test_numba_family_as_hmm_emissions_em_and_gibbs():
    """A user's Numba family as an HMM's emissions: em reaches the built-in Poisson
    HMM's optimum; gibbs (its chain draws with a Generator) runs, is reproducible
    and finds the states; sample() names what the family lacks."""
    X, z, lengths = _two_state_counts()
    em = fastvem.HMM(example_poisson(shape_prior=1.0), 2, n_iter=200, tol=1e-10,
                     random_state=0).fit(X, lengths)
    ref = fastvem.HMM("poisson", 2, n_iter=200, tol=1e-10, random_state=0).fit(X, lengths)
    assert abs(em.score(X, lengths) - ref.score(X, lengths)) < 1e-6 * abs(ref.score(X, lengths))
    fits = [fastvem.HMM(example_poisson(shape_prior=1.0), 2, method="gibbs", n_iter=60,
                        random_state=3).fit(X, lengths) for _ in range(2)]
    np.testing.assert_array_equal(fits[0].transmat_, fits[1].transmat_)
    states = fits[0].predict(X, lengths)
    agree = max(np.mean(states == z), np.mean(states != z))
    assert agree > 0.9
    assert np.all(np.diag(fits[0].transmat_) > 0.8)
    with pytest.raises(NotImplementedError, match="sample_rows"):
        em.sample(5)
