"""gibbs for the hidden Markov models (fastvem/models/hmm.py: _BaseHMM._gibbs):
n_chains chains, relabelled together, with the mixtures' diagnostics (log_joint_,
mixing_, rhat_, ess_, converged_), and simulation-based calibration of the
sampler on a small chain."""
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import fastvem
from fastvem.diagnostics import ESS_MIN_PER_CHAIN, RHAT_MAX
from fastvem.models.hmm import _monitored_names

K = 3


def gaussian_data(seed=0, lengths=(80, 1, 60, 40), sep=8.0):
    rng = np.random.default_rng(seed)
    A = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    z = [0]
    for _ in range(sum(lengths) - 1):
        z.append(rng.choice(K, p=A[z[-1]]))
    z = np.array(z)
    return rng.normal(size=(len(z), 2)) + sep * z[:, None], list(lengths)


def fit(n_iter=300, n_chains=2, **kw):
    X, lengths = gaussian_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fastvem.GaussianHMM(K, method="gibbs", n_iter=n_iter, n_chains=n_chains,
                                   random_state=0, **kw).fit(X, lengths), X, lengths


def test_chains_and_their_diagnostics():
    m, X, lengths = fit(n_iter=400)
    assert m.n_chains == 2 and m.log_joint_.shape == (2, 400)
    burn = 200
    S = m.posterior_samples_
    assert S["startprob"].shape == (2 * (400 - burn), K)
    # the trace is the mean over the chains, lower_bound_ the mean after burn-in
    np.testing.assert_allclose(m.trace_["objective"], m.log_joint_.mean(0), rtol=1e-14)
    assert np.isclose(m.lower_bound_, m.log_joint_[:, burn:].mean())
    np.testing.assert_allclose(np.array(m.monitor_.history) / X.shape[0],
                               m.log_joint_.mean(0), rtol=1e-12)
    # every monitored quantity, the worst R-hat and the least ESS
    assert sorted(m.mixing_) == sorted(_monitored_names(K, S["theta"].shape[-1]))
    r = np.array([v[0] for v in m.mixing_.values()])
    e = np.array([v[1] for v in m.mixing_.values()])
    assert m.rhat_ == max(1.0, r.max()) and m.ess_ == e.min()
    # well separated states and long chains: they mix
    assert m.converged_ and m.rhat_ < RHAT_MAX and m.ess_ >= 2 * ESS_MIN_PER_CHAIN
    # the chains are different chains (own starts and streams) on common labels
    assert not np.array_equal(m.log_joint_[0], m.log_joint_[1])
    draws = S["theta"][:, :, 0] + m._sample_family.ref[0]        # each state's mean, x0
    first, second = draws[:200], draws[200:]
    np.testing.assert_allclose(first.mean(0), second.mean(0), atol=0.3)
    np.testing.assert_allclose(np.sort(m.means_[:, 0]), [0, 8, 16], atol=0.6)
    assert np.all(draws.std(0) < 0.5)           # no label switching left in the draws


def test_one_chain_is_the_first_of_two():
    a, _, _ = fit(n_iter=40, n_chains=1)
    b, _, _ = fit(n_iter=40, n_chains=2)
    np.testing.assert_array_equal(a.log_joint_[0], b.log_joint_[0])
    assert a.posterior_samples_["theta"].shape[0] * 2 == b.posterior_samples_["theta"].shape[0]
    c, _, _ = fit(n_iter=40, n_chains=2)          # the same seed: the same chains
    np.testing.assert_array_equal(b.log_joint_, c.log_joint_)
    np.testing.assert_array_equal(b.posterior_samples_["theta"], c.posterior_samples_["theta"])


def test_chains_that_do_not_mix_warn():
    X, lengths = gaussian_data()
    m = fastvem.GaussianHMM(K, method="gibbs", n_iter=12, random_state=0)
    with pytest.warns(ConvergenceWarning, match="the chains did not mix"):
        m.fit(X, lengths)
    assert m.converged_ is False


@pytest.mark.parametrize("model", ["categorical", "poisson", "multinomial", "hmm"])
def test_other_models_have_chains(model):
    rng = np.random.default_rng(1)
    z = np.repeat([0, 1, 0, 1], 30)
    X = {"categorical": np.where(z == 0, rng.integers(0, 2, 120), rng.integers(2, 4, 120))[:, None],
         "poisson": rng.poisson(np.where(z == 0, 1.0, 7.0)[:, None], (120, 2)),
         "multinomial": np.array([rng.multinomial(6, [.7, .2, .1] if k else [.1, .2, .7])
                                  for k in z]),
         "hmm": rng.normal(size=(120, 2)) + 5.0 * z[:, None]}[model]
    make = {"categorical": fastvem.CategoricalHMM, "poisson": fastvem.PoissonHMM,
            "multinomial": fastvem.MultinomialHMM,
            "hmm": lambda *a, **k: fastvem.HMM("gaussian_diag", *a, **k)}[model]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = make(2, method="gibbs", n_iter=60, n_chains=3, random_state=0).fit(X, [60, 60])
    assert m.log_joint_.shape == (3, 60)
    assert m.posterior_samples_["transmat"].shape == (3 * 30, 2, 2)
    assert set(m.mixing_) == set(_monitored_names(2, m.posterior_samples_["theta"].shape[-1]))
    assert isinstance(m.converged_, bool)


@pytest.mark.parametrize("n_chains", [0, -1, 1.5, True, "2"])
def test_bad_n_chains(n_chains):
    X, lengths = gaussian_data()
    with pytest.raises(ValueError, match="n_chains"):
        fastvem.GaussianHMM(K, method="gibbs", n_iter=10, n_chains=n_chains).fit(X, lengths)


def test_refit_by_another_method_drops_the_chains():
    m, X, lengths = fit(n_iter=20)
    m.set_params(method="em").fit(X, lengths)
    for name in ("log_joint_", "mixing_", "rhat_", "ess_", "converged_", "posterior_samples_"):
        assert name not in vars(m), name


def test_gibbs_simulation_based_calibration():
    """SBC (Talts et al. 2018) of the HMM sampler: a 2-state CategoricalHMM over 3
    symbols with every parameter drawn from its Dirichlet(1) prior, 3 sequences of
    12 rows drawn from it; the ranks of label-invariant functionals of the truth
    -- the probability of symbol 0 at the first step, sum_k startprob_k E_k0, and
    the summed self-transitions, sum_k A_kk -- among the kept draws of both chains
    must be uniform."""
    from scipy import stats
    rng = np.random.default_rng(2025)
    Kc, V, lengths = 2, 3, [12, 12, 12]
    ranks = {"first_symbol": [], "stay": []}
    for rep in range(120):
        s = rng.dirichlet(np.ones(Kc))
        A = rng.dirichlet(np.ones(Kc), size=Kc)
        E = rng.dirichlet(np.ones(V), size=Kc)
        X = []
        for n in lengths:
            z = rng.choice(Kc, p=s)
            for _ in range(n):
                X.append(rng.choice(V, p=E[z]))
                z = rng.choice(Kc, p=A[z])
        X = np.array(X)[:, None]
        m = fastvem.CategoricalHMM(Kc, n_features=V, method="gibbs", n_iter=57, burn_in=20,
                                   random_state=rep)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            m.fit(X, lengths)
        ps = m.posterior_samples_
        assert ps["theta"].shape[0] == 74
        f = (ps["startprob"] * ps["theta"][:, :, 0]).sum(1)
        ranks["first_symbol"].append(int((f < (s * E[:, 0]).sum()).sum()))
        g = np.trace(ps["transmat"], axis1=1, axis2=2)
        ranks["stay"].append(int((g < np.trace(A)).sum()))
    for name, r in ranks.items():
        counts = np.bincount(r, minlength=75).reshape(5, 15).sum(1)   # 5 bins of 15 ranks
        assert stats.chisquare(counts).pvalue > 1e-3, (name, counts)
