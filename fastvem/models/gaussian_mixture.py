"""fastvem.GaussianMixture: scikit-learn's GaussianMixture API on fastvem's engine."""
import numbers

import numpy as np
from sklearn.cluster import KMeans, kmeans_plusplus
from sklearn.utils.validation import validate_data

from ..io import register
from ..engine import FamilyEngine, Stepwise, blas_single_thread, default_n_threads
from ..families.gaussian import (COVARIANCE_TYPES, GaussianFamily, GaussianWishartPrior,
                                 init_block_rows,
                                 pool_scatter,
                                 covariances_from_precision_cholesky,
                                 precision_cholesky, precision_cholesky_from_precisions,
                                 precisions_from_cholesky)
from ..methods import PRESETS, check_supported
from ..structures.mixture import DirichletWeights, Mixture
from ..stats import GaussianStats
from ..sources import ChunkSource, DaskSource, is_chunk_iterable, is_dask_array
from .._validation import (check_array_param, check_sample_weight, check_random_state_param,
                          check_scale, is_choice)
from .base import MixtureEstimator

__all__ = ["GaussianMixture"]

_IMPLEMENTED = ("em", "vem", "crisp", "meanfield", "gibbs")
_FITTED = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_",
           "converged_", "n_iter_", "n_e_steps_", "lower_bound_", "lower_bounds_",
           "n_features_in_",
           "feature_names_in_",
           # mean field: q(theta) and the priors, as scikit-learn's BayesianGaussianMixture
           "weight_concentration_prior_", "weight_concentration_",
           "mean_precision_prior_", "mean_precision_", "mean_prior_",
           "degrees_of_freedom_prior_", "degrees_of_freedom_", "covariance_prior_",
           # gibbs: the kept draws (aligned) and the chains' diagnostics
           "posterior_samples_", "log_joint_", "rhat_", "ess_", "mixing_", "n_relabelled_",
           "occupancy_", "occupied_", "n_occupied_posterior_")
# set by _make_engine before a fit runs (meanfield and gibbs)
_PRIOR_ATTRS = ("weight_concentration_prior_", "mean_precision_prior_", "mean_prior_",
                "degrees_of_freedom_prior_", "covariance_prior_")
_INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")
_DASK_INIT_ROWS = 200_000   # rows of a dask array that the initialisation reads
_KMEANS_MAX_ROWS = 1_000_000   # k-means initialisation on at most this many rows
_GIBBS_KMEANS_INIT = 5         # k-means++ seedings per gibbs chain start (best inertia)


def _block_labels(block, index, start, estimator):
    """Labels of one block of a Dask array (runs on a worker)."""
    block = np.ascontiguousarray(block, dtype=np.asarray(estimator.means_).dtype)
    return estimator._estep(block, "label")


def _kernel_params(engine, params, dtype):
    """The kernel's parameters of an E-step under the engine's parameters."""
    return engine.family.effective_kernel_params(*engine.effective(params), dtype)


def _relative_weights(sw):
    """Point estimates depend on sample weights only through their ratios: rescaled
    to mean 1 (first by the largest, so that no sum overflows), the fit is the same
    for any uniform scale, and the count floors (10 * eps) keep their meaning."""
    sw = sw / sw.max()
    return sw / sw.mean()


def _centre(X, rows=65536):
    """A point near the data (mean of the first rows): the reference the
    initial statistics are centred at."""
    return np.asarray(X[:rows], dtype=np.float64).mean(axis=0)


@register
class GaussianMixture(MixtureEstimator):
    """Gaussian mixture fitted by em (default), vem or crisp EM.

    Accepts every constructor parameter of
    :class:`sklearn.mixture.GaussianMixture` and exposes the same fitted
    attributes, plus ``method``, ``n_threads`` and ``trace_``.

    Parameters
    ----------
    n_components, covariance_type, tol, reg_covar, max_iter, n_init,
    init_params, weights_init, means_init, precisions_init, random_state,
    warm_start, verbose, verbose_interval :
        As in scikit-learn: ``verbose=1`` prints a line per initialisation and per
        ``verbose_interval`` iterations and whether it converged, ``verbose=2`` adds
        times and objective changes.  gibbs shows a progress bar over all the
        sweeps of all chains instead.
    method : {'em', 'vem', 'crisp', 'meanfield', 'gibbs'}, default='em'
        'em': exact posterior responsibilities, ML parameters.  'vem':
        variational EM with a factorised q(z) -- for a mixture the exact
        posterior already factorises over rows, so vem and em coincide.
        'crisp': hard (argmax) assignments and ML parameters (classification
        EM); its objective is the complete-data log joint per sample.
        'meanfield': q(z) q(pi) q(mu, Lambda) under the priors below, exactly
        as :class:`fastvem.BayesianGaussianMixture` (objective: the variational
        bound per sample; q(theta) starts from the initial responsibilities,
        so weights_init / means_init / precisions_init are not used).
        'gibbs': blocked Gibbs sampling of z and theta under the same priors;
        summaries are posterior means of the relabelled draws (see below).
    weight_concentration_prior_type, weight_concentration_prior,
    mean_precision_prior, mean_prior, degrees_of_freedom_prior, covariance_prior :
        The priors of method='meanfield', as in scikit-learn's
        BayesianGaussianMixture (ignored by the point-estimate methods).
    accelerate : {None, 'squarem'}, default=None
        'squarem' extrapolates the em / vem iterates (Varadhan & Roland 2008, scheme
        S3) in unconstrained coordinates, safeguarded: an extrapolation whose
        objective falls below the plain step's is pulled back, down to the plain
        step itself, so lower_bounds_ never decreases.  An iteration then runs three
        E-steps or more (n_e_steps_ counts them) and has converged when its gain
        falls below 3 * tol: tol per E-step, as for plain em.
    n_batches : int or None, default=None
        meanfield: memoized passes over n_batches contiguous batches of rows
        (per-batch statistics kept, total - old + new, q(theta) updated after every
        batch); the ELBO never decreases after the first pass.
    n_samples, burn_in, thin, n_chains : int, default=500, 100, 1, 2
        gibbs: each of n_chains chains runs burn_in + n_samples * thin sweeps and
        keeps every thin-th draw after burn-in.  Each chain starts from its own
        k-means fit (init_params='kmeans': the best of 5 k-means++ seedings).
    n_threads : int or None, default=None
        Threads for the compiled kernels (None: all CPUs of the process).
        Results are bitwise identical for any value.

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_,
    converged_, n_iter_, lower_bound_, lower_bounds_, n_features_in_ :
        As in scikit-learn (lower_bound_ is the per-sample objective of the
        method: mean log-likelihood for em/vem, mean complete-data log joint
        for crisp).
    trace_ : dict
        'objective' and 'seconds' per iteration of the best run, and 'events'
        (e.g. re-seeded empty components).
    posterior_samples_ : dict (gibbs)
        The kept draws of every chain on common labels (Stephens' relabelling):
        'weights' (S, K), 'means' (S, K, D), 'covariances', 'counts' (S, K, the
        allocation's weight per component).  n_relabelled_ counts the draws
        that were permuted.  weights_ is the posterior mean over all draws;
        means_ and covariances_ average the draws in which the component holds
        data; predict_proba averages the draws' responsibilities, predict is
        its argmax, score_samples is the log of the mean density.
    occupancy_, occupied_, n_occupied_posterior_ : (gibbs)
        Share of draws in which each component holds at least one row's
        weight; occupied_ = occupancy_ >= 0.5 (an unoccupied component is
        marked, not dropped: its weight is the posterior mean and its mean and
        covariance are the prior's m0 and c0 / nu0); the posterior
        probabilities of 0..K occupied components.
    log_joint_, mixing_, rhat_, ess_ : (gibbs)
        Per-sample log joint of every sweep, (n_chains, sweeps); mixing_[name]
        = (rank-normalised split-R-hat, bulk ESS) of the log joint, the sorted
        weights, the allocation entropy and the relabelled weights and means;
        rhat_ the worst, ess_ the least.  converged_ is True only when every
        R-hat < 1.01 and every ESS >= 100 per chain; a ConvergenceWarning
        names the quantities that did not mix otherwise.
    """

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3, reg_covar=1e-6,
                 max_iter=100, n_init=1, init_params="kmeans", weights_init=None,
                 means_init=None, precisions_init=None, random_state=None,
                 warm_start=False, verbose=0, verbose_interval=10, method="em",
                 weight_concentration_prior_type="dirichlet_process",
                 weight_concentration_prior=None, mean_precision_prior=None, mean_prior=None,
                 degrees_of_freedom_prior=None, covariance_prior=None, n_samples=500,
                 burn_in=100, thin=1, n_chains=2, accelerate=None, n_batches=None,
                 n_threads=None):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.method = method
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.n_samples = n_samples
        self.burn_in = burn_in
        self.thin = thin
        self.n_chains = n_chains
        self.accelerate = accelerate
        self.n_batches = n_batches
        self.n_threads = n_threads

    _fitted_attributes = _FITTED

    # ------------------------------------------------------------------ checks
    def _check_hyper(self):
        def integer(name, low):
            v = getattr(self, name)
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
                raise TypeError(f"{name} must be an int, got {type(v).__name__}")
            if v < low:
                raise ValueError(f"{name} must be >= {low}, got {v}")

        def real(name, low, strict):
            v = getattr(self, name)
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
                raise TypeError(f"{name} must be a real number, got {type(v).__name__}")
            if not np.isfinite(v) or v < low or (strict and v == low):
                raise ValueError(f"{name} must be {'>' if strict else '>='} {low} and "
                                 f"finite, got {v}")

        integer("n_components", 1)
        integer("max_iter", 0)
        integer("n_init", 1)
        integer("verbose", 0)
        integer("verbose_interval", 1)
        real("tol", 0.0, False)
        real("reg_covar", 0.0, False)
        if not is_choice(self.covariance_type, COVARIANCE_TYPES):
            raise ValueError(f"covariance_type must be one of {list(COVARIANCE_TYPES)}, "
                             f"got {self.covariance_type!r}")
        if not is_choice(self.init_params, _INIT_PARAMS):
            raise ValueError(f"init_params must be one of {list(_INIT_PARAMS)}, "
                             f"got {self.init_params!r}")
        method = self._method()
        accelerate = getattr(self, "accelerate", None)
        if not is_choice(accelerate, (None, "squarem")):
            raise ValueError(f"accelerate must be None or 'squarem', got {accelerate!r}")
        if accelerate is not None and not (method.update == "point"
                                           and method.assign == "softmax"):
            raise ValueError(f"accelerate='squarem' extrapolates em / vem iterates; it is not "
                             f"available for method={method.name!r}")
        n_batches = getattr(self, "n_batches", None)
        if n_batches is not None:
            integer("n_batches", 1)
            if method.update != "posterior":
                raise ValueError(f"n_batches (memoized passes) is for method='meanfield', "
                                 f"got method={method.name!r}")
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise TypeError(f"warm_start must be a bool, got {self.warm_start!r}")
        return method, default_n_threads(self.n_threads)

    def _method(self):
        method = check_supported(self.method, Mixture.name)
        if method.name not in _IMPLEMENTED:
            raise NotImplementedError(
                f"method={method.name!r} for GaussianMixture is not available in this "
                f"version of fastvem; use one of {list(_IMPLEMENTED)}")
        return method

    def _make_engine(self, family, method, n_threads, seed, X, sw):
        if method.update == "point":
            return FamilyEngine(family, Mixture(self.n_components), method,
                                n_threads=n_threads, seed=seed)
        weights, prior = self._priors(X, family.scatter)
        self.weight_concentration_prior_ = weights.alpha0
        self.mean_precision_prior_ = prior.mean_precision_prior
        self.mean_prior_ = prior.mean_prior
        self.degrees_of_freedom_prior_ = prior.degrees_of_freedom_prior
        self.covariance_prior_ = prior.covariance_prior
        return FamilyEngine(family, Mixture(self.n_components), method, prior=prior,
                            weight_prior=weights, n_threads=n_threads, seed=seed)

    # ----------------------------------------------------------------- priors
    def _priors(self, X, scatter):
        """Validated priors, scikit-learn's defaults from the data where None."""
        K, D, ct = self.n_components, X.shape[1], self.covariance_type

        def positive(name, default):
            v = getattr(self, name)
            if v is None:
                return float(default)
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
                raise TypeError(f"{name} must be a positive number or None, got {v!r}")
            if not np.isfinite(v) or v <= 0:
                raise ValueError(f"{name} must be positive and finite, got {v}")
            return float(v)

        weights = DirichletWeights(self.weight_concentration_prior_type,
                                   positive("weight_concentration_prior", 1.0 / K))
        beta0 = positive("mean_precision_prior", 1.0)
        total, centre, scatter = scatter      # from family.prepare: one pass for all
        m0 = centre if self.mean_prior is None else check_array_param(
            self.mean_prior, "mean_prior", (D,))
        if self.degrees_of_freedom_prior is None:
            nu0 = float(D)
        else:
            nu0 = positive("degrees_of_freedom_prior", D)
            if nu0 <= D - 1:
                raise ValueError(f"degrees_of_freedom_prior must be greater than {D - 1}, "
                                 f"got {nu0}")
        if self.covariance_prior is None:
            cov = scatter / max(total - 1.0, np.finfo(np.float64).tiny)
            if self._method().update == "sample":
                # gibbs draws components from the prior: floor it by reg_covar as every
                # covariance estimate is (constant columns, identical rows)
                cov = cov + self.reg_covar * np.eye(D)
            c0 = {"full": cov, "tied": cov, "diag": np.diag(cov).copy(),
                  "spherical": np.diag(cov).mean()}[ct]
        else:
            shape = {"full": (D, D), "tied": (D, D), "diag": (D,), "spherical": ()}[ct]
            c0 = check_array_param(self.covariance_prior, "covariance_prior", shape)
            if ct in ("full", "tied"):
                if not np.allclose(c0, c0.T) or np.linalg.eigvalsh(c0).min() <= 0:
                    raise ValueError("covariance_prior must be symmetric positive definite")
            elif np.any(c0 <= 0):
                raise ValueError("covariance_prior must be positive")
            c0 = c0 if ct != "spherical" else float(c0)
        return weights, GaussianWishartPrior(m0, beta0, nu0, c0)

    def _objective_scale(self, total_weight):
        """lower_bound_ = per-sample objective x this (1: scikit-learn's
        GaussianMixture reports a mean log-likelihood)."""
        return 1.0

    def _check_inits(self, n_features):
        K, D, ct = self.n_components, n_features, self.covariance_type
        weights = means = prec = None
        if self.weights_init is not None:
            weights = check_array_param(self.weights_init, "weights_init", (K,))
            if np.any(weights < 0) or np.any(weights > 1):
                raise ValueError("weights_init must lie in [0, 1], got min %.5f, max %.5f"
                                 % (weights.min(), weights.max()))
            if not np.allclose(weights.sum(), 1.0, rtol=1e-6, atol=0):
                raise ValueError(f"weights_init must sum to 1, got {weights.sum():.8f}")
        if self.means_init is not None:
            means = check_array_param(self.means_init, "means_init", (K, D))
        if self.precisions_init is not None:
            shape = {"full": (K, D, D), "tied": (D, D), "diag": (K, D), "spherical": (K,)}[ct]
            prec = check_array_param(self.precisions_init, "precisions_init", shape)
            mats = prec if ct == "full" else (prec[None] if ct == "tied" else None)
            if mats is not None:
                for i, p in enumerate(mats):
                    if not np.allclose(p, p.T, rtol=1e-8, atol=1e-12 * np.abs(p).max()):
                        raise ValueError(f"precisions_init[{i}] is not symmetric")
                    if np.linalg.eigvalsh(p).min() <= 0:
                        raise ValueError(f"precisions_init[{i}] is not positive definite")
            elif np.any(prec <= 0):
                raise ValueError("precisions_init must be positive")
        return weights, means, prec

    def _validate_X(self, X, reset):
        kind = getattr(getattr(X, "dtype", None), "kind", None)
        if kind in ("U", "S", "V"):
            raise TypeError(f"X must be numeric, got string dtype {X.dtype}; convert it explicitly")
        X = validate_data(self, X, dtype=[np.float64, np.float32], order="C",
                          ensure_min_samples=2 if reset else 1, reset=reset)
        return check_scale(X)

    # ---------------------------------------------------------------- fitting
    # partial_fit is the base estimator's (fastvem.engine.Stepwise); em / vem /
    # crisp keep per-sample statistics (the point estimates are scale-free)
    def _stream_chunk(self, X, sample_weight, first):
        method, n_threads = self._check_hyper()
        X = self._validate_X(X, reset=first)
        N = X.shape[0]
        sw = check_sample_weight(sample_weight, N)
        if sw is not None and method.update == "point":
            sw = _relative_weights(sw)      # a step's statistics are per sample anyway
        family = GaussianFamily(self.covariance_type, self.reg_covar, X.shape[1])
        family.prepare(X, sw, n_threads, need_scatter=method.update != "point")
        if first and N < self.n_components:
            raise ValueError(f"the first chunk must hold at least n_components="
                             f"{self.n_components} rows, got {N}")
        return family, X, sw, float(N if sw is None else sw.sum())

    def _stream_start(self, family, X, sw):
        method, n_threads = self._check_hyper()
        engine = self._make_engine(family, method, n_threads, 0, X, sw)
        random_state = check_random_state_param(self.random_state)
        with blas_single_thread():
            params = self._initial_params(X, sw, family, self._check_inits(X.shape[1]),
                                          random_state, n_threads, engine)
        self.n_iter_ = 0
        return Stepwise(engine, params, per_sample=True)

    def _stream_params(self, stream):
        # after the first step: the fitted attributes, as the model holds them (in
        # X's dtype)
        return stream.params if stream.t == 0 else self._get_params()

    def _stream_blend(self, stream, family, rho, scale):
        # the priors' pooled scatter (mean field, tied): the chunk's, blended alike
        if family.scatter is not None:
            family.scatter = stream.extra["scatter"] = pool_scatter(
                stream.extra.get("scatter"), family.scatter, 1.0 - rho, rho * scale)

    def _stream_store(self, stream, family, params, X):
        self._set_params(params, X.dtype)
        self._fitted_with = self._config()

    def _stream_from_fit(self, family, X):
        """The running state of partial_fit for a model that was fitted (or loaded):
        the statistics its parameters imply, counted as one earlier step.  em / vem
        / crisp: per-sample statistics (weights, means, covariances - reg_covar);
        meanfield: those of q(theta) less the prior's pseudo-counts, with the
        fitted priors."""
        method, n_threads = self._check_hyper()
        K, D = np.shape(self.means_)
        ct, reg = self.covariance_type, self.reg_covar
        tiny = np.finfo(np.float64).tiny
        if method.update == "point":
            engine = FamilyEngine(family, Mixture(K), method, n_threads=n_threads)
            nk = np.asarray(self.weights_, dtype=np.float64)
            xk = np.asarray(self.means_, dtype=np.float64)
            sk = np.asarray(self.covariances_, dtype=np.float64)
        else:
            prior = GaussianWishartPrior(self.mean_prior_, self.mean_precision_prior_,
                                         self.degrees_of_freedom_prior_, self.covariance_prior_)
            engine = FamilyEngine(family, Mixture(K), method, prior=prior,
                                  weight_prior=self._weight_prior(), n_threads=n_threads)
            q, _ = self._get_posterior()
            b0, m0, c0 = prior.mean_precision_prior, prior.mean_prior, prior.covariance_prior
            beta, dof, covs = q["mean_precision"], q["degrees_of_freedom"], q["covariances"]
            nk = np.maximum(beta - b0, 0.0)
            safe = np.maximum(nk, tiny)
            xk = np.where(nk[:, None] > 0, (beta[:, None] * q["means"] - b0 * m0)
                          / safe[:, None], q["means"])
            diff = xk - m0
            if ct == "full":
                sk = (dof[:, None, None] * covs - c0
                      - (nk * b0 / beta)[:, None, None] * diff[:, :, None] * diff[:, None, :]
                      ) / safe[:, None, None]
            elif ct == "diag":
                sk = (dof[:, None] * covs - c0) / safe[:, None] - (b0 / beta)[:, None] * diff ** 2
            elif ct == "spherical":
                sk = (dof * covs - c0) / safe - b0 / beta * np.mean(diff ** 2, 1)
            else:
                sk = (dof * covs - c0 - b0 / K * ((nk / beta) * diff.T) @ diff) * K / max(
                    nk.sum(), tiny)
        eye = np.eye(D)
        scatter = None
        if ct == "full":
            s2 = nk[:, None, None] * (sk - reg * eye)
        elif ct == "diag":
            s2 = nk[:, None] * (sk - reg)
        elif ct == "spherical":
            s2 = nk * D * (sk - reg)
        else:
            s2 = None
            total = float(nk.sum())
            centre = (nk @ xk) / max(total, tiny)
            dm = xk - centre
            scatter = (total, centre, total * (sk - reg * eye) + np.einsum("k,ki,kj->ij", nk,
                                                                            dm, dm))
        stats = GaussianStats(ct, nk.copy(), np.zeros((K, D)), s2, xk.copy(), 0.0,
                              float(nk.sum()), 0.0)
        stream = Stepwise(engine, None, stats, t=1,
                          seen=float(nk.sum()) if method.update != "point" else 0.0,
                          per_sample=True)
        stream.extra["scatter"] = scatter
        return stream

    def _drop_stale(self, keep=()):
        """Forget the fitted attributes of an earlier fit (another method's draws or
        counters must not outlive it); the input checks' and keep's stay."""
        for name in _FITTED:
            if name not in keep and name not in ("n_features_in_", "feature_names_in_"):
                self.__dict__.pop(name, None)
        self.__dict__.pop("trace_", None)

    # parameters that shape the fitted state: predictions need them as fitted
    _CONFIG = ("n_components", "covariance_type", "method", "weight_concentration_prior_type")

    def _labels(self, X, _):
        """The labels of the rows fit ran over."""
        if isinstance(X, ChunkSource):      # labels of each chunk, in order
            return np.concatenate([self._estep(b, "label") for b in X._blocks()])
        if isinstance(X, DaskSource):       # computed where each block lives
            return np.concatenate(X.map(_block_labels, self))
        return self._estep(X, want="label")

    def _fit(self, X, sample_weight, callback=None):
        self._stream = None          # a fit starts any later partial_fit afresh
        # not fitted until this fit completes (a failed fit leaves no half model)
        self.__dict__.pop("_fitted_with", None)
        self._check_callback(callback)
        method, n_threads = self._check_hyper()
        dask_source = None
        if is_dask_array(X) or is_chunk_iterable(X):
            # blocks of a Dask array run where they live; chunks of an iterable are
            # streamed one by one (see fastvem.sources)
            kind = "a dask array" if is_dask_array(X) else "an iterable of chunks"
            if method.assign == "sample":
                raise ValueError(f"method='gibbs' does not run on {kind}; use em, vem, crisp "
                                 "or meanfield")
            if sample_weight is not None:
                raise ValueError(f"sample_weight is not supported with {kind} X")
            if is_dask_array(X):
                X = dask_source = DaskSource(X)
                n_threads = 1 if self.n_threads is None else n_threads   # per block task
            else:
                X = dask_source = ChunkSource(X)
            self.n_features_in_ = X.shape[1]
            self.__dict__.pop("feature_names_in_", None)
        else:
            X = self._validate_X(X, reset=True)
        N, D = X.shape
        if N < self.n_components:
            raise ValueError(f"Expected n_samples >= n_components but got n_components = "
                             f"{self.n_components}, n_samples = {N}")
        sw = check_sample_weight(sample_weight, N)
        if sw is not None and method.update == "point":
            sw = _relative_weights(sw)
        inits = self._check_inits(D)
        family = GaussianFamily(self.covariance_type, self.reg_covar, D)
        random_state = check_random_state_param(self.random_state)
        # draws (gibbs) get their own seed; the other methods leave the stream alone
        seed = random_state.randint(np.iinfo(np.int32).max) if method.assign == "sample" else 0
        if dask_source is not None:
            family.scatter = (dask_source.scatter()
                              if self.covariance_type == "tied" or method.update != "point"
                              else None)
        else:
            family.prepare(X, sw, n_threads, need_scatter=method.update != "point")
        engine = self._make_engine(family, method, n_threads, seed, X, sw)
        scale = self._objective_scale(float(N if sw is None else sw.sum()))
        if method.update == "sample":
            self._drop_stale(keep=_PRIOR_ATTRS)
            return self._fit_gibbs(X, sw, family, engine, inits, random_state, n_threads,
                                   callback)

        do_init = not (self.warm_start and hasattr(self, "converged_"))
        n_init = self.n_init if do_init else 1
        start = -np.inf if do_init else self.lower_bound_ / scale
        if not do_init and np.shape(self.means_) != (self.n_components, D):
            raise ValueError(f"warm_start: the fitted model has {np.shape(self.means_)[1]} "
                             f"features and {np.shape(self.means_)[0]} components; X has {D} "
                             f"features and n_components is {self.n_components}")
        warm = None if do_init else self._get_params()
        self._drop_stale(keep=_PRIOR_ATTRS if method.update == "posterior" else ())

        def initialise():
            if warm is not None:
                return warm
            if dask_source is not None:       # initialised from the first rows
                head = dask_source.head(min(N, _DASK_INIT_ROWS))
                return self._initial_params(head, None, family, inits, random_state,
                                            n_threads, engine)
            return self._initial_params(X, sw, family, inits, random_state, n_threads, engine)

        if getattr(self, "n_batches", None) is not None and dask_source is not None:
            raise ValueError("n_batches (memoized passes) needs an in-memory or memmap X "
                             "(a dask array or an iterable of chunks is not sliced)")
        best = self._run_point(engine, X, sw, initialise, callback, n_init=n_init, scale=scale,
                               start=start, blas=blas_single_thread())
        self._set_params(best.params, X.dtype)
        self._fitted_with = self._config()
        return X

    def _fit_gibbs(self, X, sw, family, engine, inits, random_state, n_threads, callback):
        """Blocked Gibbs: z | theta drawn by the kernel in sample mode, theta | z
        from the conjugate posteriors; n_chains chains of burn_in + n_samples *
        thin sweeps, every thin-th draw after burn-in kept.  The kept draws of
        all chains are put on common labels (Stephens' relabelling, see
        fastvem.diagnostics.relabel) before any summary; the summaries of a
        component average the draws in which it holds data."""
        from ..diagnostics import occupancy
        # every chain starts from its own k-means fit (the best of a few k-means++
        # seedings, drawn from the chain's own seed): dispersed starts that are
        # still in the posterior's bulk -- a Gibbs chain started in a poor local
        # mode of a mixture rarely leaves it.  The other init_params are as given.
        init = (f"kmeans{_GIBBS_KMEANS_INIT}" if self.init_params == "kmeans"
                else self.init_params)

        def start(chain):
            engine.seed = int(random_state.randint(np.iinfo(np.int32).max))
            return self._initial_params(X, sw, family, inits, random_state, n_threads, engine,
                                        init=init)

        draws, log_joint, seconds, n_kept = self._run_chains(engine, X, sw, start, callback,
                                                             blas=blas_single_thread())
        stack = {"weights": np.stack([d[0] for d in draws]),
                 "means": np.stack([d[1]["means"] for d in draws]),
                 "covariances": np.stack([d[1]["covariances"] for d in draws]),
                 "counts": np.stack([d[2] for d in draws])}
        stack = self._align_draws(
            stack, X.shape[0], sw, lambda rows: np.ascontiguousarray(X[rows]),
            lambda s, sub: engine.family.estep(sub, _kernel_params(
                engine, self._draw_params(stack, s), X.dtype), "resp", engine.n_threads),
            shared=("covariances",) if self.covariance_type == "tied" else (),
            blas=blas_single_thread())
        self.posterior_samples_ = stack
        N = X.shape[0]
        unit = float(N if sw is None else sw.sum()) / N
        occ, self.occupancy_, self.n_occupied_posterior_ = occupancy(stack["counts"], unit)
        self.occupied_ = self.occupancy_ >= 0.5
        self._set_params(self._summarise_draws(stack, occ, engine.prior), X.dtype)
        D = X.shape[1]
        self._mixing(log_joint, seconds, stack, n_kept,
                     lambda shaped, k: {f"mean_{k}_{d}": shaped["means"][..., k, d]
                                        for d in range(D)})
        self._fitted_with = self._config()
        return X

    def _draw_params(self, stack, s):
        covs = stack["covariances"][s]
        return stack["weights"][s], {"means": stack["means"][s], "covariances": covs,
                                     "precisions_cholesky": precision_cholesky(
                                         covs, self.covariance_type)}

    def _summarise_draws(self, stack, occ, prior):
        """Posterior means of the relabelled draws: the weights over every draw,
        a component's mean and covariance over the draws in which it holds data.
        A component empty in most draws (occupied_ False) gets the prior's mean
        and the covariance at the prior's expected precision, c0 / nu0: its draws
        are mostly prior draws, which would otherwise pollute the summaries."""
        ct = self.covariance_type
        weights = stack["weights"].mean(0)
        means = np.empty(stack["means"].shape[1:])
        covs = (stack["covariances"].mean(0) if ct == "tied"
                else np.empty(stack["covariances"].shape[1:]))
        for k in range(means.shape[0]):
            has = occ[:, k]
            if has.mean() >= 0.5:
                means[k] = stack["means"][has, k].mean(0)
                if ct != "tied":
                    covs[k] = stack["covariances"][has, k].mean(0)
            else:
                means[k] = prior.mean_prior
                if ct != "tied":
                    covs[k] = np.asarray(prior.covariance_prior) / prior.degrees_of_freedom_prior
        return weights / weights.sum(), {"means": means, "covariances": covs,
                                         "precisions_cholesky": precision_cholesky(covs, ct)}

    def _initial_params(self, X, sw, family, inits, random_state, n_threads, engine,
                        init=None):
        """Initial parameters, as scikit-learn: responsibilities from init_params,
        then any of weights_init / means_init / precisions_init override.  Mean
        field: q(theta) from the initial responsibilities (scikit-learn's
        BayesianGaussianMixture._initialize)."""
        if engine.method.update == "posterior":
            params, _ = engine.update(self._initial_statistics(X, sw, family, random_state,
                                                               n_threads))
            return params
        weights_init, means_init, prec_init = inits
        ct = self.covariance_type
        weights = means = covs = None
        if weights_init is None or means_init is None or prec_init is None:
            stats = self._initial_statistics(X, sw, family, random_state, n_threads, init)
            nk = stats.nk + family.count_floor
            theta = family.point_estimate(stats, nk)
            means, covs, pc = theta["means"], theta["covariances"], theta["precisions_cholesky"]
            weights = nk / nk.sum()
        if weights_init is not None:
            weights = weights_init
        if means_init is not None:
            means = means_init
        if prec_init is not None:
            pc = precision_cholesky_from_precisions(prec_init, ct)
            covs = covariances_from_precision_cholesky(pc, ct)
        return np.array(weights, dtype=np.float64), {
            "means": np.array(means, dtype=np.float64),
            "covariances": np.array(covs, dtype=np.float64), "precisions_cholesky": pc}

    def _initial_statistics(self, X, sw, family, random_state, n_threads, init=None):
        K = self.n_components
        N = X.shape[0]
        init = self.init_params if init is None else init
        if init.startswith("kmeans") and N > _KMEANS_MAX_ROWS:
            # large data (a memmap, say): k-means on evenly spaced rows, then every row
            # to its nearest centre in one kernel pass -- no N-sized array
            rows = np.linspace(0, N - 1, _KMEANS_MAX_ROWS).astype(np.int64)
            sub = np.ascontiguousarray(X[rows])
            centres = KMeans(n_clusters=K, n_init=int(init[6:] or 1),
                             random_state=random_state).fit(
                sub, sample_weight=None if sw is None else sw[rows]).cluster_centers_
            D = X.shape[1]
            ident = {"full": np.broadcast_to(np.eye(D), (K, D, D)), "tied": np.eye(D),
                     "diag": np.ones((K, D)), "spherical": np.ones(K)}[self.covariance_type]
            kp = family.kernel_params(centres, np.ascontiguousarray(ident), np.zeros(K),
                                      X.dtype)
            return family.statistics(X, sw, kp, "argmax", 0, n_threads)
        if init.startswith("kmeans") or init in ("k-means++", "random_from_data"):
            if init.startswith("kmeans"):
                labels = KMeans(n_clusters=K, n_init=int(init[6:] or 1),
                                random_state=random_state).fit(
                    X, sample_weight=sw).labels_
                members = np.arange(N)
            elif init == "k-means++":
                _, members = kmeans_plusplus(X, K, random_state=random_state, sample_weight=sw)
                labels = np.arange(K)
            else:
                members = random_state.choice(N, size=K, replace=False)
                labels = np.arange(K)
            lloyd = init.startswith("kmeans")
            Xs = X if lloyd else np.ascontiguousarray(X[members])
            ws = sw if (sw is None or lloyd) else sw[members]
            return family.statistics_from_labels(Xs, ws, labels, K, _centre(Xs), n_threads)
        # 'random': uniform responsibilities drawn block by block in row order (the
        # same stream as scikit-learn's single (N, K) draw)
        step = init_block_rows(K)
        ref = _centre(X)
        stats = None
        for s in range(0, N, step):
            r = random_state.uniform(size=(min(step, N - s), K))
            r /= r.sum(1, keepdims=True)
            part = family.statistics_from_resp(
                X[s:s + step], None if sw is None else sw[s:s + step], r, ref, n_threads)
            stats = part if stats is None else stats + part
        return stats

    # ------------------------------------------------------------- parameters
    def _posterior(self):
        """True when the fitted parameters are q(theta) (mean field)."""
        return self._method().update == "posterior"

    def _get_params(self):
        if self._posterior():
            return self._get_posterior()
        return np.asarray(self.weights_, dtype=np.float64), {
            "means": np.asarray(self.means_, dtype=np.float64),
            "covariances": np.asarray(self.covariances_, dtype=np.float64),
            "precisions_cholesky": np.asarray(self.precisions_cholesky_, dtype=np.float64)}

    def _callback_params(self, params):
        """By name, as the fitted attributes: weights (or the weights' concentration
        under mean field), means, covariances, precisions_cholesky (q's entries)."""
        if isinstance(params[0], dict):
            return {**params[0], "weight_concentration": params[1]}
        named = {"weights": params[0], **params[1]}
        if len(params) > 2:
            named["counts"] = params[2]
        return named

    def _set_params(self, params, dtype):
        """The fitted attributes from the engine's (weights, theta) or (q, conc)."""
        ct = self.covariance_type
        if isinstance(params[0], dict):          # mean field: (q(theta), q(pi))
            params, conc = params
            self.weight_concentration_ = conc
            self.weights_ = self._weight_prior().mean_weights(conc).astype(dtype)
            self.mean_precision_ = params["mean_precision"]
            self.degrees_of_freedom_ = params["degrees_of_freedom"]
        else:
            weights, params = params[0], params[1]
            self.weights_ = weights.astype(dtype)
        self.means_ = params["means"].astype(dtype)
        self.covariances_ = params["covariances"].astype(dtype)
        self.precisions_cholesky_ = params["precisions_cholesky"].astype(dtype)
        self.precisions_ = precisions_from_cholesky(params["precisions_cholesky"], ct).astype(dtype)

    def _engine(self):
        """The E-step of predict / score: under q(theta) the expected-log
        parameters (as scikit-learn's BayesianGaussianMixture), else the point ones."""
        post = self._posterior()
        return FamilyEngine(GaussianFamily(self.covariance_type, self.reg_covar),
                            Mixture(self.n_components), PRESETS["meanfield" if post else "em"],
                            weight_prior=self._weight_prior() if post else None,
                            n_threads=default_n_threads(self.n_threads))

    def _weight_prior(self):
        return DirichletWeights(self.weight_concentration_prior_type,
                                self.weight_concentration_prior_)

    def _get_posterior(self):
        conc = self.weight_concentration_
        if self.weight_concentration_prior_type == "dirichlet_process":
            conc = (np.asarray(conc[0], dtype=np.float64), np.asarray(conc[1], dtype=np.float64))
        else:
            conc = np.asarray(conc, dtype=np.float64)
        return {"means": np.asarray(self.means_, dtype=np.float64),
                "mean_precision": np.asarray(self.mean_precision_, dtype=np.float64),
                "degrees_of_freedom": np.asarray(self.degrees_of_freedom_, dtype=np.float64),
                "covariances": np.asarray(self.covariances_, dtype=np.float64),
                "precisions_cholesky": np.asarray(self.precisions_cholesky_, dtype=np.float64)
                }, conc

    # ------------------------------------------------------------- inference
    def _estep(self, X, want):
        """Chunked E-step under the fitted parameters (see GaussianFamily.estep).
        gibbs: log p(x) is the log of the mean density over the kept draws."""
        self._check_reach(X)
        if self._method().update == "sample":
            return self._estep_over_draws(X, want)
        if want == "norm" and self._method().update == "posterior" and self._predictive_t:
            return self._log_student_t_predictive(X)
        engine = self._engine()
        kp = _kernel_params(engine, self._get_params(), X.dtype)
        with blas_single_thread():
            return engine.family.estep(X, kp, want, engine.n_threads)

    def _check_reach(self, X):
        """The kernel forms U^T (x - mean) in X's dtype: refuse (rather than return
        inf / NaN) when the model's precision factors times the magnitude of X and
        of the means overflow its squares."""
        limit = np.sqrt(np.finfo(X.dtype).max) / 1e4
        pc = np.abs(np.asarray(self.precisions_cholesky_, dtype=np.float64)).max(initial=0.0)
        means = np.abs(np.asarray(self.means_, dtype=np.float64)).max(initial=0.0)
        reach = (np.abs(X).max(initial=0.0) + means) * pc
        if not reach <= limit:
            raise ValueError(f"the model's precision factors (up to {pc:.3g}) times the "
                             f"magnitude of X and the means ({reach / max(pc, 1e-300):.3g}) "
                             f"overflow {X.dtype} (up to {limit:.3g} is supported)")

    # GaussianMixture(method='meanfield') scores with the posterior predictive;
    # BayesianGaussianMixture keeps scikit-learn's expected-log density.
    _predictive_t = True

    def _log_student_t_predictive(self, X, step=1 << 16):
        """log p(x | X) under q(theta): sum_k E[pi_k] St(x | m_k, scale_k, dof_k)
        (diag: a product of univariate t's, one per dimension)."""
        from scipy.special import gammaln, logsumexp
        q, conc = self._get_posterior()
        fam = GaussianFamily("full" if self.covariance_type == "tied" else self.covariance_type)
        dof, u = GaussianFamily(self.covariance_type).predictive_student_t(q)
        K, D = q["means"].shape
        logw = np.log(self._weight_prior().mean_weights(conc))
        logdet = fam.log_normaliser(u, D) + 0.5 * D * np.log(2 * np.pi)   # log|scale|^-1/2
        const = (logw + gammaln(0.5 * (dof + D)) - gammaln(0.5 * dof)
                 - 0.5 * D * np.log(dof * np.pi) + logdet)
        # the kernel gives -0.5 * Mahalanobis with cst = 0: run it per block of rows
        out = np.empty(X.shape[0])
        if self.covariance_type == "diag":
            # independent precisions per dimension: a product of univariate t's
            c1 = (gammaln(0.5 * (dof + 1)) - gammaln(0.5 * dof) - 0.5 * np.log(dof * np.pi))
            cst = logw + D * c1 + np.log(u).sum(1)
            rows = max(1, (1 << 22) // (K * D))
            for s in range(0, X.shape[0], rows):
                z2 = ((X[s:s + rows, None, :] - q["means"][None]) * u[None]) ** 2   # (b, K, D)
                out[s:s + rows] = logsumexp(
                    cst - 0.5 * (dof + 1) * np.log1p(z2 / dof[None, :, None]).sum(-1), axis=1)
            return out
        kp = fam.kernel_params(q["means"], u, np.zeros(K), X.dtype)
        with blas_single_thread():
            for s in range(0, X.shape[0], step):
                maha = -2.0 * fam.estep(X[s:s + step], kp, "logprob",
                                        default_n_threads(self.n_threads)).astype(np.float64)
                out[s:s + step] = logsumexp(
                    const - 0.5 * (dof + D) * np.log1p(maha / dof), axis=1)
        return out

    def _estep_over_draws(self, X, want, rows=1 << 16):
        """gibbs: posterior averages over the kept (relabelled) draws, in blocks of
        rows.  'norm': log of the mean density; 'resp': the mean responsibilities
        (not those of the averaged parameters); 'label': their argmax; 'logprob':
        log of the mean joint density p(x, z=k)."""
        engine = self._engine()
        ps = self.posterior_samples_
        S = ps["weights"].shape[0]
        K = self.n_components
        mode = "norm" if want == "norm" else ("logprob" if want == "logprob" else "resp")
        out = np.empty((X.shape[0],) if mode == "norm" else (X.shape[0], K))
        kps = [_kernel_params(engine, self._draw_params(ps, s), X.dtype) for s in range(S)]
        with blas_single_thread():
            for lo in range(0, X.shape[0], rows):
                block = X[lo:lo + rows]
                acc = None
                for kp in kps:
                    v = engine.family.estep(block, kp, mode, engine.n_threads).astype(np.float64)
                    if mode == "resp":
                        acc = v if acc is None else acc + v
                    else:
                        acc = v if acc is None else np.logaddexp(acc, v)
                out[lo:lo + rows] = acc / S if mode == "resp" else acc - np.log(S)
        if want == "label":
            return np.argmax(out, axis=1)
        return out if mode != "resp" else out.astype(X.dtype, copy=False)

    def _predict_rows(self, X, what):
        return self._validate_X(X, reset=False)

    def _sample_component(self, k, n, rng):
        mean, ct = self.means_[k], self.covariance_type
        if ct == "full":
            return rng.multivariate_normal(mean, self.covariances_[k], n)
        if ct == "tied":
            return rng.multivariate_normal(mean, self.covariances_, n)
        return mean + rng.standard_normal(size=(n, mean.shape[0])) * np.sqrt(self.covariances_[k])

    def _n_parameters(self):
        K, D = self.means_.shape
        cov = {"full": K * D * (D + 1) / 2.0, "diag": K * D, "tied": D * (D + 1) / 2.0,
               "spherical": K}[self.covariance_type]
        return int(cov + K * D + K - 1)

    # ------------------------------------------------------------ persistence
    def _check_loaded(self):
        """Every fitted attribute of a loaded model, against its schema (see
        fastvem._load_checks); ValueError naming the attribute otherwise."""
        from .._load_checks import check_gaussian_mixture
        check_gaussian_mixture(self)
        if (getattr(self, "weight_concentration_", None) is not None
                and self.weight_concentration_prior_type == "dirichlet_process"):
            self.weight_concentration_ = tuple(np.asarray(self.weight_concentration_))
