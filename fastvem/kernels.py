"""Public low-level kernel API: validated arrays in, arrays out.

The stable backend face of fastvem for other libraries: the Gaussian E-step
and sufficient statistics without any estimator.  Parameters follow
scikit-learn's conventions: ``precisions_cholesky`` are upper-triangular U with
U U^T = precision ('full': (K, D, D), 'tied': (D, D), 'diag': (K, D) of
1/sigma, 'spherical': (K,) of 1/sigma).  Data are float32 or float64; the
computation runs in the data's dtype and statistics accumulate in float64.
Every function validates its input once and then runs the compiled kernel,
multi-threaded, with results identical for any ``n_threads``.

Example
-------
>>> import numpy as np, fastvem.kernels as fk
>>> X = np.random.default_rng(0).normal(size=(1000, 2))
>>> means, pc = np.array([[-1., 0.], [1., 0.]]), np.ones((2, 2))
>>> st = fk.gaussian_statistics(X, means, pc, "diag", weights=[0.5, 0.5])
>>> w, mu, cov, pc = fk.gaussian_m_step(st, reg_covar=1e-6)
"""
import numbers

import numpy as np
from sklearn.utils import check_array

from .engine import blas_single_thread, default_n_threads
from .families.gaussian import COVARIANCE_TYPES, GaussianFamily, data_scatter
from ._validation import check_array_param, check_sample_weight, check_scale
from .stats import GaussianStats

__all__ = ["gaussian_log_prob", "gaussian_responsibilities", "gaussian_score_samples",
           "gaussian_predict", "gaussian_statistics", "gaussian_m_step",
           "gaussian_data_scatter", "GaussianStats"]

_ASSIGN = ("softmax", "argmax", "sample")


def _check(X, means, precisions_cholesky, covariance_type, weights):
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(f"covariance_type must be one of {list(COVARIANCE_TYPES)}, "
                         f"got {covariance_type!r}")
    if getattr(getattr(X, "dtype", None), "kind", None) in ("U", "S", "V"):
        raise TypeError(f"X must be numeric, got string dtype {X.dtype}")
    X = check_scale(check_array(X, dtype=[np.float64, np.float32], order="C",
                                ensure_min_samples=0, input_name="X"))
    D = X.shape[1]
    means = np.asarray(means)
    if means.ndim != 2 or means.shape[0] < 1:
        raise ValueError(f"means must be a (K, D) array with K >= 1, got shape {means.shape}")
    K = means.shape[0]
    means = check_array_param(means, "means", (K, D))
    shape = {"full": (K, D, D), "tied": (D, D), "diag": (K, D), "spherical": (K,)}[covariance_type]
    pc = check_array_param(precisions_cholesky, "precisions_cholesky", shape)
    if covariance_type in ("full", "tied"):
        mats = pc if covariance_type == "full" else pc[None]
        if np.any(np.tril(mats, -1) != 0):
            raise ValueError("precisions_cholesky must be upper triangular")
        if np.any(np.diagonal(mats, axis1=1, axis2=2) <= 0):
            raise ValueError("precisions_cholesky must have a positive diagonal")
    elif np.any(pc <= 0):
        raise ValueError("precisions_cholesky must be positive")
    if weights is None:
        logw = np.zeros(K)
    else:
        w = check_array_param(weights, "weights", (K,))
        if np.any(w < 0) or not np.isclose(w.sum(), 1.0, rtol=1e-6):
            raise ValueError("weights must be non-negative and sum to 1")
        with np.errstate(divide="ignore"):
            logw = np.log(w)
    # the kernel forms U^T (x - mean) in X's dtype: it must not overflow there
    limit = np.sqrt(np.finfo(X.dtype).max) / 1e4
    reach = (np.abs(X).max(initial=0.0) + np.abs(means).max(initial=0.0)) * np.abs(pc).max()
    if np.abs(means).max(initial=0.0) > limit:
        raise ValueError(f"means hold values up to {np.abs(means).max():.3g}: in {X.dtype} the "
                         f"kernel's squares overflow (up to {limit:.3g} is supported)")
    if reach > limit:
        raise ValueError(f"precisions_cholesky (up to {np.abs(pc).max():.3g}) times the data's "
                         f"and means' magnitude ({reach / np.abs(pc).max():.3g}) overflows "
                         f"{X.dtype} in the kernel's squares (up to {limit:.3g} is supported)")
    fam = GaussianFamily(covariance_type)
    kp = fam.kernel_params(means, pc, fam.log_normaliser(pc, D) + logw, X.dtype)
    return X, kp, fam


def _estep(X, kp, fam, want, n_threads):
    with blas_single_thread():
        return fam.estep(X, kp, want, default_n_threads(n_threads))


def gaussian_log_prob(X, means, precisions_cholesky, covariance_type, weights=None,
                      n_threads=None):
    """log N(x_n | mu_k, Sigma_k) + log weights_k, shape (N, K), in X's dtype."""
    X, kp, fam = _check(X, means, precisions_cholesky, covariance_type, weights)
    return _estep(X, kp, fam, "logprob", n_threads)


def gaussian_responsibilities(X, means, precisions_cholesky, covariance_type, weights=None,
                              n_threads=None):
    """Posterior p(z=k | x_n), shape (N, K), in X's dtype."""
    X, kp, fam = _check(X, means, precisions_cholesky, covariance_type, weights)
    return _estep(X, kp, fam, "resp", n_threads)


def gaussian_score_samples(X, means, precisions_cholesky, covariance_type, weights=None,
                           n_threads=None):
    """log p(x_n) = logsumexp_k (log w_k + log N(x_n | k)), shape (N,), float64."""
    X, kp, fam = _check(X, means, precisions_cholesky, covariance_type, weights)
    return _estep(X, kp, fam, "norm", n_threads)


def gaussian_predict(X, means, precisions_cholesky, covariance_type, weights=None,
                     n_threads=None):
    """argmax_k p(z=k | x_n), shape (N,)."""
    X, kp, fam = _check(X, means, precisions_cholesky, covariance_type, weights)
    return _estep(X, kp, fam, "label", n_threads)


def gaussian_statistics(X, means, precisions_cholesky, covariance_type, weights=None,
                        sample_weight=None, assign="softmax", seed=0, n_threads=None):
    """One fused pass: q(z) by `assign` ('softmax' | 'argmax' | 'sample') and the
    weighted statistics centred at one reference point (the mean of `means`, the
    same for every component; under covariance_type='full' a component whose sums
    would cancel about it -- tight and far from it -- is summed again about its own
    mean, its ``shift`` row then that mean), as a :class:`GaussianStats` whose
    ``objective`` is sum_n w_n * (log p(x_n) | max_k log p(x_n, k) | log p(x_n, z_n))."""
    if assign not in _ASSIGN:
        raise ValueError(f"assign must be one of {list(_ASSIGN)}, got {assign!r}")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be a non-negative int, got {seed!r}")
    if not 0 <= seed < 2 ** 63:
        raise ValueError(f"seed must be in [0, 2**63), got {seed}")
    X, kp, fam = _check(X, means, precisions_cholesky, covariance_type, weights)
    sw = check_sample_weight(sample_weight, X.shape[0])
    with blas_single_thread():
        return fam.statistics(X, sw, kp, assign, int(seed), default_n_threads(n_threads))


def gaussian_data_scatter(X, sample_weight=None):
    """(total weight, weighted mean, centred scatter) of X: what a tied M-step needs."""
    X = check_scale(check_array(X, dtype=[np.float64, np.float32], input_name="X"))
    return data_scatter(X, check_sample_weight(sample_weight, X.shape[0]))


def gaussian_m_step(stats, reg_covar=1e-6, scatter=None):
    """(weights, means, covariances, precisions_cholesky) from statistics, with
    scikit-learn's reg_covar and 10*eps count floor.  A tied M-step needs
    ``scatter=gaussian_data_scatter(X, sample_weight)``."""
    if not isinstance(stats, GaussianStats):
        raise TypeError("stats must be a GaussianStats (from gaussian_statistics)")
    if isinstance(reg_covar, (bool, np.bool_)) or not isinstance(reg_covar, numbers.Real):
        raise TypeError(f"reg_covar must be a real number, got {reg_covar!r}")
    if not np.isfinite(reg_covar) or reg_covar < 0:
        raise ValueError(f"reg_covar must be finite and >= 0, got {reg_covar}")
    fam = GaussianFamily(stats.covariance_type, reg_covar)
    if stats.covariance_type == "tied":
        if scatter is None:
            raise ValueError("a tied M-step needs scatter=gaussian_data_scatter(X)")
        D = stats.shift.shape[1]
        try:
            total, centre, S = scatter
            total = float(total)
            centre = check_array_param(centre, "scatter[1] (centre)", (D,))
            S = check_array_param(S, "scatter[2] (scatter matrix)", (D, D))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"scatter must be (total, centre (D,), scatter (D, D)) from "
                             f"gaussian_data_scatter: {exc}") from None
        fam.scatter = (total, centre, S)
    nk = stats.nk + fam.count_floor
    theta = fam.point_estimate(stats, nk)
    return nk / nk.sum(), theta["means"], theta["covariances"], theta["precisions_cholesky"]
