"""The compiled HMM kernel (_ext/_hmm.pyx) against the NumPy oracle
(tests/oracle_hmm.py), brute-force enumeration and hmmlearn."""
import zlib

import numpy as np
import pytest
from scipy.special import gammaln

from fastvem._ext import _hmm
from fastvem.families.discrete import Bernoulli, Categorical, Poisson
from fastvem.families.normal import GaussianDiag, GaussianFull
from fastvem.families.product import Product

import oracle_hmm as orc

K = 3
LENGTHS = [1, 5, 17, 2, 40, 1, 9]
RTOL = 1e-10


def offsets_of(lengths):
    return np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)


def chain(rng, K=K, forbid=False):
    return orc.random_chain(rng, K, forbid)


class Case:
    """A family at known parameters: its prepared rows, (W, c), and the oracle's
    log-densities, statistics and log h from the distributions themselves."""

    def __init__(self, name, N, rng, f32=False):
        self.name = name
        if name == "gaussian_diag":
            D = 3
            means = rng.normal(size=(K, D)) * 2
            var = rng.uniform(0.5, 2.0, (K, D))
            X = rng.normal(size=(N, D)) * 1.5
            X = X.astype(np.float32) if f32 else X
            fam = GaussianDiag(D)
            data = fam.prepare(X, fitting=True)
            mu = means - fam.ref
            theta = np.hstack((mu, var + mu * mu))
            self.logB = orc.logB_gaussian_diag(X, means, var)
            self.T = orc.T_gaussian_diag(X, fam.ref)
            self.logh = np.full(N, -0.5 * D * np.log(2 * np.pi))
        elif name == "gaussian_full":
            D = 3
            means = rng.normal(size=(K, D)) * 2
            covs = []
            for _ in range(K):
                a = rng.normal(size=(D, D))
                covs.append(a @ a.T + 0.5 * np.eye(D))
            covs = np.array(covs)
            X = rng.normal(size=(N, D)) * 1.5
            X = X.astype(np.float32) if f32 else X
            fam = GaussianFull(D)
            data = fam.prepare(X, fitting=True)
            theta = fam.theta_from(means, covs)
            self.logB = orc.logB_gaussian_full(X, means, covs)
            self.T = orc.T_gaussian_full(X, fam.ref)
            self.logh = np.full(N, -0.5 * D * np.log(2 * np.pi))
        elif name == "categorical":
            cats = [3, 4]
            X = np.stack([rng.integers(0, L, N) for L in cats], axis=1)
            X[:4] = np.arange(4)[:, None] % np.array(cats)     # every code present
            fam = Categorical(cats)
            data = fam.prepare(X, fitting=True)
            probs = [rng.dirichlet(np.ones(L), size=K) for L in cats]
            theta = np.hstack(probs)
            self.logB = orc.logB_categorical(X, probs)
            self.T = orc.T_categorical(X, cats)
            self.logh = np.zeros(N)
        elif name == "poisson":
            D = 3
            rates = rng.uniform(0.5, 6.0, (K, D))
            X = rng.poisson(3.0, (N, D)).astype(np.float64)
            fam = Poisson(D)
            data = fam.prepare(X, fitting=True)
            theta = rates
            self.logB = orc.logB_poisson(X, rates)
            self.T = orc.T_poisson(X)
            self.logh = -gammaln(X + 1).sum(1)
        elif name == "product":
            Xg = rng.normal(size=(N, 2))
            Xc = rng.integers(0, 3, (N, 1))
            Xc[:3, 0] = [0, 1, 2]
            Xp = rng.poisson(2.0, (N, 2)).astype(np.float64)
            X = np.hstack((Xg, Xc, Xp))
            fam = Product([("gaussian_diag", [0, 1]), ("categorical", [2]), ("poisson", [3, 4])])
            data = fam.prepare(X, fitting=True)
            gd, cat, poi = (f for f, _ in fam.parts)
            means = rng.normal(size=(K, 2))
            var = rng.uniform(0.5, 2.0, (K, 2))
            probs = rng.dirichlet(np.ones(3), size=K)
            rates = rng.uniform(0.5, 4.0, (K, 2))
            mu = means - gd.ref
            theta = np.hstack((mu, var + mu * mu, probs, rates))
            self.logB = (orc.logB_gaussian_diag(Xg, means, var)
                         + orc.logB_categorical(Xc, [probs]) + orc.logB_poisson(Xp, rates))
            self.T = np.hstack((orc.T_gaussian_diag(Xg, gd.ref), orc.T_categorical(Xc, [3]),
                                orc.T_poisson(Xp)))
            self.logh = -np.log(2 * np.pi) - gammaln(Xp + 1).sum(1)
        else:
            raise ValueError(name)
        self.fam, self.X, self.data = fam, X, data
        W, c = fam.effective(theta)
        self.W, self.c = np.ascontiguousarray(W), np.ascontiguousarray(c)
        self.S = fam.n_statistics()

    def args(self):
        f = self.fam
        return (f.kernel_data(self.data), f.aux(), _hmm.FEATURES[f.features], f.address, self.S,
                self.W, self.c)


def run_pass(case, ls, lt, off, sw=None, mode=0, seed=0, n_threads=1, labels=False, **kw):
    Kk, S = case.W.shape
    out = dict(stats=np.zeros((Kk, S)), nk=np.zeros(Kk), start=np.zeros(Kk),
               trans=np.zeros((Kk, Kk)), totals=np.zeros(3))
    lab = np.full(off[-1], -1, dtype=np.int64) if labels else None
    _hmm.hmm_pass(*case.args(), ls, lt, off, sw, out["stats"], out["nk"], out["start"],
                  out["trans"], out["totals"], mode, seed, n_threads, labels=lab, **kw)
    if labels:
        out["labels"] = lab
    return out


def split(a, off):
    return [a[off[i]:off[i + 1]] for i in range(len(off) - 1)]


def _seed(*key):
    """A seed from the case's key, the same in every process (hash() of a str is
    salted per process: the data, and so a tolerance-stopped comparison such as
    vem's -- where about one draw in 300 stops kernel and oracle a sweep apart --,
    changed from run to run)."""
    return zlib.crc32(repr(key).encode())


def oracle(case, ls, lt, off, sw=None, mode=0, **kw):
    return orc.oracle_pass(split(case.logB, off), split(case.T, off), split(case.logh, off),
                           ls, lt, sw, mode, **kw)


def assert_close(a, b, rtol=RTOL, atol=1e-12, what=""):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=what)


CASES = [("gaussian_diag", False), ("gaussian_diag", True), ("gaussian_full", False),
         ("gaussian_full", True), ("categorical", False), ("poisson", False),
         ("product", False)]


# ---------------------------------------------------------------- the oracle itself
def test_oracle_matches_enumeration():
    """forward_backward and viterbi of the oracle equal brute-force enumeration."""
    rng = np.random.default_rng(1)
    for T in (1, 2, 4):
        logB = rng.normal(size=(T, K)) * 2
        ls, lt = chain(rng, forbid=True)
        g, xi, ll, ent = orc.forward_backward(logB, ls, lt)
        _, _, g2, pairs, ll2, ent2, best = orc.enumerate_paths(logB, ls, lt)
        assert_close(g, g2)
        assert_close(xi, pairs.sum(0))
        assert_close(ll, ll2)
        assert_close(ent, ent2, atol=1e-10)
        assert np.array_equal(orc.viterbi(logB, ls, lt)[0], best)


# ---------------------------------------------------------------- softmax (mode 0)
@pytest.mark.parametrize("name,f32", CASES)
@pytest.mark.parametrize("weighted", [False, True])
def test_forward_backward_matches_oracle(name, f32, weighted):
    rng = np.random.default_rng(_seed(name, f32, weighted))
    off = offsets_of(LENGTHS)
    case = Case(name, off[-1], rng, f32)
    ls, lt = chain(rng, forbid=name == "poisson")
    sw = rng.uniform(0.2, 3.0, len(LENGTHS)) if weighted else None
    got = run_pass(case, ls, lt, off, sw)
    stats, nk, start, trans, totals, gammas = oracle(case, ls, lt, off, sw)
    assert_close(got["stats"], stats, what="stats")
    assert_close(got["nk"], nk, what="nk")
    assert_close(got["start"], start, what="start")
    assert_close(got["trans"], trans, what="trans")
    assert_close(got["totals"][[0, 2]], totals[[0, 2]], what="log-likelihood, log h")
    # the entropy is a difference of terms of size ~|log p(x)|
    assert_close(got["totals"][1], totals[1], atol=1e-9 * abs(totals[0]), what="entropy")
    # the E-step-only entry
    gamma = np.full((off[-1], K), np.nan)
    ll = np.full(len(LENGTHS), np.nan)
    _hmm.hmm_posteriors(*case.args(), ls, lt, off, gamma, ll, 1)
    assert_close(gamma, np.vstack(gammas), what="gamma")
    assert_close(ll, [orc.forward_backward(b, ls, lt)[2] for b in split(case.logB, off)])
    assert_close(gamma.sum(1), 1.0)


def test_brute_force_tiny_chains():
    """Posteriors, pair marginals, log p(x), entropy and the MAP path of every
    short sequence equal the enumeration of all K^T paths."""
    rng = np.random.default_rng(7)
    lengths = [1, 2, 3, 4, 5]
    off = offsets_of(lengths)
    case = Case("gaussian_diag", off[-1], rng)
    for forbid in (False, True):
        ls, lt = chain(rng, forbid=forbid)
        gamma = np.empty((off[-1], K))
        ll = np.empty(len(lengths))
        _hmm.hmm_posteriors(*case.args(), ls, lt, off, gamma, ll, 1)
        path = np.empty(off[-1], dtype=np.int64)
        lj = np.empty(len(lengths))
        _hmm.hmm_viterbi(*case.args(), ls, lt, off, path, lj, 1)
        for s, lB in enumerate(split(case.logB, off)):
            _, ljs, g, pairs, lls, ent, best = orc.enumerate_paths(lB, ls, lt)
            sl = slice(off[s], off[s + 1])
            assert_close(gamma[sl], g)
            assert_close(ll[s], lls)
            assert np.array_equal(path[sl], best)
            assert_close(lj[s], ljs.max())
            one = offsets_of([len(lB)])
            sub = _sub_case(case, sl)
            got = run_pass(sub, ls, lt, one)
            assert_close(got["trans"], pairs.sum(0))
            assert_close(got["totals"][0], lls)
            assert_close(got["totals"][1], ent, atol=1e-10)


def _sub_case(case, sl):
    sub = Case.__new__(Case)
    sub.fam, sub.S, sub.W, sub.c = case.fam, case.S, case.W, case.c
    sub.data = np.ascontiguousarray(case.data[sl])
    return sub


# ---------------------------------------------------------------- argmax (mode 1)
@pytest.mark.parametrize("name,f32", CASES)
def test_viterbi_matches_oracle(name, f32):
    rng = np.random.default_rng(_seed(name, f32, "v"))
    off = offsets_of(LENGTHS)
    case = Case(name, off[-1], rng, f32)
    ls, lt = chain(rng, forbid=True)
    sw = rng.uniform(0.2, 3.0, len(LENGTHS))
    path = np.empty(off[-1], dtype=np.int64)
    lj = np.empty(len(LENGTHS))
    _hmm.hmm_viterbi(*case.args(), ls, lt, off, path, lj, 1)
    want = [orc.viterbi(b, ls, lt) for b in split(case.logB, off)]
    assert np.array_equal(path, np.concatenate([p for p, _ in want]))
    assert_close(lj, [v for _, v in want])
    got = run_pass(case, ls, lt, off, sw, mode=1, labels=True)
    stats, nk, start, trans, totals, _ = oracle(case, ls, lt, off, sw, mode=1)
    assert np.array_equal(got["labels"], path)
    for key, ref in (("stats", stats), ("nk", nk), ("start", start), ("trans", trans),
                     ("totals", totals)):
        assert_close(got[key], ref, what=key)


# ---------------------------------------------------------------- vem (mode 3)
@pytest.mark.parametrize("name", ["gaussian_diag", "categorical", "product"])
def test_vem_matches_oracle_and_bounds_the_likelihood(name):
    rng = np.random.default_rng(_seed(name, "vem"))
    off = offsets_of(LENGTHS)
    case = Case(name, off[-1], rng)
    ls, lt = chain(rng)
    sw = rng.uniform(0.2, 3.0, len(LENGTHS))
    got = run_pass(case, ls, lt, off, sw, mode=3, tol=1e-10, max_iter=500)
    stats, nk, start, trans, totals, qs = oracle(case, ls, lt, off, sw, mode=3, tol=1e-10,
                                                 max_iter=500)
    for key, ref in (("stats", stats), ("nk", nk), ("start", start), ("trans", trans),
                     ("totals", totals)):
        assert_close(got[key], ref, rtol=1e-9, atol=1e-9, what=key)
    q = np.empty((off[-1], K))
    elbo = np.empty(len(LENGTHS))
    _hmm.hmm_posteriors(*case.args(), ls, lt, off, q, elbo, 1, mode=3, tol=1e-10, max_iter=500)
    assert_close(q, np.vstack(qs), rtol=1e-9, atol=1e-9)
    ll = np.array([orc.forward_backward(b, ls, lt)[2] for b in split(case.logB, off)])
    assert np.all(elbo <= ll + 1e-9)
    # a single row's q is the exact posterior: the bound is tight there
    one = np.diff(off) == 1
    assert_close(elbo[one], ll[one])
    assert np.any(elbo[~one] < ll[~one] - 1e-6)


# ---------------------------------------------------------------- sample (mode 2)
def test_ffbs_draws_match_the_exact_posterior():
    """n copies of one short sequence, each drawn with its own rows' uniforms: the
    frequencies of every state, pair and whole path equal the enumerated posterior
    within 5 standard errors; the objective is the drawn paths' log joint."""
    rng = np.random.default_rng(11)
    L, n = 4, 20000
    base = Case("gaussian_diag", L, rng)
    ls, lt = chain(rng, forbid=True)
    paths, ljs, g, pairs, ll, _, _ = orc.enumerate_paths(base.logB, ls, lt)
    sub = _sub_case(base, slice(0, L))
    sub.data = np.ascontiguousarray(np.tile(base.data, (n, 1)))
    off = offsets_of([L] * n)
    got = run_pass(sub, ls, lt, off, mode=2, seed=12345, labels=True)
    z = got["labels"].reshape(n, L)

    def close(p_hat, p):
        se = np.sqrt(p * (1 - p) / n)
        assert np.all(np.abs(p_hat - p) <= 5 * se + 1e-12), (p_hat, p)

    for t in range(L):
        close(np.bincount(z[:, t], minlength=K) / n, g[t])
    for t in range(L - 1):
        freq = np.zeros((K, K))
        np.add.at(freq, (z[:, t], z[:, t + 1]), 1.0)
        close(freq / n, pairs[t])
    code = (z * K ** np.arange(L - 1, -1, -1)).sum(1)      # itertools.product order
    close(np.bincount(code, minlength=K ** L) / n, np.exp(ljs - ll))
    assert not np.any((np.bincount(code, minlength=K ** L) > 0) & np.isneginf(ljs))
    assert_close(got["totals"][0], ljs[code].sum(), rtol=1e-9)
    assert_close(got["nk"], np.bincount(z.ravel(), minlength=K))
    assert_close(got["start"], np.bincount(z[:, 0], minlength=K))
    # the same seed draws the same paths; another seed others
    again = run_pass(sub, ls, lt, off, mode=2, seed=12345, labels=True)
    assert np.array_equal(again["labels"], got["labels"])
    other = run_pass(sub, ls, lt, off, mode=2, seed=12346, labels=True)
    assert not np.array_equal(other["labels"], got["labels"])


def test_draws_are_keyed_by_global_rows():
    """A sequence draws the same path whether it runs alone or after others (its
    rows keep their global indices), whatever the partitions."""
    rng = np.random.default_rng(5)
    lengths = [3000, 2500, 700]
    off = offsets_of(lengths)
    case = Case("poisson", off[-1], rng)
    ls, lt = chain(rng)
    full = run_pass(case, ls, lt, off, mode=2, seed=99, labels=True)["labels"]
    # the same rows with the first two sequences fused into one: the third
    # sequence's rows keep their indices, so its draws are the same
    fused = run_pass(case, ls, lt, offsets_of([5500, 700]), mode=2, seed=99,
                     labels=True)["labels"]
    assert np.array_equal(full[5500:], fused[5500:])


# ---------------------------------------------------------------- thread invariance
@pytest.mark.parametrize("name", ["gaussian_full", "product"])
def test_bitwise_identical_for_any_thread_count(name):
    rng = np.random.default_rng(3)
    lengths = list(rng.integers(1, 120, 600)) + [5000] + list(rng.integers(1, 30, 40))
    off = offsets_of(lengths)
    assert len(_hmm.partition_bounds(off)) > 4          # several partitions
    case = Case(name, off[-1], rng)
    ls, lt = chain(rng)
    sw = rng.uniform(0.2, 3.0, len(lengths))
    for mode in range(4):
        ref = None
        for T in (1, 2, 3):
            got = run_pass(case, ls, lt, off, sw, mode=mode, seed=4, n_threads=T,
                           labels=True)
            if ref is None:
                ref = got
                continue
            for key in ref:
                assert ref[key].tobytes() == got[key].tobytes(), (mode, T, key)
    for mode in (0, 3):
        outs = []
        for T in (1, 2, 3):
            g = np.empty((off[-1], K))
            ll = np.empty(len(lengths))
            _hmm.hmm_posteriors(*case.args(), ls, lt, off, g, ll, T, mode=mode)
            outs.append(g.tobytes() + ll.tobytes())
        assert outs[0] == outs[1] == outs[2]
    outs = []
    for T in (1, 2, 3):
        p = np.empty(off[-1], dtype=np.int64)
        lj = np.empty(len(lengths))
        _hmm.hmm_viterbi(*case.args(), ls, lt, off, p, lj, T)
        outs.append(p.tobytes() + lj.tobytes())
    assert outs[0] == outs[1] == outs[2]


def test_partitions_are_whole_consecutive_sequences():
    rng = np.random.default_rng(0)
    off = offsets_of(rng.integers(1, 3000, 200))
    b = _hmm.partition_bounds(off)
    assert b[0] == 0 and b[-1] == len(off) - 1 and np.all(np.diff(b) > 0)
    rows = off[b[1:]] - off[b[:-1]]
    # a partition holds at most the budget's rows, or one longer sequence alone, and
    # the next sequence would take it over the budget
    single = np.diff(b) == 1
    assert np.all((rows <= _hmm.PARTITION_ROWS) | single)
    nxt = off[b[1:-1] + 1] - off[b[1:-1]]
    assert np.all(rows[:-1] + nxt > _hmm.PARTITION_ROWS)
    # the workload: groups of four sequences of 2,000 rows, one group of lanes
    b = _hmm.partition_bounds(offsets_of([2000] * 50))
    assert np.array_equal(np.diff(b), [4] * 12 + [2])


# ---------------------------------------------------------------- other forms
def test_packed_bits_equal_unpacked():
    rng = np.random.default_rng(8)
    off = offsets_of(LENGTHS)
    X = (rng.random((off[-1], 11)) < 0.4).astype(np.float64)
    p = rng.uniform(0.1, 0.9, (K, 11))
    ls, lt = chain(rng)
    outs = []
    for packed in (True, False):
        fam = Bernoulli(11, packed=packed)
        data = fam.prepare(X, fitting=True)
        W, c = fam.effective(p)
        sub = Case.__new__(Case)
        sub.fam, sub.data, sub.S = fam, data, fam.n_statistics()
        sub.W, sub.c = np.ascontiguousarray(W), np.ascontiguousarray(c)
        outs.append(run_pass(sub, ls, lt, off))
    for key in outs[0]:
        assert_close(outs[0][key], outs[1][key], what=key)
    logB = X @ np.log(p).T + (1 - X) @ np.log(1 - p).T
    assert_close(outs[0]["totals"][0],
                 sum(orc.forward_backward(b, ls, lt)[2] for b in split(logB, off)))


def test_dense_features_at_an_address():
    """A dense features function (a C callback at an address, here through ctypes)
    gives what the built-in sparse form of the same family gives."""
    import ctypes
    proto = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_ssize_t,
                             ctypes.c_ssize_t, ctypes.c_ssize_t, ctypes.c_ssize_t,
                             ctypes.POINTER(ctypes.c_double), ctypes.POINTER(ctypes.c_double))
    rng = np.random.default_rng(9)
    off = offsets_of(LENGTHS)
    case = Case("poisson", off[-1], rng)
    X = np.ascontiguousarray(case.data)
    N, D = X.shape

    def feats(data, aux, r0, nb, d, S, T, logh):
        x = X[r0:r0 + nb]
        np.ctypeslib.as_array(T, (nb * S,))[:] = x.ravel()
        np.ctypeslib.as_array(logh, (nb,))[:] = -gammaln(x + 1).sum(1)

    cb = proto(feats)
    address = ctypes.cast(cb, ctypes.c_void_p).value
    ls, lt = chain(rng)
    for mode in (0, 1, 3):
        dense = dict(stats=np.zeros((K, D)), nk=np.zeros(K), start=np.zeros(K),
                     trans=np.zeros((K, K)), totals=np.zeros(3))
        _hmm.hmm_pass(X, None, _hmm.FEATURES["address"], address, D, case.W, case.c, ls, lt,
                      off, None, dense["stats"], dense["nk"], dense["start"], dense["trans"],
                      dense["totals"], mode, 0, 2)
        sparse = run_pass(case, ls, lt, off, mode=mode)
        for key in dense:
            assert_close(dense[key], sparse[key], rtol=1e-12, what=(mode, key))


# ---------------------------------------------------------------- hmmlearn
def _hmmlearn_check(model, X, case, ls, lt, lengths, logB=None):
    off = offsets_of(lengths)
    gamma = np.empty((off[-1], K))
    ll = np.empty(len(lengths))
    _hmm.hmm_posteriors(*case.args(), ls, lt, off, gamma, ll, 2)
    assert_close(gamma, model.predict_proba(X, lengths), rtol=1e-8, atol=1e-10)
    assert_close(ll.sum(), model.score(X, lengths), rtol=1e-10)
    path = np.empty(off[-1], dtype=np.int64)
    lj = np.empty(len(lengths))
    _hmm.hmm_viterbi(*case.args(), ls, lt, off, path, lj, 2)
    logprob, states = model.decode(X, lengths, algorithm="viterbi")
    assert_close(lj.sum(), logprob, rtol=1e-10)
    if logB is None:
        assert np.array_equal(path, states)
        return
    # discrete rows can tie exactly (two paths of the same factors in another
    # order): both are then MAP paths; the kernel takes the oracle's (the first
    # maximiser at every step), hmmlearn another
    for s, (b, sl) in enumerate((b, slice(off[i], off[i + 1]))
                                for i, b in enumerate(split(logB, off))):
        mine, theirs = path[sl], states[sl]
        assert np.array_equal(mine, orc.viterbi(b, ls, lt)[0])
        if not np.array_equal(mine, theirs):
            assert (orc.path_log_joint(mine, b, ls, lt)
                    == orc.path_log_joint(theirs, b, ls, lt))


@pytest.mark.parametrize("cov", ["diag", "full"])
def test_gaussian_hmm_equals_hmmlearn(cov):
    from hmmlearn.hmm import GaussianHMM
    rng = np.random.default_rng(21)
    D = 3
    means = rng.normal(size=(K, D)) * 2
    if cov == "diag":
        covars = rng.uniform(0.5, 2.0, (K, D))
        full = np.array([np.diag(v) for v in covars])
    else:
        a = rng.normal(size=(K, D, D))
        covars = full = a @ a.transpose(0, 2, 1) + 0.5 * np.eye(D)
    start = rng.dirichlet(np.ones(K))
    A = rng.dirichlet(np.ones(K), size=K)
    model = GaussianHMM(n_components=K, covariance_type=cov, init_params="", params="")
    model.n_features = D
    model.startprob_, model.transmat_, model.means_, model.covars_ = start, A, means, covars
    lengths = [1, 30, 7, 120, 2]
    X, _ = model.sample(sum(lengths), random_state=3)
    fam = GaussianDiag(D) if cov == "diag" else GaussianFull(D)
    case = Case.__new__(Case)
    case.fam, case.data, case.S = fam, fam.prepare(X, fitting=True), fam.n_statistics()
    theta = fam.theta_from(means, full) if cov == "full" else np.hstack(
        (means - fam.ref, covars + (means - fam.ref) ** 2))
    W, c = fam.effective(theta)
    case.W, case.c = np.ascontiguousarray(W), np.ascontiguousarray(c)
    _hmmlearn_check(model, X, case, np.log(start), np.log(A), lengths)


def test_categorical_hmm_equals_hmmlearn():
    from hmmlearn.hmm import CategoricalHMM
    rng = np.random.default_rng(22)
    n_sym = 5
    E = rng.dirichlet(np.ones(n_sym), size=K)
    start = rng.dirichlet(np.ones(K))
    A = rng.dirichlet(np.ones(K), size=K)
    model = CategoricalHMM(n_components=K, n_features=n_sym, init_params="", params="")
    model.startprob_, model.transmat_, model.emissionprob_ = start, A, E
    lengths = [1, 50, 9, 200]
    X, _ = model.sample(sum(lengths), random_state=4)
    fam = Categorical([n_sym])
    case = Case.__new__(Case)
    case.fam, case.data, case.S = fam, fam.prepare(X, fitting=True), fam.n_statistics()
    W, c = fam.effective(E)
    case.W, case.c = np.ascontiguousarray(W), np.ascontiguousarray(c)
    _hmmlearn_check(model, X, case, np.log(start), np.log(A), lengths,
                    logB=np.log(E[:, X[:, 0]]).T)


# ---------------------------------------------------------------- bad input
def _bad_call(case, ls, lt, off, sw=None, mode=0, stats=None, totals=None, n_threads=1, **kw):
    Kk, S = case.W.shape
    _hmm.hmm_pass(*case.args(), ls, lt, off, sw, np.zeros((Kk, S)) if stats is None else stats,
                  np.zeros(Kk), np.zeros(Kk), np.zeros((Kk, Kk)),
                  np.zeros(3) if totals is None else totals, mode, 0, n_threads, **kw)


def test_bad_input_names_the_argument():
    rng = np.random.default_rng(2)
    off = offsets_of([3, 4])
    case = Case("categorical", 7, rng)
    ls, lt = chain(rng)
    bad = [
        (dict(off=np.array([1, 3, 7])), "offsets must start at 0"),
        (dict(off=np.array([0, 3, 6])), "offsets must end at N"),
        (dict(off=np.array([0, 3, 3, 7])), "offsets must be strictly increasing"),
        (dict(off=np.array([0, 5, 3, 7])), "offsets must be strictly increasing"),
        (dict(off=np.array([0, 3, 7], dtype=np.int32)), "offsets must be"),
        (dict(off=[0, 3, 7]), "offsets must be"),
        (dict(ls=ls[:2].copy()), "log_start must be"),
        (dict(ls=np.where(np.arange(K) == 1, np.nan, ls)), "log_start must be finite"),
        (dict(ls=np.where(np.arange(K) == 1, np.inf, ls)), "log_start must be finite"),
        (dict(ls=np.full(K, -np.inf)), "log_start gives every state probability 0"),
        (dict(lt=lt[:, :2].copy()), "log_trans must be"),
        (dict(lt=np.where(np.eye(K) > 0, np.nan, lt)), "log_trans must be finite"),
        (dict(lt=np.vstack((lt[:2], np.full((1, K), -np.inf)))), "log_trans row 2"),
        (dict(lt=np.where(np.eye(K) > 0, -np.inf, lt), mode=3), "log_trans entry finite"),
        (dict(sw=np.ones(3)), "sample_weight must be"),
        (dict(sw=np.array([1.0, -1.0])), "sample_weight must be finite and >= 0"),
        (dict(stats=np.zeros((K, 2))), "stats must be"),
        (dict(totals=np.zeros(2)), "totals must be"),
        (dict(mode=4), "mode must be"),
        (dict(n_threads=0), "n_threads must be >= 1"),
        (dict(tol=-1.0, mode=3), "tol must be"),
        (dict(labels=np.zeros(3, dtype=np.int64), mode=1), "labels must be"),
    ]
    for change, msg in bad:
        kw = dict(ls=ls, lt=lt, off=off)
        kw.update(change)
        with pytest.raises(ValueError, match=msg):
            _bad_call(case, **kw)
    with pytest.raises(ValueError, match="W must be finite"):
        W = case.W.copy()
        W[0, 0] = np.nan
        bad_case = _sub_case(case, slice(0, 7))
        bad_case.W = W
        _bad_call(bad_case, ls, lt, off)
    # a category code the family does not take, found by the features
    codes = case.data.copy()
    codes[5, 1] = 9
    bad_case = _sub_case(case, slice(0, 7))
    bad_case.data = codes
    for mode in range(4):
        with pytest.raises(ValueError, match="category code"):
            _bad_call(bad_case, ls, lt, off, mode=mode)
    with pytest.raises(ValueError, match="category code"):
        _hmm.hmm_posteriors(*bad_case.args(), ls, lt, off, np.empty((7, K)), np.empty(2), 1)
    with pytest.raises(ValueError, match="gamma must be"):
        _hmm.hmm_posteriors(*case.args(), ls, lt, off, np.empty((6, K)), np.empty(2), 1)
    with pytest.raises(ValueError, match="loglik must be"):
        _hmm.hmm_posteriors(*case.args(), ls, lt, off, np.empty((7, K)), np.empty(3), 1)
    with pytest.raises(ValueError, match="path must be"):
        _hmm.hmm_viterbi(*case.args(), ls, lt, off, np.empty(7), np.empty(2), 1)
    # a negative count (Poisson), found by the features
    pc = Case("poisson", 7, rng)
    pc.data = pc.data.copy()
    pc.data[2, 0] = -1.0
    with pytest.raises(ValueError, match="negative"):
        _bad_call(pc, ls, lt, off)


def test_unreachable_best_state_and_far_below_rows():
    """Rows whose best state is unreachable (start and transitions into it
    forbidden) and whose reachable states lie ~800 nats below it: the forward
    step's log-space fallback; every output stays finite and equals the oracle."""
    rng = np.random.default_rng(13)
    lengths = [1, 6, 3]
    off = offsets_of(lengths)
    X = rng.integers(0, 2, (off[-1], 1))
    fam = Categorical([2])
    case = Case.__new__(Case)
    case.fam, case.data, case.S = fam, fam.prepare(X, fitting=True), 2
    case.W = np.array([[-800.0, -1.0], [-801.0, -2.0], [0.0, -900.0]])
    case.c = np.zeros(K)
    A = np.array([[0.5, 0.5, 0.0], [0.3, 0.7, 0.0], [0.2, 0.3, 0.5]])
    with np.errstate(divide="ignore"):
        ls = np.log(np.array([0.6, 0.4, 0.0]))
        lt = np.log(A)
    assert np.sum(X[:, 0] == 0) > 0             # rows that need the fallback
    logB = case.W[:, X[:, 0]].T
    gamma = np.empty((off[-1], K))
    ll = np.empty(len(lengths))
    _hmm.hmm_posteriors(*case.args(), ls, lt, off, gamma, ll, 1)
    want = [orc.forward_backward(b, ls, lt) for b in split(logB, off)]
    assert_close(gamma, np.vstack([w[0] for w in want]))
    assert_close(ll, [w[2] for w in want])
    got = run_pass(case, ls, lt, off)
    assert_close(got["trans"], sum(w[1] for w in want))
    assert np.all(np.isfinite(got["totals"]))
    path = np.empty(off[-1], dtype=np.int64)
    lj = np.empty(len(lengths))
    _hmm.hmm_viterbi(*case.args(), ls, lt, off, path, lj, 1)
    assert not np.any(path == 2)
    assert np.array_equal(path, np.concatenate([orc.viterbi(b, ls, lt)[0]
                                                for b in split(logB, off)]))
    drawn = run_pass(case, ls, lt, off, mode=2, seed=1, labels=True)["labels"]
    assert not np.any(drawn == 2)
