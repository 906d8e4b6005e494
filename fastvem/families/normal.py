"""A Gaussian with a diagonal covariance as an exponential family on the compiled
row driver (`_ext/_expfam.pyx`, features 'gaussian_float64' / 'gaussian_float32'):
the family that `families.Product` puts beside discrete ones for mixed data, and
that ``fastvem.Mixture(family='gaussian_diag')`` fits.  GaussianMixture keeps its
own kernel (`_ext/_gaussian.pyx`: full, tied, diag and spherical by Cholesky
factors); this one is the sparse form's.

Statistics: T(x) = (x - ref, (x - ref)^2) about one reference point ref (the
data's mean at fit, or the given ``reference``: the sums of squares then do not
lose digits to a large offset), S = 2 D, log h = -D log(2 pi) / 2.  theta (K x 2 D) holds the mean
parameters (E[x - ref], E[(x - ref)^2]) of each component; ``describe`` gives
the means and variances.  em, vem and crisp: the ML mean and variance, plus
reg_covar on each variance, as GaussianMixture(covariance_type='diag').

Mean field and gibbs: each (mean, precision) pair of a feature has a
Normal-Gamma prior, mean | precision ~ N(mean_prior, 1 / (mean_precision_prior
precision)) and precision ~ Gamma(degrees_of_freedom_prior / 2, rate =
degrees_of_freedom_prior covariance_prior / 2), so that E[precision] = 1 /
covariance_prior.  Defaults, as BayesianGaussianMixture's: mean_precision_prior
1, mean_prior the data's mean, degrees_of_freedom_prior n_features,
covariance_prior the data's variance per feature.  (BayesianGaussianMixture's
'diag' takes E[log precision] from a Wishart's formula; this family's is each
Gamma's own.)
"""
import numbers

import numpy as np
from scipy.special import digamma

from .base import Family, gamma_kl

__all__ = ["GaussianDiag", "GaussianFull", "GaussianSpherical", "GaussianTied"]

_LOG_2PI = np.log(2 * np.pi)


def _column_moments(X, ref, sample_weight=None):
    """The mean and variance of X - ref per column (rows weighted as frequencies),
    in chunks (a memmap stays on disk)."""
    N, D = X.shape
    s1, s2 = np.zeros(D), np.zeros(D)
    for s in range(0, N, 1 << 16):
        xc = np.asarray(X[s:s + (1 << 16)], dtype=np.float64) - ref
        if sample_weight is None:
            s1 += xc.sum(0)
            s2 += (xc * xc).sum(0)
        else:
            w = sample_weight[s:s + (1 << 16)]
            s1 += w @ xc
            s2 += w @ (xc * xc)
    total = N if sample_weight is None else max(float(np.sum(sample_weight)),
                                                np.finfo(np.float64).tiny)
    mean = s1 / total
    return mean, np.maximum(s2 / total - mean * mean, 0.0)


def _prepare_real(fam, X, fitting, kind):
    """A Gaussian family's rows: validated, float32 kept (else float64), their scale
    checked (the statistics square them); sets fam.features ('<kind>_float32' /
    '_float64') and the reference point fam.ref (the given one, or the data's mean
    at fit)."""
    from .._validation import check_scale
    from .discrete import _numeric
    X = _numeric(X)
    if X.shape[1] != fam.n_features:
        raise ValueError(f"X has {X.shape[1]} features, expected {fam.n_features}")
    f32 = X.dtype == np.float32
    fam.features = f"{kind}_float32" if f32 else f"{kind}_float64"
    X = np.ascontiguousarray(X, dtype=np.float32 if f32 else np.float64)
    check_scale(X)
    if fam.reference is not None:
        ref = np.broadcast_to(np.asarray(fam.reference, dtype=np.float64), (fam.n_features,))
        if not np.all(np.isfinite(ref)):
            raise ValueError(f"reference must be finite, got {fam.reference!r}")
        fam.ref = np.ascontiguousarray(ref)
    elif fitting or fam.ref is None:
        fam.ref = np.ascontiguousarray(_column_moments(X, np.zeros(X.shape[1]))[0])
    return X


_LOG_H = -0.5 * np.log(2 * np.pi)       # log h(x) per feature (the row driver's too)
_MODE_NAMES = ("softmax", "argmax", "sample")


def _cholesky_pass(fam, covariance_type, data, sw, lin, mu, fac, c, mode, seed, n_threads):
    """A Gaussian family's row pass on GaussianMixture's Cholesky-factor kernel
    (_ext/_gaussian.pyx): components with means ref + mu, precision factors fac and
    natural-form constants c (c + log w), where lin = P mu is the linear part of the
    natural parameters.  Returns (GaussianStats about ref, nk, totals [objective,
    entropy, sum w log h]), or None where the constants are not finite."""
    from .gaussian import GaussianFamily, KernelParams
    from ..engine import blas_single_thread
    log_h = _LOG_H * fam.n_features
    cst = c + 0.5 * np.einsum("kd,kd->k", lin, mu) + log_h
    if not (np.all(np.isfinite(fac)) and np.all(np.isfinite(mu)) and not np.any(np.isnan(cst))):
        return None
    kp = KernelParams(covariance_type, fam.ref + mu, fac, cst, data.dtype, ref=fam.ref)
    with blas_single_thread():
        # about ref for every component: this family's statistics are E[T(x)] about
        # ref (exact=False: GaussianMixture's re-centring of far components is not
        # read here)
        st = GaussianFamily(covariance_type).statistics(data, sw, kp, _MODE_NAMES[mode], seed,
                                                        n_threads, exact=False)
    return st, st.nk.copy(), np.array([st.objective, st.entropy, st.weight * log_h])


def _positive(value, name, allow_none=True):
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) \
            or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


class GaussianDiag(Family):
    """Real features, one mean and one variance per feature and component."""

    name = "gaussian_diag"
    n_posterior_arrays = 4          # q = (m, beta, a, b), each K x D

    def __init__(self, n_features, reg_covar=1e-6, mean_precision_prior=None, mean_prior=None,
                 degrees_of_freedom_prior=None, covariance_prior=None, reference=None):
        self.n_features = int(n_features)
        self.reference = reference
        self.reg_covar = _positive(reg_covar, "reg_covar", allow_none=False)
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.ref = None
        self.features = "gaussian_float64"

    def n_statistics(self):
        return 2 * self.n_features

    def posterior_width(self):
        return self.n_features

    def aux(self):
        return self.ref

    def prepare(self, X, fitting=False):
        """The rows as they are (float32 kept, else float64); the reference point is
        the data's mean at fit."""
        return _prepare_real(self, X, fitting, "gaussian")

    # ------------------------------------------------------ the parameters
    def _split(self, theta):
        D = self.n_features
        mu = theta[:, :D]
        return mu, theta[:, D:] - mu * mu


    def check_posterior(self, post, name):
        """q = (m, beta, a, b): the means any real, the rest positive."""
        if not np.all(post[1:] > 0):
            raise ValueError(f"{name} must hold positive precisions and Gamma parameters")

    def check_theta(self, theta, name, structure=True):
        if not np.all(self._split(theta)[1] > 0):
            raise ValueError(f"{name} must hold positive variances (E[x^2] above the "
                             "squared mean)")

    def describe(self, theta):
        mu, var = self._split(theta)
        return {"means": mu + self.ref, "variances": var}

    def fast_pass(self, data, sw, W, c, logw, mode, seed, n_threads):
        """The row pass on GaussianMixture's Cholesky-factor kernel (diag), as
        GaussianFull.fast_pass: (W, c) read as means, precisions and constants;
        None where a precision is not positive (the sparse form runs instead)."""
        D = self.n_features
        lin, prec = W[:, :D], -2.0 * W[:, D:]
        if not np.all(prec > 0):
            return None
        mu = lin / prec
        st = _cholesky_pass(self, "diag", data, sw, lin, mu, np.sqrt(prec), c + logw, mode, seed,
                            n_threads)
        return None if st is None else (np.hstack((st[0].s1, st[0].s2)),) + st[1:]

    def effective(self, theta):
        mu, var = self._split(theta)
        var = np.maximum(var, self.reg_covar * 1e-3)   # rounding only: estimates hold reg_covar
        return (np.hstack((mu / var, -0.5 / var)),
                -np.sum(0.5 * mu * mu / var + 0.5 * np.log(var), axis=1))

    def point_estimate(self, stats, nk, previous):
        D = self.n_features
        theta = previous.copy()
        on = nk > 0
        mu = stats[on, :D] / nk[on, None]
        var = np.maximum(stats[on, D:] / nk[on, None] - mu * mu, 0.0) + self.reg_covar
        theta[on] = np.hstack((mu, var + mu * mu))
        return theta

    def to_unconstrained(self, theta):
        mu, var = self._split(theta)
        return np.hstack((mu, np.log(np.maximum(var, self.reg_covar * 1e-3))))

    def from_unconstrained(self, u):
        D = self.n_features
        if not np.all(np.isfinite(u)) or np.max(u[:, D:]) > 700:
            return None
        mu, var = u[:, :D], np.exp(u[:, D:])
        return np.hstack((mu, var + mu * mu))

    def split(self, theta_k):
        """The feature of the largest variance: means half a standard deviation up
        and down, variances kept."""
        mu, var = self._split(theta_k[None])
        mu, var = mu[0], var[0]
        d = int(np.argmax(var))
        out = []
        for sign in (1.0, -1.0):
            m = mu.copy()
            m[d] += sign * 0.5 * np.sqrt(var[d])
            out.append(np.concatenate((m, var + m * m)))
        return tuple(out)

    def theta_from(self, means, variances):
        """theta from means and variances given in the data's coordinates."""
        mu = np.asarray(means, dtype=np.float64) - self.ref
        return np.hstack((mu, np.asarray(variances, dtype=np.float64) + mu * mu))

    # ---------------------------------------------- conjugate (Normal-Gamma)
    def default_prior(self, X, sample_weight=None):
        """(m0 (D), beta0, a0, b0 (D)) about the reference point."""
        D = self.n_features
        mean, var = _column_moments(X, self.ref, sample_weight)
        beta0 = _positive(self.mean_precision_prior, "mean_precision_prior") or 1.0
        dof = _positive(self.degrees_of_freedom_prior, "degrees_of_freedom_prior") or float(D)
        m0 = mean if self.mean_prior is None else \
            np.broadcast_to(np.asarray(self.mean_prior, dtype=np.float64), (D,)) - self.ref
        if self.covariance_prior is None:
            cov = np.maximum(var, self.reg_covar)
        else:
            cov = np.broadcast_to(np.asarray(self.covariance_prior, dtype=np.float64), (D,))
        for name, v in (("mean_prior", m0), ("covariance_prior", cov)):
            if not np.all(np.isfinite(v)) or (name == "covariance_prior" and np.any(v <= 0)):
                raise ValueError(f"{name} must be finite{' and > 0' if name[0] == 'c' else ''}"
                                 f", got {v}")
        return np.array(m0, dtype=np.float64), beta0, 0.5 * dof, 0.5 * dof * cov

    def posterior(self, stats, nk, prior):
        m0, beta0, a0, b0 = prior
        D = self.n_features
        beta = beta0 + nk[:, None] + np.zeros((1, D))
        m = (beta0 * m0 + stats[:, :D]) / beta
        a = a0 + 0.5 * nk[:, None] + np.zeros((1, D))
        # b0 + (within-component squares + the shrinkage term) / 2 >= b0 exactly
        b = np.maximum(b0 + 0.5 * (stats[:, D:] + beta0 * m0 * m0 - beta * m * m), b0)
        return m, beta, a, b

    def posterior_statistics(self, q, prior):
        m0, beta0, a0, b0 = prior
        m, beta, a, b = q
        s1 = beta * m - beta0 * m0
        s2 = 2.0 * (b - b0) - beta0 * m0 * m0 + beta * m * m
        return np.hstack((s1, s2)), (beta - beta0)[:, 0]

    def expected_effective(self, q):
        m, beta, a, b = q
        lam = a / b
        return (np.hstack((lam * m, -0.5 * lam)),
                np.sum(0.5 * (digamma(a) - np.log(b)) - 0.5 * (lam * m * m + 1.0 / beta),
                       axis=1))

    def posterior_mean(self, q):
        m, beta, a, b = q
        return np.hstack((m, b / a + m * m))

    def sample_posterior(self, q, rng):
        m, beta, a, b = q
        lam = rng.gamma(a, 1.0 / b)
        mu = m + rng.standard_normal(m.shape) / np.sqrt(beta * lam)
        return np.hstack((mu, 1.0 / lam + mu * mu))

    def kl(self, q, prior):
        m0, beta0, a0, b0 = prior
        m, beta, a, b = q
        r = beta0 / beta
        return gamma_kl(a, b, a0, b0) + 0.5 * float(
            np.sum(r - 1.0 - np.log(r) + beta0 * (a / b) * (m - m0) ** 2))

    # ---------------------------------------------------------------- model
    def n_parameters(self, n_components):
        return 2 * n_components * self.n_features

    def sample_rows(self, theta_k, n, rng):
        mu, var = self._split(theta_k[None])
        return mu[0] + self.ref + np.sqrt(var[0]) * rng.standard_normal((n, self.n_features))

    def dense_features(self, data):
        return np.asarray(data, dtype=np.float64)


# ---------------------------------------------------------------------------
# full covariance
# ---------------------------------------------------------------------------
def _triu(D):
    return np.triu_indices(D)


def _to_matrix(upper, D):
    """K x P upper triangles (row by row) -> K x D x D symmetric matrices."""
    iu = _triu(D)
    M = np.zeros((upper.shape[0], D, D))
    M[:, iu[0], iu[1]] = upper
    M[:, iu[1], iu[0]] = upper
    return M


def _to_upper(M):
    iu = _triu(M.shape[-1])
    return M[:, iu[0], iu[1]]


def _chol(M, what):
    try:
        return np.linalg.cholesky(M)
    except np.linalg.LinAlgError:
        raise ValueError(f"a component's {what} is not positive definite (collinear or "
                         "degenerate data); increase reg_covar") from None


class GaussianFull(Family):
    """Real features with a full covariance per component, on the shared row
    driver's sparse form (features 'gaussian_full_float64' / 'gaussian_full_float32'):
    T(x) = (x - ref, the upper triangle of (x - ref)(x - ref)^T), S = D + D (D + 1) / 2,
    about one reference point ref (the data's mean at fit, or ``reference``).  The
    log-density is linear in T(x): the precision's entries weight the products.
    em / vem / crisp: the ML mean and covariance plus reg_covar on the diagonal, as
    GaussianMixture(covariance_type='full').  Mean field and gibbs: a Normal-Wishart
    prior with BayesianGaussianMixture's parameters and defaults (mean_precision_prior
    1, mean_prior the data's mean, degrees_of_freedom_prior n_features,
    covariance_prior the data's covariance); its q and E-step are
    BayesianGaussianMixture's, term for term.  GaussianMixture keeps its own faster
    Cholesky kernel; this family is what ``fastvem.Mixture('gaussian')`` and a
    Product's Gaussian members run on."""

    name = "gaussian"
    n_posterior_arrays = 1          # (m, beta, nu, W^-1) side by side, per component

    def __init__(self, n_features, reg_covar=1e-6, mean_precision_prior=None, mean_prior=None,
                 degrees_of_freedom_prior=None, covariance_prior=None, reference=None):
        self.n_features = int(n_features)
        self.reg_covar = _positive(reg_covar, "reg_covar", allow_none=False)
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.reference = reference
        self.ref = None
        self.features = "gaussian_full_float64"

    def n_statistics(self):
        D = self.n_features
        return D + D * (D + 1) // 2

    def posterior_width(self):
        D = self.n_features
        return D + 2 + D * D

    def aux(self):
        return self.ref

    def prepare(self, X, fitting=False):
        return _prepare_real(self, X, fitting, "gaussian_full")

    # ------------------------------------------------------ the parameters
    def _split(self, theta):
        D = self.n_features
        mu = theta[:, :D]
        return mu, _to_matrix(theta[:, D:], D) - mu[:, :, None] * mu[:, None, :]

    def _theta(self, mu, cov):
        return np.hstack((mu, _to_upper(cov + mu[:, :, None] * mu[:, None, :])))

    def _natural(self, mu, prec):
        """(W, c) from means and precisions (K x D x D): x^T P mu - x^T P x / 2 -
        mu^T P mu / 2 + log|P| / 2, the products off the diagonal counted twice."""
        D = self.n_features
        quad = -prec.copy()
        quad[:, np.arange(D), np.arange(D)] *= 0.5
        lin = np.einsum("kij,kj->ki", prec, mu)
        return np.hstack((lin, _to_upper(quad))), -0.5 * np.einsum("ki,ki->k", lin, mu)


    def check_posterior(self, post, name):
        """q = (m, beta, nu, W^-1) per component: beta > 0, nu > D - 1, W^-1
        positive definite."""
        D = self.n_features
        _, beta, nu, winv = self.unpack_posterior(post)
        if not (np.all(beta > 0) and np.all(nu > D - 1)):
            raise ValueError(f"{name} must hold positive mean precisions and degrees of "
                             f"freedom above {D - 1}")
        if np.linalg.eigvalsh(0.5 * (winv + np.swapaxes(winv, 1, 2))).min() <= 0:
            raise ValueError(f"{name} must hold positive definite Wishart scales")

    def check_theta(self, theta, name, structure=True):
        cov = self._split(theta)[1]
        if not np.all(np.isfinite(cov)) or np.linalg.eigvalsh(cov).min() <= 0:
            raise ValueError(f"{name} must hold positive definite covariances")

    def describe(self, theta):
        mu, cov = self._split(theta)
        return {"means": mu + self.ref, "covariances": cov}

    def fast_pass(self, data, sw, W, c, logw, mode, seed, n_threads):
        """The row pass on GaussianMixture's Cholesky-factor kernel (_ext/_gaussian.pyx),
        which reads D numbers per row and component where the sparse form reads
        D + D (D + 1) / 2: (W, c) -- the point or the expected natural parameters --
        rewritten as a mean, an upper-triangular precision factor and a constant per
        component (any W whose quadratic part is negative definite is one), the
        statistics returned about ref in this family's layout, with the totals
        [objective, entropy, sum w log h] of the row driver.  None where the
        precision is not positive definite (the caller then runs the sparse form)."""
        from .gaussian import precision_cholesky_from_precisions
        D = self.n_features
        lin = W[:, :D]
        prec = -_to_matrix(W[:, D:], D)
        idx = np.arange(D)
        prec[:, idx, idx] *= 2.0
        try:
            with np.errstate(all="raise"):
                mu = np.linalg.solve(prec, lin[:, :, None])[:, :, 0]
                fac = precision_cholesky_from_precisions(prec, "full")
        except (np.linalg.LinAlgError, FloatingPointError, ValueError):
            return None
        st = _cholesky_pass(self, "full", data, sw, lin, mu, fac, c + logw, mode, seed, n_threads)
        return None if st is None else (np.hstack((st[0].s1, _to_upper(st[0].s2))),) + st[1:]

    def theta_from(self, means, covariances):
        mu = np.asarray(means, dtype=np.float64) - self.ref
        return self._theta(mu, np.asarray(covariances, dtype=np.float64))

    def effective(self, theta):
        mu, cov = self._split(theta)
        L = _chol(cov, "covariance")
        eye = np.broadcast_to(np.eye(self.n_features), cov.shape)
        Linv = np.linalg.solve(L, eye)
        prec = np.einsum("kji,kjl->kil", Linv, Linv)
        W, c = self._natural(mu, prec)
        return W, c - np.sum(np.log(np.diagonal(L, axis1=1, axis2=2)), axis=1)

    def point_estimate(self, stats, nk, previous):
        D = self.n_features
        theta = previous.copy()
        on = nk > 0
        if np.any(on):
            mu = stats[on, :D] / nk[on, None]
            cov = _to_matrix(stats[on, D:], D) / nk[on, None, None] \
                - mu[:, :, None] * mu[:, None, :]
            cov[:, np.arange(D), np.arange(D)] += self.reg_covar
            theta[on] = self._theta(mu, cov)
        return theta

    def split(self, theta_k):
        """The principal axis: means half a standard deviation either side."""
        mu, cov = self._split(theta_k[None])
        vals, vecs = np.linalg.eigh(cov[0])
        axis = vecs[:, -1] * np.sqrt(max(vals[-1], 0.0))
        return (self._theta(mu + 0.5 * axis, cov)[0], self._theta(mu - 0.5 * axis, cov)[0])

    def to_unconstrained(self, theta):
        mu, cov = self._split(theta)
        L = _chol(cov, "covariance")
        D = self.n_features
        L[:, np.arange(D), np.arange(D)] = np.log(np.diagonal(L, axis1=1, axis2=2))
        low = np.tril_indices(D)
        return np.hstack((mu, L[:, low[0], low[1]]))

    def from_unconstrained(self, u):
        D = self.n_features
        if not np.all(np.isfinite(u)):
            return None
        low = np.tril_indices(D)
        L = np.zeros((u.shape[0], D, D))
        L[:, low[0], low[1]] = u[:, D:]
        d = L[:, np.arange(D), np.arange(D)]
        if np.max(d) > 300:
            return None
        L[:, np.arange(D), np.arange(D)] = np.exp(d)
        return self._theta(u[:, :D], L @ np.transpose(L, (0, 2, 1)))

    # --------------------------------------- conjugate (Normal-Wishart, sklearn's)
    def default_prior(self, X, sample_weight=None):
        """(m0 (D), beta0, nu0, W0^-1 (D x D)) about the reference point (rows
        weighted as frequencies)."""
        from .gaussian import data_scatter
        D = self.n_features
        N, centre, scatter = data_scatter(X, sample_weight)     # two passes, centred
        mean = centre - self.ref
        beta0 = _positive(self.mean_precision_prior, "mean_precision_prior") or 1.0
        nu0 = self.degrees_of_freedom_prior
        nu0 = float(D) if nu0 is None else float(nu0)
        if not np.isfinite(nu0) or nu0 <= D - 1:
            raise ValueError(f"degrees_of_freedom_prior must be > n_features - 1 = {D - 1}, "
                             f"got {self.degrees_of_freedom_prior!r}")
        m0 = mean if self.mean_prior is None else \
            np.broadcast_to(np.asarray(self.mean_prior, dtype=np.float64), (D,)) - self.ref
        if self.covariance_prior is None:
            # scikit-learn's default: np.cov of the data (N - 1 in the denominator);
            # reg_covar added to its diagonal only where it is singular (collinear
            # columns), so that a point method, which never reads it, still fits
            cov = scatter / max(N - 1, 1)
            cov[np.arange(D), np.arange(D)] = np.maximum(np.diag(cov), self.reg_covar)
            try:
                np.linalg.cholesky(cov)
            except np.linalg.LinAlgError:
                cov[np.arange(D), np.arange(D)] += self.reg_covar * max(1.0, np.max(np.diag(cov)))
        else:
            cov = np.array(np.broadcast_to(np.asarray(self.covariance_prior, dtype=np.float64),
                                           (D, D)))
        if not np.all(np.isfinite(m0)):
            raise ValueError(f"mean_prior must be finite, got {self.mean_prior!r}")
        _chol(cov[None], "covariance_prior")
        return np.array(m0), beta0, nu0, cov

    def posterior(self, stats, nk, prior):
        m0, beta0, nu0, W0inv = prior
        D = self.n_features
        beta = beta0 + nk
        m = (beta0 * m0 + stats[:, :D]) / beta[:, None]
        Winv = (W0inv + _to_matrix(stats[:, D:], D) + beta0 * np.outer(m0, m0)
                - beta[:, None, None] * m[:, :, None] * m[:, None, :])
        return m, beta, nu0 + nk, 0.5 * (Winv + np.transpose(Winv, (0, 2, 1)))

    def posterior_statistics(self, q, prior):
        m0, beta0, nu0, W0inv = prior
        m, beta, nu, Winv = q
        s2 = Winv - W0inv - beta0 * np.outer(m0, m0) + beta[:, None, None] * m[:, :, None] \
            * m[:, None, :]
        return np.hstack((beta[:, None] * m - beta0 * m0, _to_upper(s2))), beta - beta0

    def _expected(self, q):
        """E[precision] (K x D x D) and E[log |precision|] (K)."""
        from scipy.special import digamma
        m, beta, nu, Winv = q
        D = self.n_features
        L = _chol(Winv, "posterior scale W^-1")
        eye = np.broadcast_to(np.eye(D), Winv.shape)
        Linv = np.linalg.solve(L, eye)
        W = np.einsum("kji,kjl->kil", Linv, Linv)
        logdet_W = -2.0 * np.sum(np.log(np.diagonal(L, axis1=1, axis2=2)), axis=1)
        e_logdet = (np.sum(digamma(0.5 * (nu[:, None] - np.arange(D))), axis=1)
                    + D * np.log(2.0) + logdet_W)
        return nu[:, None, None] * W, e_logdet, W, logdet_W

    def expected_effective(self, q):
        m, beta, nu, Winv = q
        prec, e_logdet, _, _ = self._expected(q)
        W, c = self._natural(m, prec)
        return W, c - 0.5 * self.n_features / beta + 0.5 * e_logdet

    def posterior_mean(self, q):
        m, beta, nu, Winv = q
        return self._theta(m, Winv / nu[:, None, None])

    def sample_posterior(self, q, rng):
        from scipy.stats import wishart
        m, beta, nu, Winv = q
        _, _, W, _ = self._expected(q)
        K, D = m.shape
        mu, cov = np.empty((K, D)), np.empty((K, D, D))
        for k in range(K):
            prec = np.atleast_2d(wishart.rvs(df=nu[k], scale=W[k], random_state=rng))
            cov[k] = np.linalg.inv(prec)
            cov[k] = 0.5 * (cov[k] + cov[k].T)
            mu[k] = rng.multivariate_normal(m[k], cov[k] / beta[k])
        return self._theta(mu, cov)

    def kl(self, q, prior):
        """KL of the Normal-Wishart posteriors to the prior, summed over components."""
        wishart, normal = self._kl_parts(q, prior)
        return float(np.sum(wishart + normal))

    def _kl_parts(self, q, prior):
        """Per component: KL(q(precision) || its prior) and the expected KL of
        q(mean | precision) to its prior."""
        from scipy.special import multigammaln
        m0, beta0, nu0, W0inv = prior
        m, beta, nu, Winv = q
        D = self.n_features
        _, e_logdet, W, logdet_W = self._expected(q)
        logdet_W0 = -2.0 * np.sum(np.log(np.diag(_chol(W0inv[None], "prior")[0])))
        tr = np.einsum("ij,kji->k", W0inv, W)
        wishart = (0.5 * (nu - nu0) * e_logdet - 0.5 * nu * D + 0.5 * nu * tr
                   - 0.5 * (nu - nu0) * D * np.log(2.0) - 0.5 * nu * logdet_W
                   + 0.5 * nu0 * logdet_W0
                   - np.array([multigammaln(0.5 * v, D) for v in nu])
                   + multigammaln(0.5 * nu0, D))
        dm = m - m0
        r = beta0 / beta
        normal = 0.5 * (D * r - D - D * np.log(r)
                        + beta0 * nu * np.einsum("ki,kij,kj->k", dm, W, dm))
        return wishart, normal

    def pack_posterior(self, q):
        m, beta, nu, Winv = q
        K = m.shape[0]
        return np.hstack((m, beta[:, None], nu[:, None], Winv.reshape(K, -1)))[None]

    def unpack_posterior(self, post):
        D = self.n_features
        a = post[0]
        return (a[:, :D].copy(), a[:, D].copy(), a[:, D + 1].copy(),
                a[:, D + 2:].reshape(a.shape[0], D, D).copy())

    # ---------------------------------------------------------------- model
    def n_parameters(self, n_components):
        return n_components * self.n_statistics()

    def sample_rows(self, theta_k, n, rng):
        mu, cov = self._split(theta_k[None])
        return rng.multivariate_normal(mu[0] + self.ref, cov[0], size=n)

    def dense_features(self, data):
        return np.asarray(data, dtype=np.float64)


# SQUAREM runs tied and spherical families in their parents' coordinates (GaussianFull's
# mean and Cholesky factor per component, GaussianDiag's mean and log variance per
# feature): the extrapolation theta0 - 2 a r + a^2 v acts element by element on
# coordinates that are equal across the tied components (or features), to round-off,
# so it keeps them equal, and the em step that follows it re-estimates them tied.


class GaussianTied(GaussianFull):
    """Real features, one full covariance shared by every component
    (covariance_type='tied'), on GaussianFull's statistics: em / vem / crisp give the
    pooled maximum-likelihood covariance plus reg_covar on its diagonal, as
    GaussianMixture(covariance_type='tied'); each component's theta holds its mean
    and the shared covariance.

    Mean field and gibbs: one precision Lambda ~ Wishart(nu0, W0) shared by the
    components (GaussianFull's prior and defaults), and mean_k | Lambda ~ N(m0,
    (beta0 Lambda)^-1) for each.  The exact conjugate posterior is q(Lambda) =
    Wishart(nu0 + N, W) with W^-1 = W0^-1 + sum_k (the component's centred scatter
    + beta0 N_k / (beta0 + N_k) (xbar_k - m0)(xbar_k - m0)^T), and q(mean_k |
    Lambda) = N(m_k, (beta_k Lambda)^-1); q keeps GaussianFull's layout (nu and
    W^-1 repeated in every component's row), so its expected natural parameters
    and posterior means are GaussianFull's; the KL counts the Wishart once."""

    name = "gaussian_tied"

    def point_estimate(self, stats, nk, previous):
        D = self.n_features
        on = nk > 0
        theta = previous.copy()
        if not np.any(on):
            return theta
        mu_all, _ = self._split(previous)
        mu_all = mu_all.copy()
        mu_all[on] = stats[on, :D] / nk[on, None]
        # sum_k sum_n r (x - mu_k)(x - mu_k)^T = sum_k S2_k - nk mu_k mu_k^T, any ref
        S2 = _to_matrix(stats[on, D:], D).sum(0)
        cov = (S2 - np.einsum("k,ki,kj->ij", nk[on], mu_all[on], mu_all[on])) / nk[on].sum()
        cov[np.arange(D), np.arange(D)] = np.maximum(np.diag(cov), 0.0) + self.reg_covar
        return self._theta(mu_all, np.broadcast_to(cov, (len(nk), D, D)))

    def describe(self, theta):
        mu, cov = self._split(theta)
        return {"means": mu + self.ref, "covariance": cov[0]}

    def n_parameters(self, n_components):
        D = self.n_features
        return n_components * D + D * (D + 1) // 2

    def posterior(self, stats, nk, prior):
        m, beta, nu, Winv = GaussianFull.posterior(self, stats, nk, prior)
        m0, beta0, nu0, W0inv = prior
        K = len(nk)
        # the per-component forms each hold W0^-1 once: the shared one holds it once
        shared = W0inv + np.sum(Winv - W0inv, axis=0)
        return (m, beta, np.full(K, nu0 + float(np.sum(nk))),
                np.array(np.broadcast_to(0.5 * (shared + shared.T), Winv.shape)))

    def posterior_statistics(self, q, prior):
        """Statistics whose posterior is q: each component's means part exact; the
        shared scatter shared out in proportion to the components' counts."""
        m0, beta0, nu0, W0inv = prior
        m, beta, nu, Winv = q
        nk = beta - beta0
        share = nk / max(float(np.sum(nk)), np.finfo(np.float64).tiny)
        per = W0inv + share[:, None, None] * (Winv - W0inv)
        return GaussianFull.posterior_statistics(self, (m, beta, nu, per), prior)

    def check_theta(self, theta, name, structure=True):
        """GaussianFull's, and (structure) one covariance for every component: not
        for an average over draws (gibbs' summary), which is no longer tied."""
        GaussianFull.check_theta(self, theta, name)
        if not structure:
            return
        cov = self._split(theta)[1]
        if not np.allclose(cov, cov[:1], rtol=1e-9, atol=1e-12 * max(1.0, np.abs(theta).max())):
            raise ValueError(f"{name} must hold one covariance shared by every component "
                             "(tied)")

    def check_posterior(self, post, name):
        """GaussianFull's, and one Wishart (dof and scale) shared by the components."""
        GaussianFull.check_posterior(self, post, name)
        _, _, nu, winv = self.unpack_posterior(post)
        if not (np.all(nu == nu[0]) and np.all(winv == winv[:1])):
            raise ValueError(f"{name} must hold one Wishart shared by every component (tied)")

    def sample_posterior(self, q, rng):
        """One shared precision from q(Lambda), then each mean given it."""
        from scipy.stats import wishart
        m, beta, nu, Winv = q
        _, _, W, _ = self._expected(q)
        K, D = m.shape
        prec = np.atleast_2d(wishart.rvs(df=nu[0], scale=W[0], random_state=rng))
        cov = np.linalg.inv(prec)
        cov = 0.5 * (cov + cov.T)
        mu = np.array([rng.multivariate_normal(m[k], cov / beta[k]) for k in range(K)])
        return self._theta(mu, np.broadcast_to(cov, (K, D, D)))

    def kl(self, q, prior):
        wishart, normal = self._kl_parts(q, prior)
        return float(wishart[0] + np.sum(normal))


class GaussianSpherical(GaussianDiag):
    """Real features, one variance per component shared by every feature
    (covariance_type='spherical'), on GaussianDiag's statistics: em / vem / crisp
    give the mean of the per-feature variances plus reg_covar, as
    GaussianMixture(covariance_type='spherical').

    Mean field and gibbs: one precision lambda_k ~ Gamma(a0, b0) per component,
    shared by its features, and mean_k | lambda_k ~ N(m0, (beta0 lambda_k)^-1 I).
    The exact conjugate posterior is Gamma(a0 + D N_k / 2, b0 + (the sum over
    features of GaussianDiag's term) / 2) and N(m_k, (beta_k lambda_k)^-1 I).
    Default prior: GaussianDiag's m0 and beta0, a0 = D dof / 2 and b0 = a0 x the
    mean of the features' variances (the D per-feature Gamma priors' shape pooled;
    dof = degrees_of_freedom_prior, default n_features).  q keeps GaussianDiag's
    layout (a and b repeated over the features), so its expected natural
    parameters and posterior means are GaussianDiag's."""

    name = "gaussian_spherical"

    def point_estimate(self, stats, nk, previous):
        D = self.n_features
        theta = previous.copy()
        on = nk > 0
        mu = stats[on, :D] / nk[on, None]
        var = np.maximum((stats[on, D:] / nk[on, None] - mu * mu).mean(1), 0.0) + self.reg_covar
        theta[on] = np.hstack((mu, var[:, None] + mu * mu))
        return theta

    def describe(self, theta):
        mu, var = self._split(theta)
        return {"means": mu + self.ref, "variances": var[:, 0]}

    def n_parameters(self, n_components):
        return n_components * (self.n_features + 1)

    def default_prior(self, X, sample_weight=None):
        """(m0 (D), beta0, a0, b0): GaussianDiag's pooled over the features."""
        m0, beta0, a0, b0 = GaussianDiag.default_prior(self, X, sample_weight)
        D = self.n_features
        return m0, beta0, float(a0 * D), float(a0 * D * np.mean(b0 / a0))

    def posterior(self, stats, nk, prior):
        m0, beta0, a0, b0 = prior
        D = self.n_features
        beta = beta0 + nk[:, None] + np.zeros((1, D))
        m = (beta0 * m0 + stats[:, :D]) / beta
        a = a0 + 0.5 * D * nk
        b = np.maximum(b0 + 0.5 * np.sum(stats[:, D:] + beta0 * m0 * m0 - beta * m * m,
                                         axis=1), b0)
        return m, beta, np.repeat(a[:, None], D, 1), np.repeat(b[:, None], D, 1)

    def check_theta(self, theta, name, structure=True):
        """GaussianDiag's, and (structure) one variance for every feature of a
        component: not for an average over draws (gibbs' summary)."""
        GaussianDiag.check_theta(self, theta, name)
        if not structure:
            return
        var = self._split(theta)[1]
        if not np.allclose(var, var[:, :1], rtol=1e-9,
                           atol=1e-12 * max(1.0, np.abs(theta).max())):
            raise ValueError(f"{name} must hold one variance per component, shared by its "
                             "features (spherical)")

    def check_posterior(self, post, name):
        """GaussianDiag's, and one Gamma per component (a, b the same for its features)."""
        GaussianDiag.check_posterior(self, post, name)
        if not (np.all(post[2] == post[2][:, :1]) and np.all(post[3] == post[3][:, :1])):
            raise ValueError(f"{name} must hold one Gamma per component, shared by its "
                             "features (spherical)")

    def posterior_statistics(self, q, prior):
        """Statistics whose posterior is q: the squares spread evenly over the
        features (only their sum enters)."""
        m0, beta0, a0, b0 = prior
        m, beta, a, b = q
        D = self.n_features
        s1 = beta * m - beta0 * m0
        s2 = 2.0 * (b - b0) / D - beta0 * m0 * m0 + beta * m * m
        return np.hstack((s1, s2)), (beta - beta0)[:, 0]

    def sample_posterior(self, q, rng):
        m, beta, a, b = q
        lam = rng.gamma(a[:, :1], 1.0 / b[:, :1])
        mu = m + rng.standard_normal(m.shape) / np.sqrt(beta * lam)
        return np.hstack((mu, np.broadcast_to(1.0 / lam, m.shape) + mu * mu))

    def kl(self, q, prior):
        m0, beta0, a0, b0 = prior
        m, beta, a, b = q
        r = beta0 / beta
        return gamma_kl(a[:, 0], b[:, 0], a0, b0) + 0.5 * float(
            np.sum(r - 1.0 - np.log(r) + beta0 * (a / b) * (m - m0) ** 2))
