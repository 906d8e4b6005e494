"""Hidden Markov models (fastvem/models/hmm.py, fastvem/structures/hmm.py) against
hmmlearn 0.3: em iterate for iterate from the same start, decoding and
posteriors, the methods' objectives, thread invariance, degenerate data and bad
input."""
import logging

import numpy as np
import pytest

import fastvem
from oracle_hmm import close as oracle_close, logB_categorical, path_log_joint, same_predictions
from fastvem.models.hmm import HMMEngine
from fastvem.structures.hmm import Chain

hmm = pytest.importorskip("hmmlearn.hmm")
logging.getLogger("hmmlearn").setLevel(logging.ERROR)

K = 3
LENGTHS = [30, 1, 50, 7, 12, 2]
RTOL = 1e-9


def close(a, b, rtol=RTOL, what=""):
    oracle_close(a, b, rtol, what)


def gaussian_data(seed=0, D=3, lengths=LENGTHS, sep=3.0):
    rng = np.random.default_rng(seed)
    N = sum(lengths)
    z = np.zeros(N, dtype=int)
    A = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    for t in range(1, N):
        z[t] = rng.choice(K, p=A[z[t - 1]])
    return rng.normal(size=(N, D)) + sep * z[:, None] + 10.0, list(lengths)


def faithful():
    """Old Faithful's 272 eruptions in their recorded order (a real series), cut into
    sequences of different lengths (one of length 1)."""
    X = fastvem.datasets.load_old_faithful()[0]
    X = np.asarray(X, dtype=np.float64)
    lengths = [100, 1, 71, 60, 40]
    assert sum(lengths) == X.shape[0]
    return X, lengths


def chain_start(m, seed=1):
    r = np.random.RandomState(seed)
    m.startprob_ = r.dirichlet(np.ones(K))
    m.transmat_ = r.dirichlet(np.ones(K), size=K)
    return r


def gaussian_start(m, ct, X, seed=1):
    r = chain_start(m, seed)
    m.means_ = X[r.choice(X.shape[0], K, replace=False)]
    var = X.var(0)
    m.covars_ = {"diag": np.tile(var, (K, 1)) * r.uniform(0.5, 1.5, (K, 1)),
                 "spherical": var.mean() * r.uniform(0.5, 1.5, K),
                 "full": np.tile(np.cov(X.T), (K, 1, 1)),
                 "tied": np.cov(X.T)}[ct]


def pair(cls_a, cls_b, start, **kw):
    a, b = cls_a(K, **kw), cls_b(K, **kw)
    start(a)
    start(b)
    return a, b


def assert_same_fit(a, b, attrs):
    for name in attrs:
        close(getattr(b, name), getattr(a, name), what=name)
    close(list(b.monitor_.history), list(a.monitor_.history), what="monitor_.history")
    assert b.monitor_.iter == a.monitor_.iter
    assert b.monitor_.converged == a.monitor_.converged


GAUSS_PRIORS = [{}, dict(startprob_prior=2.0, transmat_prior=1.5, means_prior=0.5,
                         means_weight=2.0, covars_prior=0.3, covars_weight=5.0)]


# ------------------------------------------------------------ em = hmmlearn
@pytest.mark.parametrize("ct", ["diag", "full", "spherical", "tied"])
@pytest.mark.parametrize("priors", [0, 1])
@pytest.mark.parametrize("data", ["synthetic", "faithful"])
def test_gaussian_em_equals_hmmlearn(ct, priors, data):
    X, lengths = gaussian_data() if data == "synthetic" else faithful()
    kw = dict(covariance_type=ct, init_params="", n_iter=12, tol=1e-4, **GAUSS_PRIORS[priors])
    a, b = pair(hmm.GaussianHMM, fastvem.GaussianHMM, lambda m: gaussian_start(m, ct, X), **kw)
    a.fit(X, lengths)
    b.fit(X, lengths)
    assert_same_fit(a, b, ["startprob_", "transmat_", "means_"])
    close(b.covars_, a.covars_ if ct != "spherical" else
          np.eye(X.shape[1])[None] * a._covars_[:, 0][:, None, None], what="covars_")
    # predictions of the fitted models
    same_predictions(a, b, X, lengths, RTOL)
    close(b.aic(X, lengths), a.aic(X, lengths))
    close(b.bic(X, lengths), a.bic(X, lengths))


@pytest.mark.parametrize("model", ["gaussian_diag", "gaussian_full", "categorical", "poisson"])
def test_default_start_equals_hmmlearn(model):
    """The same random_state gives hmmlearn's own start (its random streams and
    k-means), so whole default fits agree."""
    if model.startswith("gaussian"):
        X, lengths = gaussian_data(8)
        kw = dict(covariance_type=model.split("_")[1])
        A, B, attrs = hmm.GaussianHMM, fastvem.GaussianHMM, ["means_", "covars_"]
    elif model == "categorical":
        X, lengths = symbols(1)
        kw, A, B, attrs = {}, hmm.CategoricalHMM, fastvem.CategoricalHMM, ["emissionprob_"]
    else:
        X = np.random.default_rng(0).poisson(3.0, (sum(LENGTHS), 2))
        lengths = LENGTHS
        kw, A, B, attrs = {}, hmm.PoissonHMM, fastvem.PoissonHMM, ["lambdas_"]
    a = A(K, n_iter=15, random_state=0, **kw).fit(X, lengths)
    b = B(K, n_iter=15, random_state=0, **kw).fit(X, lengths)
    assert_same_fit(a, b, ["startprob_", "transmat_"] + attrs)


def test_gaussian_float32_input_equals_hmmlearn():
    X, lengths = gaussian_data(3)
    X32 = X.astype(np.float32)
    kw = dict(covariance_type="diag", init_params="", n_iter=6, tol=0)
    a, b = pair(hmm.GaussianHMM, fastvem.GaussianHMM,
                lambda m: gaussian_start(m, "diag", X), **kw)
    a.fit(X32.astype(np.float64), lengths)
    b.fit(X32, lengths)
    assert_same_fit(a, b, ["startprob_", "transmat_", "means_", "_covars_"])


def symbols(seed=0, n_symbols=5, lengths=LENGTHS):
    rng = np.random.default_rng(seed)
    N = sum(lengths)
    X = rng.integers(0, n_symbols, (N, 1))
    X[:n_symbols, 0] = np.arange(n_symbols)
    return X, list(lengths)


def faithful_symbols():
    """Old Faithful's eruptions as symbols: short / medium / long (0, 1, 2)."""
    X, lengths = faithful()
    return np.digitize(X[:, 0], [2.5, 4.0])[:, None], lengths


def same_map_paths(m, X, lengths, mine, theirs):
    """The two MAP paths are equal, or tie exactly: symbols give paths of the same
    factors in another order, whose log joints are the same sum, so that which of
    them the first maximiser picks turns on the last bits of the fitted parameters
    (both fits agree to ~1e-14, not bitwise).  Each sequence where they differ:
    the same log joint at m's parameters."""
    off = np.concatenate(([0], np.cumsum(lengths)))
    logB = logB_categorical(X, [m.emissionprob_])
    with np.errstate(divide="ignore"):
        ls, lt = np.log(m.startprob_), np.log(m.transmat_)
    for i in range(len(lengths)):
        sl = slice(off[i], off[i + 1])
        if not np.array_equal(mine[sl], theirs[sl]):
            # the same terms summed in another order: equal to a few ulps
            lj = path_log_joint(mine[sl], logB[sl], ls, lt)
            assert abs(lj - path_log_joint(theirs[sl], logB[sl], ls, lt)) <= 1e-12 * abs(lj), i


@pytest.mark.parametrize("priors", [{}, dict(emissionprob_prior=1.7, transmat_prior=2.0,
                                             startprob_prior=np.array([0.9, 1.1, 1.4]))])
@pytest.mark.parametrize("data", ["synthetic", "faithful"])
def test_categorical_em_equals_hmmlearn(priors, data):
    X, lengths = symbols() if data == "synthetic" else faithful_symbols()
    L = int(X.max()) + 1

    def start(m):
        r = chain_start(m)
        m.emissionprob_ = r.dirichlet(np.ones(L), size=K)

    a, b = pair(hmm.CategoricalHMM, fastvem.CategoricalHMM, start, init_params="", n_iter=15,
                tol=1e-5, **priors)
    a.fit(X, lengths)
    b.fit(X, lengths)
    assert_same_fit(a, b, ["startprob_", "transmat_", "emissionprob_"])
    close(b.predict_proba(X, lengths), a.predict_proba(X, lengths))
    same_map_paths(b, X, lengths, b.predict(X, lengths), a.predict(X, lengths))
    close(b.score(X, lengths), a.score(X, lengths))
    sa, sb = a.sample(30, random_state=4), b.sample(30, random_state=4)
    assert np.array_equal(sa[0], sb[0]) and np.array_equal(sa[1], sb[1])


@pytest.mark.parametrize("priors", [{}, dict(lambdas_prior=2.0, lambdas_weight=0.5,
                                             startprob_prior=1.5)])
@pytest.mark.parametrize("data", ["synthetic", "digits"])
def test_poisson_em_equals_hmmlearn(priors, data):
    if data == "synthetic":
        rng = np.random.default_rng(2)
        X = rng.poisson(3.0, (sum(LENGTHS), 2))
        lengths = LENGTHS
    else:   # real counts: grey levels 0..16 of scikit-learn's digits, a few pixels
        from sklearn.datasets import load_digits
        X = load_digits().data[:150, [20, 28, 36, 44]].astype(np.int64)
        lengths = [60, 1, 40, 49]

    def start(m):
        r = chain_start(m)
        m.lambdas_ = r.uniform(1.0, 6.0, (K, X.shape[1]))

    a, b = pair(hmm.PoissonHMM, fastvem.PoissonHMM, start, init_params="", n_iter=12, tol=1e-5,
                **priors)
    a.fit(X, lengths)
    b.fit(X, lengths)
    assert_same_fit(a, b, ["startprob_", "transmat_", "lambdas_"])
    close(b.predict_proba(X, lengths), a.predict_proba(X, lengths))
    for alg in ("viterbi", "map"):
        assert np.array_equal(b.decode(X, lengths, algorithm=alg)[1],
                              a.decode(X, lengths, algorithm=alg)[1])
    sa, sb = a.sample(25, random_state=5), b.sample(25, random_state=5)
    assert np.array_equal(sa[0], sb[0]) and np.array_equal(sa[1], sb[1])


def test_decode_with_parameters_set_and_no_fit():
    """hmmlearn's usage: set the parameters, decode (no fit)."""
    X, lengths = gaussian_data(5)
    for ct in ("diag", "full"):
        a, b = pair(hmm.GaussianHMM, fastvem.GaussianHMM,
                    lambda m: gaussian_start(m, ct, X, seed=3), covariance_type=ct)
        for alg in ("viterbi", "map"):
            la, pa = a.decode(X, lengths, algorithm=alg)
            lb, pb = b.decode(X, lengths, algorithm=alg)
            assert np.array_equal(pa, pb)
            close(lb, la)
        close(b.score_samples(X, lengths)[1], a.score_samples(X, lengths)[1])


def test_partial_params_update_like_hmmlearn():
    """params without 's' and 'c': those stay as given, the rest as hmmlearn's."""
    X, lengths = gaussian_data(6)
    kw = dict(covariance_type="diag", init_params="", params="tm", n_iter=5, tol=0)
    a, b = pair(hmm.GaussianHMM, fastvem.GaussianHMM,
                lambda m: gaussian_start(m, "diag", X), **kw)
    a.fit(X, lengths)
    b.fit(X, lengths)
    assert_same_fit(a, b, ["startprob_", "transmat_", "means_", "_covars_"])


# ------------------------------------------------------------ the methods
def ml_model(method, ct="diag", **kw):
    """Maximum-likelihood settings (no prior term), where em's log-likelihood and
    vem's ELBO provably never decrease."""
    return fastvem.GaussianHMM(K, covariance_type=ct, method=method, covars_prior=0.0,
                               n_iter=40, tol=-np.inf, random_state=0, **kw)


@pytest.mark.parametrize("method", ["em", "vem", "meanfield"])
@pytest.mark.parametrize("ct", ["diag", "full"])
def test_objective_never_decreases(method, ct):
    X, lengths = gaussian_data(1)
    for seed in range(3):
        m = ml_model(method, ct)
        m.random_state = seed
        m.fit(X, lengths)
        h = np.array(m.monitor_.history)
        assert np.all(np.diff(h) >= -1e-10 * np.abs(h[1:])), (seed, np.diff(h).min())
        close(m.trace_["objective"] * X.shape[0], h)
        assert m.lower_bound_ == m.trace_["objective"][-1]


@pytest.mark.parametrize("model", ["categorical", "poisson"])
def test_objective_never_decreases_discrete(model):
    if model == "categorical":
        X, lengths = symbols(3)
        mk = lambda meth: fastvem.CategoricalHMM(K, method=meth, n_iter=30, tol=-np.inf,
                                                 random_state=1)
    else:
        X = np.random.default_rng(4).poisson(3.0, (sum(LENGTHS), 2))
        lengths = LENGTHS
        mk = lambda meth: fastvem.PoissonHMM(K, method=meth, n_iter=30, tol=-np.inf,
                                             random_state=1)
    for meth in ("em", "vem", "meanfield"):
        h = np.array(mk(meth).fit(X, lengths).monitor_.history)
        assert np.all(np.diff(h) >= -1e-10 * np.abs(h[1:])), (meth, np.diff(h).min())


def test_vem_elbo_below_loglik():
    X, lengths = gaussian_data(2)
    for meth in ("em", "vem", "crisp"):
        m = ml_model(meth)
        m.n_iter = 15
        m.fit(X, lengths)
        elbo = m._log_evidence(X, lengths, "vem")
        ll = m._log_evidence(X, lengths, "em")
        assert np.all(elbo <= ll + 1e-9 * np.abs(ll))
        # a sequence of length 1: the factorised q is exact
        one = np.flatnonzero(np.array(lengths) == 1)
        close(elbo[one], ll[one])
    # vem's own history is its ELBO at the iteration's start: below em's log-likelihood
    # at the same parameters
    m = ml_model("vem")
    m.n_iter = 10
    m.fit(X, lengths)
    assert m.lower_bound_ * X.shape[0] <= m.score(X, lengths) + 1e-9


def test_crisp_log_joint_and_viterbi():
    X, lengths = gaussian_data(2)
    m = ml_model("crisp", ct="full").fit(X, lengths)
    h = np.array(m.monitor_.history)
    # hard EM: the Viterbi path's log joint never decreases
    assert np.all(np.diff(h) >= -1e-9 * np.abs(h[1:]))
    # at convergence the recorded log joint is the Viterbi path's at the fitted point
    lj, path = m.decode(X, lengths)
    close(h[-1], lj, rtol=1e-9)
    assert lj <= m.score(X, lengths)


def test_meanfield_posteriors():
    X, lengths = gaussian_data(4)
    m = fastvem.GaussianHMM(K, method="meanfield", n_iter=30, random_state=0).fit(X, lengths)
    a, A = m.startprob_posterior_, m.transmat_posterior_
    close(m.startprob_, a / a.sum())
    close(m.transmat_, A / A.sum(1, keepdims=True))
    # the prior's mass plus the counts: one start per sequence, a transition per step
    close(a.sum(), K * 1.0 + len(lengths), rtol=1e-8)
    close(A.sum(), K * K * 1.0 + sum(lengths) - len(lengths), rtol=1e-8)
    assert m.emission_posterior_.shape[1] == K


def test_gibbs_keeps_draws_and_log_joint():
    X, lengths = gaussian_data(7, sep=8.0)
    m = fastvem.GaussianHMM(K, method="gibbs", n_iter=30, burn_in=10,
                            random_state=0).fit(X, lengths)
    S = m.posterior_samples_
    # n_chains=2 by default: 20 draws a chain, chain after chain
    assert S["startprob"].shape == (40, K) and S["transmat"].shape == (40, K, K)
    assert len(m.trace_["objective"]) == 30 and m.log_joint_.shape == (2, 30)
    close(m.startprob_, S["startprob"].mean(0))
    close(m.transmat_.sum(1), np.ones(K))
    # it finds the three well separated states
    assert np.allclose(np.sort(m.means_[:, 0]), [10, 18, 26], atol=1.0)
    # same seed, same chain; another seed, another
    m2 = fastvem.GaussianHMM(K, method="gibbs", n_iter=30, burn_in=10,
                             random_state=0).fit(X, lengths)
    assert np.array_equal(m2.posterior_samples_["theta"], S["theta"])


@pytest.mark.parametrize("method", ["em", "vem", "crisp", "meanfield", "gibbs"])
def test_methods_recover_states(method):
    X, lengths = gaussian_data(8, sep=8.0)
    m = fastvem.GaussianHMM(K, method=method, n_iter=40, random_state=0)
    if method == "crisp":       # hard EM from k-means merges two states here: start it near
        m.init_params = ""
        chain_start(m)
        m.means_ = np.array([[11.0] * 3, [17.0] * 3, [25.0] * 3])
        m.covars_ = np.ones((K, 3))
    m.fit(X, lengths)
    assert np.allclose(np.sort(m.means_[:, 0]), [10, 18, 26], atol=1.0)
    assert m.monitor_.iter == len(m.trace_["objective"])


def test_generic_hmm():
    X, lengths = gaussian_data(9, sep=8.0)
    a = fastvem.HMM("gaussian_diag", K, n_iter=20, random_state=0).fit(X, lengths)
    assert np.allclose(np.sort(a.emissions_["means"][:, 0]), [10, 18, 26], atol=0.5)
    h = np.array(a.monitor_.history)
    assert np.all(np.diff(h) >= -1e-9 * np.abs(h[1:]))
    Xs, ls = symbols(2)
    for meth in ("em", "vem", "crisp", "meanfield", "gibbs"):
        m = fastvem.HMM("categorical", K, method=meth, n_iter=10, random_state=0).fit(Xs, ls)
        assert m.predict(Xs, ls).shape == (Xs.shape[0],)
        close(m.predict_proba(Xs, ls).sum(1), np.ones(Xs.shape[0]))


# ------------------------------------------------------------ threads
@pytest.mark.parametrize("method", ["em", "vem", "crisp", "meanfield", "gibbs"])
def test_thread_invariance(method):
    # long sequences: more than one partition of the driver
    X, lengths = gaussian_data(10, lengths=[5000, 3000, 1, 4500])
    fits = []
    for t in (1, 2, 3):
        m = fastvem.GaussianHMM(K, method=method, n_iter=4, tol=-np.inf, random_state=0,
                                n_threads=t).fit(X, lengths)
        fits.append(m)
    for m in fits[1:]:
        for name in ("startprob_", "transmat_", "means_", "_covars_"):
            assert np.array_equal(getattr(m, name), getattr(fits[0], name)), name
        assert list(m.monitor_.history) == list(fits[0].monitor_.history)
        assert np.array_equal(m.predict_proba(X, lengths), fits[0].predict_proba(X, lengths))


# ------------------------------------------------------------ degenerate cases
def test_state_never_visited_keeps_valid_rows():
    X, lengths = gaussian_data(11)
    # state 2 placed far from every row: crisp never visits it
    for meth in ("crisp", "em"):
        m = fastvem.GaussianHMM(K, method=meth, init_params="", n_iter=5)
        chain_start(m)
        m.means_ = np.array([X.min(0), X.max(0), X.max(0) + 1e3])
        m.covars_ = np.ones((K, X.shape[1]))
        m.fit(X, lengths)
        assert np.all(np.isfinite(m.transmat_)) and np.allclose(m.transmat_.sum(1), 1)
        assert np.all(np.isfinite(m.means_)) and np.all(m._covars_ > 0)
        if meth == "crisp":
            assert any("never visited" in e for _, e in m.trace_["events"])
            assert any("transmat_ rows [2] kept" in e for _, e in m.trace_["events"])
        m.predict(X, lengths)


def test_single_rows_constant_feature_and_float32():
    rng = np.random.default_rng(12)
    X = np.column_stack((rng.normal(size=40) + np.repeat([0, 5], 20), np.full(40, 2.5)))
    for lengths in ([1] * 40, None, [39, 1]):
        for ct in ("diag", "full", "spherical", "tied"):
            for meth in ("em", "vem", "crisp"):
                m = fastvem.GaussianHMM(2, covariance_type=ct, method=meth, n_iter=5,
                                        random_state=0).fit(X.astype(np.float32), lengths)
                assert np.all(np.isfinite(m.means_)) and np.all(np.isfinite(m.covars_))
                assert np.isfinite(m.score(X, lengths))
    # CategoricalHMM with a symbol never emitted and one-row sequences
    Xs = np.array([[0], [1], [0], [3], [1]])
    m = fastvem.CategoricalHMM(2, n_features=5, n_iter=5, random_state=0).fit(Xs, [1, 1, 3])
    assert m.emissionprob_.shape == (2, 5)
    assert np.allclose(m.emissionprob_[:, 2], 0) and np.allclose(m.emissionprob_.sum(1), 1)


# ------------------------------------------------------------ bad input
@pytest.mark.parametrize("lengths,match", [
    ([100], "lengths"), ([50, 0, 52], "lengths"), ([60, -10, 52], "lengths"),
    ([[1, 101]], "lengths"), ([1.5, 100.5], "lengths")])
def test_bad_lengths(lengths, match):
    X, _ = gaussian_data(0)
    with pytest.raises(ValueError, match=match):
        fastvem.GaussianHMM(K).fit(X, lengths)
    m = fastvem.GaussianHMM(K, n_iter=2, random_state=0).fit(X, LENGTHS)
    with pytest.raises(ValueError, match=match):
        m.predict(X, lengths)


def test_bad_data():
    X, lengths = gaussian_data(0)
    for bad in (np.nan, np.inf):
        Xb = X.copy()
        Xb[3, 1] = bad
        with pytest.raises(ValueError, match="X"):
            fastvem.GaussianHMM(K).fit(Xb, lengths)
    Xs, ls = symbols(0)
    with pytest.raises(ValueError, match="X"):
        fastvem.CategoricalHMM(K).fit(np.vstack((Xs[:-1], [[-1]])), ls)
    with pytest.raises(ValueError, match="n_features"):
        fastvem.CategoricalHMM(K, n_features=3).fit(Xs, ls)
    with pytest.raises(ValueError, match="X"):
        fastvem.CategoricalHMM(K).fit(Xs + 0.5, ls)
    m = fastvem.CategoricalHMM(K, n_iter=2, random_state=0).fit(Xs, ls)
    with pytest.raises(ValueError, match="symbol"):
        m.predict(Xs + 10, ls)
    Xp = np.random.default_rng(0).poisson(2.0, (sum(LENGTHS), 2)).astype(float)
    Xp[4, 0] = -1
    with pytest.raises(ValueError, match="Negative"):
        fastvem.PoissonHMM(K).fit(Xp, LENGTHS)
    m = fastvem.GaussianHMM(K, n_iter=2, random_state=0).fit(X, lengths)
    with pytest.raises(ValueError, match="features"):
        m.predict(X[:, :2], lengths)


def test_bad_user_parameters():
    X, lengths = gaussian_data(0)
    D = X.shape[1]

    def model(**set_):
        m = fastvem.GaussianHMM(K, init_params="", n_iter=2)
        m.startprob_ = np.full(K, 1.0 / K)
        m.transmat_ = np.full((K, K), 1.0 / K)
        m.means_ = X[:K]
        m.covars_ = np.ones((K, D))
        for k, v in set_.items():
            setattr(m, k, v)
        return m

    model().fit(X, lengths)
    for name, value in [("startprob_", [0.5, 0.2, 0.2]), ("startprob_", [0.5, 0.5]),
                        ("transmat_", np.full((K, K), 0.3)), ("transmat_", np.eye(2)),
                        ("startprob_", [1.5, -0.25, -0.25]), ("means_", np.zeros((K, D + 1))),
                        ("covars_", -np.ones((K, D))), ("covars_", np.ones((K, D + 1)))]:
        with pytest.raises(ValueError, match=name):
            model(**{name: value}).fit(X, lengths)
    # given, but initialised (the code in init_params): no check, hmmlearn's rule
    m = model(startprob_=[0.5, 0.2, 0.2])
    m.init_params = "s"
    m.fit(X, lengths)
    for kw, match in [(dict(n_components=0), "n_components"), (dict(n_iter=-1), "n_iter"),
                      (dict(method="nope"), "method"), (dict(algorithm="x"), "algorithm"),
                      (dict(covariance_type="x"), "covariance_type"),
                      (dict(transmat_prior=np.ones((2, 2))), "transmat_prior"),
                      (dict(startprob_prior=[np.nan, 1, 1]), "startprob_prior"),
                      (dict(min_covar=0), "min_covar")]:
        with pytest.raises(ValueError, match=match):
            fastvem.GaussianHMM(**{"n_components": K, **kw}).fit(X, lengths)
    with pytest.raises(ValueError, match="startprob_prior"):
        fastvem.GaussianHMM(K, method="meanfield", startprob_prior=0.0).fit(X, lengths)


def test_engine_statistics_are_additive():
    """Two halves of the sequences give the whole's statistics (the law that lets
    chunks, threads and memoized passes combine them)."""
    from fastvem.families.normal import GaussianDiag
    X, lengths = gaussian_data(13)
    fam = GaussianDiag(X.shape[1])
    data = fam.prepare(X, fitting=True)
    off = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    r = np.random.RandomState(0)
    params = (r.dirichlet(np.ones(K)), r.dirichlet(np.ones(K), size=K),
              fam.theta_from(X[:K], np.ones((K, X.shape[1]))))
    whole = HMMEngine(fam, Chain(K), "em", data, off, 1).statistics(data, None, params)
    cut = 3
    parts = []
    for lo, hi in ((0, cut), (cut, len(lengths))):
        o = off[lo:hi + 1] - off[lo]
        d = np.ascontiguousarray(data[off[lo]:off[hi]])
        parts.append(HMMEngine(fam, Chain(K), "em", d, o, 1).statistics(d, None, params))
    s = parts[0] + parts[1]
    for name in ("stats", "nk", "start", "trans", "totals"):
        close(getattr(s, name), getattr(whole, name))
