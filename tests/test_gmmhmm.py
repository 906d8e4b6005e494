"""GMMHMM (fastvem/models/gmmhmm.py) against hmmlearn 0.3's GMMHMM: em iterate for
iterate from the same start for every covariance_type (synthetic sequences and
Old Faithful, default and non-default priors, partial params), hmmlearn's own
start, predictions (score, posteriors, decode by viterbi -- the state-level path,
not the expanded chain's joint one -- and map), sample; the methods' objectives
(em's log-likelihood and vem's ELBO never decrease, ELBO <= log-likelihood, crisp's
log joint never decreases and lies below the Viterbi log joint), bitwise thread
invariance, save / load, bad input and degenerate components."""
import logging

import hmmlearn.hmm as hmm          # a test dependency (pyproject's [test] extra)
import numpy as np
import pytest

import fastvem
from fastvem.models.gmmhmm import expanded_log_params
from oracle_hmm import close as oracle_close, same_predictions

logging.getLogger("hmmlearn").setLevel(logging.ERROR)


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """hmmlearn's many tiny BLAS calls (triangular solves of D x D factors) are
    slowed down by orders of magnitude by BLAS threads on a busy machine: one."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):
        yield


K, M = 3, 2
LENGTHS = [40, 1, 60, 25, 14]
CTS = ["diag", "spherical", "full", "tied"]
RTOL = 1e-9
ATTRS = ["startprob_", "transmat_", "weights_", "means_", "covars_"]


def close(a, b, rtol=RTOL, what=""):
    oracle_close(a, b, rtol, what)


def synthetic(seed=0, lengths=LENGTHS, D=2):
    """Sequences from a 3-state chain; state k emits two blobs, at 8 k + 5 -+ 2 in
    the first feature (8 k + 5 in the others), with unit noise."""
    rng = np.random.default_rng(seed)
    N = sum(lengths)
    A = np.array([[0.85, 0.1, 0.05], [0.1, 0.8, 0.1], [0.1, 0.2, 0.7]])
    z = np.zeros(N, dtype=int)
    for t in range(1, N):
        z[t] = rng.choice(K, p=A[z[t - 1]])
    m = rng.integers(0, M, N)
    centres = np.zeros((K, M, D)) + 8.0 * np.arange(K)[:, None, None] + 5.0
    centres[:, :, 0] += np.array([-2.0, 2.0])
    return rng.normal(size=(N, D)) + centres[z, m], list(lengths)


def faithful():
    """Old Faithful's 272 eruptions (duration, waiting) in their recorded order,
    cut into sequences of different lengths (one of length 1)."""
    X = np.asarray(fastvem.datasets.load_old_faithful()[0], dtype=np.float64)
    lengths = [100, 1, 71, 60, 40]
    assert sum(lengths) == X.shape[0]
    return X, lengths


def data(name):
    return synthetic() if name == "synthetic" else faithful()


def start(m, ct, X, seed=1, k=K, mix=M):
    """The same explicit start for both libraries (init_params='')."""
    r = np.random.RandomState(seed)
    N, D = X.shape
    m.startprob_ = r.dirichlet(np.ones(k))
    m.transmat_ = r.dirichlet(np.ones(k), size=k)
    m.weights_ = r.dirichlet(np.ones(mix), size=k)
    m.means_ = X[r.choice(N, k * mix, replace=False)].reshape(k, mix, D)
    v, cv = X.var(0), np.cov(X.T)
    m.covars_ = {"diag": np.tile(v, (k, mix, 1)) * r.uniform(0.5, 1.5, (k, mix, 1)),
                 "spherical": v.mean() * r.uniform(0.5, 1.5, (k, mix)),
                 "full": np.tile(cv, (k, mix, 1, 1)) * r.uniform(0.5, 1.5, (k, mix, 1, 1)),
                 "tied": np.tile(cv, (k, 1, 1)) * r.uniform(0.5, 1.5, (k, 1, 1))}[ct]


def pair(ct, X, seed=1, **kw):
    kw = dict(n_mix=M, covariance_type=ct, init_params="", **kw)
    a, b = hmm.GMMHMM(K, **kw), fastvem.GMMHMM(K, **kw)
    start(a, ct, X, seed)
    start(b, ct, X, seed)
    return a, b


def assert_same_fit(a, b):
    for name in ATTRS:
        close(getattr(b, name), getattr(a, name), what=name)
    close(list(b.monitor_.history), list(a.monitor_.history), what="monitor_.history")
    assert b.monitor_.iter == a.monitor_.iter
    assert b.monitor_.converged == a.monitor_.converged


def assert_same_predictions(a, b, X, lengths):
    same_predictions(a, b, X, lengths, RTOL)


# ------------------------------------------------------------ em = hmmlearn
def hmmlearn_iterates(a, X, lengths, n_iter):
    """hmmlearn's own EM iterations -- its fit loop (BaseHMM.fit) without _init,
    whose k-means an init_params='' start throws away: the parameters after every
    iteration and the log-likelihood history."""
    a._check()
    iterates, history = [], []
    for _ in range(n_iter):
        stats, logprob = a._do_estep(X, lengths)
        a._do_mstep(stats)
        history.append(logprob)
        iterates.append({n: np.array(getattr(a, n)) for n in ATTRS})
    return iterates, history


@pytest.mark.parametrize("ct", CTS)
@pytest.mark.parametrize("name", ["synthetic", "faithful"])
def test_em_equals_hmmlearn_iterate_for_iterate(ct, name):
    X, lengths = data(name)
    a, _ = pair(ct, X)
    iterates, history = hmmlearn_iterates(a, X, lengths, 10)
    for n_iter in range(1, 11):
        _, b = pair(ct, X, n_iter=n_iter, tol=-np.inf)
        b.fit(X, lengths)
        for attr in ATTRS:
            close(getattr(b, attr), iterates[n_iter - 1][attr], what=(attr, n_iter))
            assert getattr(b, attr).shape == iterates[n_iter - 1][attr].shape
        close(list(b.monitor_.history), history[:n_iter], what="monitor_.history")
        assert b.monitor_.iter == n_iter and b.n_iter_ == n_iter
        # the trace is the history per row
        close(b.trace_["objective"] * X.shape[0], list(b.monitor_.history))
    assert_same_predictions(a, b, X, lengths)
    # the history is the log-likelihood at each iteration's start: the first entry
    # is score at the start, and it never decreases (ML defaults, not spherical's)
    s0 = fastvem.GMMHMM(K, n_mix=M, covariance_type=ct)
    start(s0, ct, X)
    close(history[0], s0.score(X, lengths))
    if ct != "spherical":
        assert np.all(np.diff(history) >= -1e-9 * np.abs(history[1:]))
    assert b.n_features_in_ == X.shape[1]


@pytest.mark.parametrize("ct", ["diag", "full"])
def test_expanded_chain_statistics_are_hmmlearns(ct):
    """One pass of the sequence driver over the K M expanded states, folded back,
    gives hmmlearn's E-step statistics: start and transition counts (summed over
    the components), post_mix_sum (the expanded occupancies), post_sum, m_n and
    c_n (about the means the pass ran with) -- and its log-likelihood."""
    from fastvem.models.gmmhmm import GMMHMMEngine
    from fastvem.models.hmm import _offsets
    from fastvem.structures.hmm import Chain
    X, lengths = faithful()
    a, b = pair(ct, X)
    a._check()
    want, logprob = a._do_estep(X, lengths)
    fam, d = b._prepare_fit(X)
    params = b._fitted_params(fam)
    eng = GMMHMMEngine(fam, Chain(K), "em", d, _offsets(lengths, len(X)), 1, M,
                       np.ones((K, M)))
    st = eng.statistics(d, None, params)
    start_, trans, nkm = eng.fold(st)
    close(start_, want["start"])
    close(trans, want["trans"])
    close(nkm, want["post_mix_sum"])
    close(nkm.sum(1), want["post_sum"])
    close(st.objective, logprob)
    D = X.shape[1]
    s1 = st.stats[:, :D].reshape(K, M, D)
    close(s1 + nkm[:, :, None] * fam.ref, want["m_n"], what="m_n")
    mu = b.means_ - fam.ref
    if ct == "diag":
        c = st.stats[:, D:].reshape(K, M, D) - 2 * mu * s1 + nkm[:, :, None] * mu ** 2
    else:
        from fastvem.families.normal import _to_matrix
        S2 = _to_matrix(st.stats[:, D:], D).reshape(K, M, D, D)
        so = s1[..., :, None] * mu[..., None, :]
        c = S2 - so - np.swapaxes(so, -1, -2) + nkm[..., None, None] * (
            mu[..., :, None] * mu[..., None, :])
    close(c, want["c_n"], what="c_n")


def test_continued_fit_equals_hmmlearn():
    """hmmlearn's fit with init_params='' continues from the fitted attributes (one
    iteration, then two more): so does this one."""
    X, lengths = synthetic(1)
    a, b = pair("full", X, tol=-np.inf)
    for n_iter in (1, 2):
        a.n_iter = a.monitor_.n_iter = b.n_iter = n_iter    # hmmlearn's monitor keeps its own
        a.fit(X, lengths)
        b.fit(X, lengths)
        assert_same_fit(a, b)


PRIORS = {"diag": dict(covars_prior=0.5, covars_weight=0.2),
          "spherical": dict(covars_prior=1.0, covars_weight=0.3),
          "full": dict(covars_prior=0.3 * np.eye(2), covars_weight=2.0),
          "tied": dict(covars_prior=0.3 * np.eye(2), covars_weight=3.0)}


@pytest.mark.parametrize("ct", CTS)
def test_em_with_priors_equals_hmmlearn(ct):
    X, lengths = faithful() if ct in ("full", "diag") else synthetic(2)
    means_prior = np.arange(K * M * 2, dtype=float).reshape(K, M, 2) * 0.1 + X.mean(0)
    a, b = pair(ct, X, n_iter=8, tol=-np.inf, weights_prior=np.array([2.0, 1.5]),
                means_prior=means_prior, means_weight=1.5, startprob_prior=2.0,
                transmat_prior=1.5, **PRIORS[ct])
    iterates, history = hmmlearn_iterates(a, X, lengths, 8)
    b.fit(X, lengths)
    for attr in ATTRS:
        close(getattr(b, attr), iterates[-1][attr], what=attr)
    close(list(b.monitor_.history), history, what="monitor_.history")
    assert_same_predictions(a, b, X, lengths)


@pytest.mark.parametrize("params", ["tw", "mc", "sc", "w"])
def test_partial_params_equal_hmmlearn(params):
    X, lengths = synthetic(3)
    for ct in ("diag", "tied"):
        a, b = pair(ct, X, n_iter=4, tol=-np.inf, params=params)
        iterates, history = hmmlearn_iterates(a, X, lengths, 4)
        b.fit(X, lengths)
        for attr in ATTRS:
            close(getattr(b, attr), iterates[-1][attr], what=attr)
        close(list(b.monitor_.history), history, what="monitor_.history")


def test_tol_stops_as_hmmlearn():
    X, lengths = synthetic(4)
    a, b = pair("full", X, n_iter=200, tol=1e-3)
    a.fit(X, lengths)
    b.fit(X, lengths)
    assert a.monitor_.iter < 200
    assert_same_fit(a, b)


@pytest.mark.parametrize("ct", ["diag", "tied"])
def test_default_start_equals_hmmlearn(ct):
    """The same int random_state gives hmmlearn's start (its chain draws, k-means
    of the rows, then of each cluster) and so the same fit."""
    X, lengths = synthetic(5)
    a = hmm.GMMHMM(K, n_mix=M, covariance_type=ct, n_iter=4, random_state=0).fit(X, lengths)
    b = fastvem.GMMHMM(K, n_mix=M, covariance_type=ct, n_iter=4, random_state=0).fit(X, lengths)
    assert_same_fit(a, b)


def test_sample_aic_bic_like_hmmlearn():
    X, lengths = synthetic(6)
    for ct in CTS:
        a, b = pair(ct, X)          # the parameters set, no fit (hmmlearn's usage)
        a._check()
        xa, sa = a.sample(25, random_state=3)
        xb, sb = b.sample(25, random_state=3)
        assert np.array_equal(sa, sb)
        close(xb, xa)
        # aic / bic: the weights of every state count, K (M - 1) (hmmlearn 0.3: M - 1)
        extra = (K - 1) * (M - 1)
        close(b.aic(X, lengths), a.aic(X, lengths) + 2 * extra)
        close(b.bic(X, lengths), a.bic(X, lengths) + extra * np.log(X.shape[0]))


def test_viterbi_is_hmmlearns_state_path_not_the_joint_one():
    """State 0 is an equal mixture of two copies of N(0, 1), state 1 (almost) one
    N(0.3, 1).  At x ~ 0.05 the state densities favour state 0, but a single
    component of state 0 carries weight 1/2 only: the expanded chain's joint
    (state, component) Viterbi path sits in state 1.  decode must give hmmlearn's
    state path."""
    rng = np.random.default_rng(0)
    X = 0.05 + 0.01 * rng.normal(size=(30, 1))
    lengths = [20, 10]
    models = []
    for cls in (hmm.GMMHMM, fastvem.GMMHMM):
        m = cls(2, n_mix=2, covariance_type="diag", init_params="")
        m.startprob_ = np.array([0.5, 0.5])
        m.transmat_ = np.array([[0.9, 0.1], [0.1, 0.9]])
        m.weights_ = np.array([[0.5, 0.5], [0.999, 0.001]])
        m.means_ = np.array([[[0.0], [0.0]], [[0.3], [0.3]]])
        m.covars_ = np.ones((2, 2, 1))
        models.append(m)
    a, b = models
    la, pa = a.decode(X, lengths)
    lb, pb = b.decode(X, lengths)
    assert np.array_equal(pa, pb) and np.all(pb == 0)
    close(lb, la)
    assert np.array_equal(b.predict(X, lengths), pa)
    # the expanded chain's joint path, from the kernel: another state path
    from fastvem._ext import _hmm
    fam, d = b._prepare_predict(X)
    s, t, w, theta = b._fitted_params(fam)
    W, c = fam.effective(theta)
    ls, lt = expanded_log_params(s, t, w)
    off = np.array([0, 20, 30], dtype=np.int64)
    path, lj = np.empty(30, dtype=np.int64), np.empty(2)
    _hmm.hmm_viterbi(fam.kernel_data(d), fam.aux(), _hmm.FEATURES[fam.features], 0,
                     W.shape[1], W, c, ls, lt, off, path, lj, 1)
    assert np.all(path // 2 == 1)
    # its log joint (a max over components) lies below the state path's (a sum)
    assert lj.sum() < lb


# ------------------------------------------------------------ the methods
def ml_model(method, ct, **kw):
    """Maximum-likelihood settings (the spherical prior's denominator made
    D n_km), where em's log-likelihood, vem's ELBO and crisp's log joint provably
    never decrease."""
    extra = dict(covars_prior=-(2 + 2.0) / 2) if ct == "spherical" else {}
    kw = dict(dict(n_iter=25, tol=-np.inf), **extra, **kw)
    return fastvem.GMMHMM(K, n_mix=M, covariance_type=ct, method=method, **kw)


def nondecreasing(h):
    h = np.asarray(h)
    return np.all(np.diff(h) >= -1e-10 * np.abs(h[1:]))


@pytest.mark.parametrize("ct", CTS)
def test_em_loglik_never_decreases(ct):
    X, lengths = synthetic(7)
    for seed in range(2):
        m = ml_model("em", ct, random_state=seed).fit(X, lengths)
        h = m.monitor_.history
        assert nondecreasing(h), np.diff(np.asarray(h)).min()
        assert m.lower_bound_ == m.trace_["objective"][-1]


@pytest.mark.parametrize("ct", CTS)
def test_vem_elbo_never_decreases_and_lies_below_loglik(ct):
    X, lengths = synthetic(8)
    m = ml_model("vem", ct, random_state=0).fit(X, lengths)
    h = np.asarray(m.monitor_.history)
    assert nondecreasing(h), np.diff(h).min()
    # the ELBO of the factorised q(z_t, m_t) <= log p(x) per sequence at the same
    # parameters, equal for the sequence of length 1 (q is exact there)
    elbo = m._log_evidence(X, lengths, "vem")
    ll = m._log_evidence(X, lengths, "em")
    assert np.all(elbo <= ll + 1e-9 * np.abs(ll))
    one = lengths.index(1)
    close(elbo[one], ll[one])
    close(ll.sum(), m.score(X, lengths))
    assert m.lower_bound_ * X.shape[0] <= m.score(X, lengths) + 1e-9
    # em from vem's own start: the log-likelihood of the first iteration is
    # above vem's first ELBO (the same parameters)
    e = ml_model("em", ct, random_state=0, n_iter=1).fit(X, lengths)
    assert h[0] <= e.monitor_.history[0] + 1e-9


@pytest.mark.parametrize("ct", CTS)
def test_crisp_log_joint_never_decreases(ct):
    X, lengths = synthetic(9)
    m = ml_model("crisp", ct, random_state=0).fit(X, lengths)
    h = np.asarray(m.monitor_.history)
    assert nondecreasing(h), np.diff(h).min()
    assert np.all(np.isfinite(m.means_)) and np.all(np.isfinite(m.covars_))
    # from a given start, crisp's first objective is the joint (state, component)
    # Viterbi path's log joint: below the state path's and below log p(X)
    m0 = ml_model("crisp", ct, n_iter=1, init_params="")
    start(m0, ct, X)
    lp_state, _ = m0.decode(X, lengths)
    score = m0.score(X, lengths)
    m0.fit(X, lengths)
    assert m0.monitor_.history[0] <= lp_state + 1e-9 <= score + 2e-9


def test_methods_recover_the_states():
    """From a start near the truth (k-means' start is a poor one for this model,
    hmmlearn's alike), every method settles on the generating means."""
    X, lengths = synthetic(10, lengths=[300, 1, 200])
    truth = np.zeros((K, M, 2)) + 8.0 * np.arange(K)[:, None, None] + 5.0
    truth[:, :, 0] += np.array([-2.0, 2.0])
    r = np.random.default_rng(0)
    for meth in ("em", "vem", "crisp"):
        m = fastvem.GMMHMM(K, n_mix=M, method=meth, n_iter=30, random_state=0,
                           init_params="st")
        m.means_ = truth + r.normal(scale=0.5, size=truth.shape)
        m.covars_ = np.full((K, M, 2), 2.0)
        m.weights_ = np.full((K, M), 0.5)
        m.fit(X, lengths)
        assert np.allclose(m.means_, truth, atol=0.35), (meth, m.means_)
        assert np.all(np.abs(m.covars_ - 1.0) < 0.5), (meth, m.covars_)
        assert np.allclose(m.weights_, 0.5, atol=0.15), (meth, m.weights_)


@pytest.mark.parametrize("method", ["em", "vem", "crisp"])
def test_thread_invariance_bitwise(method):
    # long sequences: several partitions of the sequence driver
    X, lengths = synthetic(11, lengths=[4200, 1, 300])
    fits = []
    for t in (1, 2, 3):
        m = fastvem.GMMHMM(2, n_mix=2, covariance_type="full", method=method, n_iter=2,
                           tol=-np.inf, init_params="", n_threads=t)
        start(m, "full", X, k=2, mix=2)
        fits.append(m.fit(X, lengths))
    ref = fits[0]
    for m in fits[1:]:
        for name in ATTRS:
            assert np.array_equal(getattr(m, name), getattr(ref, name)), name
        assert list(m.monitor_.history) == list(ref.monitor_.history)
        assert np.array_equal(m.predict_proba(X, lengths), ref.predict_proba(X, lengths))
        (la, pa), (lb, pb) = m.decode(X, lengths), ref.decode(X, lengths)
        assert la == lb and np.array_equal(pa, pb)
        assert m.score(X, lengths) == ref.score(X, lengths)


def test_refused_methods():
    X, lengths = synthetic(0)
    for meth in ("meanfield", "gibbs"):
        with pytest.raises(ValueError, match=f"method='{meth}' is not built for GMMHMM"):
            fastvem.GMMHMM(K, n_mix=M, method=meth).fit(X, lengths)


# ------------------------------------------------------------ persistence
@pytest.mark.parametrize("ct,method", [(ct, "em") for ct in CTS] + [("diag", "vem"),
                                                                     ("full", "crisp")])
def test_save_load_round_trip(ct, method, tmp_path):
    X, lengths = synthetic(12)
    kw = PRIORS[ct] if method == "em" else {}
    est = fastvem.GMMHMM(K, n_mix=M, covariance_type=ct, method=method, n_iter=4,
                         init_params="", **kw)
    start(est, ct, X)
    est.fit(X, lengths)
    est.save(tmp_path / "m.npz")
    back = fastvem.load(tmp_path / "m.npz")
    assert type(back) is fastvem.GMMHMM
    pa, pb = est.get_params(), back.get_params()
    assert set(pa) == set(pb)
    for key in pa:
        assert np.array_equal(np.asarray(pa[key]), np.asarray(pb[key])), key
    for name in ATTRS + ["lower_bound_", "n_iter_", "n_features_in_"]:
        assert np.array_equal(getattr(back, name), getattr(est, name)), name
    assert list(back.monitor_.history) == list(est.monitor_.history)
    assert np.array_equal(back.trace_["objective"], est.trace_["objective"])
    assert back.score(X, lengths) == est.score(X, lengths)
    assert np.array_equal(back.predict_proba(X, lengths), est.predict_proba(X, lengths))
    for alg in ("viterbi", "map"):
        assert back.decode(X, lengths, algorithm=alg)[0] == est.decode(X, lengths,
                                                                       algorithm=alg)[0]
    xa, sa = est.sample(9, random_state=1)
    xb, sb = back.sample(9, random_state=1)
    assert np.array_equal(xa, xb) and np.array_equal(sa, sb)
    assert back.bic(X, lengths) == est.bic(X, lengths)


def test_load_refuses_corrupt_weights(tmp_path):
    X, lengths = synthetic(13)
    est = fastvem.GMMHMM(K, n_mix=M, n_iter=2, random_state=0).fit(X, lengths)
    est.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as f:
        files = {k: f[k] for k in f.files}
    for name, value in (("weights_", files["attr__weights_"] * 1.5),
                        ("covars_", -files["attr__covars_"]),
                        ("means_", files["attr__means_"][:, :1])):
        bad = dict(files)
        bad["attr__" + name] = value
        np.savez(tmp_path / "bad.npz", **bad)
        with pytest.raises(ValueError, match=name):
            fastvem.load(tmp_path / "bad.npz")


# ------------------------------------------------------------ bad input
def test_bad_input():
    X, lengths = synthetic(0)
    D = X.shape[1]
    for n_mix in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="n_mix"):
            fastvem.GMMHMM(K, n_mix=n_mix).fit(X, lengths)
    Xn = X.copy()
    Xn[5, 1] = np.nan
    with pytest.raises(ValueError, match="X"):
        fastvem.GMMHMM(K, n_mix=M).fit(Xn, lengths)
    for bad in ([100], [40, 1, 60, 25, 13], [140, -1]):
        with pytest.raises(ValueError, match="lengths"):
            fastvem.GMMHMM(K, n_mix=M).fit(X, bad)
    for kw, match in [(dict(covariance_type="nope"), "covariance_type"),
                      (dict(min_covar=0.0), "min_covar"), (dict(method="nope"), "method"),
                      (dict(weights_prior=np.ones(5)), "weights_prior"),
                      (dict(means_prior=[np.nan]), "means_prior")]:
        with pytest.raises(ValueError, match=match):
            fastvem.GMMHMM(K, n_mix=M, **kw).fit(X, lengths)

    def given(ct="diag", **set_):
        m = fastvem.GMMHMM(K, n_mix=M, covariance_type=ct, init_params="", n_iter=2)
        start(m, ct, X)
        for k, v in set_.items():
            setattr(m, k, v)
        return m

    given().fit(X, lengths)
    w = np.full((K, M), 0.5)
    w[1] = [0.7, 0.7]
    for name, value, ct in [("weights_", w, "diag"), ("weights_", np.full((K, M + 1), 0.5), "diag"),
                            ("means_", np.zeros((K, M, D + 1)), "diag"),
                            ("covars_", -np.ones((K, M, D)), "diag"),
                            ("covars_", np.ones((K, M + 1)), "spherical"),
                            ("covars_", np.tile(-np.eye(D), (K, M, 1, 1)), "full"),
                            ("covars_", np.tile([[1.0, 2.0], [0.0, 1.0]], (K, 1, 1)), "tied"),
                            ("startprob_", [0.5, 0.2, 0.2], "diag")]:
        with pytest.raises(ValueError, match=name):
            given(ct, **{name: value}).fit(X, lengths)
    m = fastvem.GMMHMM(K, n_mix=M, n_iter=2, random_state=0).fit(X, lengths)
    with pytest.raises(ValueError, match="features"):
        m.predict(X[:, :1], lengths)
    with pytest.raises(ValueError, match="lengths"):
        m.score(X, [10, 10])
    with pytest.raises(ValueError, match="algorithm"):
        m.decode(X, lengths, algorithm="nope")


# ------------------------------------------------------------ degenerate cases
@pytest.mark.parametrize("method", ["em", "vem", "crisp"])
def test_component_without_weight_gives_no_nan(method):
    """A component of weight 0 (and one far from every row) gets no posterior mass:
    0 / 0 in hmmlearn's update (NaN covariances there); here it keeps its mean and
    covariance, its weight stays 0 and the events say so."""
    X, lengths = synthetic(14)
    for ct in CTS:
        m = fastvem.GMMHMM(K, n_mix=3, covariance_type=ct, method=method, init_params="",
                           n_iter=4, tol=-np.inf)
        start(m, ct, X, mix=3)
        w = m.weights_.copy()
        w[0] = [0.6, 0.4, 0.0]
        m.weights_ = w
        means = m.means_.copy()
        means[1, 2] = X.max(0) + 1e4             # far away: its posterior underflows to 0
        m.means_ = means
        m.fit(X, lengths)
        for name in ATTRS:
            assert np.all(np.isfinite(getattr(m, name))), (ct, name)
        assert np.allclose(m.weights_.sum(1), 1.0)
        if method == "vem":
            # vem's factorised step floors log 0 at the smallest normal double's log
            assert m.weights_[0, 2] < 1e-300
        else:
            assert m.weights_[0, 2] == 0.0
            assert np.array_equal(m.means_[0, 2], means[0, 2])
            assert any("never visited" in e for _, e in m.trace_["events"])
        assert np.isfinite(m.score(X, lengths))
        assert np.all(np.isfinite(m.predict_proba(X, lengths)))


def test_state_never_visited_and_float32():
    X, lengths = synthetic(15)
    m = fastvem.GMMHMM(K, n_mix=M, method="crisp", init_params="", n_iter=4, tol=-np.inf)
    start(m, "diag", X)
    means = m.means_.copy()
    means[2] += 1e4                               # state 2 far from every row
    m.means_ = means
    m.fit(X, lengths)
    assert np.all(np.isfinite(m.transmat_)) and np.allclose(m.transmat_.sum(1), 1)
    assert np.allclose(m.weights_.sum(1), 1) and np.all(np.isfinite(m.covars_))
    kept = [e for _, e in m.trace_["events"] if e.startswith("transmat_ rows")]
    assert kept and all("2" in e.split("]")[0] for e in kept)
    assert any(e.startswith("weights_ rows") for _, e in m.trace_["events"])
    # float32 rows fit and predict
    f = fastvem.GMMHMM(2, n_mix=2, n_iter=3, random_state=0).fit(X.astype(np.float32), lengths)
    assert np.isfinite(f.score(X.astype(np.float32), lengths))
    assert f.predict(X, lengths).shape == (X.shape[0],)


def test_namespace():
    assert "GMMHMM" in fastvem.__all__
    assert fastvem.GMMHMM is __import__("fastvem.models.gmmhmm",
                                        fromlist=["GMMHMM"]).GMMHMM
