"""A slow, obviously correct NumPy reference for the HMM kernel (_ext/_hmm.pyx).

Everything works on the log-evidence of a sequence, logB (T x K) = log p(x_t | z_t = k),
computed here straight from the distributions' parameters (scipy.stats), never
through the family's effective parameters or features:

    forward_backward   log-space forward and backward recursions (logsumexp):
                       posteriors, expected transition counts, log p(x), entropy
    viterbi            the log-space max-product recursion and its back-pointers
    enumerate_paths    every one of the K^T paths (tiny chains): their log joint,
                       and from it the exact marginals, pair marginals, log p(x),
                       entropy and MAP path
    mean_field         the factorised q(z_1)...q(z_T), the same sweep schedule as
                       the kernel's
    oracle_pass        the accumulators of hmm_pass over several sequences
"""
import itertools

import numpy as np
from scipy import stats as st
from scipy.special import logsumexp


# ------------------------------------------------------------------ log-densities
def close(a, b, rtol=1e-9, what=""):
    """a equals b to rtol times b's largest magnitude (at least 1)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (what, a.shape, b.shape)
    scale = max(np.max(np.abs(b)), 1.0)
    assert np.max(np.abs(a - b)) <= rtol * scale, (what, np.max(np.abs(a - b)))


def random_chain(rng, K, forbid=False):
    """(log start, log transitions) of a random chain; forbid: transition 0 -> 1
    impossible (log 0)."""
    ls = np.log(rng.dirichlet(np.ones(K)))
    A = rng.dirichlet(np.ones(K), size=K)
    if forbid:
        A[0, 1] = 0.0
        A[0] /= A[0].sum()
    with np.errstate(divide="ignore"):
        return ls, np.log(A)


def same_predictions(a, b, X, lengths, rtol=1e-9):
    """b's predictions equal a's (a: hmmlearn's model, b: fastvem's): score,
    score_samples, predict_proba, decode (viterbi and map: the same paths) and
    predict."""
    close(b.score(X, lengths), a.score(X, lengths), rtol, what="score")
    la, pa = a.score_samples(X, lengths)
    lb, pb = b.score_samples(X, lengths)
    close(lb, la, rtol, what="score_samples")
    close(pb, pa, rtol, what="posteriors")
    close(b.predict_proba(X, lengths), pa, rtol, what="predict_proba")
    for alg in ("viterbi", "map"):
        la, sa = a.decode(X, lengths, algorithm=alg)
        lb, sb = b.decode(X, lengths, algorithm=alg)
        assert np.array_equal(sa, sb), alg
        close(lb, la, rtol, what=alg)
    assert np.array_equal(b.predict(X, lengths), a.predict(X, lengths))


def logB_gaussian_diag(X, means, variances):
    X = np.asarray(X, dtype=np.float64)
    return np.stack([st.norm.logpdf(X, means[k], np.sqrt(variances[k])).sum(1)
                     for k in range(len(means))], axis=1)


def logB_gaussian_full(X, means, covariances):
    X = np.asarray(X, dtype=np.float64)
    return np.stack([st.multivariate_normal.logpdf(X, means[k], covariances[k]).reshape(-1)
                     for k in range(len(means))], axis=1)


def logB_categorical(X, probs):
    """X (N x F) codes; probs: one (K x L_f) array per feature."""
    X = np.asarray(X)
    return sum(np.log(p[:, X[:, f]]).T for f, p in enumerate(probs))


def logB_poisson(X, rates):
    X = np.asarray(X, dtype=np.float64)
    return np.stack([st.poisson.logpmf(X, rates[k]).sum(1) for k in range(len(rates))], axis=1)


# ------------------------------------------------------------- sufficient statistics
def T_gaussian_diag(X, ref):
    d = np.asarray(X, dtype=np.float64) - ref
    return np.hstack((d, d * d))


def T_gaussian_full(X, ref):
    d = np.asarray(X, dtype=np.float64) - ref
    D = d.shape[1]
    iu = np.triu_indices(D)
    return np.hstack((d, (d[:, :, None] * d[:, None, :])[:, iu[0], iu[1]]))


def T_categorical(X, n_categories):
    X = np.asarray(X)
    return np.hstack([np.eye(L)[X[:, f]] for f, L in enumerate(n_categories)])


def T_poisson(X):
    return np.asarray(X, dtype=np.float64)


# ------------------------------------------------------------------- the chain
def forward_backward(logB, log_start, log_trans):
    """(gamma (T x K), xi summed over t (K x K), log p(x), H[p(z | x)])."""
    T, K = logB.shape
    la = np.empty((T, K))
    la[0] = log_start + logB[0]
    for t in range(1, T):
        la[t] = logsumexp(la[t - 1][:, None] + log_trans, axis=0) + logB[t]
    lb = np.zeros((T, K))
    for t in range(T - 2, -1, -1):
        lb[t] = logsumexp(log_trans + (logB[t + 1] + lb[t + 1])[None, :], axis=1)
    ll = logsumexp(la[-1])
    gamma = np.exp(la + lb - ll)
    xi = np.zeros((K, K))
    with np.errstate(invalid="ignore"):
        for t in range(T - 1):
            lx = la[t][:, None] + log_trans + (logB[t + 1] + lb[t + 1])[None, :] - ll
            xi += np.exp(lx)
    # H = log p(x) - E log p(x, z), zero-probability terms 0
    e = _dot0(gamma[0], log_start) + _dot0(xi, log_trans) + _dot0(gamma, logB)
    return gamma, xi, ll, ll - e


def _dot0(p, v):
    p, v = np.broadcast_arrays(p, v)
    on = p > 0
    return float(np.sum(p[on] * v[on]))


def viterbi(logB, log_start, log_trans):
    """(MAP path, its log joint)."""
    T, K = logB.shape
    d = log_start + logB[0]
    bp = np.zeros((T, K), dtype=np.int64)
    for t in range(1, T):
        cand = d[:, None] + log_trans
        bp[t] = np.argmax(cand, axis=0)
        d = cand[bp[t], np.arange(K)] + logB[t]
    path = np.empty(T, dtype=np.int64)
    path[-1] = int(np.argmax(d))
    for t in range(T - 1, 0, -1):
        path[t - 1] = bp[t, path[t]]
    return path, float(d[path[-1]])


def path_log_joint(path, logB, log_start, log_trans):
    lj = log_start[path[0]] + logB[0, path[0]]
    for t in range(1, len(path)):
        lj += log_trans[path[t - 1], path[t]] + logB[t, path[t]]
    return float(lj)


def enumerate_paths(logB, log_start, log_trans):
    """Every path of a tiny chain: (paths (K^T x T), their log joints, gamma, pair
    marginals (T - 1 x K x K), log p(x), entropy, MAP path)."""
    T, K = logB.shape
    paths = np.array(list(itertools.product(range(K), repeat=T)), dtype=np.int64)
    lj = np.array([path_log_joint(p, logB, log_start, log_trans) for p in paths])
    ll = logsumexp(lj)
    post = np.exp(lj - ll)
    gamma = np.zeros((T, K))
    pairs = np.zeros((max(T - 1, 0), K, K))
    for p, w in zip(paths, post):
        gamma[np.arange(T), p] += w
        for t in range(T - 1):
            pairs[t, p[t], p[t + 1]] += w
    on = post > 0
    ent = -float(np.sum(post[on] * np.log(post[on])))
    return paths, lj, gamma, pairs, ll, ent, paths[int(np.argmax(lj))]


def mean_field(logB, log_start, log_trans, tol, max_iter):
    """The factorised fixed point with the kernel's schedule: q initialised by one
    forward pass (q_t from q_t-1 only), then forward sweeps updating q_t from both
    neighbours until a sweep gains no more than tol.  Returns (q, ELBO, sum_t H)."""
    T, K = logB.shape

    def update(q, t, both):
        e = logB[t].copy()
        e += log_start if t == 0 else q[t - 1] @ log_trans
        if both and t + 1 < T:
            e += log_trans @ q[t + 1]
        e = e - np.max(e)
        p = np.exp(e)
        q[t] = p / p.sum()

    def elbo(q):
        h = -_dot0(q, np.log(np.where(q > 0, q, 1.0)))
        e = _dot0(q[0], log_start) + _dot0(q, logB)
        for t in range(1, T):
            e += float(q[t - 1] @ log_trans @ q[t])
        return e + h, h

    q = np.zeros((T, K))
    for t in range(T):
        update(q, t, False)
    val, h = elbo(q)
    if T > 1:
        for _ in range(max_iter):
            for t in range(T):
                update(q, t, True)
            new, h = elbo(q)
            gain = new - val
            val = new
            if not gain > tol:
                break
    return q, val, h


def oracle_pass(logBs, Ts, logh, log_start, log_trans, sample_weight=None, mode=0,
                tol=1e-8, max_iter=200):
    """The accumulators of hmm_pass (modes 0, 1 and 3) over sequences given as
    lists: logBs[s] (T_s x K), Ts[s] (T_s x S) the statistics of its rows, logh[s]
    (T_s) their log h.  Returns (stats, nk, start, trans, totals, per-sequence
    weights r (T_s x K))."""
    K = logBs[0].shape[1]
    S = Ts[0].shape[1]
    stats, nk, start, trans, totals = (np.zeros((K, S)), np.zeros(K), np.zeros(K),
                                       np.zeros((K, K)), np.zeros(3))
    rs = []
    for s, (lB, Tx) in enumerate(zip(logBs, Ts)):
        w = 1.0 if sample_weight is None else sample_weight[s]
        if mode == 0:
            r, xi, obj, ent = forward_backward(lB, log_start, log_trans)
        elif mode == 1:
            path, obj = viterbi(lB, log_start, log_trans)
            r = np.eye(K)[path]
            xi = np.zeros((K, K))
            for t in range(1, len(path)):
                xi[path[t - 1], path[t]] += 1
            ent = 0.0
        else:
            r, obj, ent = mean_field(lB, log_start, log_trans, tol, max_iter)
            xi = sum((np.outer(r[t - 1], r[t]) for t in range(1, len(r))), np.zeros((K, K)))
        stats += w * r.T @ Tx
        nk += w * r.sum(0)
        start += w * r[0]
        trans += w * xi
        totals += w * np.array([obj, ent, np.sum(logh[s])])
        rs.append(r)
    return stats, nk, start, trans, totals, rs
