"""Slow, obviously-correct NumPy references for the compiled kernels."""
import numpy as np
from scipy.special import logsumexp


def log_prob(X, means, prec_chol, covariance_type):
    """log N(x_n | mu_k, Sigma_k), shape (N, K), straight from the definition."""
    X = np.asarray(X, dtype=np.float64)
    N, D = X.shape
    K = means.shape[0]
    out = np.empty((N, K))
    for k in range(K):
        if covariance_type == "full":
            U = prec_chol[k]
        elif covariance_type == "tied":
            U = prec_chol
        elif covariance_type == "diag":
            U = np.diag(prec_chol[k])
        else:
            U = np.eye(D) * prec_chol[k]
        y = (X - means[k]) @ U
        out[:, k] = -0.5 * (y ** 2).sum(1) + np.log(np.abs(np.diag(U))).sum() - 0.5 * D * np.log(2 * np.pi)
    return out


def responsibilities(X, weights, means, prec_chol, covariance_type):
    lp = log_prob(X, means, prec_chol, covariance_type) + np.log(weights)
    norm = logsumexp(lp, axis=1)
    return np.exp(lp - norm[:, None]), norm, lp


def centred_stats(X, R, shift, covariance_type):
    """nk, sum r (x - c_k), and the centred second moments, by explicit loops over k."""
    X = np.asarray(X, dtype=np.float64)
    K = R.shape[1]
    nk = R.sum(0)
    s1 = np.stack([R[:, k] @ (X - shift[k]) for k in range(K)])
    if covariance_type == "full":
        s2 = np.stack([(X - shift[k]).T @ ((X - shift[k]) * R[:, k:k + 1]) for k in range(K)])
    elif covariance_type == "diag":
        s2 = np.stack([R[:, k] @ (X - shift[k]) ** 2 for k in range(K)])
    elif covariance_type == "spherical":
        s2 = np.array([R[:, k] @ ((X - shift[k]) ** 2).sum(1) for k in range(K)])
    else:
        s2 = None
    return nk, s1, s2


def em_step(X, weights, means, covariances, covariance_type, reg_covar):
    """One textbook EM iteration from explicit covariances; returns the new
    (weights, means, covariances) and the mean log-likelihood before the step."""
    X = np.asarray(X, dtype=np.float64)
    N, D = X.shape
    K = means.shape[0]
    full = {"full": lambda k: covariances[k], "tied": lambda k: covariances,
            "diag": lambda k: np.diag(covariances[k]),
            "spherical": lambda k: np.eye(D) * covariances[k]}[covariance_type]
    lp = np.empty((N, K))
    for k in range(K):
        C = full(k)
        diff = X - means[k]
        sol = np.linalg.solve(C, diff.T).T
        lp[:, k] = (np.log(weights[k]) - 0.5 * (diff * sol).sum(1)
                    - 0.5 * np.linalg.slogdet(C)[1] - 0.5 * D * np.log(2 * np.pi))
    norm = logsumexp(lp, axis=1)
    R = np.exp(lp - norm[:, None])
    nk = R.sum(0) + 10 * np.finfo(np.float64).eps
    mu = (R.T @ X) / nk[:, None]
    covs = []
    for k in range(K):
        diff = X - mu[k]
        covs.append((diff * R[:, k:k + 1]).T @ diff / nk[k])
    covs = np.array(covs)
    if covariance_type == "full":
        new = covs + reg_covar * np.eye(D)
    elif covariance_type == "tied":
        new = (covs * nk[:, None, None]).sum(0) / nk.sum() + reg_covar * np.eye(D)
    elif covariance_type == "diag":
        new = np.diagonal(covs, axis1=1, axis2=2) + reg_covar
    else:
        new = np.diagonal(covs, axis1=1, axis2=2).mean(1) + reg_covar
    return nk / nk.sum(), mu, new, norm.mean()


# ---------------------------------------------------------------- LDA (Blei, Ng & Jordan 2003)
def lda_vem_oracle(X, topics0, alpha, eta, n_iter, max_inner=100, tol=1e-3, learn_alpha=True):
    """Variational EM for LDA, written out per document with an explicit phi matrix.

    X dense counts (D x V); topics0 (K x V) pseudo-counts (point topics = rows
    normalised); each pass starts every document from gamma = 1; the M-step sets
    the topics to eta + expected counts (normalised for the point estimate) and, if
    learn_alpha, a symmetric alpha maximising sum_d E log p(theta_d | alpha) (by a
    bounded scalar search, not Newton).  Returns (components per pass, alpha per pass,
    bound per pass), the bound being evaluated at each pass's E-step as the model's."""
    from scipy.optimize import minimize_scalar
    from scipy.special import gammaln, psi
    X = np.asarray(X, dtype=np.float64)
    D, V = X.shape
    comp = np.asarray(topics0, dtype=np.float64)
    K = comp.shape[0]
    comps, alphas, bounds = [], [], []
    for _ in range(n_iter):
        beta = comp / comp.sum(axis=1, keepdims=True)
        stats = np.zeros((K, V))
        elog_sum = np.zeros(K)
        bound = 0.0
        for d in range(D):
            ids = np.nonzero(X[d])[0]
            c = X[d, ids]
            gamma = np.ones(K)
            for _inner in range(max_inner):
                elog = psi(gamma) - psi(gamma.sum())
                phi = np.exp(elog)[:, None] * beta[:, ids]          # K x n, unnormalised
                phi /= phi.sum(axis=0, keepdims=True)
                new = alpha + phi @ c
                change = np.mean(np.abs(new - gamma))
                gamma = new
                if change < tol:
                    break
            elog = psi(gamma) - psi(gamma.sum())
            phi = np.exp(elog)[:, None] * beta[:, ids]
            norm = phi.sum(axis=0)
            phi /= norm
            stats[:, ids] += phi * c
            elog_sum += elog
            # E log p(w, z | theta, beta) - E log q(z) at phi optimal = sum c log norm
            bound += np.dot(c, np.log(norm))
            bound += (gammaln(K * alpha) - K * gammaln(alpha) + np.sum((alpha - 1) * elog)
                      - gammaln(gamma.sum()) + np.sum(gammaln(gamma)) - np.dot(gamma - 1, elog))
        # point topics: log Dirichlet(beta | eta + 1)
        bound += np.sum(eta * np.log(beta)) + K * (gammaln(V * (eta + 1)) - V * gammaln(eta + 1))
        bounds.append(bound)
        comp = eta + stats
        if learn_alpha:
            def neg(log_a):
                a = np.exp(log_a)
                return -(D * (gammaln(K * a) - K * gammaln(a)) + (a - 1) * elog_sum.sum())
            alpha = float(np.exp(minimize_scalar(neg, bounds=(-12, 6), method="bounded",
                                                 options={"xatol": 1e-12}).x))
        comps.append(comp.copy())
        alphas.append(alpha)
    return comps, alphas, bounds


def collapsed_log_joint(X, z, K, mean_prior, mean_precision_prior, dof_prior, covariance_prior,
                        weight_prior_type, weight_concentration):
    """log p(X, z) of a full-covariance Gaussian mixture with the Normal-Wishart
    prior and the weights integrated out (Dirichlet, or the stick-breaking
    process truncated at K with the last stick taking the rest, as fastvem's
    gibbs draws it).  The quantity the Gibbs sampler explores."""
    from scipy.special import betaln, gammaln, multigammaln
    X = np.asarray(X, dtype=np.float64)
    D = X.shape[1]
    m0, b0, v0 = np.asarray(mean_prior, dtype=np.float64), float(mean_precision_prior), float(dof_prior)
    c0 = np.asarray(covariance_prior, dtype=np.float64)
    total = 0.0
    for k in range(K):
        Xk = X[z == k]
        n = len(Xk)
        if n == 0:
            continue
        xb = Xk.mean(0)
        S = (Xk - xb).T @ (Xk - xb)
        bn, vn = b0 + n, v0 + n
        Wn = c0 + S + b0 * n / bn * np.outer(xb - m0, xb - m0)
        total += (-0.5 * n * D * np.log(np.pi) + multigammaln(vn / 2, D)
                  - multigammaln(v0 / 2, D) + 0.5 * v0 * np.linalg.slogdet(c0)[1]
                  - 0.5 * vn * np.linalg.slogdet(Wn)[1] + 0.5 * D * np.log(b0 / bn))
    nk = np.bincount(z, minlength=K).astype(np.float64)
    a = float(weight_concentration)
    if weight_prior_type == "dirichlet_process":
        rest = np.concatenate([np.cumsum(nk[::-1])[-2::-1], [0.0]])    # n_{>k}
        total += np.sum(betaln(1 + nk[:-1], a + rest[:-1]) - betaln(1, a))
    else:
        total += gammaln(K * a) - gammaln(nk.sum() + K * a) + np.sum(gammaln(nk + a) - gammaln(a))
    return float(total)


def word_topic_lists(nwk):
    """The Gibbs kernel's per-word topic lists from dense counts (V x K): topics by count
    (wlist), their counts (wcnt), list lengths (wlen) and each topic's place (wpos)."""
    V, K = nwk.shape
    wlen = (nwk > 0).sum(axis=1).astype(np.int32)
    wlist = np.ascontiguousarray(np.argsort(-nwk, axis=1, kind="stable"), dtype=np.int32)
    wcnt = np.ascontiguousarray(np.take_along_axis(nwk, wlist, axis=1), dtype=np.int32)
    wpos = np.full((V, K), -1, np.int32)
    for w in range(V):
        wpos[w, wlist[w, :wlen[w]]] = np.arange(wlen[w])
    return wlist, wcnt, wlen, wpos
