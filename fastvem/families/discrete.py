"""Discrete observation families: Bernoulli, categorical (one code per feature)
and Poisson, each a conjugate exponential family on the compiled row driver
(`_ext/_expfam.pyx`).  See `families/base.py` for the protocol.

Priors, as scikit-learn's naive Bayes smooths (``alpha``):
- Bernoulli: each probability ~ Beta(1 + alpha, 1 + alpha); em, vem and crisp
  take its MAP, (sum r x + alpha) / (sum r + 2 alpha); alpha = 0 is the ML
  estimate.  Mean field and gibbs use the same prior.
- Categorical: each feature's probability vector ~ Dirichlet(1 + alpha); MAP
  (c_j + alpha) / (sum c + L alpha).
- Poisson: each rate ~ Gamma(shape0, rate0), by default shape0 = 1 and rate0 =
  1 / (the feature's mean): one pseudo-row at the data's mean.  em, vem and
  crisp take the ML rate, floored at RATE_FLOOR.
A component that holds no weight keeps its previous parameters in
point_estimate; the estimator then re-seeds it (em, vem, crisp) by splitting the
heaviest live component in two (`split`: its widest statistic moved half a
standard deviation up and down, the weight halved), as GaussianMixture splits
the widest component, and records it in trace_["events"].
"""
import numbers

import numpy as np
from scipy.special import digamma

from .base import Family, beta_kl, dirichlet_kl, gamma_kl
from .._threads import map_rows

__all__ = ["Bernoulli", "Categorical", "Multinomial", "Poisson", "RATE_FLOOR", "PROB_FLOOR"]

RATE_FLOOR = 1e-10                 # the smallest Poisson rate (log 0 would be -inf)
MAX_COUNT = 1e250                  # the largest count (over n_features) a row may hold
PROB_FLOOR = np.finfo(np.float64).tiny   # log of a zero probability: -708, not -inf
_ONE_BELOW = 1.0 - 2.0 ** -53     # the largest Bernoulli probability inside a log


def _check_alpha(alpha):
    if (isinstance(alpha, (bool, np.bool_)) or not isinstance(alpha, numbers.Real)
            or not np.isfinite(alpha) or alpha < 0):
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
    return float(alpha)


def _numeric(X, name="X"):
    """X as a 2-D numeric ndarray, validated by scikit-learn's check_array (its
    messages for 1-D, empty, complex, object and non-finite data) and kept in its
    own numeric dtype (uint8 and bool stay compact); ValueError / TypeError naming X."""
    import scipy.sparse as sp
    from sklearn.utils import check_array
    if sp.issparse(X):
        raise TypeError(f"{name} is a scipy.sparse matrix; this family needs a dense array")
    arr = np.asarray(X) if not isinstance(X, np.ndarray) else X
    dtype = None if arr.dtype.kind in "biuf" else np.float64
    hint = ("numbers (categories as integer codes 0, 1, ...: encode labels first, e.g. "
            "with sklearn.preprocessing.OrdinalEncoder)")
    if arr.dtype.kind in "USV":
        raise TypeError(f"{name} must hold {hint}, got dtype {arr.dtype}")
    try:
        X = check_array(X, dtype=dtype, ensure_2d=True, ensure_min_samples=1,
                        ensure_min_features=1, input_name=name)
    except ValueError as exc:
        if "could not convert" in str(exc):       # strings inside an object array
            raise TypeError(f"{name} must hold {hint} ({exc})") from None
        raise
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {X.dtype}")
    return X


class Bernoulli(Family):
    """Binary features: T(x) = x, one probability per feature and component."""

    name = "bernoulli"
    n_posterior_arrays = 2          # q = (a, b) of the Beta posteriors
    # the kernel reads the rows packed 8 features a byte (np.packbits, little bit
    # order): 8x less memory than uint8, and each half byte is one lookup of a
    # 16-entry table per component instead of up to 4 additions
    features = "bernoulli_bits"

    def __init__(self, n_features, alpha=1.0, binarize=None, packed=True):
        self.n_features = int(n_features)
        self.alpha = _check_alpha(alpha)
        self.binarize = binarize
        # a product's parts read one byte a feature (the lookup space is per family)
        self.packed = bool(packed)
        self.features = "bernoulli_bits" if self.packed else "bernoulli_uint8"

    def n_statistics(self):
        return self.n_features

    @staticmethod
    def check_binarize(binarize):
        if binarize is not None and (isinstance(binarize, (bool, np.bool_))
                                     or not isinstance(binarize, numbers.Real)
                                     or not np.isfinite(binarize)):
            raise ValueError(f"binarize must be None or a finite threshold, got {binarize!r}")

    def prepare(self, X, fitting=False):
        """The 0/1 rows packed 8 features a byte (N x ceil(D / 8) uint8)."""
        self.check_binarize(self.binarize)
        X = _numeric(X)
        if X.shape[1] != self.n_features:
            raise ValueError(f"X has {X.shape[1]} features, expected {self.n_features}")
        if self.binarize is not None:
            bits = X > self.binarize
        else:
            bad = (X != 0) & (X != 1)
            if np.any(bad):
                i, j = np.argwhere(bad)[0]
                raise ValueError(f"X must hold only 0 and 1 (binarize=None), found {X[i, j]!r} "
                                 f"at row {i}, column {j}; pass binarize=threshold to binarise")
            bits = X != 0
        if not self.packed:
            return np.ascontiguousarray(bits, dtype=np.uint8)
        return np.ascontiguousarray(np.packbits(bits, axis=1, bitorder="little"))

    def dense_features(self, data):
        """The 0/1 rows (float64) of the prepared data."""
        if not self.packed:
            return data.astype(np.float64)
        return np.unpackbits(data, axis=1, count=self.n_features,
                             bitorder="little").astype(np.float64)


    def check_theta(self, theta, name, structure=True):
        if np.any(theta < 0) or np.any(theta > 1):
            raise ValueError(f"{name} must hold probabilities in [0, 1]")

    def describe(self, theta):
        return {"probabilities": theta}

    def log_prior(self, theta):
        if self.alpha == 0:
            return 0.0
        p = np.clip(theta, PROB_FLOOR, _ONE_BELOW)
        return self.alpha * float(np.sum(np.log(p) + np.log1p(-p)))

    def to_unconstrained(self, theta):
        p = np.clip(theta, PROB_FLOOR, _ONE_BELOW)
        return np.log(p) - np.log1p(-p)

    def from_unconstrained(self, u):
        return 1.0 / (1.0 + np.exp(-u)) if np.all(np.isfinite(u)) else None

    def split(self, theta_k):
        """The feature of the largest variance p (1 - p), moved half a standard
        deviation up and down."""
        v = theta_k * (1.0 - theta_k)
        d = int(np.argmax(v))
        delta = 0.5 * np.sqrt(v[d])
        a, b = theta_k.copy(), theta_k.copy()
        a[d] = min(theta_k[d] + delta, 1.0)
        b[d] = max(theta_k[d] - delta, 0.0)
        return a, b

    def effective(self, theta):
        p = np.clip(theta, PROB_FLOOR, _ONE_BELOW)
        return np.log(p) - np.log1p(-p), np.sum(np.log1p(-p), axis=1)

    def expected_effective(self, q):
        a, b = q
        return digamma(a) - digamma(b), np.sum(digamma(b) - digamma(a + b), axis=1)

    def point_estimate(self, stats, nk, previous):
        theta = previous.copy()
        on = nk > 0
        theta[on] = (stats[on] + self.alpha) / (nk[on, None] + 2 * self.alpha)
        return np.clip(theta, 0.0, 1.0)

    def default_prior(self, X, sample_weight=None):
        return 1.0 + self.alpha

    def posterior(self, stats, nk, prior):
        a0 = prior
        return (a0 + stats, a0 + np.maximum(nk[:, None] - stats, 0.0))

    def sample_posterior(self, q, rng):
        return rng.beta(*q)

    def posterior_statistics(self, q, prior):
        """(stats, nk) that posterior(stats, nk, prior) maps to q: its inverse."""
        a, b = q
        return a - prior, (a + b - 2 * prior)[:, 0]

    def posterior_mean(self, q):
        a, b = q
        return a / (a + b)

    def kl(self, q, prior):
        return beta_kl(q[0], q[1], prior, prior)

    def n_parameters(self, n_components):
        return n_components * self.n_features

    def sample_rows(self, theta_k, n, rng):
        return (rng.random((n, self.n_features)) < theta_k).astype(np.uint8)


class Poisson(Family):
    """Counts (non-negative reals allowed, as MultinomialNB allows tf-idf):
    T(x) = x, log h(x) = -sum log x!, one rate per feature and component."""

    name = "poisson"
    n_posterior_arrays = 2          # q = (shape, rate) of the Gamma posteriors

    def __init__(self, n_features, shape_prior=None, rate_prior=None):
        self.n_features = int(n_features)
        self.shape_prior = shape_prior
        self.rate_prior = rate_prior
        self.features = "counts_float64"

    def n_statistics(self):
        return self.n_features


    def check_theta(self, theta, name, structure=True):
        if np.any(theta <= 0):
            raise ValueError(f"{name} must hold positive rates")

    def describe(self, theta):
        return {"rates": theta}

    def to_unconstrained(self, theta):
        return np.log(np.maximum(theta, RATE_FLOOR))

    def from_unconstrained(self, u):
        if not np.all(np.isfinite(u)) or np.max(u) > 700:
            return None
        return np.maximum(np.exp(u), RATE_FLOOR)

    def split(self, theta_k):
        """The feature of the largest variance (its rate) moved half a standard
        deviation up and down."""
        d = int(np.argmax(theta_k))
        delta = 0.5 * np.sqrt(theta_k[d])
        a, b = theta_k.copy(), theta_k.copy()
        a[d] = theta_k[d] + delta
        b[d] = max(theta_k[d] - delta, RATE_FLOOR)
        return a, b

    def prepare(self, X, fitting=False):
        X = _numeric(X)
        if X.shape[1] != self.n_features:
            raise ValueError(f"X has {X.shape[1]} features, expected {self.n_features}")
        if np.any(X < 0):
            i, j = np.argwhere(X < 0)[0]
            raise ValueError(f"Negative values in data passed to X: counts must be >= 0, "
                             f"found {X[i, j]!r} at row {i}, column {j}")
        limit = MAX_COUNT / X.shape[1]
        if np.max(X) > limit:
            raise ValueError(f"X holds a count of {float(np.max(X)):.3g}; counts up to "
                             f"{limit:.3g} are supported ({MAX_COUNT:g} / n_features: log x! "
                             "and the sums over features must stay finite)")
        if X.dtype == np.float32:
            self.features = "counts_float32"
            return np.ascontiguousarray(X)
        self.features = "counts_float64"
        return np.ascontiguousarray(X, dtype=np.float64)

    def effective(self, theta):
        return np.log(np.maximum(theta, RATE_FLOOR)), -np.sum(theta, axis=1)

    def expected_effective(self, q):
        s, t = q
        return digamma(s) - np.log(t), -np.sum(s / t, axis=1)

    def point_estimate(self, stats, nk, previous):
        theta = previous.copy()
        on = nk > 0
        theta[on] = np.maximum(stats[on] / nk[on, None], RATE_FLOOR)
        return theta

    def default_prior(self, X, sample_weight=None):
        """(shape0, rate0), each (D,): the given values, or one pseudo-row at the
        feature's (weighted) mean."""
        D = self.n_features
        shape0 = np.full(D, 1.0) if self.shape_prior is None else \
            np.broadcast_to(np.asarray(self.shape_prior, dtype=np.float64), (D,)).copy()
        if self.rate_prior is None:
            mean = np.zeros(D)
            for s in range(0, X.shape[0], 1 << 16):
                block = np.asarray(X[s:s + (1 << 16)], dtype=np.float64)
                mean += (block.sum(0) if sample_weight is None
                         else sample_weight[s:s + (1 << 16)] @ block)
            total = X.shape[0] if sample_weight is None else float(np.sum(sample_weight))
            rate0 = shape0 / np.maximum(mean / max(total, np.finfo(np.float64).tiny), RATE_FLOOR)
        else:
            rate0 = np.broadcast_to(np.asarray(self.rate_prior, dtype=np.float64), (D,)).copy()
        for name, v in (("shape_prior", shape0), ("rate_prior", rate0)):
            if not np.all(np.isfinite(v)) or np.any(v <= 0):
                raise ValueError(f"{name} must be positive and finite, got {v}")
        return shape0, rate0

    def posterior(self, stats, nk, prior):
        shape0, rate0 = prior
        return shape0 + stats, rate0 + nk[:, None] + 0.0 * stats

    def sample_posterior(self, q, rng):
        s, t = q
        return np.maximum(rng.gamma(s, 1.0 / t), RATE_FLOOR)

    def posterior_statistics(self, q, prior):
        """(stats, nk) that posterior(stats, nk, prior) maps to q: its inverse."""
        shape0, rate0 = prior
        return q[0] - shape0, (q[1] - rate0)[:, 0]

    def posterior_mean(self, q):
        return q[0] / q[1]

    def kl(self, q, prior):
        return gamma_kl(q[0], q[1], prior[0], prior[1])

    def n_parameters(self, n_components):
        return n_components * self.n_features

    def sample_rows(self, theta_k, n, rng):
        return rng.poisson(theta_k, (n, self.n_features)).astype(np.float64)


class Categorical(Family):
    """One categorical code per feature (latent class analysis): T(x) is the
    one-hot code of every feature side by side, S = sum of the categories."""

    name = "categorical"
    features = "categorical_int32"
    n_posterior_arrays = 1          # q = the Dirichlet concentrations, side by side

    def __init__(self, n_categories, alpha=1.0):
        self.n_categories = [int(v) for v in n_categories]
        self.alpha = _check_alpha(alpha)
        self.offsets = np.concatenate(([0], np.cumsum(self.n_categories))).astype(np.int64)

    @staticmethod
    def infer_categories(X, n_categories):
        """The categories per feature: n_categories (an int, a list, or None: the
        largest code + 1 of each feature)."""
        codes = check_codes(X)
        F = codes.shape[1]
        if n_categories is None:
            return [int(v) + 1 for v in codes.max(0)]
        if isinstance(n_categories, numbers.Integral) and not isinstance(n_categories, bool):
            n_categories = [int(n_categories)] * F
        try:
            cats = [int(v) for v in n_categories]
        except (TypeError, ValueError):
            raise ValueError(f"n_categories must be None, an int or one int per feature, got "
                             f"{n_categories!r}") from None
        if len(cats) != F or min(cats) < 1:
            raise ValueError(f"n_categories must give {F} counts >= 1 (one per feature), got "
                             f"{n_categories!r}")
        return cats

    @property
    def n_features(self):
        return len(self.n_categories)

    def aux(self):
        return self.offsets

    def n_statistics(self):
        return int(self.offsets[-1])

    def prepare(self, X, fitting=False):
        codes = check_codes(X)
        if codes.shape[1] != self.n_features:
            raise ValueError(f"X has {codes.shape[1]} features, expected {self.n_features}")
        over = codes >= np.asarray(self.n_categories)[None, :]
        if np.any(over):
            i, j = np.argwhere(over)[0]
            raise ValueError(f"X[{i}, {j}] = {codes[i, j]} is not a category of feature {j} "
                             f"(n_categories[{j}] = {self.n_categories[j]})")
        return codes

    def dense_features(self, data):
        """The one-hot codes of every feature side by side (N x S)."""
        out = np.zeros((data.shape[0], self.n_statistics()))
        rows = np.arange(data.shape[0])
        for j in range(data.shape[1]):
            out[rows, self.offsets[j] + data[:, j]] = 1.0
        return out


    def check_theta(self, theta, name, structure=True):
        for j, b in enumerate(self.blocks(theta)):
            if np.any(b < 0) or not np.allclose(b.sum(1), 1.0, atol=1e-6):
                raise ValueError(f"{name} must hold probability rows summing to 1 "
                                 f"(feature {j} does not)")

    def describe(self, theta):
        return {"probabilities": self.blocks(theta)}

    def log_prior(self, theta):
        if self.alpha == 0:
            return 0.0
        return self.alpha * float(np.sum(np.log(np.maximum(theta, PROB_FLOOR))))

    def to_unconstrained(self, theta):
        return np.log(np.maximum(theta, PROB_FLOOR))

    def from_unconstrained(self, u):
        """Each feature's block through a softmax."""
        if not np.all(np.isfinite(u)):
            return None
        theta = np.empty_like(u)
        for j in range(len(self.n_categories)):
            o0, o1 = self.offsets[j], self.offsets[j + 1]
            e = np.exp(u[:, o0:o1] - u[:, o0:o1].max(1, keepdims=True))
            theta[:, o0:o1] = e / e.sum(1, keepdims=True)
        return theta

    def split(self, theta_k):
        """The code of the largest variance p (1 - p) (over every feature): one half
        moves half way to it, the other halves its probability (each feature's
        vector still sums to 1)."""
        v = theta_k * (1.0 - theta_k)
        c = int(np.argmax(v))
        j = int(np.searchsorted(self.offsets, c, side="right")) - 1
        o0, o1 = self.offsets[j], self.offsets[j + 1]
        a, b = theta_k.copy(), theta_k.copy()
        p = theta_k[o0:o1]
        a[o0:o1] = 0.5 * p
        a[c] += 0.5
        rest = 1.0 - p[c - o0]
        if rest > 0:                # else every code but c has probability 0: b = theta_k
            b[o0:o1] = p * (1.0 + 0.5 * p[c - o0] / rest)
            b[c] = 0.5 * p[c - o0]
        return a, b

    def blocks(self, a):
        """The per-feature blocks of a K x S array."""
        return [a[:, self.offsets[j]:self.offsets[j + 1]] for j in range(len(self.n_categories))]

    def effective(self, theta):
        return np.log(np.maximum(theta, PROB_FLOOR)), np.zeros(theta.shape[0])

    def expected_effective(self, A, n_threads=1):
        """E log p under Dirichlet(A) per feature block; n_threads computes the
        digammas of A in threads (fastvem._threads: bitwise the same)."""
        W = np.empty_like(A)
        dg = map_rows(digamma, A, n_threads)
        for j in range(len(self.n_categories)):
            o0, o1 = self.offsets[j], self.offsets[j + 1]
            W[:, o0:o1] = dg[:, o0:o1] - digamma(A[:, o0:o1].sum(1, keepdims=True))
        return W, np.zeros(A.shape[0])

    def point_estimate(self, stats, nk, previous):
        theta = previous.copy()
        on = nk > 0
        for j, L in enumerate(self.n_categories):
            o0, o1 = self.offsets[j], self.offsets[j + 1]
            c = stats[on, o0:o1]
            theta[on, o0:o1] = (c + self.alpha) / (c.sum(1, keepdims=True) + L * self.alpha)
        return theta

    def default_prior(self, X, sample_weight=None):
        return 1.0 + self.alpha

    def posterior(self, stats, nk, prior):
        return prior + stats

    def posterior_statistics(self, A, prior):
        """(stats, nk) that posterior(stats, nk, prior) maps to A: its inverse (nk from
        the first feature's counts; every feature's sum to it)."""
        stats = A - prior
        return stats, stats[:, self.offsets[0]:self.offsets[1]].sum(1)

    def sample_posterior(self, A, rng):
        theta = np.empty_like(A)
        for j in range(len(self.n_categories)):
            o0, o1 = self.offsets[j], self.offsets[j + 1]
            g = rng.standard_gamma(A[:, o0:o1])
            theta[:, o0:o1] = g / g.sum(1, keepdims=True)
        return theta

    def posterior_mean(self, A):
        theta = np.empty_like(A)
        for j in range(len(self.n_categories)):
            o0, o1 = self.offsets[j], self.offsets[j + 1]
            theta[:, o0:o1] = A[:, o0:o1] / A[:, o0:o1].sum(1, keepdims=True)
        return theta

    def kl(self, A, prior):
        return sum(dirichlet_kl(block, prior) for block in self.blocks(A))

    def n_parameters(self, n_components):
        return n_components * int(sum(L - 1 for L in self.n_categories))

    def sample_rows(self, theta_k, n, rng):
        out = np.empty((n, self.n_features), dtype=np.int64)
        for j in range(len(self.n_categories)):
            p = theta_k[self.offsets[j]:self.offsets[j + 1]]
            out[:, j] = rng.choice(len(p), size=n, p=p / p.sum())
        return out


class Multinomial(Categorical):
    """Document-term counts (a mixture of unigrams): T(x) = x, one probability
    vector over the V words per component -- a categorical family of one feature
    with V categories, whose rows are counts instead of one code.  The multinomial
    coefficient of a document does not depend on the parameters and is left out of
    log p(x | theta) (and so of score_samples).  The rows reach the kernel as they
    are stored, sparse: a scipy.sparse matrix is never densified."""

    name = "multinomial"
    features = "csr_float64"

    def __init__(self, n_features, alpha=1.0):
        super().__init__([int(n_features)], alpha)
        self._nz = None
        self.mean_length = 1.0

    @property
    def n_features(self):
        return self.n_categories[0]

    def aux(self):
        return self._nz

    def prepare(self, X, fitting=False):
        """(N x 2) row spans; the non-zeros (columns, counts) are kept for aux()."""
        import scipy.sparse as sp
        if sp.issparse(X):
            from sklearn.utils import check_array
            X = check_array(X, accept_sparse="csr", dtype=np.float64, input_name="X")
            X = X.tocsr(copy=True)
            X.sum_duplicates()
        else:
            X = sp.csr_matrix(np.asarray(_numeric(X), dtype=np.float64))
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"X is empty: shape {X.shape}")
        if X.shape[1] != self.n_features:
            raise ValueError(f"X has {X.shape[1]} features, expected {self.n_features}")
        if X.nnz and not np.all(np.isfinite(X.data)):
            raise ValueError("X contains NaN or infinity")
        if X.nnz and X.data.min() < 0:
            raise ValueError("Negative values in data passed to X: counts must be >= 0")
        ptr = X.indptr.astype(np.int64)
        self._nz = np.ascontiguousarray(np.column_stack((X.indices.astype(np.float64),
                                                         X.data)))
        self._csr = X
        if fitting:
            self.mean_length = float(X.data.sum() / X.shape[0])
        return np.ascontiguousarray(np.column_stack((ptr[:-1], ptr[1:])))

    def describe(self, theta):
        return {"probabilities": theta}

    def dense_features(self, data):
        """The prepared rows as l1-normalised sparse vectors (for the k-means start)."""
        from sklearn.preprocessing import normalize
        return normalize(self._csr, norm="l1")

    def sample_rows(self, theta_k, n, rng):
        """n documents of the fit's mean length (rounded), counts per word."""
        length = max(int(round(self.mean_length)), 1)
        return rng.multinomial(length, theta_k / theta_k.sum(), size=n).astype(np.float64)


def first_non_count(X):
    """(i, j, 'fraction' | 'negative') of the first entry of the numeric 2-D X that
    is not an integer >= 0 (integral floats are integers), or None."""
    if X.dtype.kind == "f" and np.any(X != np.floor(X)):
        i, j = np.argwhere(X != np.floor(X))[0]
        return i, j, "fraction"
    if X.dtype.kind != "b" and np.any(X < 0):
        i, j = np.argwhere(X < 0)[0]
        return i, j, "negative"
    return None


def check_codes(X, name="X"):
    """Non-negative integer codes as a C-contiguous int32 array (integral floats
    are accepted); ValueError naming X otherwise."""
    X = _numeric(X, name)
    bad = first_non_count(X)
    if bad is not None:
        i, j, what = bad
        need = "integer category codes" if what == "fraction" else "category codes >= 0"
        raise ValueError(f"{name} must hold {need}, found {X[i, j]!r} at row {i}, column {j}")
    if X.dtype.kind == "b":
        X = X.astype(np.int32)
    if np.max(X) >= 2 ** 31 - 1:
        raise ValueError(f"{name} holds a category code of {np.max(X)}; codes must be < 2**31 - 1")
    return np.ascontiguousarray(X, dtype=np.int32)
