"""Discrete mixtures by every method: BernoulliMixture, CategoricalMixture
(latent class analysis) and PoissonMixture, one estimator over the family
protocol (`families/base.py`) and the compiled row driver (`_ext/_expfam.pyx`).

The estimator reads no parameter by name: a family's parameters are one K x S
array of mean parameters (theta), its statistics one K x S array, and each
model only maps theta to its fitted attribute (`probabilities_`, `rates_`).

Objectives recorded in ``lower_bound_`` and ``trace_`` (per unit of sample weight):
em / vem the log-likelihood at the parameters the iteration started from (as
scikit-learn's GaussianMixture reports it; no prior term); crisp the complete-data
log joint at the argmax labels; meanfield the full evidence lower bound (every
normalising constant included) with the E-step's responsibilities and the
updated q(theta); gibbs the complete-data log joint at the drawn labels.

gibbs runs n_chains chains (default 2) of burn_in + n_samples * thin sweeps, each
from its own k-means start (the best of 5 seedings); the kept draws of all chains
are relabelled together (Stephens) into posterior_samples_ ('weights', 'theta'),
weights_ and the fitted theta are their means, and the chains' diagnostics are
GaussianMixture's (MixtureEstimator._mixing): log_joint_ per chain and sweep,
mixing_ (split-R-hat and bulk ESS of the log joint, the allocation entropy, the
sorted and relabelled weights and the first 16 entries of each component's theta),
rhat_, ess_, and converged_ only when they all mixed.  lower_bound_ is the mean
log joint after burn-in.

Large data (fit and fit_predict): besides an in-memory array (or scipy.sparse
matrix, for the multinomial), X may be a re-iterable of 2-D chunks (a list of
arrays, memmaps or scipy.sparse matrices, or an object whose __iter__ reads them
again) or a Dask array chunked by rows (see fastvem.sources).  One first pass
validates every chunk (each prepared by its own family, as a fit of that chunk
alone would be) and sums what the family's fit-time set-up reads from the data
(_Summary: the column maxima -- a categorical feature's codes --, column sums and
pooled sums of squares); the family is then set up as if it had seen all the rows.
Every iteration prepares each chunk again with a copy of that family and runs the
row driver on it (a Dask block in its own task, where it lives); the chunks'
(stats, nk, totals) are summed in chunk order by a fixed pairwise tree, so the fit
does not depend on the scheduler, the worker or the thread count, and equals the
in-memory fit to round-off.  Initial parameters (k-means or random labels) come
from the first rows (up to 1,000,000, fewer for wide rows; all the rows of a
smaller source, which then starts exactly as the in-memory fit does); gibbs takes
its reference rows for relabelling from them too, and keys the draws of a chunk
by its first row (one chunk draws as the in-memory fit does).  sample_weight,
predict, score and partial_fit take in-memory data only.

Schedules shared with GaussianMixture (fastvem.engine): accelerate='squarem' wraps
the em / vem step in engine.squarem (log weights and the family's unconstrained
coordinates; the safeguard compares log-likelihood + the family's log prior, the
objective MAP-EM climbs; n_e_steps_ counts the E-steps), and n_batches runs
memoized mean-field passes (each batch's statistics kept and replaced, q updated
after every batch).
"""
import contextlib
import copy
import numbers

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ..engine import (FamilyEngine, RowStats, Stepwise, blas_single_thread, default_n_threads,
                      stream_key)
from ..io import register
from ..families.discrete import Bernoulli, Categorical, Multinomial, Poisson
from ..families.normal import GaussianDiag, GaussianFull, GaussianSpherical, GaussianTied
from ..methods import get_method
from ..sources import DaskRowBlocks, is_chunk_iterable, is_dask_array, row_source, tree_sum_iter
from ..structures.mixture import Mixture as MixtureStructure
from .._validation import check_random_state_param, check_sample_weight, is_choice
from .base import MixtureEstimator

__all__ = ["BernoulliMixture", "CategoricalMixture", "Mixture", "MultinomialMixture",
           "PoissonMixture"]

_MASK64 = (1 << 64) - 1
_nothing = contextlib.nullcontext


def _store(est, args):
    """scikit-learn's rule, once: every constructor argument becomes the attribute of
    the same name, untouched (validation happens in fit)."""
    for name, value in args.items():
        if name not in ("self", "__class__"):
            setattr(est, name, value)


def _kernel():
    from .._ext import _expfam
    return _expfam


def _n_columns(X):
    """The columns of 2-D X (an array, a scipy.sparse matrix or a list of rows), 0
    otherwise: the family is built from it, and prepare then validates X."""
    shape = X.shape if hasattr(X, "shape") else np.shape(np.asarray(X, dtype=object))
    return int(shape[1]) if len(shape) == 2 else 0


def _check_int(value, name, low):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) \
            or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_float(value, name, low=0.0, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) \
            or not np.isfinite(value) or value < low:
        raise ValueError(f"{name} must be a finite number >= {low}, got {value!r}")
    return float(value)


def _row_pass(fam, data, sw, W, c, logw, mode, seed, given, labels, n_threads, limit_blas=True):
    """One pass of the row driver over prepared data: stats (K x S), nk (K), totals
    [sum w objective, sum w entropy, sum w log h].  limit_blas=False where the
    caller already holds BLAS to one thread (a chunked source's passes)."""
    fast = getattr(fam, "fast_pass", None)
    if fast is not None and given is None and labels is None and mode in (0, 1, 2):
        out = fast(data, sw, W, c, logw, mode, seed, n_threads)     # a family's own kernel
        if out is not None:
            return out
    K, S = W.shape
    stats = np.zeros((K, S))
    nk = np.zeros(K)
    totals = np.zeros(3)
    k = _kernel()
    empty = np.empty(0, dtype=np.int64)
    # only a dense features function reaches BLAS (and limiting it costs ~1 ms)
    with blas_single_thread() if limit_blas and fam.features == "address" else _nothing():
        k.row_pass(fam.kernel_data(data), fam.aux(), k.FEATURES[fam.features], fam.address, S,
                   np.ascontiguousarray(W), np.ascontiguousarray(c),
                   np.ascontiguousarray(logw), sw, empty if given is None else given,
                   empty if labels is None else labels, stats, nk, totals, mode,
                   seed & _MASK64, n_threads)
    return stats, nk, totals


def _log_joint_rows(fam, data, W, c, logw, n_threads, limit_blas=True):
    """(N x K) log w_k + log p(x_n | theta_k) of prepared rows."""
    k = _kernel()
    out = np.empty((data.shape[0], W.shape[0]))
    with blas_single_thread() if limit_blas and fam.features == "address" else _nothing():
        k.log_joint_rows(fam.kernel_data(data), fam.aux(), k.FEATURES[fam.features],
                         fam.address,
                         W.shape[1], np.ascontiguousarray(W), np.ascontiguousarray(c),
                         np.ascontiguousarray(logw), out, n_threads)
    return out


# ------------------------------------------------------------------ chunked sources
_GIBBS_KMEANS_INIT = 5     # k-means seedings per gibbs chain start (best inertia)
_INIT_ROWS = 1_000_000     # rows of a chunked source that initialisation reads, at most
_INIT_BYTES = 1 << 29      # ... and about this many bytes of them as float64 entries


def _source_families():
    from ..families.numba_family import ExponentialFamily
    return (Bernoulli, Categorical, Poisson, GaussianDiag, GaussianFull, ExponentialFamily)


def _leaves(fam):
    """(family, columns) of each family that reads columns of X: a product's
    members, or the family itself over every column."""
    from ..families.product import Product
    if isinstance(fam, Product):
        return list(fam.parts)
    return [(fam, slice(None))]


def _own_copy(fam):
    """A copy of a family for one chunk's prepare.  prepare records per-chunk state
    on its family (the kernel's dtype, a multinomial's non-zeros as aux(), a
    product's resolved members), so chunks prepared side by side (Dask's threads)
    each need their own; shallow: no data are copied."""
    from ..families.base import Family
    from ..families.product import Product
    fam = copy.copy(fam)
    if isinstance(fam, Product):
        fam.members = [(copy.copy(f) if isinstance(f, Family) else f, cols)
                       for f, cols in fam.members]
        if fam.parts is not None:
            fam.parts = [(copy.copy(f), cols) for f, cols in fam.parts]
    return fam


def _prepare_chunk(fam, block, index, prefix, fitting=False):
    """fam.prepare of one chunk; its errors name the chunk."""
    try:
        return fam.prepare(block, fitting=fitting)
    except (ValueError, TypeError) as exc:
        kind = TypeError if isinstance(exc, TypeError) else ValueError
        raise kind(f"{prefix} {index}: {exc}") from exc


def _chunk_seed(seed, start):
    """The draws' key of the chunk whose first row is `start` (the driver keys a
    draw by the row's index inside its chunk): the sweep's own key for the first
    chunk, so that one chunk draws as the in-memory fit does, and
    engine.stream_key(key, start) for the others."""
    seed &= _MASK64
    return seed if start == 0 else stream_key(seed, start)


class _Sums:
    """Arrays that add elementwise (one chunk's (stats, nk, totals))."""

    def __init__(self, *parts):
        self.parts = parts

    def __add__(self, other):
        return _Sums(*(a + b for a, b in zip(self.parts, other.parts)))


class _Summary:
    """What a family's fit-time set-up reads from the rows, for a chunked source:
    rows n, column maxima (a categorical feature's largest code), column sums and
    centred sums of squares m2 (pooled exactly; None once a chunk is sparse), the
    stored entries (rows x columns, or the non-zeros) and the first row."""

    def __init__(self, n, colmax, colsum, m2, entries, first, scatter=None):
        self.n, self.colmax, self.colsum, self.m2 = n, colmax, colsum, m2
        self.entries, self.first, self.scatter = entries, first, scatter

    @classmethod
    def of(cls, block, scatter=False):
        """A chunk's summary; with scatter, also its centred cross-products (D x D:
        a full-covariance Gaussian's default prior reads the data's covariance)."""
        import scipy.sparse as sp
        n = block.shape[0]
        if sp.issparse(block):
            b = sp.csr_matrix(block, dtype=np.float64)
            return cls(n, b.max(axis=0).toarray().ravel(), np.asarray(b.sum(axis=0)).ravel(),
                       None, b.nnz, b[:1])
        x = np.asarray(block, dtype=np.float64)
        colsum = x.sum(0)
        d = x - colsum / n
        return cls(n, x.max(0), colsum, np.einsum("ij,ij->j", d, d), x.size, x[:1].copy(),
                   d.T @ d if scatter else None)

    def __add__(self, other):
        n = self.n + other.n
        m2 = scatter = None
        if self.m2 is not None and other.m2 is not None:
            delta = other.colsum / other.n - self.colsum / self.n
            m2 = self.m2 + other.m2 + delta * delta * (self.n * (other.n / n))
            if self.scatter is not None and other.scatter is not None:
                scatter = (self.scatter + other.scatter
                           + np.outer(delta, delta) * (self.n * (other.n / n)))
        return _Summary(n, np.maximum(self.colmax, other.colmax), self.colsum + other.colsum,
                        m2, self.entries + other.entries, self.first, scatter)

    def setup_rows(self):
        """Two rows a family is set up on (prepare with fitting=True) as if on all the
        rows: the first row (a numba family checks its functions on it) and the
        column maxima (the categories a categorical feature infers).  Each entry is
        a value of its column, so they pass every family's validation."""
        import scipy.sparse as sp
        if sp.issparse(self.first):
            return sp.vstack([self.first, sp.csr_matrix(self.colmax[None])], format="csr")
        return np.vstack([self.first, self.colmax[None]])

    def set_up(self, fam):
        """What the set-up rows cannot carry, from all the rows: a GaussianDiag's
        reference point (the data's mean) and a multinomial's mean length."""
        for leaf, cols in _leaves(fam):
            if not isinstance(leaf, _source_families()):
                raise TypeError(f"a {type(leaf).__name__} family fits in-memory data only: its "
                                "set-up from the data is not known for chunked sources")
            if isinstance(leaf, GaussianFull) and self.scatter is None:
                raise TypeError("a full-covariance Gaussian on a chunked source needs dense "
                                "chunks (its prior reads the data's covariance)")
            if isinstance(leaf, (GaussianDiag, GaussianFull)) and leaf.reference is None:
                leaf.ref = np.ascontiguousarray(self.colsum[cols] / self.n)
            elif isinstance(leaf, Multinomial):
                leaf.mean_length = float(self.colsum[cols].sum() / self.n)

    def prior_data(self, fam):
        """What fam.default_prior reads in place of the prepared rows: default_prior
        reads the data only through column means (Poisson) and means and variances
        (GaussianDiag; the other families ignore them), so rows with exactly those
        moments -- one row at the mean, or mean +- sd -- give the prior of all the
        rows."""
        from ..families.product import Product, ProductData
        mean = self.colsum / self.n
        sd = np.zeros_like(mean) if self.m2 is None else np.sqrt(np.maximum(self.m2 / self.n, 0))

        def rows(leaf, cols):
            if isinstance(leaf, GaussianFull):
                # 2 D rows mean +- a l_i, l_i the scaled eigenvectors of the data's
                # covariance C (N - 1 in the denominator, as GaussianFull reads it):
                # their covariance is 2 a^2 C / (2 D - 1) = C with a^2 = (2 D - 1) / 2
                ix = np.arange(len(mean))[cols]
                C = self.scatter[np.ix_(ix, ix)] / max(self.n - 1, 1)
                vals, vecs = np.linalg.eigh(C)
                ls = (vecs * np.sqrt(np.maximum(vals, 0.0))).T
                a = np.sqrt((2 * len(ls) - 1) / 2.0)
                return np.vstack((mean[cols] + a * ls, mean[cols] - a * ls))
            if isinstance(leaf, GaussianDiag):
                return np.vstack((mean[cols] + sd[cols], mean[cols] - sd[cols]))
            return mean[cols][None]
        if isinstance(fam, Product):
            return ProductData([(leaf.features, rows(leaf, cols), None, None)
                                for leaf, cols in fam.parts])
        return rows(fam, slice(None))


def _chunk_summary(block, index, start, est, prefix):
    """One chunk of the first pass: validated by the family a fit of this chunk
    alone would use (its own categories, ...), then summarised."""
    try:
        fam = _own_copy(est._family(block))
    except (ValueError, TypeError) as exc:
        kind = TypeError if isinstance(exc, TypeError) else ValueError
        raise kind(f"{prefix} {index}: {exc}") from exc
    _prepare_chunk(fam, block, index, prefix, fitting=True)
    return _Summary.of(block, scatter=any(isinstance(leaf, GaussianFull)
                                          for leaf, _ in _leaves(fam)))


def _chunk_pass(block, index, start, fam, W, c, logw, mode, seed, n_threads, prefix):
    """One chunk of an E-step pass (runs where the chunk lives)."""
    fam = _own_copy(fam)
    data = _prepare_chunk(fam, block, index, prefix)
    return _Sums(*_row_pass(fam, data, None, W, c, logw, mode, _chunk_seed(seed, start), None,
                            None, n_threads, limit_blas=False))


def _chunk_labels(block, index, start, fam, W, c, logw, n_threads, prefix):
    """The labels of one chunk's rows (fit_predict)."""
    fam = _own_copy(fam)
    data = _prepare_chunk(fam, block, index, prefix)
    return np.argmax(_log_joint_rows(fam, data, W, c, logw, n_threads, limit_blas=False), axis=1)


def _sum_parts(parts):
    """tree_sum_iter of parts, or None when there are none."""
    parts = iter(parts)
    first = next(parts, None)
    if first is None:
        return None
    return tree_sum_iter(_chain(first, parts))


def _chain(first, rest):
    yield first
    yield from rest


class _Streamed:
    """A chunked source as the estimator's prepared data (what _pass runs over):
    every pass prepares each chunk with a copy of the set-up family and runs the row
    driver on it, where the chunk lives; the chunks' (stats, nk, totals) are summed
    in chunk order by tree_sum_iter."""

    def __init__(self, source, fam, summary, prior, n_threads):
        self.source = source
        self.family = fam                       # prepares the first rows (init, gibbs)
        self.chunk_family = _own_copy(fam)      # travels to the chunks: it holds no rows
        self.shape = (summary.n, source.width)
        self.prior = prior
        self.n_threads = n_threads
        self.prefix = f"{source.name}: {source.what}"
        self._bytes_per_row = 8.0 * max(summary.entries / summary.n, 1.0)
        self._head = None

    def head(self, n_components):
        """The first rows, prepared (read once per fit): up to _INIT_ROWS, fewer when
        they would take over about _INIT_BYTES as float64, never fewer than
        n_components."""
        if self._head is None:
            n = min(_INIT_ROWS, max(1000, int(_INIT_BYTES // self._bytes_per_row)))
            n = min(self.shape[0], max(n_components, n))
            self._head = self.family.prepare(self.source.head(n))
        return self._head

    def _blas(self):
        return blas_single_thread() if self.chunk_family.features == "address" else _nothing()

    def pass_(self, W, c, logw, mode, seed):
        args = (np.ascontiguousarray(W), np.ascontiguousarray(c), np.ascontiguousarray(logw))
        with self._blas():
            sums = tree_sum_iter(self.source.map(_chunk_pass, self.chunk_family, *args, mode,
                                                 seed & _MASK64, self.n_threads, self.prefix))
        return sums.parts

    def labels(self, W, c, logw):
        args = (np.ascontiguousarray(W), np.ascontiguousarray(c), np.ascontiguousarray(logw))
        with self._blas():
            return np.concatenate(list(self.source.map(_chunk_labels, self.chunk_family, *args,
                                                       self.n_threads, self.prefix)))


def _refuse_source(X, what):
    if is_dask_array(X) or is_chunk_iterable(X):
        what = "predict, predict_proba and score" if what == "predict" else what
        raise TypeError(f"{what} take in-memory rows (an array, or a scipy.sparse matrix for "
                        "the multinomial); a chunked source (an iterable of chunks, a dask "
                        f"array) is read by fit and fit_predict only: call {what} chunk by "
                        "chunk")



class _StreamPass:
    """partial_fit's pass: the estimator's row pass on its stream engine's current
    family (the chunk's); a class rather than a closure, so that a model with a
    stream pickles and continues."""

    def __init__(self, est):
        self.est = est
        self.engine = None

    def __call__(self, data, sw, W, c, logw, mode, seed):
        return self.est._pass(self.engine.family, data, sw, W, c, logw, mode, seed)


class _DiscreteMixture(MixtureEstimator):
    """The shared estimator; subclasses name the family and the fitted attribute."""

    # parameters a fitted model predicts and continues (partial_fit) with: changed by
    # set_params, they ask for a refit instead of mixing two configurations
    _CONFIG = ("n_components", "method", "weight_concentration_prior_type")

    _theta_attr = "probabilities_"
    _theta_init = "probabilities_init"
    _positive_only = True
    # what save writes and load accepts (besides trace_); each model adds its own
    _fitted_attributes = ("weights_", "lower_bound_", "lower_bounds_", "n_iter_", "converged_",
                          "n_features_in_", "weight_concentration_", "posterior_",
                          "posterior_samples_", "n_relabelled_", "probabilities_", "rates_",
                          "n_categories_", "mean_length_", "n_rows_seen_", "shape_prior_",
                          "rate_prior_", "n_e_steps_", "log_joint_", "mixing_", "rhat_",
                          "ess_")

    # ------------------------------------------------------------ parameters
    def _check_params(self, n_samples):
        m = get_method(self.method)
        K = _check_int(self.n_components, "n_components", 1)
        accelerate = getattr(self, "accelerate", None)
        if not is_choice(accelerate, (None, "squarem")):
            raise ValueError(f"accelerate must be None or 'squarem', got {accelerate!r}")
        if accelerate is not None and not (m.update == "point" and m.assign == "softmax"):
            raise ValueError(f"accelerate='squarem' extrapolates em / vem iterates; it is not "
                             f"available for method={m.name!r}")
        self._accelerate = accelerate == "squarem"
        if getattr(self, "n_batches", None) is not None:
            _check_int(self.n_batches, "n_batches", 1)
            if m.update != "posterior":
                raise ValueError(f"n_batches (memoized passes) is for method='meanfield', got "
                                 f"method={m.name!r}")
        if K > n_samples:
            raise ValueError(f"n_components={K} must be <= n_samples={n_samples}")
        _check_int(self.max_iter, "max_iter", 0)
        _check_int(self.n_init, "n_init", 1)
        _check_float(self.tol, "tol")
        if not is_choice(self.init_params, ("kmeans", "random")):
            raise ValueError(f"init_params must be 'kmeans' or 'random', got {self.init_params!r}")
        if m.assign == "sample":
            self._check_sampler()
        return m, K

    def _weights_prior(self, K):
        g0 = self.weight_concentration_prior
        g0 = 1.0 / K if g0 is None else _check_float(g0, "weight_concentration_prior", 0.0)
        if g0 <= 0:
            raise ValueError(f"weight_concentration_prior must be > 0, got {g0}")
        return MixtureStructure.prior(self.weight_concentration_prior_type, g0)

    # -------------------------------------------------------------- kernels
    def _pass(self, fam, data, sw, W, c, logw, mode, seed=0, given=None, labels=None):
        """stats (K x S), nk (K), totals [sum w objective, sum w entropy, sum w log h]."""
        if isinstance(data, _Streamed):         # a chunked source: chunk by chunk
            return data.pass_(W, c, logw, mode, seed)
        return _row_pass(fam, data, sw, W, c, logw, mode, seed, given, labels, self._threads)

    def _log_joint(self, fam, data, W, c, logw):
        return _log_joint_rows(fam, data, W, c, logw, self._threads)

    # ------------------------------------------------------------------ fit
    # fit(X, y=None, sample_weight=None, callback=None) and fit_predict are the base
    # estimator's: X may also be a re-iterable of 2-D chunks or a Dask array chunked
    # by rows (see the module doc; no sample_weight then)
    def _labels(self, data, X):
        if isinstance(data, _Streamed):
            return data.labels(*self._effective())
        return self.predict(X)

    def _fit(self, X, sample_weight, callback=None):
        """Fit; returns the prepared data the passes ran over."""
        self._check_callback(callback)
        for name in list(vars(self)):
            if name.endswith("_") and not name.startswith("_"):
                delattr(self, name)
        self.__dict__.pop("_stream", None)
        self.__dict__.pop("_fitted_with", None)     # unfitted until this fit completes
        source = row_source(X)
        if source is None:
            fam = self._family(X, fitting=True)
            data = fam.prepare(X, fitting=True)
        else:
            if sample_weight is not None:
                raise ValueError("sample_weight is not supported with a chunked X (an "
                                 "iterable of chunks, a dask array)")
            fam, data = self._setup_source(source)
        N = data.shape[0]
        m, K = self._check_params(N)
        sw = check_sample_weight(sample_weight, N)
        total = float(N if sw is None else sw.sum())
        self._threads = default_n_threads(self.n_threads)
        rng = check_random_state_param(self.random_state)
        prior = fam.default_prior(data, sw) if source is None else data.prior
        wprior = self._weights_prior(K)
        engine = FamilyEngine(fam, MixtureStructure(K), m,
                              lambda d, w, W, c, logw, mode, seed:
                              self._pass(fam, d, w, W, c, logw, mode, seed),
                              prior, wprior)
        if m.update == "sample":
            self._gibbs(engine, data, sw, K, rng, callback)
        else:
            self._run(engine, data, sw, total, K, rng, callback)
        self.n_features_in_ = int(fam.n_features)
        self.n_rows_seen_ = total
        self._set_prior(prior)
        self._restore()
        return data

    def _setup_source(self, source):
        """(family, _Streamed) of a chunked source: one pass validates every chunk and
        sums what the family's fit-time set-up reads (_Summary); the family is then
        set up as if it had seen all the rows, and its default prior taken from the
        sums."""
        from ..families.numba_family import ExponentialFamily
        if isinstance(source, DaskRowBlocks) and isinstance(getattr(self, "family", None),
                                                            ExponentialFamily):
            raise TypeError("an ExponentialFamily runs on in-memory data or an iterable of "
                            "chunks, not on a dask array (its compiled row function lives in "
                            "this process)")
        for name in ("_family_", "_theta", "_q"):   # nothing of an earlier fit travels
            self.__dict__.pop(name, None)
        prefix = f"{source.name}: {source.what}"
        summary = _sum_parts(source.map(_chunk_summary, self, prefix))
        if summary is None:
            raise ValueError(f"{source.name} holds no rows (no chunks, or only empty ones)")
        setup = summary.setup_rows()
        fam = self._family(setup, fitting=True)
        fam.prepare(setup, fitting=True)
        summary.set_up(fam)
        prior = fam.default_prior(summary.prior_data(fam))
        # a Dask block's task runs one thread unless told (blocks run side by side)
        n_threads = (1 if isinstance(source, DaskRowBlocks) and self.n_threads is None
                     else default_n_threads(self.n_threads))
        return fam, _Streamed(source, fam, summary, prior, n_threads)

    # partial_fit is the base estimator's (fastvem.engine.Stepwise): the running
    # statistics stay at the scale of the rows seen, so that alpha smooths as in fit
    def _stream_chunk(self, X, sample_weight, first):
        _refuse_source(X, "partial_fit")
        if first:
            fam = self._family(X, fitting=True)
            data = fam.prepare(X, fitting=True)
            self._check_params(data.shape[0])
        else:
            fam, data = self._prepare(X, "partial_fit")
        N = data.shape[0]
        sw = check_sample_weight(sample_weight, N)
        self._threads = default_n_threads(self.n_threads)
        return fam, data, sw, float(N if sw is None else sw.sum())

    def _stream_engine(self, fam, prior, wprior):
        """The stream's FamilyEngine: its passes run on the chunk's family."""
        run_pass = _StreamPass(self)
        run_pass.engine = FamilyEngine(fam, MixtureStructure(self.n_components),
                                       get_method(self.method), run_pass, prior, wprior)
        return run_pass.engine

    def _stream_start(self, fam, data, sw):
        """The first call: initialised as fit is (mean field: q from the initial
        point's pseudo-counts)."""
        K = self.n_components
        rng = check_random_state_param(self.random_state)
        weights, theta = self._initialise(fam, data, sw, K, rng)
        prior, wprior = fam.default_prior(data, sw), self._weights_prior(K)
        self._set_prior(prior)
        engine = self._stream_engine(fam, prior, wprior)
        params = (weights, theta)
        if engine.posterior:
            nk0 = weights * float(data.shape[0] if sw is None else sw.sum())
            params = (fam.posterior(fam.initial_statistics(theta, nk0), nk0, prior),
                      wprior.posterior(nk0))
        self.n_iter_ = 0
        return Stepwise(engine, params)

    def _stream_from_fit(self, fam, data):
        """The running state of partial_fit for a model fitted by fit (or loaded): its
        parameters as the statistics of one earlier step, at the scale of the rows it
        was fitted to.  Mean field: the statistics q implies, with the fit's prior (a
        loaded Poisson model: the default prior of this chunk)."""
        weights = np.asarray(self.weights_, dtype=np.float64)
        if get_method(self.method).update == "posterior":
            prior = self._prior if self._prior is not None else fam.default_prior(data)
            # the counts from q(pi): a family's statistics need not hold them (a
            # multinomial's are words, not documents)
            S, _ = fam.posterior_statistics(self._q, prior)
            nk = np.maximum(self._wprior.counts(self.weight_concentration_), 0.0)
            params, seen = (self._q, self.weight_concentration_), float(max(nk.sum(), 1.0))
        else:
            prior = None
            seen = float(getattr(self, "n_rows_seen_", 1.0))
            nk = weights * seen
            S, params = fam.initial_statistics(self._theta, nk), (weights, self._theta)
        engine = self._stream_engine(fam, prior, self._wprior)
        return Stepwise(engine, params, RowStats(S, nk, np.zeros(3), seen), t=1, seen=seen)

    def _stream_store(self, stream, fam, params, data):
        if stream.engine.posterior:
            q, conc = params
            self.weights_ = stream.engine.weight_prior.mean_weights(conc)
            theta = fam.posterior_mean(q)
            self.posterior_ = fam.pack_posterior(q)
            self.weight_concentration_ = conc
        else:
            self.weights_, theta = params
        self._set_theta(fam, theta)
        self.n_features_in_ = int(fam.n_features)
        self.n_rows_seen_ = stream.seen
        self._restore()

    def _initialise(self, fam, data, sw, K, rng, n_kmeans=1):
        """(weights, theta): the given initial parameters, or the point estimate from
        k-means labels (on the features T(x)) or from random labels."""
        w0 = getattr(self, "weights_init", None)
        t0 = self._given_theta(fam, K)
        if w0 is not None:
            w0 = np.asarray(w0, dtype=np.float64)
            if w0.shape != (K,) or not np.all(np.isfinite(w0)) or np.any(w0 < 0) \
                    or not np.isclose(w0.sum(), 1.0, atol=1e-6):
                raise ValueError(f"weights_init must be {K} non-negative weights summing to 1, "
                                 f"got {w0!r}")
        if w0 is not None and t0 is not None:
            return w0 / w0.sum(), t0
        if isinstance(data, _Streamed):     # a chunked source: from its first rows
            data, sw = data.head(K), None
        N = data.shape[0]
        if self.init_params == "kmeans":
            from sklearn.cluster import KMeans
            feats = fam.dense_features(data)
            labels = KMeans(K, n_init=n_kmeans, random_state=rng).fit(feats).labels_
        else:
            labels = rng.randint(K, size=N)
        labels = labels.astype(np.int64)
        S = fam.n_statistics()
        stats, nk, _ = self._pass(fam, data, sw, np.zeros((K, S)), np.zeros(K), np.zeros(K),
                                  mode=3, given=labels)
        mean = stats.sum(0) / max(nk.sum(), 1e-300)
        theta = fam.point_estimate(stats, nk, np.tile(mean, (K, 1)))
        weights = nk / nk.sum()
        return (weights if w0 is None else w0 / w0.sum()), (theta if t0 is None else t0)

    # ---------------------------------------------------------- the methods
    def _run(self, engine, data, sw, total, K, rng, callback=None):
        """em / vem (soft), crisp (argmax) and meanfield: n_init restarts of the
        engine's iterations (MixtureEstimator._run_point: FamilyEngine's step,
        SQUAREM around it when accelerate='squarem', memoized passes when n_batches
        is set), as for GaussianMixture; stores the best run's parameters.  Mean
        field starts q from the initial point (pseudo-counts of the initial weights
        and parameters)."""
        fam, prior, wprior = engine.family, engine.prior, engine.weight_prior

        def initialise():
            weights, theta = self._initialise(fam, data, sw, K, rng)
            if not engine.posterior:
                return weights, theta
            nk0 = weights * total
            return (fam.posterior(fam.initial_statistics(theta, nk0), nk0, prior),
                    wprior.posterior(nk0))

        if self.n_batches is not None and isinstance(data, _Streamed):
            raise ValueError("n_batches (memoized passes) needs in-memory or memmap X (a "
                             "dask array or an iterable of chunks is not sliced)")
        best = self._run_point(engine, data, sw, initialise, callback,
                               rows=lambda lo, hi: fam.rows(data, lo, hi))
        if engine.posterior:
            q, conc = best.params
            self.weights_, theta = wprior.mean_weights(conc), fam.posterior_mean(q)
            self.weight_concentration_ = conc
            self.posterior_ = fam.pack_posterior(q)
        else:
            self.weights_, theta = best.params
        self._set_theta(fam, theta)

    # quantities of theta the chains' diagnostics monitor, at most (the first entries
    # of each component's theta: a multinomial's K x V would be too many)
    _MONITORED_ENTRIES = 16

    def _gibbs(self, engine, data, sw, K, rng, callback=None):
        """n_chains chains of the engine's sampler (labels drawn by the kernel, keyed
        by the chain's seed, the sweep and the row; weights and theta drawn from
        their conditionals), each started from its own initialisation; the kept
        draws of every chain are relabelled together (Stephens, on reference rows:
        MixtureEstimator._align_draws) and averaged; the chains' diagnostics as
        GaussianMixture's (see MixtureEstimator._mixing)."""
        fam = engine.family

        def start(chain):
            # each chain from its own k-means fit, the best of a few seedings (as
            # GaussianMixture's chains): a chain started in a poor mode rarely leaves
            params = self._initialise(fam, data, sw, K, rng, n_kmeans=_GIBBS_KMEANS_INIT)
            engine.seed = int(rng.randint(2 ** 31))
            return params

        draws, log_joint, seconds, n_kept = self._run_chains(engine, data, sw, start, callback)
        stack = {"weights": np.array([d[0] for d in draws]),
                 "theta": np.array([d[1] for d in draws]),
                 "counts": np.array([d[2] for d in draws])}
        ref, ref_sw = (data.head(K), None) if isinstance(data, _Streamed) else (data, sw)

        def draw_resp(s, sub):
            W, c = fam.effective(stack["theta"][s])
            with np.errstate(divide="ignore"):
                lj = self._log_joint(fam, sub, W, c, np.log(stack["weights"][s]))
            lj -= lj.max(1, keepdims=True)
            p = np.exp(lj)
            return p / p.sum(1, keepdims=True)

        stack = self._align_draws(stack, ref.shape[0], ref_sw,
                                  lambda rows: fam.take_rows(ref, rows), draw_resp)
        self.posterior_samples_ = {"weights": stack["weights"], "theta": stack["theta"]}
        self.weights_ = stack["weights"].mean(0)
        self._set_theta(fam, stack["theta"].mean(0))
        n_mon = min(stack["theta"].shape[-1], self._MONITORED_ENTRIES)
        self._mixing(log_joint, seconds, stack, n_kept,
                     lambda shaped, k: {f"theta_{k}_{j}": shaped["theta"][..., k, j]
                                        for j in range(n_mon)})

    # ------------------------------------------------------- fitted state
    def _restore(self):
        """The private state predictions use, from the public fitted attributes
        (after fit, and after fastvem.load): the family, theta, q (mean field: the
        stacked conjugate parameters in ``posterior_``) and the weights' prior."""
        fam = self._fitted_family()
        self._family_ = fam
        self._theta = self._fitted_theta(fam)
        self._prior = self._fitted_prior()
        post = (getattr(self, "posterior_", None)
                if get_method(self.method).update == "posterior" else None)
        self._q = None if post is None else fam.unpack_posterior(post)
        self._wprior = self._weights_prior(self.n_components)
        self._fitted_with = self._config()

    def _set_prior(self, prior):
        """Keep the family's prior (a constant for most families)."""
        self._prior = prior

    def _fitted_prior(self):
        return getattr(self, "_prior", None)

    def _check_loaded(self):
        """Every fitted attribute of a loaded model against its schema (see
        fastvem._load_checks); ValueError naming the attribute otherwise."""
        from .._load_checks import check_discrete_mixture
        check_discrete_mixture(self)
        self._restore()

    # ------------------------------------------------------------ prediction
    def _prepare(self, X, what="predict"):
        """The kernel's array of X for a fitted model: X validated once, its
        features counted against the fit's."""
        check_is_fitted(self)
        self._check_config(what)
        _refuse_source(X, what)
        import scipy.sparse as sp
        from ..families.discrete import _numeric
        n = X.shape[1] if sp.issparse(X) else _numeric(X).shape[1]
        if n != self.n_features_in_:
            raise ValueError(f"X has {n} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input")
        return self._family_, self._family_.prepare(X)

    def _effective(self):
        """(W, c, logw) the fitted model predicts with."""
        fam = self._family_
        if self._q is not None:                 # mean field: E_q log p, E log pi
            W, c = fam.expected_effective(self._q)
            logw = self._wprior.expected_log_weights(self.weight_concentration_)
        else:
            W, c = fam.effective(self._theta)
            with np.errstate(divide="ignore"):
                logw = np.log(self.weights_)
        return W, c, logw

    def _predict_rows(self, X, what):
        return self._prepare(X, what)[1]

    def _estep(self, data, want):
        """The E-step under the fitted model.  'norm' (score_samples): log p(x) at the
        fitted parameters (for meanfield: at the posterior means, which for Bernoulli
        and categorical features is the exact posterior predictive of a row); the
        others under the E-step's parameters (mean field: E_q log p, E log pi)."""
        fam = self._family_
        self._threads = default_n_threads(self.n_threads)
        if want == "norm":
            W, c = fam.effective(self._theta)
            with np.errstate(divide="ignore"):
                logw = np.log(self.weights_)
        else:
            W, c, logw = self._effective()
        lj = self._log_joint(fam, data, W, c, logw)
        if want == "logprob":
            return lj
        if want == "label":
            return np.argmax(lj, axis=1)
        mx = lj.max(1, keepdims=True)
        if want == "norm":
            return mx[:, 0] + np.log(np.exp(lj - mx).sum(1))
        p = np.exp(lj - mx)
        return p / p.sum(1, keepdims=True)

    def _n_parameters(self):
        return self._family_.n_parameters(self.n_components) + self.n_components - 1

    def _sample_component(self, k, n, rng):
        return self._family_.sample_rows(self._theta[k], n, rng)


@register
class BernoulliMixture(_DiscreteMixture):
    """A mixture of independent Bernoulli features, by every method.

    X: binary rows (bool, int or float 0/1; with ``binarize`` a threshold as in
    BernoulliNB).  alpha: the symmetric Beta(1 + alpha, 1 + alpha) prior on each
    probability, whose MAP em / vem / crisp take (additive smoothing; alpha=0 is
    maximum likelihood).  Fitted: ``weights_`` (K), ``probabilities_`` (K x D).
    """

    _theta_attr = "probabilities_"
    _positive_only = False          # with binarize, any real threshold and data
    _CONFIG = _DiscreteMixture._CONFIG + ("binarize",)

    def __init__(self, n_components=1, *, method="em", alpha=1.0, binarize=None, tol=1e-3,
                 max_iter=100, n_init=1, init_params="kmeans", weights_init=None,
                 probabilities_init=None, weight_concentration_prior_type="dirichlet_distribution",
                 weight_concentration_prior=None, n_samples=200, burn_in=100, thin=1,
                 n_chains=2,
                 random_state=None, n_threads=None, verbose=0, verbose_interval=10,
                 accelerate=None, n_batches=None):
        _store(self, locals())

    def _family(self, X, fitting=False):
        Bernoulli.check_binarize(self.binarize)
        D = _n_columns(X)
        return Bernoulli(D, self.alpha, self.binarize)

    def _given_theta(self, fam, K):
        if self.probabilities_init is None:
            return None
        p = np.asarray(self.probabilities_init, dtype=np.float64)
        if p.shape != (K, fam.n_features) or not np.all((p >= 0) & (p <= 1)):
            raise ValueError(f"probabilities_init must be a ({K}, {fam.n_features}) array of "
                             f"probabilities in [0, 1], got shape {p.shape}")
        return p.copy()

    def _set_theta(self, fam, theta):
        self.probabilities_ = theta

    def _fitted_family(self):
        return Bernoulli(self.n_features_in_, self.alpha, self.binarize)

    def _fitted_theta(self, fam):
        return self.probabilities_

    def _check_theta(self, K):
        p = np.asarray(getattr(self, "probabilities_", None))
        if p.shape != (K, self.n_features_in_) or p.dtype.kind != "f" \
                or not np.all((p >= 0) & (p <= 1)):
            raise ValueError(f"probabilities_ must be a ({K}, {self.n_features_in_}) array of "
                             "probabilities in [0, 1]")


@register
class PoissonMixture(_DiscreteMixture):
    """A mixture of independent Poisson counts, by every method.

    X: non-negative counts (non-integer reals are accepted, as MultinomialNB
    accepts tf-idf; float32 is kept).  Rates are floored at RATE_FLOOR = 1e-10.
    Mean field and gibbs use Gamma(shape_prior, rate_prior) priors (default: one
    pseudo-row at each feature's mean).  Fitted: ``weights_``, ``rates_`` (K x D).
    """

    _theta_attr = "rates_"

    def __init__(self, n_components=1, *, method="em", tol=1e-3, max_iter=100, n_init=1,
                 init_params="kmeans", weights_init=None, rates_init=None, shape_prior=None,
                 rate_prior=None, weight_concentration_prior_type="dirichlet_distribution",
                 weight_concentration_prior=None, n_samples=200, burn_in=100, thin=1,
                 n_chains=2,
                 random_state=None, n_threads=None, verbose=0, verbose_interval=10,
                 accelerate=None, n_batches=None):
        _store(self, locals())

    def _family(self, X, fitting=False):
        D = _n_columns(X)
        return Poisson(D, self.shape_prior, self.rate_prior)

    def _given_theta(self, fam, K):
        if self.rates_init is None:
            return None
        r = np.asarray(self.rates_init, dtype=np.float64)
        if r.shape != (K, fam.n_features) or not np.all(np.isfinite(r)) or np.any(r <= 0):
            raise ValueError(f"rates_init must be a ({K}, {fam.n_features}) array of positive "
                             f"finite rates, got shape {r.shape}")
        return r.copy()

    def _set_theta(self, fam, theta):
        self.rates_ = theta

    def _fitted_family(self):
        return Poisson(self.n_features_in_, self.shape_prior, self.rate_prior)

    def _set_prior(self, prior):
        """The Gamma prior of the rates (from the data unless given): fitted
        attributes, so that a loaded model continues partial_fit with it."""
        self.shape_prior_, self.rate_prior_ = (np.asarray(p, dtype=np.float64) for p in prior)
        self._prior = prior

    def _fitted_prior(self):
        if getattr(self, "shape_prior_", None) is None:
            return None
        return (np.asarray(self.shape_prior_, dtype=np.float64),
                np.asarray(self.rate_prior_, dtype=np.float64))

    def _fitted_theta(self, fam):
        return self.rates_

    def _check_theta(self, K):
        r = np.asarray(getattr(self, "rates_", None))
        if r.shape != (K, self.n_features_in_) or r.dtype.kind != "f" \
                or not np.all(np.isfinite(r)) or np.any(r <= 0):
            raise ValueError(f"rates_ must be a ({K}, {self.n_features_in_}) array of positive "
                             "finite rates")
        for name in ("shape_prior_", "rate_prior_"):
            v = np.asarray(getattr(self, name, None))
            if v.shape != (self.n_features_in_,) or v.dtype.kind != "f" \
                    or not np.all(np.isfinite(v)) or np.any(v <= 0):
                raise ValueError(f"{name} must be {self.n_features_in_} positive finite values")


@register
class CategoricalMixture(_DiscreteMixture):
    """Latent class analysis: a mixture of independent categorical features, by
    every method.

    X: integer codes, n_samples x n_features; feature j takes 0 .. n_categories[j]-1
    (``n_categories=None`` infers the largest code + 1 of each feature at fit).
    alpha: the Dirichlet(1 + alpha) prior on each probability vector (additive
    smoothing for em / vem / crisp).  Fitted: ``weights_`` and ``probabilities_``,
    a list with one (K x n_categories[j]) array per feature.
    """

    _theta_attr = "probabilities_"

    def __init__(self, n_components=1, *, method="em", n_categories=None, alpha=1.0,
                 tol=1e-3, max_iter=100, n_init=1, init_params="kmeans", weights_init=None,
                 probabilities_init=None, weight_concentration_prior_type="dirichlet_distribution",
                 weight_concentration_prior=None, n_samples=200, burn_in=100, thin=1,
                 n_chains=2,
                 random_state=None, n_threads=None, verbose=0, verbose_interval=10,
                 accelerate=None, n_batches=None):
        _store(self, locals())

    def _family(self, X, fitting=False):
        cats = Categorical.infer_categories(X, self.n_categories)
        fam = Categorical(cats, self.alpha)
        if fitting:
            self.n_categories_ = list(cats)
        return fam

    def _given_theta(self, fam, K):
        if self.probabilities_init is None:
            return None
        blocks = self.probabilities_init
        if not isinstance(blocks, (list, tuple)) or len(blocks) != fam.n_features:
            raise ValueError(f"probabilities_init must be a list of {fam.n_features} arrays, "
                             "one (n_components, n_categories[j]) array per feature")
        theta = np.empty((K, fam.n_statistics()))
        for j, (b, L) in enumerate(zip(blocks, fam.n_categories)):
            b = np.asarray(b, dtype=np.float64)
            if b.shape != (K, L) or np.any(b < 0) or not np.allclose(b.sum(1), 1.0, atol=1e-6):
                raise ValueError(f"probabilities_init[{j}] must be a ({K}, {L}) array of "
                                 f"probability rows summing to 1, got shape {b.shape}")
            theta[:, fam.offsets[j]:fam.offsets[j + 1]] = b
        return theta

    def _set_theta(self, fam, theta):
        self.probabilities_ = [b.copy() for b in fam.blocks(theta)]

    def _fitted_family(self):
        return Categorical(self.n_categories_, self.alpha)

    def _fitted_theta(self, fam):
        return np.hstack(self.probabilities_)

    def _check_theta(self, K):
        cats = np.asarray(getattr(self, "n_categories_", None))
        if cats.shape != (self.n_features_in_,) or cats.dtype.kind not in "iu" \
                or np.any(cats < 1):
            raise ValueError(f"n_categories_ must hold {self.n_features_in_} counts >= 1")
        self.n_categories_ = [int(v) for v in cats]
        probs = getattr(self, "probabilities_", None)
        if not isinstance(probs, list) or len(probs) != len(self.n_categories_):
            raise ValueError(f"probabilities_ must be a list of {len(self.n_categories_)} arrays")
        for j, (p, L) in enumerate(zip(probs, self.n_categories_)):
            p = np.asarray(p)
            if p.shape != (K, L) or p.dtype.kind != "f" or np.any(p < 0) \
                    or not np.allclose(p.sum(1), 1.0, atol=1e-6):
                raise ValueError(f"probabilities_[{j}] must be a ({K}, {L}) array of "
                                 "probability rows summing to 1")


@register
class MultinomialMixture(_DiscreteMixture):
    """A mixture of unigrams: each document (a row of word counts, dense or
    scipy.sparse, never densified) is drawn from one of K word distributions, by
    every method.

    alpha: the Dirichlet(1 + alpha) prior on each word distribution, whose MAP
    em / vem / crisp take ((c_w + alpha) / (sum c + V alpha): MultinomialNB's
    smoothing); counts may be non-negative reals (tf-idf).  Fitted: ``weights_``
    and ``probabilities_`` (K x V).
    """

    _theta_attr = "probabilities_"

    def __init__(self, n_components=1, *, method="em", alpha=1.0, tol=1e-3, max_iter=100,
                 n_init=1, init_params="kmeans", weights_init=None, probabilities_init=None,
                 weight_concentration_prior_type="dirichlet_distribution",
                 weight_concentration_prior=None, n_samples=200, burn_in=100, thin=1,
                 n_chains=2,
                 random_state=None, n_threads=None, verbose=0, verbose_interval=10,
                 accelerate=None, n_batches=None):
        _store(self, locals())

    def _family(self, X, fitting=False):
        V = _n_columns(X)
        fam = Multinomial(V, self.alpha)
        return fam

    def _given_theta(self, fam, K):
        if self.probabilities_init is None:
            return None
        p = np.asarray(self.probabilities_init, dtype=np.float64)
        if p.shape != (K, fam.n_features) or np.any(p < 0) \
                or not np.allclose(p.sum(1), 1.0, atol=1e-6):
            raise ValueError(f"probabilities_init must be a ({K}, {fam.n_features}) array of "
                             f"probability rows summing to 1, got shape {p.shape}")
        return p.copy()

    def _set_theta(self, fam, theta):
        self.probabilities_ = theta
        self.mean_length_ = fam.mean_length

    def _fitted_family(self):
        fam = Multinomial(self.n_features_in_, self.alpha)
        fam.mean_length = float(getattr(self, "mean_length_", 1.0))
        return fam

    def _fitted_theta(self, fam):
        return self.probabilities_

    def _check_theta(self, K):
        p = np.asarray(getattr(self, "probabilities_", None))
        V = self.n_features_in_
        if p.shape != (K, V) or p.dtype.kind != "f" or np.any(p < 0) \
                or not np.allclose(p.sum(1), 1.0, atol=1e-6):
            raise ValueError(f"probabilities_ must be a ({K}, {V}) array of probability rows "
                             "summing to 1")
        m = getattr(self, "mean_length_", None)
        if (isinstance(m, (bool, np.bool_)) or not isinstance(m, (float, int, np.floating,
                                                                   np.integer))
                or not np.isfinite(m) or m <= 0):
            raise ValueError(f"mean_length_ must be a positive number, got {m!r}")
        self.mean_length_ = float(m)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


_FAMILY_NAMES = {"bernoulli": BernoulliMixture, "categorical": CategoricalMixture,
                 "poisson": PoissonMixture, "multinomial": MultinomialMixture}


_GAUSSIAN_NAMES = {"gaussian": GaussianFull, "gaussian_diag": GaussianDiag,
                   "gaussian_tied": GaussianTied, "gaussian_spherical": GaussianSpherical}


@register
class Mixture(_DiscreteMixture):
    """The generic mixture: ``family`` is a name ('bernoulli', 'categorical',
    'poisson', 'multinomial', 'gaussian', 'gaussian_diag', 'gaussian_tied',
    'gaussian_spherical': the built-in family with
    its defaults), a family object (``fastvem.families.Bernoulli(...)``, ...,
    ``GaussianFull``, ``GaussianDiag``, a ``Product`` of families over disjoint
    columns for mixed data), or a ``fastvem.families.ExponentialFamily`` of the
    user's numba row functions.  The schedules are the other mixtures':
    ``accelerate='squarem'`` (em / vem) and ``n_batches`` (memoized mean field).

    Fitted: ``weights_``, ``params_`` (K x S: the family's mean parameters for a
    built-in family or a product, side by side; the natural parameters, also
    ``natural_params_``, for an ExponentialFamily), ``family_`` (the family as
    fitted: a product's members built from their columns) and
    ``component_params_`` (the parameters by name: ``family_.describe(params_)``;
    for a product one dict per member with its columns).  An ExponentialFamily
    fits by em, vem and crisp, and by meanfield and gibbs when it has a
    ``conjugate``; ``natural_params_init`` gives its start.  ``params_init`` (K x S,
    in the form of ``params_``) starts a built-in family or a product.  Without
    them, k-means on X (or random labels) starts, as for the other mixtures.
    'gaussian' is the full-covariance Gaussian family (``GaussianFull``: what
    GaussianMixture(covariance_type='full') and BayesianGaussianMixture fit, equal
    iterate for iterate), 'gaussian_diag' the diagonal one; both run their passes on
    GaussianMixture's Cholesky-factor kernel.  'gaussian_tied' and
    'gaussian_spherical' (``GaussianTied``, ``GaussianSpherical``) are the tied and
    spherical covariances: em, vem and crisp give GaussianMixture's iterates; mean
    field and gibbs use their exact conjugate posteriors (one Wishart shared by the
    components; one Gamma per component shared by its features), which is not
    BayesianGaussianMixture's approximation for these covariance types.
    """

    _CONFIG = _DiscreteMixture._CONFIG + ("family",)
    _theta_attr = "params_"
    # family_prior_: the family's prior as fitted (mean field, gibbs), written by save
    # so that a loaded model continues partial_fit with it
    _fitted_attributes = _DiscreteMixture._fitted_attributes + ("params_", "family_",
                                                                "family_prior_")

    def __init__(self, family="bernoulli", n_components=1, *, method="em", tol=1e-3,
                 max_iter=100, n_init=1, init_params="kmeans", weights_init=None,
                 params_init=None, natural_params_init=None,
                 weight_concentration_prior_type="dirichlet_distribution",
                 weight_concentration_prior=None, n_samples=200, burn_in=100, thin=1,
                 n_chains=2,
                 random_state=None, n_threads=None, verbose=0, verbose_interval=10,
                 accelerate=None, n_batches=None):
        _store(self, locals())

    def _user_family(self):
        from ..families.numba_family import ExponentialFamily
        return isinstance(self.family, ExponentialFamily)

    def _builtin(self):
        if isinstance(self.family, str) and self.family in _FAMILY_NAMES:
            return _FAMILY_NAMES[self.family](self.n_components)
        raise ValueError(f"family must be one of "
                         f"{sorted(_FAMILY_NAMES) + sorted(_GAUSSIAN_NAMES)}, "
                         "a family object (fastvem.families: Bernoulli, Categorical, Poisson, "
                         "Multinomial, GaussianDiag, GaussianFull, GaussianTied, "
                         "GaussianSpherical, Product) or a "
                         f"fastvem.families.ExponentialFamily, got {self.family!r}")

    def _family(self, X, fitting=False):
        from ..families.base import Family, check_row_family
        if self._user_family():
            m = get_method(self.method)
            if m.update != "point" and self.family.conjugate is None:
                raise ValueError(f"method={m.name!r} needs a conjugate prior: give the "
                                 "ExponentialFamily a conjugate=Conjugate(...), or use em, vem "
                                 "or crisp")
            return self.family
        if isinstance(self.family, Family):
            fam = check_row_family(self.family)
        elif isinstance(self.family, str) and self.family in _GAUSSIAN_NAMES:
            fam = _GAUSSIAN_NAMES[self.family](_n_columns(X))
        else:
            return self._builtin()._family(X, fitting)
        return fam

    def _given_theta(self, fam, K):
        if self.params_init is not None:
            if self._user_family():
                raise ValueError("an ExponentialFamily starts from natural_params_init, not "
                                 "params_init")
            S = fam.n_statistics()
            theta = np.asarray(self.params_init, dtype=np.float64)
            if theta.shape != (K, S) or not np.all(np.isfinite(theta)):
                raise ValueError(f"params_init must be a finite ({K}, {S}) array of the "
                                 f"family's mean parameters (as params_), got shape "
                                 f"{theta.shape}")
            fam.effective(theta)
            return theta.copy()
        if self.natural_params_init is None:
            return None
        if not self._user_family():
            raise ValueError("natural_params_init is for an ExponentialFamily; a built-in "
                             "family starts from k-means or from its own estimator's inits")
        eta = np.asarray(self.natural_params_init, dtype=np.float64)
        if eta.shape != (K, fam.S) or not np.all(np.isfinite(eta)):
            raise ValueError(f"natural_params_init must be a finite ({K}, {fam.S}) array, got "
                             f"shape {eta.shape}")
        fam.effective(eta)                   # log_partition finite at the start
        return eta.copy()

    def _set_theta(self, fam, theta):
        self.params_ = theta
        if self._user_family():
            self.natural_params_ = theta
        self.family_ = fam
        self.component_params_ = fam.describe(theta)

    def _fitted_family(self):
        return self.family_

    def _fitted_theta(self, fam):
        return self.params_

    # save / load: a built-in family (a name, an object or a Product of them) is
    # stored as its JSON state (fastvem.families.state); an ExponentialFamily holds
    # the user's numba functions and is refused (pickle the estimator instead)
    def _saved_params(self):
        from ..families.state import saved_family_param
        return saved_family_param(self.get_params(deep=False))

    def _saved_attributes(self):
        from ..families.state import dumps, prior_dumps
        out = dict(vars(self))
        out["family_"] = dumps(self.family_)
        out.pop("component_params_", None)        # family_.describe(params_) on load
        prior = self._fitted_prior()
        if prior is not None and get_method(self.method).update != "point":
            out["family_prior_"] = prior_dumps(prior)
        return out

    @staticmethod
    def _loaded_params(params):
        from ..families.state import loaded_family_param
        return loaded_family_param(params)

    def _check_theta(self, K):
        """A loaded model's family_ (its JSON state) and params_ (K x S, inside the
        family's parameter space); component_params_ from them."""
        from ..families.base import Family
        from ..families.state import loads
        if "family_" not in vars(self):
            raise ValueError("family_ is missing (a Mixture's saved family)")
        fam = self.family_
        if not isinstance(fam, Family):
            if isinstance(fam, np.ndarray) and fam.ndim == 0:
                fam = fam.item()
            fam = loads(fam, "family_", fitted=True)
        if fam.n_features != self.n_features_in_:
            raise ValueError(f"family_ has {fam.n_features} features, n_features_in_ is "
                             f"{self.n_features_in_}")
        given = self.family
        if (type(given) is not type(fam)) if isinstance(given, Family) else given != fam.name:
            raise ValueError(f"family_ is a {type(fam).__name__}, not the family parameter's "
                             f"{given if isinstance(given, str) else type(given).__name__}")
        theta = np.asarray(getattr(self, "params_", None))
        S = fam.n_statistics()
        if theta.shape != (K, S) or theta.dtype.kind != "f" or not np.all(np.isfinite(theta)):
            raise ValueError(f"params_ must be a finite ({K}, {S}) float array")
        # a gibbs summary averages draws: a tied covariance need not stay tied there
        fam.check_theta(theta, "params_", get_method(self.method).update != "sample")
        if "family_prior_" in vars(self):
            from ..families.state import prior_loads
            self._prior = prior_loads(vars(self).pop("family_prior_"), fam)
        elif get_method(self.method).update != "point" and "_prior" not in vars(self):
            raise ValueError("family_prior_ is missing (the prior a mean-field or gibbs "
                             "Mixture was fitted with)")
        self.family_ = fam
        self.params_ = theta
        self.component_params_ = fam.describe(theta)

    def __sklearn_tags__(self):
        """Non-negative input only for the count families (Poisson, multinomial)."""
        tags = super().__sklearn_tags__()
        fam = self.family
        tags.input_tags.positive_only = (fam in ("poisson", "multinomial")
                                         or isinstance(fam, (Poisson, Multinomial)))
        return tags

    def sample(self, n_samples=1):
        if self._user_family():
            raise NotImplementedError("sample needs a sampler of the family, which an "
                                      "ExponentialFamily does not take in this version")
        return super().sample(n_samples)
