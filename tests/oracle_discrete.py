"""Slow, obviously-correct NumPy references for the discrete mixtures.

Bernoulli, categorical (latent class analysis) and Poisson mixtures, each with
one em step, one crisp (hard-assignment) step and one mean-field step.

Conventions shared by every family:
  * X is (N, D) (categorical: (N, F) integer codes); sample_weight is (N,) or
    None (= ones); W = sum(sample_weight); every sum over rows is weighted.
  * *_log_joint -> (N, K) array of log pi_k + log p(x_n | theta_k).
  * em: E-step at the INPUT parameters; returns the new parameters and the
    weighted mean over rows of log sum_k pi_k p(x_n | theta_k) at the INPUT.
  * crisp: z_n = argmax_k of the log joint at the INPUT (ties -> lowest k);
    objective = weighted mean of that max; M-step as em with one-hot r.
  * em/crisp M-step: pi_k = N_k / W; a component with N_k == 0 keeps its
    previous parameters (and gets weight 0).
  * mean field: q(pi) = Dirichlet(conc), prior Dirichlet(gamma0 * ones(K));
    E-step with the INPUT q, then the conjugate posterior from the weighted
    statistics of r; returns the new q and the full ELBO / W evaluated with
    the E-step's r and the NEW q (all normalising constants included).
"""
import numpy as np
from scipy.special import betaln, digamma, gammaln, logsumexp, xlogy


# ----------------------------------------------------------------- helpers
def _sample_weight(X, sample_weight):
    if sample_weight is None:
        return np.ones(len(X))
    return np.asarray(sample_weight, dtype=np.float64)


def _log(a):
    """np.log without the divide-by-zero warning (log 0 = -inf is intended)."""
    with np.errstate(divide="ignore"):
        return np.log(a)


def _soft(log_joint, w):
    """Responsibilities and the weighted mean of log sum_k exp(log_joint)."""
    norm = logsumexp(log_joint, axis=1)
    r = np.exp(log_joint - norm[:, None])
    return r, np.sum(w * norm) / np.sum(w)


def _hard(log_joint, w):
    """One-hot responsibilities at the argmax and the weighted mean of the max."""
    N = log_joint.shape[0]
    z = np.argmax(log_joint, axis=1)
    r = np.zeros_like(log_joint)
    r[np.arange(N), z] = 1.0
    return r, np.sum(w * log_joint[np.arange(N), z]) / np.sum(w)


def _expected_log_pi(conc):
    conc = np.asarray(conc, dtype=np.float64)
    return digamma(conc) - digamma(conc.sum())


def _elbo(w, r, expected_log_joint, conc, gamma0, kl_theta):
    """sum_n w_n sum_k r_nk (E log pi_k + E log p(x_n|theta_k) - log r_nk)
    - KL(q(pi) || p(pi)) - kl_theta, divided by W."""
    data = np.sum(w[:, None] * (r * expected_log_joint - xlogy(r, r)))
    kl_pi = dirichlet_kl(conc, gamma0 * np.ones(len(conc)))
    return (data - kl_pi - kl_theta) / np.sum(w)


def dirichlet_kl(q_conc, p_conc):
    """KL(Dirichlet(q_conc) || Dirichlet(p_conc)) for two vectors."""
    q = np.asarray(q_conc, dtype=np.float64)
    p = np.broadcast_to(np.asarray(p_conc, dtype=np.float64), q.shape)
    return (gammaln(q.sum()) - np.sum(gammaln(q)) - gammaln(p.sum()) + np.sum(gammaln(p))
            + np.sum((q - p) * (digamma(q) - digamma(q.sum()))))


def beta_kl(a, b, a0, b0):
    """KL(Beta(a, b) || Beta(a0, b0)), elementwise."""
    return (betaln(a0, b0) - betaln(a, b) + (a - a0) * digamma(a) + (b - b0) * digamma(b)
            + (a0 - a + b0 - b) * digamma(a + b))


def gamma_kl(shape, rate, shape0, rate0):
    """KL(Gamma(shape, rate) || Gamma(shape0, rate0)) (rate parametrisation), elementwise."""
    return ((shape - shape0) * digamma(shape) - gammaln(shape) + gammaln(shape0)
            + shape0 * (np.log(rate) - np.log(rate0)) + shape * (rate0 - rate) / rate)


def _keep_empty(new, old, nk):
    """Row k of new where N_k > 0, row k of old where N_k == 0."""
    out = np.array(old, dtype=np.float64, copy=True)
    for k in range(len(nk)):
        if nk[k] > 0:
            out[k] = new[k]
    return out


# --------------------------------------------------------------- Bernoulli
def bernoulli_log_joint(X, weights, probs):
    X = np.asarray(X, dtype=np.float64)
    K = len(weights)
    lp = np.stack([np.sum(xlogy(X, probs[k]) + xlogy(1 - X, 1 - probs[k]), axis=1)
                   for k in range(K)], axis=1)
    return _log(weights) + lp


def _bernoulli_m(X, w, r, probs, alpha):
    wr = w[:, None] * r
    nk = wr.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        new = (wr.T @ X + alpha) / (nk[:, None] + 2 * alpha)
    return nk / w.sum(), _keep_empty(new, probs, nk)


def bernoulli_em_step(X, sample_weight, weights, probs, alpha):
    X = np.asarray(X, dtype=np.float64)
    w = _sample_weight(X, sample_weight)
    r, objective = _soft(bernoulli_log_joint(X, weights, probs), w)
    return (*_bernoulli_m(X, w, r, probs, alpha), objective)


def bernoulli_crisp_step(X, sample_weight, weights, probs, alpha):
    X = np.asarray(X, dtype=np.float64)
    w = _sample_weight(X, sample_weight)
    r, objective = _hard(bernoulli_log_joint(X, weights, probs), w)
    return (*_bernoulli_m(X, w, r, probs, alpha), objective)


def bernoulli_expected_log_joint(X, conc, a, b):
    X = np.asarray(X, dtype=np.float64)
    e_log_p = digamma(a) - digamma(a + b)
    e_log_1mp = digamma(b) - digamma(a + b)
    return _expected_log_pi(conc) + X @ e_log_p.T + (1 - X) @ e_log_1mp.T


def bernoulli_meanfield_step(X, sample_weight, conc, a, b, gamma0, alpha):
    X = np.asarray(X, dtype=np.float64)
    w = _sample_weight(X, sample_weight)
    r, _ = _soft(bernoulli_expected_log_joint(X, conc, a, b), w)
    wr = w[:, None] * r
    conc = gamma0 + wr.sum(axis=0)
    a = 1 + alpha + wr.T @ X
    b = 1 + alpha + wr.T @ (1 - X)
    kl = np.sum(beta_kl(a, b, 1 + alpha, 1 + alpha))
    elbo = _elbo(w, r, bernoulli_expected_log_joint(X, conc, a, b), conc, gamma0, kl)
    return conc, a, b, elbo


# ------------------------------------------- categorical (latent classes)
def _one_hot(codes, L):
    return (np.asarray(codes)[:, None] == np.arange(L)).astype(np.float64)


def categorical_log_joint(X, weights, probs):
    X = np.asarray(X).astype(np.intp)
    lp = sum(_log(probs[j])[:, X[:, j]].T for j in range(X.shape[1]))
    return _log(weights) + lp


def _categorical_counts(X, wr, n_categories):
    return [wr.T @ _one_hot(X[:, j], L) for j, L in enumerate(n_categories)]


def _categorical_m(X, w, r, probs, n_categories, alpha):
    wr = w[:, None] * r
    nk = wr.sum(axis=0)
    new_probs = []
    for j, (c, L) in enumerate(zip(_categorical_counts(X, wr, n_categories), n_categories)):
        with np.errstate(divide="ignore", invalid="ignore"):
            new = (c + alpha) / (nk[:, None] + L * alpha)
        new_probs.append(_keep_empty(new, probs[j], nk))
    return nk / w.sum(), new_probs


def categorical_em_step(X, sample_weight, weights, probs, n_categories, alpha):
    X = np.asarray(X).astype(np.intp)
    w = _sample_weight(X, sample_weight)
    r, objective = _soft(categorical_log_joint(X, weights, probs), w)
    return (*_categorical_m(X, w, r, probs, n_categories, alpha), objective)


def categorical_crisp_step(X, sample_weight, weights, probs, n_categories, alpha):
    X = np.asarray(X).astype(np.intp)
    w = _sample_weight(X, sample_weight)
    r, objective = _hard(categorical_log_joint(X, weights, probs), w)
    return (*_categorical_m(X, w, r, probs, n_categories, alpha), objective)


def categorical_expected_log_joint(X, conc, A):
    X = np.asarray(X).astype(np.intp)
    out = _expected_log_pi(conc)[None, :]
    for j in range(X.shape[1]):
        e_log_p = digamma(A[j]) - digamma(A[j].sum(axis=1, keepdims=True))
        out = out + e_log_p[:, X[:, j]].T
    return out


def categorical_meanfield_step(X, sample_weight, conc, A, n_categories, gamma0, alpha):
    X = np.asarray(X).astype(np.intp)
    w = _sample_weight(X, sample_weight)
    r, _ = _soft(categorical_expected_log_joint(X, conc, A), w)
    wr = w[:, None] * r
    conc = gamma0 + wr.sum(axis=0)
    A = [1 + alpha + c for c in _categorical_counts(X, wr, n_categories)]
    kl = sum(dirichlet_kl(A[j][k], (1 + alpha) * np.ones(L))
             for j, L in enumerate(n_categories) for k in range(len(conc)))
    elbo = _elbo(w, r, categorical_expected_log_joint(X, conc, A), conc, gamma0, kl)
    return conc, A, elbo


# ----------------------------------------------------------------- Poisson
def poisson_log_joint(X, weights, rates):
    X = np.asarray(X, dtype=np.float64)
    K = len(weights)
    lp = np.stack([np.sum(xlogy(X, rates[k]) - rates[k] - gammaln(X + 1), axis=1)
                   for k in range(K)], axis=1)
    return _log(weights) + lp


def _poisson_m(X, w, r, rates, rate_floor):
    wr = w[:, None] * r
    nk = wr.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        new = np.maximum((wr.T @ X) / nk[:, None], rate_floor)
    return nk / w.sum(), _keep_empty(new, rates, nk)


def poisson_em_step(X, sample_weight, weights, rates, rate_floor):
    X = np.asarray(X, dtype=np.float64)
    w = _sample_weight(X, sample_weight)
    r, objective = _soft(poisson_log_joint(X, weights, rates), w)
    return (*_poisson_m(X, w, r, rates, rate_floor), objective)


def poisson_crisp_step(X, sample_weight, weights, rates, rate_floor):
    X = np.asarray(X, dtype=np.float64)
    w = _sample_weight(X, sample_weight)
    r, objective = _hard(poisson_log_joint(X, weights, rates), w)
    return (*_poisson_m(X, w, r, rates, rate_floor), objective)


def poisson_expected_log_joint(X, conc, s, t):
    X = np.asarray(X, dtype=np.float64)
    e_log_rate = digamma(s) - np.log(t)
    e_rate = s / t
    return (_expected_log_pi(conc) + X @ e_log_rate.T - e_rate.sum(axis=1)
            - gammaln(X + 1).sum(axis=1)[:, None])


def poisson_meanfield_step(X, sample_weight, conc, s, t, gamma0, shape0, rate0):
    X = np.asarray(X, dtype=np.float64)
    w = _sample_weight(X, sample_weight)
    r, _ = _soft(poisson_expected_log_joint(X, conc, s, t), w)
    wr = w[:, None] * r
    nk = wr.sum(axis=0)
    conc = gamma0 + nk
    s = shape0 + wr.T @ X
    t = rate0 + nk[:, None] * np.ones_like(s)
    kl = np.sum(gamma_kl(s, t, shape0, rate0))
    elbo = _elbo(w, r, poisson_expected_log_joint(X, conc, s, t), conc, gamma0, kl)
    return conc, s, t, elbo


# ------------------------------------------------------------- multinomial
# X: a dense (N, V) array of counts (this oracle densifies; the estimator never
# does).  log p(x | beta_k) = sum_w x_w log beta_kw (the multinomial coefficient,
# free of the parameters, is left out).  MAP: (c_kw + alpha) / (sum_w c_kw + V alpha);
# mean field: q(beta_k) = Dirichlet(A_k), prior Dirichlet((1 + alpha) ones(V)).
def multinomial_log_joint(X, weights, probs):
    X = np.asarray(X, dtype=np.float64)
    return _log(weights)[None, :] + xlogy(X[:, None, :], probs[None, :, :]).sum(-1)


def _multinomial_m(X, w, r, probs, alpha):
    wr = w[:, None] * r
    nk = wr.sum(axis=0)
    c = wr.T @ np.asarray(X, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        new = (c + alpha) / (c.sum(1, keepdims=True) + X.shape[1] * alpha)
    return nk / w.sum(), _keep_empty(new, probs, nk)


def multinomial_em_step(X, sample_weight, weights, probs, alpha):
    w = _sample_weight(X, sample_weight)
    r, objective = _soft(multinomial_log_joint(X, weights, probs), w)
    return (*_multinomial_m(X, w, r, probs, alpha), objective)


def multinomial_crisp_step(X, sample_weight, weights, probs, alpha):
    w = _sample_weight(X, sample_weight)
    r, objective = _hard(multinomial_log_joint(X, weights, probs), w)
    return (*_multinomial_m(X, w, r, probs, alpha), objective)


def multinomial_expected_log_joint(X, conc, A):
    elog = digamma(A) - digamma(A.sum(1, keepdims=True))
    return _expected_log_pi(conc)[None, :] + np.asarray(X, dtype=np.float64) @ elog.T


def multinomial_meanfield_step(X, sample_weight, conc, A, gamma0, alpha):
    w = _sample_weight(X, sample_weight)
    r, _ = _soft(multinomial_expected_log_joint(X, conc, A), w)
    wr = w[:, None] * r
    conc = gamma0 + wr.sum(axis=0)
    A = 1 + alpha + wr.T @ np.asarray(X, dtype=np.float64)
    kl = sum(dirichlet_kl(A[k], (1 + alpha) * np.ones(A.shape[1])) for k in range(len(conc)))
    elbo = _elbo(w, r, multinomial_expected_log_joint(X, conc, A), conc, gamma0, kl)
    return conc, A, elbo


# ------------------------------------------------------ Gaussian (diagonal)
def gaussian_diag_log_joint(X, weights, means, variances):
    X = np.asarray(X, dtype=np.float64)
    lp = np.stack([np.sum(-0.5 * np.log(2 * np.pi * variances[k])
                          - 0.5 * (X - means[k]) ** 2 / variances[k], axis=1)
                   for k in range(len(weights))], axis=1)
    return _log(weights) + lp


def _gaussian_diag_m(X, w, r, means, variances, reg_covar):
    wr = w[:, None] * r
    nk = wr.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = (wr.T @ X) / nk[:, None]
        var = np.stack([(wr[:, k:k + 1] * (X - mu[k]) ** 2).sum(0) / nk[k]
                        for k in range(len(nk))]) + reg_covar
    return nk / w.sum(), _keep_empty(mu, means, nk), _keep_empty(var, variances, nk)


def gaussian_diag_em_step(X, sample_weight, weights, means, variances, reg_covar):
    X = np.asarray(X, dtype=np.float64)
    w = _sample_weight(X, sample_weight)
    r, objective = _soft(gaussian_diag_log_joint(X, weights, means, variances), w)
    return (*_gaussian_diag_m(X, w, r, means, variances, reg_covar), objective)


def normal_gamma_posterior(X, w, r, m0, beta0, a0, b0):
    """Each feature's Normal-Gamma posterior in the textbook form: beta = beta0 + n,
    m = (beta0 m0 + n xbar) / beta, a = a0 + n / 2, b = b0 + (n s2 + beta0 n
    (xbar - m0)^2 / beta) / 2 with s2 the weighted variance about xbar."""
    X = np.asarray(X, dtype=np.float64)
    wr = w[:, None] * r
    n = wr.sum(axis=0)[:, None]
    xbar = (wr.T @ X) / n
    s2 = np.stack([(wr[:, k:k + 1] * (X - xbar[k]) ** 2).sum(0) for k in range(r.shape[1])]) / n
    beta = beta0 + n + 0 * xbar
    m = (beta0 * m0 + n * xbar) / beta
    a = a0 + n / 2 + 0 * xbar
    b = b0 + 0.5 * (n * s2 + beta0 * n * (xbar - m0) ** 2 / beta)
    return m, beta, a, b


def normal_gamma_expected_log_lik(X, m, beta, a, b):
    """(N, K): E log N(x | mu, 1 / lam) under mu | lam ~ N(m, 1 / (beta lam)),
    lam ~ Gamma(a, rate b), summed over features."""
    X = np.asarray(X, dtype=np.float64)
    e_log_lam = digamma(a) - np.log(b)
    e_lam = a / b
    return np.stack([np.sum(0.5 * e_log_lam[k] - 0.5 * np.log(2 * np.pi)
                            - 0.5 * e_lam[k] * (X - m[k]) ** 2 - 0.5 / beta[k], axis=1)
                     for k in range(m.shape[0])], axis=1)


# ------------------------------------------------------------------ product
def product_em_step(members, X, sample_weight, weights, params, hard=False):
    """One em (or crisp) step of a product of families over disjoint columns.
    members: [(name, columns, options)], params: one entry per member (Bernoulli:
    probs; categorical: list of probs; Poisson: rates; gaussian_diag: (means,
    variances)).  The log joint is log pi + the members' log densities summed; the
    M-step is each member's own with the shared responsibilities."""
    w = _sample_weight(X, sample_weight)
    ones = np.ones(len(weights))
    lj = _log(np.asarray(weights, dtype=np.float64))
    for (name, cols, opt), p in zip(members, params):
        Xm = X[:, cols]
        if name == "bernoulli":
            lj = lj + bernoulli_log_joint(Xm, ones, p)
        elif name == "categorical":
            lj = lj + categorical_log_joint(Xm, ones, p)
        elif name == "poisson":
            lj = lj + poisson_log_joint(Xm, ones, p)
        else:
            lj = lj + gaussian_diag_log_joint(Xm, ones, *p)
    r, objective = (_hard if hard else _soft)(lj, w)
    new = []
    for (name, cols, opt), p in zip(members, params):
        Xm = X[:, cols]
        if name == "bernoulli":
            pi, q = _bernoulli_m(np.asarray(Xm, dtype=np.float64), w, r, p, opt["alpha"])
        elif name == "categorical":
            pi, q = _categorical_m(np.asarray(Xm).astype(np.intp), w, r, p,
                                   opt["n_categories"], opt["alpha"])
        elif name == "poisson":
            pi, q = _poisson_m(np.asarray(Xm, dtype=np.float64), w, r, p, opt["rate_floor"])
        else:
            pi, mu, var = _gaussian_diag_m(Xm, w, r, p[0], p[1], opt["reg_covar"])
            q = (mu, var)
        new.append(q)
    return pi, new, objective
