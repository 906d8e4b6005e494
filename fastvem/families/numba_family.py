"""User-defined exponential families written as numba-jitted row functions
(DESIGN.md: the extension point).  The user's functions are compiled, with a
loop over the rows of a chunk, into one C function (a numba ``cfunc``) that the
compiled row driver (`_ext/_expfam.pyx`) calls from its threads through the same
function table as the built-in families -- without the GIL.  The log-densities
and the statistics are then the exponential-family defaults: one GEMM each.

    from fastvem.families import ExponentialFamily
    fam = ExponentialFamily(
        n_statistics=lambda n_features: n_features,  # S, the length of T(x)
        statistics=stats,            # @njit stats(x, t): writes T(x) of one row x into t (S,)
        log_base_measure=log_h,      # @njit log_h(x) -> float
        log_partition=log_a,         # @njit log_a(eta) -> float, eta (S,) of one component
        mean_to_natural=to_eta)      # @njit to_eta(m, eta): eta = (grad A)^-1(m), m = E[T(x)]
    fastvem.Mixture(fam, n_components=4, method="em", weights_init=w,
                    natural_params_init=eta0).fit(X).natural_params_

The parameters are the natural parameters eta (K x S).  em, vem and crisp work
with these four functions; meanfield and gibbs need a conjugate prior, which this
version does not take yet: they are refused with that reason.  numba is the
optional extra ``fastvem[numba]``.
"""
import numbers

import numpy as np

from .base import Family

__all__ = ["ExponentialFamily"]

_CACHE = {}          # (id of each user function) -> the compiled features cfunc


def _numba():
    try:
        import numba
    except ImportError:
        raise ImportError("fastvem.families.ExponentialFamily needs numba: "
                          "pip install 'fastvem[numba]'") from None
    return numba


def _features_cfunc(statistics, log_base_measure):
    """The driver's dense features function for these row functions, compiled once
    per pair (the first call costs numba's compile time, ~1 s; later ones are free)."""
    key = (id(statistics), id(log_base_measure))
    if key in _CACHE:
        return _CACHE[key][0]
    numba = _numba()
    from numba import types

    sig = types.void(types.CPointer(types.float64), types.voidptr, types.intp, types.intp,
                     types.intp, types.intp, types.CPointer(types.float64),
                     types.CPointer(types.float64))

    @numba.cfunc(sig, nogil=True)
    def features(data, aux, r0, nb, D, S, T, logh):
        X = numba.carray(data, (r0 + nb, D))
        Tm = numba.carray(T, (nb, S))
        lh = numba.carray(logh, (nb,))
        for i in range(nb):
            statistics(X[r0 + i], Tm[i])
            lh[i] = log_base_measure(X[r0 + i])

    _CACHE[key] = (features, statistics, log_base_measure)   # keep them alive
    return features


class ExponentialFamily(Family):
    """An exponential family from numba-jitted row functions (see the module doc)."""

    name = "exponential_family"
    features = "address"

    def __init__(self, n_statistics, statistics, log_base_measure, log_partition,
                 mean_to_natural, conjugate=None):
        _numba()
        for name, f in (("statistics", statistics), ("log_base_measure", log_base_measure),
                        ("log_partition", log_partition), ("mean_to_natural", mean_to_natural)):
            if not hasattr(f, "py_func"):
                raise TypeError(f"{name} must be a numba.njit function, got {f!r}")
        if not callable(n_statistics):
            raise TypeError("n_statistics must be a function of n_features returning S")
        if conjugate is not None:
            raise ValueError("conjugate is not taken by this version: meanfield and gibbs for "
                             "an ExponentialFamily are not built yet (em, vem, crisp are)")
        self._n_statistics = n_statistics
        self.statistics = statistics
        self.log_base_measure = log_base_measure
        self.log_partition = log_partition
        self.mean_to_natural = mean_to_natural
        self.conjugate = conjugate
        self.n_features = None
        self.S = None

    # ---------------------------------------------------------- the data
    def setup(self, n_features):
        S = self._n_statistics(int(n_features))
        if isinstance(S, (bool, np.bool_)) or not isinstance(S, numbers.Integral) or S < 1:
            raise ValueError(f"n_statistics({n_features}) must be an integer >= 1, got {S!r}")
        self.n_features, self.S = int(n_features), int(S)
        self.address = _features_cfunc(self.statistics, self.log_base_measure).address

    def n_statistics(self):
        return self.S

    def prepare(self, X, fitting=False):
        from .discrete import _numeric
        X = np.ascontiguousarray(_numeric(X), dtype=np.float64)
        if fitting or self.S is None:
            self.setup(X.shape[1])
            self._check_row_functions(X[0])
        elif X.shape[1] != self.n_features:
            raise ValueError(f"X has {X.shape[1]} features, expected {self.n_features}")
        return X

    def _check_row_functions(self, x):
        """Each user function once, from Python, before any kernel: a wrong length or a
        non-finite value is a clear error here, not a write out of bounds later."""
        S = self.S
        t = np.full(S + 8, np.nan)
        try:
            self.statistics(x, t[:S])
        except Exception as exc:
            raise ValueError(f"statistics(x, t) failed on the first row: {exc}") from None
        if not np.all(np.isfinite(t[:S])):
            raise ValueError(f"statistics(x, t) left non-finite values in t (length S = {S}): "
                             f"{t[:S]}")
        if not np.all(np.isnan(t[S:])):
            raise ValueError(f"statistics(x, t) wrote past the end of t (length S = {S}, "
                             "from n_statistics): it writes more statistics than declared")
        try:
            h = float(self.log_base_measure(x))
        except Exception as exc:
            raise ValueError(f"log_base_measure(x) failed on the first row: {exc}") from None
        if not np.isfinite(h):
            raise ValueError(f"log_base_measure(x) returned {h} on the first row")
        # mean_to_natural and log_partition are checked where they are called (M-step,
        # effective parameters): one row's statistics may be a degenerate mean

    # ---------------------------------------------------- the parameters
    def natural(self, mean):
        """eta (K x S) from mean parameters, by the user's mean_to_natural."""
        eta = np.full((mean.shape[0], self.S), np.nan)
        for k in range(mean.shape[0]):
            try:
                self.mean_to_natural(np.ascontiguousarray(mean[k]), eta[k])
            except Exception as exc:
                raise ValueError(f"mean_to_natural(m, eta) failed: {exc}") from None
        if not np.all(np.isfinite(eta)):
            raise ValueError("mean_to_natural(m, eta) left non-finite values in eta (length "
                             f"S = {self.S}) for the mean parameters {mean[~np.all(np.isfinite(eta), 1)][:1]}")
        return eta

    def effective(self, eta):
        c = np.empty(eta.shape[0])
        for k in range(eta.shape[0]):
            c[k] = -float(self.log_partition(np.ascontiguousarray(eta[k])))
        if not np.all(np.isfinite(c)):
            raise ValueError("log_partition(eta) is not finite for the natural parameters "
                             f"{eta[~np.isfinite(c)][:1]}")
        return eta, c

    def point_estimate(self, stats, nk, previous):
        eta = previous.copy()
        on = nk > 0
        if np.any(on):
            eta[on] = self.natural(stats[on] / nk[on, None])
        return eta

    def default_prior(self, X):
        return None

    def n_parameters(self, n_components):
        return n_components * self.S


def example_poisson():
    """An ExponentialFamily of independent Poisson counts, written as a user would:
    T(x) = x, log h = -sum log x!, A(eta) = sum exp(eta), eta = log m (the rates
    floored at 1e-10 as PoissonMixture floors them)."""
    numba = _numba()
    import math

    @numba.njit
    def statistics(x, t):
        for d in range(x.shape[0]):
            t[d] = x[d]

    @numba.njit
    def log_base_measure(x):
        s = 0.0
        for d in range(x.shape[0]):
            s -= math.lgamma(x[d] + 1.0)
        return s

    @numba.njit
    def log_partition(eta):
        return np.sum(np.exp(eta))

    @numba.njit
    def mean_to_natural(m, eta):
        for d in range(m.shape[0]):
            eta[d] = np.log(max(m[d], 1e-10))

    return ExponentialFamily(lambda d: d, statistics, log_base_measure, log_partition,
                             mean_to_natural)


def example_diagonal_gaussian():
    """An ExponentialFamily of a Gaussian with a diagonal covariance: T(x) = (x, x^2),
    eta = (mu / var, -1 / (2 var)), no regularisation of the variances."""
    numba = _numba()

    @numba.njit
    def statistics(x, t):
        D = x.shape[0]
        for d in range(D):
            t[d] = x[d]
            t[D + d] = x[d] * x[d]

    @numba.njit
    def log_base_measure(x):
        return -0.5 * x.shape[0] * np.log(2 * np.pi)

    @numba.njit
    def log_partition(eta):
        D = eta.shape[0] // 2
        s = 0.0
        for d in range(D):
            s += -eta[d] ** 2 / (4 * eta[D + d]) - 0.5 * np.log(-2 * eta[D + d])
        return s

    @numba.njit
    def mean_to_natural(m, eta):
        D = m.shape[0] // 2
        for d in range(D):
            var = m[D + d] - m[d] ** 2
            eta[d] = m[d] / var
            eta[D + d] = -0.5 / var

    return ExponentialFamily(lambda d: 2 * d, statistics, log_base_measure, log_partition,
                             mean_to_natural)
