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
    assert g.mixing_["log_joint"][0] < 1.1 and g.mixing_["log_joint"][1] > 10
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
    assert back.rhat_ == g.rhat_ and back.n_relabelled_ == g.n_relabelled_
    np.testing.assert_array_equal(back.occupied_, g.occupied_)
    np.testing.assert_array_equal(back.predict_proba(X), g.predict_proba(X))
    np.testing.assert_array_equal(back.mixing_["log_joint"], g.mixing_["log_joint"])


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


# ---------------------------------------------------------------- label switching
def _draw_responsibilities(g, X):
    """(S, n, K) responsibilities of X under each kept draw (NumPy oracle)."""
    from scipy.special import logsumexp
    from scipy.stats import multivariate_normal
    ps = g.posterior_samples_
    S, K = ps["weights"].shape
    out = np.empty((S, X.shape[0], K))
    for s in range(S):
        lp = np.column_stack([np.log(ps["weights"][s, k]) + multivariate_normal(
            ps["means"][s, k], ps["covariances"][s, k]).logpdf(X) for k in range(K)])
        out[s] = np.exp(lp - logsumexp(lp, axis=1, keepdims=True))
    return out


def test_relabelling_puts_permuted_draws_back_exactly():
    from fastvem.diagnostics import permute_draws, relabel
    X, _, _ = make_gaussian_mixture(600, 2, 4, "full", separation=4.0, random_state=3)
    g = fastvem.GaussianMixture(4, method="gibbs", random_state=0, n_samples=60, burn_in=40,
                                n_chains=2).fit(X)
    probs = _draw_responsibilities(g, X[::5])
    rng = np.random.default_rng(1)
    scramble = np.stack([rng.permutation(4) for _ in range(probs.shape[0])])
    scrambled = np.take_along_axis(probs, scramble[:, None, :], axis=2)
    perms, _ = relabel(scrambled)
    back = permute_draws({"p": scrambled.transpose(0, 2, 1)}, perms)["p"].transpose(0, 2, 1)
    # the common labels are the original ones up to one permutation for every draw
    glob = [int(np.argmin(np.abs(probs[0] - back[0][:, [j]]).sum(0))) for j in range(4)]
    assert sorted(glob) == [0, 1, 2, 3]
    np.testing.assert_array_equal(back, probs[:, :, glob])
    # and the fitted draws are already on common labels: relabelling changes nothing
    again, _ = relabel(probs)
    assert np.all(again == again[0])


def test_labels_are_common_across_chains_and_counted():
    X, _, _ = make_gaussian_mixture(900, 2, 3, "full", separation=5.0, random_state=4)
    g = fastvem.GaussianMixture(3, method="gibbs", random_state=2, n_samples=80, burn_in=40,
                                n_chains=4).fit(X)
    m = g.posterior_samples_["means"]                          # (4 * 80, 3, 2)
    # every draw's component k sits next to the summary's component k
    nearest = np.argmin(((m[:, :, None, :] - g.means_[None, None]) ** 2).sum(-1), axis=2)
    assert np.all(nearest == np.arange(3))
    assert 0 <= g.n_relabelled_ <= m.shape[0]
    em = fastvem.GaussianMixture(3, random_state=0).fit(X)      # the posterior mean ~ the MLE
    order = [int(np.argmin(((g.means_ - t) ** 2).sum(1))) for t in em.means_]
    np.testing.assert_allclose(g.means_[order], em.means_, atol=0.1)


def test_predict_proba_is_the_mean_of_the_draws_responsibilities():
    X, _, _ = make_gaussian_mixture(400, 2, 3, "full", separation=2.5, random_state=6)
    g = fastvem.GaussianMixture(3, method="gibbs", random_state=0, n_samples=25, burn_in=25,
                                n_chains=2).fit(X)
    oracle = _draw_responsibilities(g, X).mean(0)
    np.testing.assert_allclose(g.predict_proba(X), oracle, atol=1e-10)
    np.testing.assert_array_equal(g.predict(X), np.argmax(oracle, axis=1))
    # score_samples stays the log of the mean density over the draws
    from scipy.stats import multivariate_normal
    ps = g.posterior_samples_
    dens = np.mean([sum(ps["weights"][s, k] * multivariate_normal(
        ps["means"][s, k], ps["covariances"][s, k]).pdf(X) for k in range(3))
        for s in range(ps["weights"].shape[0])], axis=0)
    np.testing.assert_allclose(g.score_samples(X), np.log(dens), rtol=1e-10)


# ---------------------------------------------------------------- empty components
def test_superfluous_component_is_reported_empty():
    X, _, truth = make_gaussian_mixture(600, 2, 2, "full", separation=6.0, random_state=7)
    g = fastvem.GaussianMixture(3, method="gibbs", random_state=0, n_samples=200, burn_in=100,
                                n_chains=2).fit(X)
    post = g.n_occupied_posterior_
    assert post.shape == (4,) and abs(post.sum() - 1) < 1e-12
    assert np.argmax(post) == 2 and post[2] > 0.5, post
    assert g.occupied_.sum() == 2
    empty = int(np.flatnonzero(~g.occupied_)[0])
    assert g.weights_[empty] < 0.01
    # the summaries of the occupied components are the truth's; the empty one does
    # not pollute them (its mean is inside the data, its covariance no wider than it)
    occ = np.flatnonzero(g.occupied_)
    order = [int(occ[np.argmin(((g.means_[occ] - t) ** 2).sum(1))]) for t in truth["means"]]
    np.testing.assert_allclose(g.means_[order], truth["means"], atol=0.2)
    assert np.all((g.means_ >= X.min(0)) & (g.means_ <= X.max(0)))
    assert np.trace(g.covariances_[empty]) <= np.trace(np.cov(X.T)) * 1.0001


# ---------------------------------------------------------------- diagnostics
def test_short_chain_is_not_converged_and_warns():
    from sklearn.exceptions import ConvergenceWarning
    X, _, _ = make_gaussian_mixture(2000, 3, 4, "full", separation=1.5, random_state=8)
    g = fastvem.GaussianMixture(4, method="gibbs", random_state=0, n_samples=8, burn_in=0,
                                n_chains=2)
    with pytest.warns(ConvergenceWarning, match="did not mix"):
        g.fit(X)
    assert g.converged_ is False
    assert g.rhat_ >= 1.01 or g.ess_ < 200
    assert set(g.mixing_) >= {"log_joint", "allocation_entropy", "sorted_weight_0", "weight_0",
                              "mean_0_0"}


def test_long_chains_on_separated_data_converge():
    X, _, _ = make_gaussian_mixture(1000, 2, 2, "diag", separation=8.0, random_state=9)
    g = fastvem.GaussianMixture(2, covariance_type="diag", method="gibbs", random_state=0,
                                n_samples=400, burn_in=50, n_chains=2).fit(X)
    assert g.converged_, {k: v for k, v in g.mixing_.items() if v[0] >= 1.01 or v[1] < 200}
    assert g.rhat_ < 1.01 and g.ess_ >= 200


def test_one_chain_uses_split_rhat():
    X, _, _ = make_gaussian_mixture(500, 2, 2, "full", separation=6.0, random_state=1)
    g = fastvem.GaussianMixture(2, method="gibbs", random_state=0, n_samples=300, burn_in=50,
                                n_chains=1).fit(X)
    assert np.isfinite(g.rhat_) and g.mixing_["log_joint"].shape == (2,)


def test_callback_stopping_during_burn_in_keeps_the_last_state():
    X = fastvem.datasets.load_old_faithful()[0]
    g = fastvem.GaussianMixture(2, method="gibbs", random_state=0, n_samples=20, burn_in=50)
    with pytest.warns(Warning):
        g.fit(X, callback=lambda it, obj, p: it >= 5)
    assert g.posterior_samples_["weights"].shape == (1, 2)
    assert g.converged_ is False
    assert np.all(np.isfinite(g.predict_proba(X)))


# ---------------------------------------------------------------- degenerate data
@pytest.mark.parametrize("case", ["constant_column", "identical_rows", "tiny_scale",
                                  "one_nonzero_weight"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_gibbs_fits_degenerate_data_em_fits(case, covariance_type):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    sw = None
    if case == "constant_column":
        X[:, 1] = 4.0
    elif case == "identical_rows":
        X[:] = X[0]
    elif case == "tiny_scale":
        X *= 1e-300
    else:
        sw = np.zeros(60)
        sw[7] = 1.0
    kw = dict(covariance_type=covariance_type, random_state=0)
    fastvem.GaussianMixture(2, **kw).fit(X, sample_weight=sw)       # em fits it
    g = fastvem.GaussianMixture(2, method="gibbs", n_samples=20, burn_in=10, **kw)
    g.fit(X, sample_weight=sw)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert np.all(np.isfinite(getattr(g, name))), name
    assert np.all(np.isfinite(g.predict_proba(X)))


# ---------------------------------------------------------------- real data
@pytest.mark.parametrize("loader", ["load_iris", "load_wine", "load_breast_cancer"])
def test_real_data_default_settings(loader):
    """Default settings, seeds 0-4, K = number of classes.  gibbs's summaries are
    sane (means inside the data's box; no covariance wider than 1.5 x the data's
    total variance -- breast cancer's malignant class itself is 1.10 x) and its
    partition is at least as good as meanfield's: its ARI against the classes is
    within 0.05 of meanfield's median, or else the model's own posterior prefers
    it (the collapsed log joint log p(X, z) of gibbs's partition, weights and
    Normal-Wishart parameters integrated out, is above meanfield's).  On iris the
    second case holds: under these priors the posterior favours keeping
    versicolor and virginica mostly together (see tests/oracle.py)."""
    import sklearn.datasets
    from sklearn.metrics import adjusted_rand_score
    from oracle import collapsed_log_joint
    X, y = getattr(sklearn.datasets, loader)(return_X_y=True)
    K = len(np.unique(y))
    total = np.trace(np.cov(X.T))
    ari, lj = {}, {}
    for method in ("meanfield", "gibbs"):
        ari[method], lj[method] = [], []
        for seed in range(5):
            g = fastvem.GaussianMixture(K, method=method, random_state=seed).fit(X)
            z = g.predict(X)
            ari[method].append(adjusted_rand_score(y, z))
            lj[method].append(collapsed_log_joint(
                X, z, K, g.mean_prior_, g.mean_precision_prior_, g.degrees_of_freedom_prior_,
                g.covariance_prior_, g.weight_concentration_prior_type,
                g.weight_concentration_prior_))
            if method == "gibbs":
                assert np.all((g.means_ >= X.min(0)) & (g.means_ <= X.max(0)))
                assert np.trace(g.covariances_, axis1=1, axis2=2).max() < 1.5 * total
    good_ari = np.median(ari["gibbs"]) >= np.median(ari["meanfield"]) - 0.05
    preferred = np.median(lj["gibbs"]) > np.median(lj["meanfield"])
    assert good_ari or preferred, (ari, lj)
