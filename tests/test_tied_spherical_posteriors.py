"""Mean field and gibbs for the tied and spherical Gaussians (GaussianTied,
GaussianSpherical; GaussianHMM covariance_type 'tied' / 'spherical'): the
conjugate posterior against a NumPy oracle written from Bayes' rule on labelled
data, its inverse, the draws' moments, the ELBO never decreasing, ground truth
recovered, gibbs keeping the covariance tied."""
import warnings

import numpy as np
import pytest
from scipy.special import digamma
from sklearn.datasets import load_iris

import fastvem
from fastvem.families import GaussianSpherical, GaussianTied


def _labelled(seed=0, N=300, D=3, K=3):
    rs = np.random.RandomState(seed)
    z = rs.randint(K, size=N)
    X = rs.randn(N, D) + 3.0 * rs.randn(K, D)[z]
    return X, z


def _family_stats(fam, X, z, K):
    """The family's statistics of hard labels (its own layout)."""
    fam.prepare(X, fitting=True)
    S = fam.n_statistics()
    feats = fam.dense_features(X) - fam.ref
    D = X.shape[1]
    stats, nk = np.zeros((K, S)), np.bincount(z, minlength=K).astype(float)
    for k in range(K):
        xk = feats[z == k]
        if isinstance(fam, GaussianSpherical):
            stats[k] = np.concatenate((xk.sum(0), (xk * xk).sum(0)))
        else:
            outer = xk.T @ xk
            stats[k] = np.concatenate((xk.sum(0), outer[np.triu_indices(D)]))
    return stats, nk


def test_tied_posterior_equals_bayes_rule():
    X, z = _labelled(0)
    K, (N, D) = 3, X.shape
    fam = GaussianTied(D)
    stats, nk = _family_stats(fam, X, z, K)
    prior = fam.default_prior(X)
    m0, beta0, nu0, W0inv = prior
    xc = X - fam.ref
    # Bayes' rule on the labelled data: q(Lambda) = Wishart(nu0 + N, W), W^-1 = W0^-1 +
    # sum_k (scatter about xbar_k + beta0 N_k / (beta0 + N_k) (xbar_k - m0)(...)^T)
    Winv = W0inv.copy()
    for k in range(K):
        xk = xc[z == k]
        xbar = xk.mean(0)
        Winv += (xk - xbar).T @ (xk - xbar)
        d = xbar - m0
        Winv += beta0 * nk[k] / (beta0 + nk[k]) * np.outer(d, d)
    m, beta, nu, Wq = fam.posterior(stats, nk, prior)
    for k in range(K):
        np.testing.assert_allclose(Wq[k], Winv, rtol=1e-10)
        np.testing.assert_allclose(m[k], (beta0 * m0 + xc[z == k].sum(0)) / (beta0 + nk[k]),
                                   rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(nu, nu0 + N)
    np.testing.assert_allclose(beta, beta0 + nk)
    # the inverse: statistics whose posterior is q
    s2, n2 = fam.posterior_statistics((m, beta, nu, Wq), prior)
    for a, b in zip(fam.posterior(s2, n2, prior), (m, beta, nu, Wq)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
    # KL: the Wishart counted once (the full family's sum counts it per component)
    full = fastvem.families.GaussianFull(D)
    full.ref = fam.ref
    wishart, normal = full._kl_parts((m, beta, nu, Wq), prior)
    assert fam.kl((m, beta, nu, Wq), prior) == pytest.approx(wishart[0] + normal.sum())
    assert np.allclose(wishart, wishart[0])


def test_spherical_posterior_equals_bayes_rule():
    X, z = _labelled(1)
    K, D = 3, X.shape[1]
    fam = GaussianSpherical(D)
    stats, nk = _family_stats(fam, X, z, K)
    prior = fam.default_prior(X)
    m0, beta0, a0, b0 = prior
    assert a0 == pytest.approx(0.5 * D * D)                 # dof = D pooled over D features
    assert b0 / a0 == pytest.approx(np.mean(X.var(0)), rel=1e-12)
    xc = X - fam.ref
    m, beta, a, b = fam.posterior(stats, nk, prior)
    for k in range(K):
        xk = xc[z == k]
        xbar = xk.mean(0)
        want_b = b0 + 0.5 * (np.sum((xk - xbar) ** 2)
                             + beta0 * nk[k] / (beta0 + nk[k]) * np.sum((xbar - m0) ** 2))
        np.testing.assert_allclose(b[k], want_b, rtol=1e-10)
        np.testing.assert_allclose(a[k], a0 + 0.5 * D * nk[k])
    s2, n2 = fam.posterior_statistics((m, beta, a, b), prior)
    for u, v in zip(fam.posterior(s2, n2, prior), (m, beta, a, b)):
        np.testing.assert_allclose(u, v, rtol=1e-10, atol=1e-10)
    # the expected log-density: E[log lambda] and E[lambda] of one Gamma per component
    W, c = fam.expected_effective((m, beta, a, b))
    x = xc[0]
    feats = np.concatenate((x, x * x))
    lam, elog = a[:, 0] / b[:, 0], digamma(a[:, 0]) - np.log(b[:, 0])
    want = (0.5 * D * elog - 0.5 * lam * np.sum((x - m) ** 2, 1) - 0.5 * D / beta[:, 0])
    np.testing.assert_allclose(W @ feats + c, want, rtol=1e-10)


@pytest.mark.parametrize("cls", [GaussianTied, GaussianSpherical])
def test_draws_match_the_posterior(cls):
    X, z = _labelled(2, N=60)
    fam = cls(X.shape[1])
    stats, nk = _family_stats(fam, X, z, 3)
    q = fam.posterior(stats, nk, fam.default_prior(X))
    rng = np.random.RandomState(0)
    draws = np.array([fam.sample_posterior(q, rng) for _ in range(4000)])
    mean_theta = fam.posterior_mean(q)
    D = X.shape[1]
    # the means' draws centre on m; one covariance for every component (tied) / one
    # variance for every feature (spherical) in each draw
    np.testing.assert_allclose(draws[:, :, :D].mean(0), mean_theta[:, :D], atol=0.05)
    if cls is GaussianTied:
        cov = np.array([fam._split(d)[1] for d in draws])
        assert np.allclose(cov, cov[:, :1])
        # E[Lambda] = nu W
        _, _, W, _ = fam._expected(q)
        prec = np.linalg.inv(cov[:, 0])
        np.testing.assert_allclose(prec.mean(0), q[2][0] * W[0], rtol=0.05, atol=0.02)
    else:
        var = draws[:, :, D:] - draws[:, :, :D] ** 2
        assert np.allclose(var, var[:, :, :1])
        np.testing.assert_allclose((1 / var[:, :, 0]).mean(0), q[2][:, 0] / q[3][:, 0],
                                   rtol=0.03)


@pytest.mark.parametrize("name", ["gaussian_tied", "gaussian_spherical"])
def test_mixture_meanfield_and_gibbs(name):
    X = load_iris().data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mf = fastvem.Mixture(name, 3, method="meanfield", random_state=0, max_iter=200,
                             tol=1e-10).fit(X)
        em = fastvem.Mixture(name, 3, method="em", random_state=0, max_iter=200).fit(X)
        gb = fastvem.Mixture(name, 3, method="gibbs", random_state=0, max_iter=200).fit(X)
    lb = np.asarray(mf.lower_bounds_)
    assert np.all(np.diff(lb) >= -1e-9 * np.abs(lb[1:]))      # the ELBO never decreases
    # the posterior means land on em's clusters (150 rows, three well-separated groups)
    for est in (mf, gb):
        assert _relabelled_agree(est.predict(X), em.predict(X)) > 0.9


def _relabelled_agree(a, b):
    from itertools import permutations
    return max(np.mean(np.array(p)[a] == b) for p in permutations(range(3)))


@pytest.mark.parametrize("ct", ["tied", "spherical"])
def test_hmm_meanfield_and_gibbs(ct):
    rs = np.random.RandomState(3)
    means = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    T = np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]])
    z = [0]
    for _ in range(2999):
        z.append(rs.choice(3, p=T[z[-1]]))
    z = np.array(z)
    if ct == "tied":
        L = np.array([[1.0, 0.0], [0.6, 0.8]])
        X = means[z] + rs.randn(3000, 2) @ L.T
        truth = L @ L.T
    else:
        sd = np.array([0.5, 1.0, 1.5])
        X = means[z] + rs.randn(3000, 2) * sd[z, None]
        truth = sd ** 2
    lengths = [1000] * 3

    def sticky(est):
        # hmmlearn's start (transmat a Dirichlet draw, every state the data's
        # covariance) merges these states, in hmmlearn too: start sticky
        est.startprob_ = np.full(3, 1 / 3)
        est.transmat_ = np.full((3, 3), 0.1) + 0.7 * np.eye(3)
        return est

    mf = sticky(fastvem.GaussianHMM(3, covariance_type=ct, method="meanfield", n_iter=100,
                                    tol=1e-8, random_state=0, init_params="mc")).fit(X, lengths)
    hist = np.asarray(mf.monitor_.history)
    assert np.all(np.diff(hist) >= -1e-8 * np.abs(hist[1:]))
    order = [int(np.argmin(np.linalg.norm(mf.means_ - m, axis=1))) for m in means]
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(mf.means_[order], means, atol=0.15)
    covars = mf._covars_ if ct == "tied" else mf._covars_[order]
    np.testing.assert_allclose(covars, truth, rtol=0.1, atol=0.05)
    assert mf._covars_.shape == ((2, 2) if ct == "tied" else (3,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gb = sticky(fastvem.GaussianHMM(3, covariance_type=ct, method="gibbs", n_iter=60,
                                        random_state=0, init_params="mc")).fit(X, lengths)
    order = [int(np.argmin(np.linalg.norm(gb.means_ - m, axis=1))) for m in means]
    np.testing.assert_allclose(gb.means_[order], means, atol=0.2)
    draws = gb.posterior_samples_["theta"]
    assert np.all(np.isfinite(draws))
    if ct == "tied":        # every draw's states share one covariance
        cov = draws[:, :, 2:] - np.stack([draws[:, :, 0] ** 2, draws[:, :, 0] * draws[:, :, 1],
                                          draws[:, :, 1] ** 2], -1)
        assert np.allclose(cov, cov[:, :1])
