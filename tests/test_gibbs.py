"""Blocked Gibbs for GaussianMixture: closed-form posteriors, recovery, determinism."""
import warnings

import numpy as np
import pytest

import fastvem
from fastvem.datasets import make_gaussian_mixture
from fastvem.diagnostics import effective_sample_size, split_rhat

from conftest import COVARIANCE_TYPES

warnings.simplefilter("ignore")


def test_k1_full_matches_normal_wishart_posterior():
    """With one component z is trivial, so the draws are exact posterior draws:
    their mean must match the Normal-Wishart posterior within Monte-Carlo error."""
    rng = np.random.default_rng(0)
    N, D = 40, 2
    X = rng.normal(size=(N, D)) @ np.array([[1.0, 0.3], [0.0, 0.5]]) + [1.0, -2.0]
    m0, b0, v0, c0 = np.zeros(D), 0.5, D + 2.0, np.eye(D)
    S = 4000
    g = fastvem.GaussianMixture(1, method="gibbs", n_samples=S, burn_in=0, n_chains=1,
                                mean_prior=m0, mean_precision_prior=b0,
                                degrees_of_freedom_prior=v0, covariance_prior=c0,
                                random_state=1, reg_covar=0.0).fit(X)
    xbar = X.mean(0)
    Sx = (X - xbar).T @ (X - xbar)
    bN, vN = b0 + N, v0 + N
    mN = (b0 * m0 + N * xbar) / bN
    WNinv = c0 + Sx + b0 * N / bN * np.outer(xbar - m0, xbar - m0)
    E_cov = WNinv / (vN - D - 1)                      # E[Lambda^-1]
    draws_mu = g.posterior_samples_["means"][:, 0]
    draws_cov = g.posterior_samples_["covariances"][:, 0]
    sd_mu = draws_mu.std(0) / np.sqrt(S)
    assert np.all(np.abs(draws_mu.mean(0) - mN) < 5 * sd_mu)
    sd_cov = draws_cov.std(0) / np.sqrt(S)
    assert np.all(np.abs(draws_cov.mean(0) - E_cov) < 5 * sd_cov + 1e-12)
    # posterior sd of the mean: Student-t marginal, var = WNinv / (bN (vN - D - 1))
    np.testing.assert_allclose(draws_mu.var(0), np.diag(WNinv) / (bN * (vN - D - 1)), rtol=0.1)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_recovers_separated_truth(covariance_type):
    X, labels, truth = make_gaussian_mixture(3000, 2, 3, covariance_type, separation=6.0,
                                             random_state=2)
    g = fastvem.GaussianMixture(3, covariance_type=covariance_type, method="gibbs",
                                random_state=0, n_samples=60, burn_in=30).fit(X)
    order = [int(np.argmin(((g.means_ - m) ** 2).sum(1))) for m in truth["means"]]
    np.testing.assert_allclose(g.means_[order], truth["means"], atol=0.15)
    np.testing.assert_allclose(g.weights_[order], truth["weights"], atol=0.03)
    assert g.posterior_samples_["means"].shape == (2 * 60, 3, 2)
    assert g.log_joint_.shape == (2, 90)
    assert g.trace_["seconds"].shape == (90,) and np.all(g.trace_["seconds"] > 0)
    assert g.rhat_ < 1.1 and g.ess_ > 10
    # held-out: log of the mean density over draws is close to the truth's plug-in
    Xt, _, _ = make_gaussian_mixture(2000, 2, 3, covariance_type, separation=6.0,
                                     random_state=2)
    em = fastvem.GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    assert abs(g.score(Xt) - em.score(Xt)) < 0.05


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_identical_draws_for_any_thread_count(covariance_type):
    X, _, _ = make_gaussian_mixture(20000, 3, 4, covariance_type, separation=2.0, random_state=5)
    kw = dict(covariance_type=covariance_type, method="gibbs", random_state=0, n_samples=5,
              burn_in=3, n_chains=1)
    a = fastvem.GaussianMixture(4, n_threads=1, **kw).fit(X)
    b = fastvem.GaussianMixture(4, n_threads=2, **kw).fit(X)
    np.testing.assert_array_equal(a.posterior_samples_["means"], b.posterior_samples_["means"])
    np.testing.assert_array_equal(a.log_joint_, b.log_joint_)


@pytest.mark.parametrize("bad, match", [(dict(n_samples=0), "n_samples"),
                                        (dict(burn_in=-1), "burn_in"),
                                        (dict(thin=0), "thin"), (dict(n_chains=0), "n_chains"),
                                        (dict(n_samples=2.5), "n_samples")])
def test_bad_sampler_parameters(bad, match):
    X = fastvem.datasets.load_old_faithful()[0]
    with pytest.raises((ValueError, TypeError), match=match):
        fastvem.GaussianMixture(2, method="gibbs", **bad).fit(X)


def test_rhat_and_ess_on_known_chains():
    rng = np.random.default_rng(0)
    iid = rng.normal(size=(4, 1000))
    assert abs(split_rhat(iid) - 1.0) < 0.01
    assert 3000 < effective_sample_size(iid) < 5000
    shifted = iid + np.arange(4)[:, None]          # chains disagree
    assert split_rhat(shifted) > 1.5
    ar = np.zeros((2, 2000))
    for t in range(1, 2000):                       # AR(1), phi = 0.9: ESS ~ n (1-phi)/(1+phi)
        ar[:, t] = 0.9 * ar[:, t - 1] + rng.normal(size=2)
    assert 100 < effective_sample_size(ar) < 400


def test_save_load_keeps_draws(tmp_path):
    X = fastvem.datasets.load_old_faithful()[0]
    g = fastvem.GaussianMixture(2, method="gibbs", n_samples=20, burn_in=10,
                                random_state=0).fit(X)
    path = str(tmp_path / "g.npz")
    g.save(path)
    back = fastvem.load(path)
    np.testing.assert_array_equal(back.posterior_samples_["means"], g.posterior_samples_["means"])
    np.testing.assert_array_equal(back.score_samples(X), g.score_samples(X))
    assert back.rhat_ == g.rhat_


def test_simulation_based_calibration():
    """SBC (Talts et al. 2018): theta drawn from the prior, data from the model, the
    rank of a label-invariant functional of the true theta (the mixture mean
    sum_k pi_k mu_k) among posterior draws must be uniform."""
    from scipy import stats
    rng = np.random.default_rng(12345)
    K, N, L, reps = 2, 25, 19, 150
    a0, b0, v0, c0 = 1.0, 1.0, 3.0, 1.0
    ranks = []
    for rep in range(reps):
        pi = rng.dirichlet(np.full(K, a0))
        lam = rng.gamma(v0 / 2, 2.0 / c0, size=K)            # Wishart(v0, 1/c0) in 1-D
        mu = rng.normal(0.0, 1.0 / np.sqrt(b0 * lam))
        z = rng.choice(K, size=N, p=pi)
        X = (mu[z] + rng.normal(size=N) / np.sqrt(lam[z]))[:, None]
        g = fastvem.GaussianMixture(
            K, method="gibbs", covariance_type="full", n_samples=L, burn_in=20, thin=3,
            n_chains=1, random_state=rep, reg_covar=0.0, init_params="random",
            weight_concentration_prior_type="dirichlet_distribution",
            weight_concentration_prior=a0, mean_prior=[0.0], mean_precision_prior=b0,
            degrees_of_freedom_prior=v0, covariance_prior=[[c0]]).fit(X)
        ps = g.posterior_samples_
        f_draws = (ps["weights"] * ps["means"][:, :, 0]).sum(1)
        ranks.append(int((f_draws < float(pi @ mu)).sum()))
    counts = np.bincount(ranks, minlength=L + 1).reshape(5, 4).sum(1)   # 5 bins of 4 ranks
    assert stats.chisquare(counts).pvalue > 1e-3, counts
