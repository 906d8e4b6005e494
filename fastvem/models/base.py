"""The base estimator of every mixture model, written once: the fit schedule
(n_init restarts of the engine's iterations, SQUAREM, memoized passes, the
convergence warning), fit / fit_predict, partial_fit (stepwise EM / SVI), the
predictions (predict, predict_proba, score_samples, score, bic, aic, sample),
persistence and the scikit-learn plumbing.

A model names its family, structure and fitted attributes, and fills in:

    _fit(X, sample_weight, callback) -> data   validate, build the engine, call
                                               _run_point (the sampler: _run_chains,
                                               then _align_draws), store the params
    _labels(data, X)                   the labels of the rows fit ran over
    _predict_rows(X, what)             rows validated against the fitted model
    _estep(rows, want)                 want: 'label', 'resp' (N x K), 'norm' (log
                                       p(x), N), 'logprob' (log p(x, z=k), N x K)
    _sample_component(k, n, rng)       n rows drawn from component k
    _n_parameters()                    free parameters (bic, aic)
    _check_loaded()                    the schema of its saved attributes

and, for partial_fit (written here once, on fastvem.engine.Stepwise):
_stream_chunk, _stream_start, _stream_from_fit and _stream_store (see there).

Every mixture runs on one engine (fastvem.engine.FamilyEngine: a Family x the
mixture structure x a method, GaussianMixture's Cholesky-factor family among
them); its interface -- statistics, update, bound, step, accelerated -- is also
the HMM's and the topic model's, so the schedule below runs every model.
"""
import contextlib
import numbers

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._available_if import available_if
from sklearn.utils.validation import check_is_fitted

from ..engine import fit_restarts, memoized, run_chain
from ..io import save_estimator
from ..methods import get_method
from .._validation import (FittedConfig, check_random_state_param, progress_reporter,
                           stepwise_schedule)

__all__ = ["MixtureEstimator"]


class MixtureEstimator(FittedConfig, DensityMixin, BaseEstimator):
    """The shared estimator of the mixture models (see the module doc)."""

    # input tags: non-negative data only (the count families)
    _positive_only = False

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None, sample_weight=None, callback=None):
        """Estimate the parameters; returns self.

        sample_weight : frequency weights, shape (n_samples,).
        callback : called as ``callback(iteration, objective, params)`` after each
            iteration (each sweep for gibbs); returning True stops the run.  params
            are the engine's (weights, theta) or (q, concentration); GaussianMixture
            gives them by name (a dict with 'weights', 'means', 'covariances', ...).
        """
        self._fit(X, sample_weight, callback)
        return self

    def fit_predict(self, X, y=None, sample_weight=None, callback=None):
        """Fit, then return the most probable component of each row of X (of a
        chunked source: of every row, chunk by chunk, in order)."""
        data = self._fit(X, sample_weight, callback)
        return self._labels(data, X)

    def _iterate(self, engine, data, sw, initialise, report, n_init=None, rows=None,
                 scale=1.0, start=-np.inf, callback=None, blas=None):
        """n_init runs of the engine's step from initialise() (the best final
        objective kept): memoized passes over n_batches batches of rows (rows(lo,
        hi) slices the data) when n_batches is set, SQUAREM around the step when
        accelerate='squarem' (an iteration then runs three E-steps or more and has
        converged when its gain is below 3 * tol: tol per E-step).  tol applies to
        the objective per unit weight times scale.  Returns (FitResult, E-steps
        over every run)."""
        step = engine.step(data, sw)
        if getattr(self, "n_batches", None) is not None:
            step = memoized(engine, data, sw, self.n_batches, rows=rows)
        counter = {"steps": 0}
        tol = self.tol / scale
        if getattr(self, "accelerate", None) == "squarem":
            total = float(data.shape[0] if sw is None else np.sum(sw))
            step = engine.accelerated(step, counter, total, data.shape[1])
            tol *= 3
        with blas if blas is not None else contextlib.nullcontext():
            best = fit_restarts(initialise, step, self.n_init if n_init is None else n_init,
                                self.max_iter, tol, start, callback=self._user_callback(callback),
                                progress=report.iteration, on_restart=report.restart,
                                on_end=report.end)
        return best, counter["steps"] or int(best.n_iter)

    def _run_point(self, engine, data, sw, initialise, callback=None, *, rows=None, scale=1.0,
                   start=-np.inf, n_init=None, blas=None):
        """The fit of the point and mean-field methods: _iterate under scikit-learn's
        verbose lines, then the run's fitted attributes -- converged_, n_iter_,
        n_e_steps_ (E-steps over every restart), lower_bound_ and lower_bounds_
        (the objective per unit weight times scale), trace_ -- and the warning when
        the best run did not converge.  Returns the best FitResult, whose params
        the model stores."""
        report, close = progress_reporter(self, engine.method.name)
        try:
            best, n_e_steps = self._iterate(engine, data, sw, initialise, report, n_init=n_init,
                                            rows=rows, scale=scale, start=start,
                                            callback=callback, blas=blas)
        finally:
            close()
        self.converged_ = bool(best.converged)
        self.n_iter_ = int(best.n_iter)
        self.n_e_steps_ = n_e_steps
        self.lower_bound_ = float(best.objective * scale)
        self.lower_bounds_ = [v * scale for v in best.trace.objective]
        self.trace_ = best.trace.as_dict()
        self._warn_unconverged(best.converged)
        return best

    # ------------------------------------------------------------ partial_fit
    @available_if(lambda self: getattr(self, "method", "em") != "gibbs")
    def partial_fit(self, X, y=None, sample_weight=None):
        """One stochastic step on the chunk X; returns self.  em / vem / crisp:
        stepwise EM; meanfield: stochastic variational inference (the schedule is
        fastvem.engine.Stepwise, the same for every model).

        The running statistics are S <- (1 - rho) S + rho * scale * stats(X), with
        rho = (learning_offset + t) ** -learning_decay (t = 0, 1, ... counts the
        calls: the first takes the chunk's statistics whole) and scale = (the weight
        seen so far, or total_samples for meanfield when set) / (the chunk's
        weight), so that a prior weighs as in a fit of the rows seen (a model
        whose point estimates are scale-free may keep them per sample).  The first
        call initialises from its chunk as fit does.  A model fitted by fit (or
        loaded) continues from its parameters, counted as one earlier step.
        Changing a parameter that shapes the fitted state between calls is an
        error ("refit required").  Not available for gibbs."""
        m = get_method(self.method)
        if m.update == "sample":
            raise ValueError("partial_fit is not available for method='gibbs'")
        schedule = stepwise_schedule(self)
        fitted = hasattr(self, "weights_")
        if fitted:
            # continue the fitted (or loaded) model; a changed shape-defining
            # parameter is an error, not a silent restart
            self._check_config("partial_fit")
        fam, data, sw, weight = self._stream_chunk(X, sample_weight, first=not fitted)
        stream = self.__dict__.get("_stream")
        if stream is None:
            stream = (self._stream_from_fit(fam, data) if fitted
                      else self._stream_start(fam, data, sw))
            self._stream = stream
        stream.engine.family = fam         # the family that prepared this chunk
        stats, new, events = stream.step(data, sw, weight, schedule,
                                         params=self._stream_params(stream),
                                         blend=lambda rho, scale:
                                         self._stream_blend(stream, fam, rho, scale))
        self._stream_store(stream, fam, new, data)
        self.n_iter_ = getattr(self, "n_iter_", 0) + 1
        self.converged_ = False
        self.lower_bound_ = float(stats.objective / max(stats.weight, 1e-300))
        self.lower_bounds_ = [self.lower_bound_]
        return self

    # the model's part of partial_fit:
    #   _stream_chunk(X, sample_weight, first) -> (family, data, sw, weight): the
    #       chunk validated (against the fitted model unless first) and prepared
    #   _stream_start(family, data, sw) -> Stepwise: the first call's engine and
    #       initial parameters (as fit initialises)
    #   _stream_from_fit(family, data) -> Stepwise: a fitted (or loaded) model's
    #       parameters as the statistics of one earlier step
    #   _stream_store(stream, family, params, data): the fitted attributes
    def _stream_params(self, stream):
        """The parameters of the chunk's E-step (default: the stream's)."""
        return stream.params

    def _stream_blend(self, stream, fam, rho, scale):
        """A model's own running state, blended before the update (default none)."""

    # ----------------------------------------------------------- gibbs chains
    def _check_sampler(self):
        for name, low in (("n_samples", 1), ("burn_in", 0), ("thin", 1), ("n_chains", 1)):
            v = getattr(self, name)
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
                raise TypeError(f"{name} must be an int, got {type(v).__name__}")
            if v < low:
                raise ValueError(f"{name} must be >= {low}, got {v}")

    def _run_chains(self, engine, data, sw, start, callback=None, blas=None):
        """_sample_chains under a progress bar over every sweep of every chain."""
        self._check_sampler()
        report, close = progress_reporter(
            self, engine.method.name, unit="Chain",
            total=self.n_chains * (self.burn_in + self.n_samples * self.thin))
        try:
            return self._sample_chains(engine, data, sw, start, report, callback, blas)
        finally:
            close()

    # the relabelling reads at most this many allocation probabilities (draws x
    # reference rows x components) at once, and at most _RELABEL_ROWS rows
    _RELABEL_CELLS = 4_000_000
    _RELABEL_ROWS = 2000

    def _align_draws(self, stack, n_rows, sw, take_rows, draw_resp, shared=(), blas=None):
        """The kept draws on common labels: Stephens' relabelling (fastvem.diagnostics)
        on the allocation probabilities of evenly spaced reference rows of the
        n_rows the sampler ran over (weighted by sw where given).  take_rows(rows)
        gives those rows; draw_resp(s, sub) the allocation probabilities (rows x K)
        of rows sub under draw s.  Sets n_relabelled_ and returns the stack
        permuted (the entries in shared are not per component)."""
        from ..diagnostics import permute_draws, relabel
        S, K = stack["weights"].shape
        n = int(min(n_rows, max(K, min(self._RELABEL_ROWS, self._RELABEL_CELLS // max(S * K, 1)))))
        rows = np.unique(np.linspace(0, n_rows - 1, n).round().astype(np.int64))
        sub = take_rows(rows)
        probs = np.empty((S, len(rows), K))
        with blas if blas is not None else contextlib.nullcontext():
            for s in range(S):
                probs[s] = draw_resp(s, sub)
        perms, _ = relabel(probs, None if sw is None else sw[rows])
        self.n_relabelled_ = int(np.any(perms != np.arange(K), axis=1).sum())
        return permute_draws(stack, perms, shared=shared)

    def _sample_chains(self, engine, data, sw, start, report, callback=None, blas=None):
        """n_chains chains of burn_in + n_samples * thin sweeps of the engine's
        sampling step (labels drawn by the kernel, then the parameters from their
        conditionals), chain c from start(c); every thin-th draw after burn-in is
        kept.  A callback returning True stops the sampler (every chain is then cut
        to the shortest).  Returns (the kept draws of every chain in order, the log
        joint per sweep (n_chains, sweeps), the mean seconds per sweep, draws kept
        per chain)."""
        n_sweeps = self.burn_in + self.n_samples * self.thin
        chains, log_joint, seconds = [], [], []
        with blas if blas is not None else contextlib.nullcontext():
            for chain in range(self.n_chains):
                report.restart(chain)
                params = start(chain)
                res, kept = run_chain(engine.step(data, sw), params, n_sweeps, self.burn_in,
                                      self.thin, callback=self._user_callback(callback),
                                      progress=report.iteration)
                if not kept:               # stopped by the callback during burn-in
                    kept.append(res.params)
                chains.append(kept)
                log_joint.append(res.trace.objective)
                seconds.append(res.trace.seconds)
                if res.n_iter < n_sweeps:  # a callback stopped the sampler
                    break
        n_kept = min(len(c) for c in chains)
        n_run = min(len(t) for t in log_joint)
        draws = [d for c in chains for d in c[:n_kept]]
        return (draws, np.array([t[:n_run] for t in log_joint]),
                np.mean([t[:n_run] for t in seconds], axis=0), n_kept)

    def _mixing(self, log_joint, seconds, stack, n_kept, component_quantities):
        """The chains' diagnostics, set as fitted attributes: log_joint_ (n_chains,
        sweeps), mixing_[name] = (rank-normalised split-R-hat, bulk ESS) of the log
        joint after burn-in, the allocation entropy, the sorted weights, and per
        component its relabelled weight and component_quantities(shaped, k) (shaped:
        the draws (n_chains, n_kept, ...)); rhat_ the worst, ess_ the least;
        converged_ only when every quantity mixed (a ConvergenceWarning names the
        worst otherwise); n_iter_, lower_bound_ (the mean log joint after burn-in),
        lower_bounds_ (the chain that ends highest) and trace_ (mean over chains)."""
        from ..diagnostics import check_mixing
        n_ch, n_run = log_joint.shape
        self.log_joint_ = log_joint
        post = log_joint[:, min(self.burn_in, n_run - 1):]
        quantities = {"log_joint": post}
        shaped = {k: v.reshape((n_ch, n_kept) + v.shape[1:]) for k, v in stack.items()}
        w_sorted = np.sort(shaped["weights"], axis=-1)
        share = shaped["counts"] / np.maximum(shaped["counts"].sum(-1, keepdims=True),
                                              np.finfo(np.float64).tiny)
        quantities["allocation_entropy"] = -np.sum(share * np.log(np.where(share > 0, share, 1)),
                                                   axis=-1)
        K = shaped["weights"].shape[-1]
        for j in range(K):
            quantities[f"sorted_weight_{j}"] = w_sorted[..., j]
        for k in range(K):
            quantities[f"weight_{k}"] = shaped["weights"][..., k]
            quantities.update(component_quantities(shaped, k))
        self.mixing_, self.rhat_, self.ess_, self.converged_ = check_mixing(
            quantities, "burn_in, n_samples or n_chains")
        self.n_iter_ = n_run
        self.lower_bounds_ = list(log_joint[int(np.argmax(log_joint[:, -1]))])
        self.lower_bound_ = float(post.mean())
        self.trace_ = {"objective": log_joint.mean(0), "seconds": seconds, "events": []}

    def _warn_unconverged(self, converged):
        if not converged and self.max_iter > 0:
            import warnings
            warnings.warn("Best performing initialization did not converge. Try different "
                          "init parameters, or increase max_iter, tol, or check for degenerate "
                          "data.", ConvergenceWarning)

    def _callback_params(self, params):
        """The engine's parameters as a fit's callback sees them (default: as they are)."""
        return params

    def _user_callback(self, callback):
        if callback is None:
            return None
        return lambda it, objective, params: callback(it, objective,
                                                      self._callback_params(params))

    @staticmethod
    def _check_callback(callback):
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")

    # ----------------------------------------------------------- predictions
    def _rows(self, X, what="predict"):
        check_is_fitted(self)
        self._check_config(what)
        return self._predict_rows(X, what)

    def predict(self, X):
        """Most probable component of each row of X."""
        return self._estep(self._rows(X), "label")

    def predict_proba(self, X):
        """Posterior probability of each component for each row of X, (N, K)."""
        return self._estep(self._rows(X), "resp")

    def score_samples(self, X):
        """log p(x) of each row of X under the fitted mixture."""
        return self._estep(self._rows(X), "norm")

    def score(self, X, y=None):
        """Mean log-likelihood per sample."""
        return float(np.mean(self.score_samples(X)))

    def _estimate_weighted_log_prob(self, X):
        """log p(x, z=k), (N, K), as scikit-learn's private method of that name."""
        return self._estep(self._rows(X), "logprob")

    def _total_loglik(self, X):
        ll = self.score_samples(X)
        return float(np.sum(ll)), ll.shape[0]

    def bic(self, X):
        """Bayesian information criterion of the fitted model on X (lower is better)."""
        ll, n = self._total_loglik(X)
        return -2 * ll + self._n_parameters() * np.log(n)

    def aic(self, X):
        """Akaike information criterion of the fitted model on X (lower is better)."""
        ll, _ = self._total_loglik(X)
        return -2 * ll + 2 * self._n_parameters()

    def sample(self, n_samples=1):
        """(X, y): n_samples rows drawn from the fitted mixture and their components."""
        check_is_fitted(self)
        self._check_config()
        if isinstance(n_samples, (bool, np.bool_)) or not isinstance(n_samples, numbers.Integral):
            raise TypeError(f"n_samples must be an int, got {n_samples!r}")
        if n_samples < 1:
            raise ValueError(f"Invalid value for 'n_samples': {n_samples}. The sampling "
                             "requires at least one sample.")
        rng = check_random_state_param(self.random_state)
        weights = np.asarray(self.weights_, dtype=np.float64)
        counts = rng.multinomial(n_samples, weights / weights.sum())
        X = np.vstack([self._sample_component(k, int(c), rng) for k, c in enumerate(counts)])
        y = np.concatenate([np.full(int(c), k, dtype=np.int64) for k, c in enumerate(counts)])
        return X, y

    # ------------------------------------------------------------ persistence
    def save(self, path):
        """Write the fitted model to `path` (.npz, pickle-free, versioned; fastvem.load
        reads it)."""
        save_estimator(self, path)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.positive_only = self._positive_only
        return tags
