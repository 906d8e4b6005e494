"""User-defined exponential families written as numba-jitted row functions
(docs/architecture.md: the extension point).  The user's functions are compiled, with a
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
with these four functions.  Mean field and gibbs need the conjugate prior
p(eta | tau, nu) = exp(tau . eta - nu A(eta) - log Z(tau, nu)), given as a
``Conjugate`` of four more row functions and the prior's (tau0, nu0):

    conj = Conjugate(
        expected_natural=e_eta,        # @njit e_eta(tau, nu, out): out = E[eta]  (S,)
        expected_log_partition=e_a,    # @njit e_a(tau, nu) -> E[A(eta)]
        log_normalizer=log_z,          # @njit log_z(tau, nu) -> log Z(tau, nu)
        sample_natural=draw,           # @njit draw(tau, nu, seed, out): out = a draw of eta
        natural_to_mean=grad_a,        # @njit grad_a(eta, m): m = grad A(eta) = E[T(x)]
        prior_statistics=tau0,         # (S,) array, or a function of n_features
        prior_count=nu0)               # nu0 > 0
    ExponentialFamily(..., conjugate=conj)

The posterior of component k is (tau0 + its statistics, nu0 + its count); mean
field reads E[eta] and E[A(eta)] from it (the effective parameters: one kernel),
its KL to the prior from log Z, and gibbs draws eta from it.  A draw is seeded by
the engine (``seed``, a new one per component and sweep, from the estimator's
random_state): numba's np.random functions (gamma, normal, beta, ...) seeded
with np.random.seed(seed) inside ``draw`` give reproducible chains without the
user writing a sampler from uniforms.  ``natural_to_mean`` turns a starting
point (k-means or natural_params_init) into the statistics mean field starts
from.  numba is the optional extra ``fastvem[numba]``.
"""
import numbers

import numpy as np

from .base import Family

__all__ = ["Conjugate", "ExponentialFamily"]

_CACHE = {}          # (id of each user function) -> the compiled features cfunc


def _numba():
    try:
        import numba
    except ImportError:
        raise ImportError("fastvem.families.ExponentialFamily needs numba: "
                          "pip install 'fastvem[numba]'") from None
    return numba


def _call_error(call, what, exc):
    """A user function that failed when called on what: a TypeError when numba could
    not compile or dispatch it (a wrong signature), a ValueError otherwise; both
    name the function and its expected signature."""
    kind = type(exc).__name__
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, TypeError) or "Typing" in kind or "Lowering" in kind:
        return TypeError(f"{call} could not be called on {what} with that signature "
                         f"({kind}: {first}); see ExponentialFamily's expected signatures")
    return ValueError(f"{call} failed on {what}: {kind}: {first}")


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
        if conjugate is not None and not isinstance(conjugate, Conjugate):
            raise TypeError(f"conjugate must be a fastvem.families.Conjugate, got {conjugate!r}")
        self._n_statistics = n_statistics
        self.statistics = statistics
        self.log_base_measure = log_base_measure
        self.log_partition = log_partition
        self.mean_to_natural = mean_to_natural
        self.conjugate = conjugate
        self.n_features = None
        self.S = None

    # ---------------------------------------------------------- the data
    def setup(self, n_features, first_row=None):
        """S from n_statistics; the row functions checked on first_row (when given)
        from Python, then compiled into the driver's features function."""
        S = self._n_statistics(int(n_features))
        if isinstance(S, (bool, np.bool_)) or not isinstance(S, numbers.Integral) or S < 1:
            raise ValueError(f"n_statistics({n_features}) must be an integer >= 1, got {S!r}")
        self.n_features, self.S = int(n_features), int(S)
        if first_row is not None:
            self._check_row_functions(first_row)
        try:
            self.address = _features_cfunc(self.statistics, self.log_base_measure).address
        except Exception as exc:
            raise TypeError("statistics(x, t) and log_base_measure(x) must compile as numba "
                            "row functions of a float64 row x (and t, float64 of length S): "
                            f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from None

    def n_statistics(self):
        return self.S

    def prepare(self, X, fitting=False):
        from .discrete import _numeric
        X = np.ascontiguousarray(_numeric(X), dtype=np.float64)
        if fitting or self.S is None:
            self.setup(X.shape[1], X[0])
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
            raise _call_error("statistics(x, t)", "the first row", exc) from None
        if not np.all(np.isfinite(t[:S])):
            raise ValueError(f"statistics(x, t) left non-finite values in t (length S = {S}): "
                             f"{t[:S]}")
        if not np.all(np.isnan(t[S:])):
            raise ValueError(f"statistics(x, t) wrote past the end of t (length S = {S}, "
                             "from n_statistics): it writes more statistics than declared")
        try:
            h = float(self.log_base_measure(x))
        except Exception as exc:
            raise _call_error("log_base_measure(x)", "the first row", exc) from None
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
                raise _call_error("mean_to_natural(m, eta)", "a component's mean "
                                  "parameters", exc) from None
        if not np.all(np.isfinite(eta)):
            raise ValueError("mean_to_natural(m, eta) left non-finite values in eta (length "
                             f"S = {self.S}) for the mean parameters {mean[~np.all(np.isfinite(eta), 1)][:1]}")
        return eta

    def effective(self, eta):
        c = np.empty(eta.shape[0])
        for k in range(eta.shape[0]):
            try:
                c[k] = -float(self.log_partition(np.ascontiguousarray(eta[k])))
            except Exception as exc:
                raise _call_error("log_partition(eta)", "a component's natural parameters",
                                  exc) from None
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

    def n_parameters(self, n_components):
        return n_components * self.S

    # ------------------------------------------ the conjugate (mean field, gibbs)
    def _conj(self):
        if self.conjugate is None:
            raise ValueError("this method needs the family's conjugate prior: give the "
                             "ExponentialFamily a conjugate=Conjugate(...)")
        return self.conjugate

    def default_prior(self, X, sample_weight=None):
        if self.conjugate is None:
            return None
        return self.conjugate.prior(self.n_features, self.S)

    def mean_parameters(self, eta):
        """E[T(x)] (K x S) at eta, by the conjugate's natural_to_mean."""
        return self._conj().call_rows("natural_to_mean", eta, self.S)

    def initial_statistics(self, theta, nk):
        """The statistics of nk rows at eta: E[T(x)] by natural_to_mean (a stepwise
        or mean-field start from natural parameters needs it)."""
        if self.conjugate is None:
            raise ValueError("continuing from natural parameters (partial_fit after fit, "
                             "or mean field) needs E[T(x)] at eta: give the "
                             "ExponentialFamily a conjugate=Conjugate(..., natural_to_mean=...)")
        return self.mean_parameters(theta) * nk[:, None]

    def posterior(self, stats, nk, prior):
        tau0, nu0 = prior
        return tau0 + stats, nu0 + np.asarray(nk, dtype=np.float64)

    def posterior_statistics(self, q, prior):
        tau0, nu0 = prior
        return q[0] - tau0, q[1] - nu0

    def pack_posterior(self, q):
        tau, nu = q
        return np.stack((tau, np.repeat(nu[:, None], tau.shape[1], axis=1)))

    def unpack_posterior(self, post):
        return post[0], post[1][:, 0].copy()

    def expected_effective(self, q):
        tau, nu = q
        conj = self._conj()
        W = conj.call_pairs("expected_natural", tau, nu, self.S)
        c = -conj.scalars("expected_log_partition", tau, nu)
        return W, c

    def posterior_mean(self, q):
        """E[eta] under each component's posterior (natural_params_)."""
        return self._conj().call_pairs("expected_natural", q[0], q[1], self.S)

    def sample_posterior(self, q, rng):
        tau, nu = q
        conj = self._conj()
        eta = np.full((tau.shape[0], self.S), np.nan)
        for k in range(tau.shape[0]):
            # a RandomState (mixtures) or a Generator (the HMM's chains)
            seed = int(rng.randint(2 ** 31) if hasattr(rng, "randint") else rng.integers(2 ** 31))
            conj.sample_natural(np.ascontiguousarray(tau[k]), float(nu[k]), seed, eta[k])
        if not np.all(np.isfinite(eta)):
            raise ValueError("sample_natural(tau, nu, seed, out) left non-finite values in out")
        return eta

    def kl(self, q, prior):
        """KL(q || prior) summed over components: (tau - tau0) . E[eta] - (nu - nu0)
        E[A] - log Z(tau, nu) + log Z(tau0, nu0)."""
        tau, nu = q
        tau0, nu0 = prior
        conj = self._conj()
        e_eta = conj.call_pairs("expected_natural", tau, nu, self.S)
        e_a = conj.scalars("expected_log_partition", tau, nu)
        log_z = conj.scalars("log_normalizer", tau, nu)
        log_z0 = conj.scalars("log_normalizer", tau0[None], np.array([nu0]))[0]
        return float(np.sum((tau - tau0) * e_eta) - np.sum((nu - nu0) * e_a)
                     - np.sum(log_z) + tau.shape[0] * log_z0)


class Conjugate:
    """The conjugate prior of an ExponentialFamily (see the module doc): numba row
    functions and the prior's pseudo-statistics tau0 and count nu0."""

    _FUNCTIONS = ("expected_natural", "expected_log_partition", "log_normalizer",
                  "sample_natural", "natural_to_mean")

    def __init__(self, expected_natural, expected_log_partition, log_normalizer,
                 sample_natural, natural_to_mean, prior_statistics, prior_count):
        _numba()
        for name in self._FUNCTIONS:
            f = locals()[name]
            if not hasattr(f, "py_func"):
                raise TypeError(f"{name} must be a numba.njit function, got {f!r}")
            setattr(self, name, f)
        if isinstance(prior_count, (bool, np.bool_)) or not isinstance(prior_count, numbers.Real) \
                or not np.isfinite(prior_count) or prior_count <= 0:
            raise ValueError(f"prior_count must be a finite number > 0, got {prior_count!r}")
        if not callable(prior_statistics):
            prior_statistics = np.asarray(prior_statistics, dtype=np.float64)
        self.prior_statistics = prior_statistics
        self.prior_count = float(prior_count)

    def prior(self, n_features, S):
        tau0 = self.prior_statistics
        if callable(tau0):
            tau0 = tau0(n_features)
        tau0 = np.ascontiguousarray(tau0, dtype=np.float64)
        if tau0.shape != (S,) or not np.all(np.isfinite(tau0)):
            raise ValueError(f"prior_statistics must be {S} finite values (one per statistic), "
                             f"got shape {tau0.shape}")
        return tau0, self.prior_count

    def _call(self, name, *args):
        try:
            return getattr(self, name)(*args)
        except Exception as exc:
            raise ValueError(f"{name} failed: {exc}") from None

    def call_rows(self, name, a, S):
        """out[k] (S,) = name(a[k], out[k]) for each row; checked like the row functions."""
        out = np.full((a.shape[0], S + 8), np.nan)
        for k in range(a.shape[0]):
            self._call(name, np.ascontiguousarray(a[k]), out[k, :S])
        self._check(name, out, S)
        return np.ascontiguousarray(out[:, :S])

    def call_pairs(self, name, tau, nu, S):
        out = np.full((tau.shape[0], S + 8), np.nan)
        for k in range(tau.shape[0]):
            self._call(name, np.ascontiguousarray(tau[k]), float(nu[k]), out[k, :S])
        self._check(name, out, S)
        return np.ascontiguousarray(out[:, :S])

    def scalars(self, name, tau, nu):
        v = np.array([float(self._call(name, np.ascontiguousarray(tau[k]), float(nu[k])))
                      for k in range(tau.shape[0])])
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name}(tau, nu) is not finite: {v}")
        return v

    @staticmethod
    def _check(name, out, S):
        if not np.all(np.isnan(out[:, S:])):
            raise ValueError(f"{name} wrote past the end of its output (length S = {S})")
        if not np.all(np.isfinite(out[:, :S])):
            raise ValueError(f"{name} left non-finite values in its output (length S = {S})")


def _example_digamma():
    """digamma for numba (the examples' conjugates): the recurrence up to x >= 10,
    then the asymptotic series (error below 1e-13)."""
    numba = _numba()
    import math

    @numba.njit
    def digamma(x):
        r = 0.0
        while x < 10.0:
            r -= 1.0 / x
            x += 1.0
        f = 1.0 / (x * x)
        return r + math.log(x) - 0.5 / x - f * (1.0 / 12 - f * (1.0 / 120 - f * (
            1.0 / 252 - f * (1.0 / 240 - f * (1.0 / 132)))))

    return digamma


def example_poisson(shape_prior=None, rate_prior=1.0):
    """An ExponentialFamily of independent Poisson counts, written as a user would:
    T(x) = x, log h = -sum log x!, A(eta) = sum exp(eta), eta = log m (the rates
    floored at 1e-10 as PoissonMixture floors them).  With shape_prior, the
    conjugate: each rate ~ Gamma(shape_prior, rate_prior) (tau0 = shape_prior, nu0 =
    rate_prior), as PoissonMixture(shape_prior=..., rate_prior=...) has it."""
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

    conjugate = None
    if shape_prior is not None:
        digamma = _example_digamma()

        @numba.njit
        def expected_natural(tau, nu, out):      # rate ~ Gamma(tau, nu): E log rate
            for d in range(tau.shape[0]):
                out[d] = digamma(tau[d]) - math.log(nu)

        @numba.njit
        def expected_log_partition(tau, nu):     # E sum rate
            return np.sum(tau) / nu

        @numba.njit
        def log_normalizer(tau, nu):
            s = 0.0
            for d in range(tau.shape[0]):
                s += math.lgamma(tau[d]) - tau[d] * math.log(nu)
            return s

        @numba.njit
        def sample_natural(tau, nu, seed, out):
            np.random.seed(seed)
            for d in range(tau.shape[0]):
                out[d] = math.log(max(np.random.gamma(tau[d], 1.0 / nu), 1e-10))

        @numba.njit
        def natural_to_mean(eta, m):
            for d in range(eta.shape[0]):
                m[d] = math.exp(eta[d])

        conjugate = Conjugate(expected_natural, expected_log_partition, log_normalizer,
                              sample_natural, natural_to_mean,
                              prior_statistics=lambda D: np.full(D, float(shape_prior)),
                              prior_count=rate_prior)

    return ExponentialFamily(lambda d: d, statistics, log_base_measure, log_partition,
                             mean_to_natural, conjugate=conjugate)


def example_diagonal_gaussian(mean_precision_prior=None, mean_prior=0.0, b_prior=1.0):
    """An ExponentialFamily of a Gaussian with a diagonal covariance: T(x) = (x, x^2),
    eta = (mu / var, -1 / (2 var)), no regularisation of the variances.

    With mean_precision_prior (beta0), the conjugate in eta: with the prior count
    nu0 = beta0 and tau0 = (beta0 m0, 2 b0 + beta0 m0^2) per feature, each (mean,
    precision) is Normal-Gamma: mean | precision ~ N(m0, 1 / (beta0 precision)),
    precision ~ Gamma(a0 = beta0 / 2 + 3 / 2, rate b0) (the 3 / 2: the density is
    with respect to d eta, whose Jacobian from (mean, precision) is precision / 2):
    the built-in GaussianDiag with degrees_of_freedom_prior = beta0 + 3 and
    covariance_prior = 2 b0 / (beta0 + 3)."""
    numba = _numba()
    import math

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

    conjugate = None
    if mean_precision_prior is not None:
        digamma = _example_digamma()

        @numba.njit
        def _ng(tau, nu, d, D):                    # (m, a, b) of feature d
            m = tau[d] / nu
            return m, 0.5 * nu + 1.5, 0.5 * (tau[D + d] - tau[d] * m)

        @numba.njit
        def expected_natural(tau, nu, out):
            D = tau.shape[0] // 2
            for d in range(D):
                m, a, b = _ng(tau, nu, d, D)
                out[d] = a / b * m                 # E[precision mean]
                out[D + d] = -0.5 * a / b          # E[-precision / 2]

        @numba.njit
        def expected_log_partition(tau, nu):     # E[precision mean^2 / 2 - log precision / 2]
            D = tau.shape[0] // 2
            s = 0.0
            for d in range(D):
                m, a, b = _ng(tau, nu, d, D)
                s += 0.5 * (a / b * m * m + 1.0 / nu) - 0.5 * (digamma(a) - math.log(b))
            return s

        @numba.njit
        def log_normalizer(tau, nu):
            D = tau.shape[0] // 2
            s = 0.0
            for d in range(D):
                m, a, b = _ng(tau, nu, d, D)
                s += (-math.log(2.0) + 0.5 * math.log(2 * math.pi / nu) + math.lgamma(a)
                      - a * math.log(b))
            return s

        @numba.njit
        def sample_natural(tau, nu, seed, out):
            np.random.seed(seed)
            D = tau.shape[0] // 2
            for d in range(D):
                m, a, b = _ng(tau, nu, d, D)
                lam = np.random.gamma(a, 1.0 / b)
                mu = m + np.random.normal() / math.sqrt(nu * lam)
                out[d] = lam * mu
                out[D + d] = -0.5 * lam

        @numba.njit
        def natural_to_mean(eta, m):
            D = eta.shape[0] // 2
            for d in range(D):
                var = -0.5 / eta[D + d]
                m[d] = eta[d] * var
                m[D + d] = var + m[d] * m[d]

        beta0, m0, b0 = float(mean_precision_prior), float(mean_prior), float(b_prior)
        conjugate = Conjugate(
            expected_natural, expected_log_partition, log_normalizer, sample_natural,
            natural_to_mean,
            prior_statistics=lambda D: np.concatenate((np.full(D, beta0 * m0),
                                                       np.full(D, 2 * b0 + beta0 * m0 * m0))),
            prior_count=beta0)

    return ExponentialFamily(lambda d: 2 * d, statistics, log_base_measure, log_partition,
                             mean_to_natural, conjugate=conjugate)
