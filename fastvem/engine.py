"""The engine: one fit loop, convergence monitor, trace and restarts for every
model, and the glue that runs family x structure x method for one iteration.

    for each block of rows:                       # kernels: chunks, threads, nogil
        stats += family.statistics(block, effective theta, assign mode)
    theta = update(stats)                         # point / posterior / sample
    objective = loglik (em) | ELBO (vem, meanfield) | log joint (crisp, gibbs)

Convergence is declared when the change of the per-sample objective falls
below ``tol`` (scikit-learn's rule).
"""
import os
import time
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import ThreadpoolController

from .methods import get_method

__all__ = ["Trace", "FitResult", "run_iterations", "fit_restarts",
           "FamilyEngine", "RowStats", "default_n_threads", "blas_single_thread", "squarem",
           "memoized", "Stepwise", "run_chain", "kept_sweep", "sweep_seed",
           "stream_key"]

_MASK64 = (1 << 64) - 1
_controller = None


_MAX_THREADS = 4096      # n_threads above this is refused as a mistake


def _available_cpus():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:   # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def sweep_seed(seed, sweep):
    """The key of a sweep's draws in every kernel (_ext/_common.pxd: sweep_key, the
    same wrapping 64-bit arithmetic): the kernels key each row's (or document's,
    or token's) uniform by (this key, its global index)."""
    return (int(seed) * 0x9E3779B97F4A7C15 + int(sweep)) & _MASK64


def _splitmix64(z):
    z = (z + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def stream_key(key, index):
    """A key made specific to an index (_ext/_common.pxd: stream_key): a chunk's
    key from its sweep's and the chunk's first row, a document's from its sweep's."""
    return _splitmix64((int(key) & _MASK64) ^ _splitmix64(int(index) & _MASK64))


def default_n_threads(n_threads=None):
    """The threads a kernel runs with: None or -1 means all CPUs this process may
    use; an int is capped at that number (more threads than CPUs only slow the
    kernels down, and each one costs memory).  Results do not depend on it."""
    cpus = _available_cpus()
    if n_threads is None or (isinstance(n_threads, (int, np.integer))
                             and not isinstance(n_threads, (bool, np.bool_))
                             and n_threads == -1):
        return cpus
    if isinstance(n_threads, (bool, np.bool_)) or not isinstance(n_threads, (int, np.integer)):
        raise TypeError(f"n_threads must be an int or None, got {n_threads!r}")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1 (or None / -1 for all CPUs), got {n_threads}")
    if n_threads > _MAX_THREADS:
        raise ValueError(f"n_threads={n_threads} is not a sensible thread count (this process "
                         f"may use {cpus} CPUs; at most {_MAX_THREADS} are accepted, and more "
                         "than the CPUs are capped to them)")
    return int(min(n_threads, cpus))


def blas_single_thread():
    """Context manager limiting BLAS to one thread (our kernels call BLAS from
    their own threads).  The controller is built once per process."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")


@dataclass
class Trace:
    """Per-iteration record of a fit: objective (per sample) and seconds."""
    objective: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    events: list = field(default_factory=list)   # (iteration, text), e.g. re-seeding

    def append(self, objective, seconds):
        self.objective.append(float(objective))
        self.seconds.append(float(seconds))

    def as_dict(self):
        return {"objective": np.array(self.objective), "seconds": np.array(self.seconds),
                "events": list(self.events)}

    def __len__(self):
        return len(self.objective)


@dataclass
class FitResult:
    params: object
    objective: float
    n_iter: int
    converged: bool
    trace: Trace


def run_iterations(step, params, max_iter, tol, start_objective=-np.inf, callback=None,
                   progress=None):
    """The fit loop.

    step(params, iteration) -> (objective of params, new params, events); the
    objective is the per-sample objective evaluated at the parameters the
    step started from (the E-step's by-product), as scikit-learn reports it.
    callback(iteration, objective, params) may return True to stop early.
    """
    trace = Trace()
    objective = start_objective
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        t0 = time.perf_counter()
        prev = objective
        objective, params, events = step(params, n_iter)
        trace.append(objective, time.perf_counter() - t0)
        trace.events.extend((n_iter, e) for e in events)
        if not np.isfinite(objective):
            raise FloatingPointError(
                f"the objective became {objective} at iteration {n_iter}; the data or the "
                "initial parameters are degenerate (try a larger reg_covar)")
        if progress is not None:
            progress(n_iter, objective, objective - prev)
        if callback is not None and callback(n_iter, objective, params):
            break
        # an iteration that re-seeded a component has not converged: its parameters
        # moved by the re-seeding, not by the fixed point
        if not events and abs(objective - prev) < tol:
            converged = True
            break
    return FitResult(params, objective, n_iter, converged, trace)


def kept_sweep(sweep, burn_in, thin):
    """Whether a sampler keeps its sweep (1, 2, ...): every thin-th after burn_in."""
    return sweep > burn_in and (sweep - burn_in) % thin == 0


def run_chain(step, params, n_sweeps, burn_in, thin, keep=None, callback=None, progress=None):
    """One chain of a sampler: n_sweeps sweeps of step (run_iterations without a
    convergence test), every kept sweep (kept_sweep) recorded as keep(sweep, params)
    (default: the parameters).  callback(sweep, objective, params) may return True
    to stop the chain.  Returns (FitResult, the kept records in order).  The
    mixtures' chains (MixtureEstimator._sample_chains) and LDA's collapsed chain run
    on it."""
    kept = []

    def on_sweep(sweep, objective, p):
        if kept_sweep(sweep, burn_in, thin):
            kept.append(p if keep is None else keep(sweep, p))
        return callback(sweep, objective, p) if callback is not None else False

    return run_iterations(step, params, n_sweeps, -1.0, callback=on_sweep,
                          progress=progress), kept


def fit_restarts(initialise, step, n_init, max_iter, tol, start_objective=-np.inf,
                 callback=None, progress=None, on_restart=None, on_end=None):
    """n_init runs of run_iterations; keeps the run with the largest final objective.
    on_restart(init) before, on_end(converged, objective) after each run."""
    best = None
    for init in range(n_init):
        if on_restart is not None:
            on_restart(init)
        params = initialise()
        if max_iter == 0:
            res = FitResult(params, start_objective, 0, False, Trace())
        else:
            res = run_iterations(step, params, max_iter, tol, start_objective, callback, progress)
        if on_end is not None:
            on_end(res.converged, res.objective)
        if best is None or res.objective > best.objective:
            best = res
    return best


class RowStats:
    """The row driver's statistics of a family on a mixture (``_ext/_expfam.pyx``):
    stats (K x S), nk (K), totals [sum w objective, sum w entropy, sum w log h] and
    the rows' weight.  They add and subtract field by field, like GaussianStats
    (memoized passes); a structure with statistics of its own (the HMM's start and
    transition counts) extends _fields."""

    _fields = ("stats", "nk", "totals", "weight")
    __slots__ = ("stats", "nk", "totals", "weight")

    def __init__(self, stats, nk, totals, weight):
        self.stats, self.nk, self.totals, self.weight = stats, nk, totals, float(weight)

    @property
    def objective(self):
        return float(self.totals[0])

    @property
    def entropy(self):
        return float(self.totals[1])

    def __add__(self, other):
        return type(self)(*(getattr(self, f) + getattr(other, f) for f in self._fields))

    def __sub__(self, other):
        return type(self)(*(getattr(self, f) - getattr(other, f) for f in self._fields))

    def __mul__(self, a):
        """Every field times the scalar a (a stepwise blend of statistics)."""
        return type(self)(*(getattr(self, f) * a for f in self._fields))


class FamilyEngine:
    """A family of the ``Family`` protocol x the mixture structure x a method: one
    iteration of the spectrum, for every mixture model (statistics, update,
    bound, step), so that run_iterations, fit_restarts, squarem, memoized and
    Stepwise run every model.  It never reads a parameter by name.

    Parameters are (weights, theta) for the point methods (theta: the family's,
    K x S mean parameters for the exponential families, the means and precision
    factors for the Cholesky-factor Gaussian), (q, concentration) under mean field,
    and (weights, theta, the sweep's allocation counts) for a draw.  The sampler's
    draws are keyed by (seed, sweep): the kernel's labels by sweep_seed(seed, sweep)
    and the row, the parameters' by a Generator seeded with [seed, sweep] (the
    family's draw first, then the weights').

    run_pass(data, sw, W, c, logw, mode, seed) -> (stats, nk, totals) (wrapped in a
    RowStats) or a statistics object of the family's own: the estimator's pass over
    its data (in memory, or chunk by chunk).  None: the family runs the pass itself,
    family.run_pass(..., n_threads) (the Gaussian Cholesky kernels)."""

    _MODES = {"softmax": 0, "argmax": 1, "sample": 2}

    def __init__(self, family, structure, method, run_pass=None, prior=None,
                 weight_prior=None, n_threads=1, seed=0):
        self.family = family
        self.structure = structure
        self.method = get_method(method)
        self.run_pass = run_pass
        self.prior = prior
        self.weight_prior = weight_prior
        self.n_threads = n_threads
        self.seed = int(seed)

    @property
    def posterior(self):
        return self.method.update == "posterior"

    def effective(self, params):
        """(W, c, log weights) of the E-step: the point parameters, or under q the
        expected natural parameters and log-normalisers and E log pi."""
        fam = self.family
        if self.posterior:
            q, conc = params
            W, c = fam.expected_effective(q)
            return W, c, self.weight_prior.expected_log_weights(conc)
        W, c = fam.effective(params[1])
        return W, c, self.structure.log_weights(params[0])

    def statistics(self, data, sample_weight, params, iteration=0):
        W, c, logw = self.effective(params)
        seed = sweep_seed(self.seed, iteration) if self.method.assign == "sample" else 0
        mode = self._MODES[self.method.assign]
        if self.run_pass is None:
            return self.family.run_pass(data, sample_weight, W, c, logw, mode, seed,
                                        self.n_threads)
        out = self.run_pass(data, sample_weight, W, c, logw, mode, seed)
        if not isinstance(out, tuple):
            return out
        weight = data.shape[0] if sample_weight is None else sample_weight.sum()
        return RowStats(*out, weight)

    def update(self, stats, iteration=0, params=None):
        """The method's update from statistics: a draw of theta and pi (gibbs),
        q(theta) and q(pi) (mean field), or the point estimates with empty
        components re-seeded (the family splits the heaviest live one; the event is
        returned).  The counts are floored by the family's count_floor (the
        Cholesky-factor Gaussian: scikit-learn's 10 eps) except for a draw."""
        fam, nk = self.family, stats.nk
        if self.method.update == "sample":
            rng = np.random.default_rng([self.seed & _MASK64, iteration & _MASK64])
            theta = fam.draw(stats.stats, nk, self.prior, rng)
            weights = self.weight_prior.sample(self.weight_prior.posterior(nk), rng)
            if np.any(weights < 0):
                weights = np.maximum(weights, 0.0)
                weights = weights / weights.sum()
            return (weights, theta, nk.copy()), []
        floored = nk + fam.count_floor
        if self.posterior:
            return (fam.posterior(stats.stats, floored, self.prior),
                    self.weight_prior.posterior(floored)), []
        weights = self.structure.point_estimate(floored)
        theta = fam.point_estimate(stats.stats, floored, None if params is None else params[1])
        events = []
        empty = self.structure.empty_components(nk, nk.sum())
        if len(empty):
            weights, theta, reseeded = fam.reseed(weights, theta, empty)
            if reseeded:
                events.append(f"re-seeded empty components {reseeded}")
        return (weights, theta), events

    def bound(self, stats, params):
        """The family's evidence lower bound (total) with the E-step's
        responsibilities (through the statistics and their entropy) and the
        updated q = (q(theta), q(pi)) (Family.bound)."""
        q, conc = params
        return self.family.bound(stats, q, conc, self.prior, self.weight_prior)

    def step(self, data, sample_weight):
        """step(params, iteration) -> (per-unit-weight objective, new params, events).
        The objective is the method's: mean log-likelihood at the parameters the
        E-step used (em, vem), mean complete-data log joint (crisp, gibbs), the
        variational bound after the update per unit weight (meanfield)."""
        def _step(params, iteration):
            stats = self.statistics(data, sample_weight, params, iteration)
            new, events = self.update(stats, iteration, params)
            if self.posterior:
                return self.bound(stats, new) / stats.weight, new, events
            return stats.objective / stats.weight, new, events
        return _step

    def accelerated(self, step, counter, total_weight, n_features=None):
        """squarem around step in the coordinates (log weights, the family's
        unconstrained theta); its safeguard compares the log-likelihood plus the
        family's log prior (per unit weight), the objective MAP-EM climbs."""
        fam, K = self.family, self.structure.n_components
        shape = []

        def to_vec(params):
            u = fam.to_unconstrained(params[1])
            if u is None:
                raise ValueError(f"accelerate='squarem' needs the family's unconstrained "
                                 f"coordinates, which a {type(fam).__name__} does not give")
            shape[:] = [np.shape(u)]
            return np.concatenate((np.log(np.maximum(params[0], 1e-300)), np.ravel(u)))

        def from_vec(v):
            if not np.all(np.isfinite(v)):
                return None
            w = np.exp(v[:K] - v[:K].max())
            t = fam.from_unconstrained(v[K:].reshape(shape[0]))
            return None if t is None else (w / w.sum(), t)

        return squarem(step, to_vec, from_vec, counter,
                       penalty=lambda params: fam.log_prior(params[1]) / total_weight)


def squarem(step, to_vec, from_vec, counter, penalty=None):
    """SQUAREM (Varadhan & Roland 2008, scheme S3) around a monotone fixed-point step.

    One accelerated step: two plain steps theta0 -> theta1 -> theta2, the
    extrapolation theta' = theta0 - 2 a r + a^2 v (r = theta1 - theta0,
    v = theta2 - 2 theta1 + theta0, a = -|r| / |v|, at most -1) in the unconstrained
    coordinates of to_vec / from_vec, then a plain step from theta'.  Safeguard: if
    the objective at theta' is below the objective at theta1, a is moved halfway to
    -1 and tried again; a = -1 is theta' = theta2, where the plain steps guarantee it.
    So the objective sequence never decreases.  penalty(params), when given, is
    added to the step's objective where the safeguard compares (MAP-EM climbs the
    log-likelihood plus the log prior); the objective returned is the step's own.
    counter['steps'] counts plain steps (E-steps), the cost that matters."""
    def climbed(L, params):
        return L if penalty is None else L + penalty(params)

    def _step(params, iteration):
        L0, p1, ev = step(params, iteration)
        L1, p2, ev2 = step(p1, iteration)
        counter["steps"] += 2
        L1 = climbed(L1, p1)
        x0, x1, x2 = to_vec(params), to_vec(p1), to_vec(p2)
        r = x1 - x0
        v = x2 - 2 * x1 + x0
        vv = float(v @ v)
        a = -np.sqrt(float(r @ r) / vv) if vv > 0 else -1.0
        a = min(a, -1.0)
        while True:
            cand = p2 if a == -1.0 else from_vec(x0 - 2 * a * r + a * a * v)
            if cand is not None:
                try:
                    Lc, p3, ev3 = step(cand, iteration)
                    Lc = climbed(Lc, cand)
                except (FloatingPointError, ValueError, np.linalg.LinAlgError):
                    Lc = -np.inf
                counter["steps"] += 1
                if a == -1.0 or (np.isfinite(Lc) and Lc >= L1):
                    return L0, p3, ev + ev2 + ev3
            a = (a - 1.0) / 2.0 if a < -1.5 else -1.0
    return _step


def memoized(engine, X, sample_weight, n_batches, rows=None, edges=None):
    """Memoized passes for mean field (Hughes & Sudderth 2013): the rows are cut into
    n_batches contiguous batches; each batch's statistics are kept, and visiting a
    batch replaces them (total <- total - old + new) before q(theta) is updated from
    the total.  Every visit and every update is an exact coordinate ascent step of
    the ELBO, so after the first pass (which builds the total batch by batch) the
    ELBO never decreases.  step(q, iteration) runs one pass and returns the ELBO per
    unit weight at its end.  rows(lo, hi) gives a batch of X (default X[lo:hi]).

    edges: the batches' boundaries (0 = edges[0] < ... < edges[-1] = N), in place of
    n_batches equal cuts (LDA cuts its documents every batch_size).  A total whose
    statistics define settle() is settled after each replacement (LDA floors its
    word-topic counts at 0); an engine with memoized_objective(total, q, kept, X)
    gives the pass's objective from the total and the kept batches (LDA sums its
    batches' beta-free terms as one array), engine.bound(total, q) / weight otherwise."""
    if edges is None:
        N = X.shape[0]
        n_batches = max(1, min(int(n_batches), N))     # a batch holds one row at least
        edges = np.linspace(0, N, n_batches + 1).astype(np.int64)
    else:
        n_batches = len(edges) - 1
    kept = [None] * n_batches
    state = {"total": None}
    objective = getattr(engine, "memoized_objective", None)

    def _step(q, iteration):
        for b in range(n_batches):
            lo, hi = int(edges[b]), int(edges[b + 1])
            if hi <= lo:
                continue
            sw = None if sample_weight is None else sample_weight[lo:hi]
            new = engine.statistics(X[lo:hi] if rows is None else rows(lo, hi), sw, q,
                                    iteration)
            total = state["total"]
            if total is None:
                total = new
            elif kept[b] is None:
                total = total + new
            else:
                total = total - kept[b] + new
            if hasattr(total, "settle"):
                total = total.settle()
            kept[b] = new
            state["total"] = total
            q, _ = engine.update(total, iteration)
        total = state["total"]
        if objective is not None:
            return objective(total, q, kept, X), q, []
        return engine.bound(total, q) / total.weight, q, []

    return _step


class Stepwise:
    """partial_fit's running state and step, written once for every model: stepwise
    EM for the point methods, stochastic variational inference for mean field
    (Cappé & Moulines 2009; Hoffman et al. 2013).

    The running statistics are S <- (1 - rho) S + rho * scale * stats(chunk) with
    rho = stepwise_rho(t, decay, offset) (the first step takes its chunk's
    statistics whole) and scale = (total_samples for mean field when given, else
    the weight seen so far) / (the chunk's weight), so that a prior weighs as in a
    fit of the rows seen; per_sample=True keeps the point methods' statistics per
    unit weight instead (scale = 1 / the chunk's weight: GaussianMixture, whose
    point estimates are scale-free).  The parameters are then the engine's update
    from S.  The statistics are the engine's own (anything that adds and scales:
    RowStats, GaussianStats, the HMM's)."""

    __slots__ = ("engine", "params", "stats", "t", "seen", "per_sample", "extra")

    def __init__(self, engine, params, stats=None, t=0, seen=0.0, per_sample=False):
        self.engine = engine
        self.params = params
        self.stats = stats
        self.t = int(t)
        self.seen = float(seen)
        self.per_sample = per_sample
        self.extra = {}            # a model's own running state (a pooled scatter, a trace)

    def step(self, data, sample_weight, weight, schedule, params=None, blend=None):
        """One step on a chunk of the given weight; schedule = (decay, offset,
        total_samples).  params: the parameters of the chunk's E-step (default the
        stream's).  blend(rho, scale), when given, runs before the update (a
        model's extra running state).  Returns (the chunk's statistics, the new
        parameters, the update's events); the stream moves on."""
        from ._validation import stepwise_rho
        decay, offset, total = schedule
        engine = self.engine
        params = self.params if params is None else params
        stats = engine.statistics(data, sample_weight, params, self.t)
        self.seen += weight
        rho = stepwise_rho(self.t, decay, offset)
        posterior = engine.method.update == "posterior"
        if posterior:
            scale = (total if total is not None else self.seen) / weight
        else:
            scale = (1.0 if self.per_sample else self.seen) / weight
        S = stats * (rho * scale)
        if self.stats is not None:
            S = self.stats * (1.0 - rho) + S
        if blend is not None:
            blend(rho, scale)
        new, events = engine.update(S, self.t, params)
        self.stats, self.params, self.t = S, new, self.t + 1
        return stats, new, events
