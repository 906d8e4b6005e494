"""Hidden Markov models on the shared engine: an hmmlearn 0.3 drop-in
(GaussianHMM, CategoricalHMM, MultinomialHMM, PoissonHMM) and the generic
``HMM(family, ...)``, by the methods em, vem, crisp, meanfield and gibbs.

The model is a family (`families/`) x the chain structure (`structures/hmm.py`) x
a method; one iteration runs the compiled sequence driver (`_ext/_hmm.pyx:
hmm_pass`) over whole sequences -- the family's statistics weighted by the chain's
local step, plus expected start and transition counts -- then updates the
parameters from those additive statistics (`HMMEngine`, the interface of
engine.FamilyEngine: statistics, update, bound, step), inside the engine's fit loop
(`engine.run_iterations`).

    method     kernel mode                  update                objective (trace_)
    em         0 forward-backward           hmmlearn's MAP        log p(X) at the
                                                                  iteration's start
    vem        3 factorised q(z_1)..q(z_T)  hmmlearn's MAP        its ELBO
    crisp      1 Viterbi path               hmmlearn's MAP        log p(X, path)
    meanfield  0 forward-backward on the    Dirichlet q(start),   ELBO: log Z~ - KL(q)
               expected logs (E_q log p)    q(transmat rows), the
                                            family's conjugate q
    gibbs      2 forward filtering,         draws from the        log p(X, drawn path)
               backward sampling            conditionals          per sweep

em reproduces hmmlearn iterate for iterate: the same M-step formulas (the
Dirichlet priors startprob_prior / transmat_prior; means_prior, means_weight,
covars_prior, covars_weight for the Gaussian; emissionprob_prior; lambdas_prior,
lambdas_weight -- hmmlearn's formula, whose n is the total occupancy), the same
log-likelihood history in ``monitor_.history`` and hmmlearn's stopping rule (the
gain of the total log-likelihood below tol, at most n_iter iterations).  The
Gaussian statistics are kept about the data's mean (the family's reference
point), so the covariances are formed from centred sums; the values are
hmmlearn's to round-off.

Differences from hmmlearn, on purpose: a transition row that receives no mass
(a state never visited under crisp, or every entry floored at 0 by a prior below
1) keeps its previous row instead of becoming a row of zeros, and a state whose
emission update is not finite (no occupancy and no prior mass) keeps its previous
emission parameters; both are recorded in ``trace_["events"]``.  The
``implementation`` argument is accepted and ignored (the kernel's scaled
forward-backward is exact in either case).  Predictions (score, predict_proba,
decode) are those of the HMM at the fitted point parameters for every method
(meanfield: the posterior means; gibbs: the average of the relabelled draws).
``lower_bound_`` and ``trace_["objective"]`` are per row; ``monitor_.history``
holds the totals, as hmmlearn's.  MultinomialHMM's kernel leaves the multinomial
coefficient out of log p(x | state) (a per-row constant); the estimator adds it
back to every objective, score, score_samples and decode, so that they are
hmmlearn's.

A sequence longer than 10^6 rows (``fastvem._ext._hmm.set_checkpoint_rows``
changes the threshold) runs em, crisp, meanfield and gibbs checkpointed, in
blocks of ceil(sqrt(L)) rows: O(sqrt(L) K) scratch instead of O(L K), the same
results bitwise; vem keeps its factorised q(z) of L x K whatever the length.

gibbs runs n_chains chains (default 2) of n_iter sweeps, relabels the draws of
every chain together and sets the mixtures' diagnostics: log_joint_ (n_chains,
n_iter), mixing_ (R-hat, bulk ESS per monitored quantity), rhat_, ess_ and
converged_ (fastvem.diagnostics; a ConvergenceWarning when a quantity did not
mix); see ``_BaseHMM._gibbs``.

Persistence: ``est.save(path)`` / ``fastvem.load(path)`` (fastvem/io.py) for every
model here; the monitor is saved as ``monitor_history_`` and rebuilt on load,
GaussianHMM's covariances in the covariance type's own shape (hmmlearn's
``_covars_``) are kept in the instance under ``covars_`` (the ``covars_`` property
still reads full matrices), and HMM(family) keeps what rebuilds its family
(``reference_`` of a Gaussian, ``n_categories_`` of a categorical; a Family object
cannot be saved).  Every attribute of a loaded model is checked by
fastvem/_load_checks_hmm.py.

Large data: fit also reads whole sequences from a source, once per iteration
(an iterable of sequences or of (rows, lengths) pairs, a Dask array with
lengths whose blocks hold whole sequences; `hmm_sources.py`), for em, vem, crisp
and meanfield; a memmap is read in place.  partial_fit(X, lengths) takes one
stochastic step on a batch of whole sequences (stepwise EM, or stochastic
variational inference under mean field), with learning_decay, learning_offset
and total_samples as the mixtures'.

VariationalGaussianHMM / VariationalCategoricalHMM are hmmlearn.vhmm's models:
method='meanfield' with hmmlearn's priors, start and attribute names; their lower
bound equals hmmlearn's iterate for iterate (every covariance_type; priors shared
by the states; params='stmc').
"""
import contextlib
import numbers
import sys
from collections import deque

import numpy as np
from sklearn.base import BaseEstimator

from ..engine import (RowStats, Stepwise, Trace, blas_single_thread, default_n_threads,
                      run_chain, run_iterations, sweep_seed)
from ..families.base import Family
from ..families.discrete import Categorical, Multinomial, Poisson, PROB_FLOOR, check_codes
from ..families.normal import (GaussianDiag, GaussianFull, GaussianSpherical, GaussianTied,
                               _to_matrix)
from ..io import register, save_estimator
from ..methods import get_method
from ..structures.hmm import Chain
from .._validation import check_random_state_param, stepwise_schedule
from .hmm_sources import (DaskSequenceBlocks, SequenceStream, refuse_sequence_source,
                          sequence_source, survey_batch as _survey_batch)

__all__ = ["GaussianHMM", "CategoricalHMM", "MultinomialHMM", "PoissonHMM", "HMM", "HMMEngine",
           "HMMStats",
           "ConvergenceMonitor", "VariationalGaussianHMM", "VariationalCategoricalHMM"]

_MASK64 = (1 << 64) - 1
# the mean parameters per state that gibbs' diagnostics monitor (the first ones)
_MONITORED_ENTRIES = 3
_MODES = {"em": 0, "vem": 3, "crisp": 1, "meanfield": 0, "gibbs": 2}
_COVARIANCE_TYPES = ("spherical", "diag", "full", "tied")
_SOURCE_INIT_ROWS = 100_000     # rows of a source the start (k-means, covariances) reads


def _kernel():
    from .._ext import _hmm
    return _hmm


# ---------------------------------------------------------------- statistics
class HMMStats(RowStats):
    """The additive statistics of one pass: the family's stats (K x S) and
    occupancies nk (K), the chain's start counts (K) and transition counts (K x K),
    totals [sum objective, sum entropy, sum log h] and the rows' weight."""

    _fields = ("stats", "nk", "start", "trans", "totals", "weight")
    __slots__ = ("start", "trans")

    def __init__(self, stats, nk, start, trans, totals, weight):
        super().__init__(stats, nk, totals, weight)
        self.start, self.trans = start, trans


def hmm_pass(fam, data, offsets, sw, W, c, log_start, log_trans, mode, seed, n_threads,
             labels=None, tol=1e-8, max_iter=200):
    """One pass of the sequence driver: (stats, nk, start, trans, totals)."""
    k = _kernel()
    K, S = W.shape
    stats, nk, start = np.zeros((K, S)), np.zeros(K), np.zeros(K)
    trans, totals = np.zeros((K, K)), np.zeros(3)
    ctx = blas_single_thread() if fam.features == "address" else contextlib.nullcontext()
    with ctx:
        k.hmm_pass(fam.kernel_data(data), fam.aux(), k.FEATURES[fam.features], fam.address, S,
                   np.ascontiguousarray(W, dtype=np.float64),
                   np.ascontiguousarray(c, dtype=np.float64), log_start, log_trans, offsets,
                   sw, stats, nk, start, trans, totals, int(mode), int(seed) & _MASK64,
                   n_threads, tol=tol, max_iter=max_iter, labels=labels)
    return stats, nk, start, trans, totals


# ---------------------------------------------------------------- the engine
class HMMEngine:
    """A family x the chain structure x a method over the sequence driver, with
    FamilyEngine's interface (statistics, update, bound, step).

    Parameters are (startprob, transmat, theta) for the point methods (theta: the
    family's K x S mean parameters) and (q_theta, q_chain) under mean field (q_chain
    = the Dirichlet concentrations (a_start, A_trans)).  update: the codes of the
    parameters a point update changes ('s' start, 't' transitions, and the family's
    own codes, which its point_estimate reads)."""

    def __init__(self, family, chain, method, data, offsets, n_threads, prior=None,
                 update="st", seed=0, vem_tol=1e-8, vem_max_iter=200):
        self.family = family
        self.chain = chain
        self.method = get_method(method)
        self.mode = _MODES[self.method.name]
        self.data, self.offsets = data, offsets
        self.n_threads = n_threads
        self.prior = prior
        self.update_codes = update
        self.seed = int(seed)
        self.vem_tol, self.vem_max_iter = vem_tol, vem_max_iter
        self.last_stats = None          # the statistics the last step's update read

    @property
    def posterior(self):
        return self.method.update == "posterior"

    def effective(self, params):
        """(W, c, log_start, log_trans) of the local step: the point parameters, or
        under q the expected natural parameters and expected logs."""
        if self.posterior:
            q, qc = params
            W, c = self.family.expected_effective(q)
            ls, lt = self.chain.expected_log(qc)
            return W, c, ls, lt
        startprob, transmat, theta = params
        W, c = self.family.effective(theta)
        ls, lt = self.chain.log_params(startprob, transmat, floor=self.mode == 3)
        return W, c, ls, lt

    def statistics(self, data, sample_weight, params, iteration=0, seed=None):
        W, c, ls, lt = self.effective(params)
        if seed is None:
            seed = sweep_seed(self.seed, iteration)
        if isinstance(data, SequenceStream):        # batch by batch, tree-summed
            return data.statistics(W, c, ls, lt, self.mode, seed, self.vem_tol,
                                   self.vem_max_iter)
        out = hmm_pass(self.family, data, self.offsets, sample_weight, W, c, ls, lt, self.mode,
                       seed, self.n_threads, tol=self.vem_tol, max_iter=self.vem_max_iter)
        n = len(self.offsets) - 1
        weight = data.shape[0] if sample_weight is None else float(
            np.sum(sample_weight * np.diff(self.offsets)) if n else 0.0)
        return HMMStats(*out, weight)

    def update(self, stats, iteration=0, params=None):
        """The method's update from the statistics: (q_theta, q_chain) under mean
        field, else hmmlearn's MAP of start and transitions and the family's point
        estimate (states without occupancy keep their parameters; events say so)."""
        fam = self.family
        if self.posterior:
            return (fam.posterior(stats.stats, stats.nk, self.prior),
                    self.chain.posterior(stats.start, stats.trans)), []
        startprob, transmat, theta = params
        startprob, transmat, events = self.chain.point_estimate(
            stats.start, stats.trans, startprob, transmat, self.update_codes)
        new = fam.point_estimate(stats.stats, stats.nk, theta)
        empty = np.flatnonzero(stats.nk <= 0)
        if len(empty):
            events.append(f"states {empty.tolist()} never visited")
        kept = getattr(fam, "kept_", None)
        if kept:
            events.append(f"states {kept} kept their emission parameters (update not finite)")
        return (startprob, transmat, new), events

    def bound(self, stats, params):
        """The ELBO of mean field at the parameters the pass ran with: log Z~ (the
        forward-backward normaliser on the expected logs, which is E_q log p(X, Z)
        + H[q(Z)] at the optimal q(Z)) - KL(q(theta) || prior) - KL(q(chain) || prior)."""
        q, qc = params
        return stats.objective - self.family.kl(q, self.prior) - self.chain.kl(qc)

    def expected_log_joint(self, stats, params):
        """E_q log p(X, Z | params) + H[q] of the q(Z) whose statistics these are:
        linear in the statistics, so any earlier q is scored at new parameters."""
        W, c, ls, lt = self.effective(params)
        return float(np.sum(W * stats.stats) + np.dot(c, stats.nk) + stats.totals[2]
                     + np.dot(ls, stats.start) + np.sum(lt * stats.trans) + stats.totals[1])

    def step(self, data, sample_weight, per_weight=True):
        """step(params, iteration) -> (objective, new params, events); the objective
        at the parameters the step started from, per unit weight (or the total).

        vem: the kernel's fixed point starts afresh from a forward pass, so it may land
        below the previous q(Z) scored at the new parameters; the step then keeps the
        previous q's statistics (their ELBO at the new parameters, exactly, from the
        statistics) -- so vem's ELBO never decreases, as em's log-likelihood."""
        last = {}

        def _step(params, iteration):
            stats = self.statistics(data, sample_weight, params, iteration)
            obj = self.bound(stats, params) if self.posterior else stats.objective
            events = []
            prev = last.get("stats")
            if self.mode == 3 and prev is not None:
                alt = self.expected_log_joint(prev, params)
                if alt > obj:
                    totals = prev.totals.copy()
                    totals[0] = alt
                    stats = HMMStats(prev.stats, prev.nk, prev.start, prev.trans, totals,
                                     prev.weight)
                    obj = alt
                    events.append("vem kept the previous q(z): its fixed point from a "
                                  "forward start was lower")
            last["stats"] = self.last_stats = stats
            new, ev = self.update(stats, iteration, params)
            return (obj / stats.weight if per_weight else obj), new, events + ev
        return _step


# ------------------------------------------------------ hmmlearn's M-steps
def _broadcast(value, shape, name):
    """A prior broadcast to shape (hmmlearn's _fix_priors_shape), finite."""
    try:
        arr = np.asarray(value, dtype=np.float64)
        arr = np.array(np.broadcast_to(arr, shape))
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or an array broadcastable to {shape}, got "
                         f"{value!r}") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return arr


class _DiagHMMFamily(GaussianDiag):
    """GaussianDiag whose point estimate is hmmlearn's GaussianHMM M-step for the
    'diag' and 'spherical' covariance types (statistics about the reference point)."""

    def __init__(self, n_features, n_components, covariance_type, min_covar, means_prior,
                 means_weight, covars_prior, covars_weight, update):
        super().__init__(n_features, reg_covar=min_covar)
        self.K = n_components
        self.covariance_type = covariance_type
        shape = (n_components, n_features)
        self.means_prior = _broadcast(means_prior, shape, "means_prior")
        self.means_weight = _broadcast(means_weight, shape, "means_weight")
        self.covars_prior = _broadcast(covars_prior, shape, "covars_prior")
        self.covars_weight = _broadcast(covars_weight, shape, "covars_weight")
        self.update = update
        self.kept_ = []

    def point_estimate(self, stats, nk, previous):
        D = self.n_features
        mu0, var0 = self._split(previous)
        s1, s2 = stats[:, :D], stats[:, D:]
        denom = nk[:, None]
        mw = self.means_weight
        mp = self.means_prior - self.ref
        with np.errstate(divide="ignore", invalid="ignore"):
            mu = (mw * mp + s1) / (mw + denom) if "m" in self.update else mu0
            if "c" in self.update:
                c_n = mw * (mu - mp) ** 2 + s2 - 2.0 * mu * s1 + mu * mu * denom
                c_d = np.maximum(self.covars_weight - 1.0, 0.0) + denom
                var = (self.covars_prior + c_n) / np.maximum(c_d, 1e-5)
                if self.covariance_type == "spherical":
                    var = np.tile(var.mean(1, keepdims=True), (1, D))
            else:
                var = var0
        bad = ~(np.all(np.isfinite(mu), 1) & np.all(np.isfinite(var), 1) & np.all(var > 0, 1))
        self.kept_ = np.flatnonzero(bad).tolist()
        mu, var = np.where(bad[:, None], mu0, mu), np.where(bad[:, None], var0, var)
        return np.hstack((mu, var + mu * mu))


class _FullHMMFamily(GaussianFull):
    """GaussianFull whose point estimate is hmmlearn's GaussianHMM M-step for the
    'full' and 'tied' covariance types."""

    def __init__(self, n_features, n_components, covariance_type, min_covar, means_prior,
                 means_weight, covars_prior, covars_weight, update):
        super().__init__(n_features, reg_covar=min_covar)
        self.K = n_components
        self.covariance_type = covariance_type
        D = n_features
        self.means_prior = _broadcast(means_prior, (n_components, D), "means_prior")
        mw = np.asarray(means_weight, dtype=np.float64)
        if mw.ndim == 0 or mw.shape in ((n_components,), (n_components, 1)):
            self.means_weight = _broadcast(mw.reshape(-1, 1) if mw.ndim else mw,
                                           (n_components, 1), "means_weight")
        else:
            raise ValueError(f"means_weight must be a number or one per state "
                             f"({n_components},) for covariance_type={covariance_type!r}, "
                             f"got shape {mw.shape}")
        cshape = (D, D) if covariance_type == "tied" else (n_components, D, D)
        self.covars_prior = _broadcast(covars_prior, cshape, "covars_prior")
        cw = np.asarray(covars_weight, dtype=np.float64)
        if cw.ndim:
            raise ValueError(f"covars_weight must be a number for covariance_type="
                             f"{covariance_type!r}, got shape {cw.shape}")
        self.covars_weight = float(_broadcast(cw, (), "covars_weight"))
        self.update = update
        self.kept_ = []

    def point_estimate(self, stats, nk, previous):
        D = self.n_features
        mu0, cov0 = self._split(previous)
        s1 = stats[:, :D]
        S2 = _to_matrix(stats[:, D:], D)
        mw = self.means_weight
        mp = self.means_prior - self.ref
        with np.errstate(divide="ignore", invalid="ignore"):
            mu = (mw * mp + s1) / (mw + nk[:, None]) if "m" in self.update else mu0
            if "c" in self.update:
                md = mu - mp
                so = s1[:, :, None] * mu[:, None, :]
                c_n = (mw[:, :, None] * md[:, :, None] * md[:, None, :] + S2 - so
                       - np.transpose(so, (0, 2, 1))
                       + mu[:, :, None] * mu[:, None, :] * nk[:, None, None])
                cvw = max(self.covars_weight - D, 0.0)
                if self.covariance_type == "tied":
                    cov = np.broadcast_to((self.covars_prior + c_n.sum(0)) / (cvw + nk.sum()),
                                          (len(nk), D, D)).copy()
                else:
                    cov = (self.covars_prior + c_n) / (cvw + nk[:, None, None])
                cov = 0.5 * (cov + np.transpose(cov, (0, 2, 1)))
            else:
                cov = cov0
        bad = ~(np.all(np.isfinite(mu), 1) & np.all(np.isfinite(cov), (1, 2)))
        for k in np.flatnonzero(~bad):
            try:
                np.linalg.cholesky(cov[k])
            except np.linalg.LinAlgError:
                bad[k] = True
        self.kept_ = np.flatnonzero(bad).tolist()
        mu = np.where(bad[:, None], mu0, mu)
        cov = np.where(bad[:, None, None], cov0, cov)
        return self._theta(mu, cov)


class _SphericalHMMFamily(_DiagHMMFamily, GaussianSpherical):
    """'spherical': hmmlearn's M-step for the point methods, GaussianSpherical's
    conjugate posterior (one precision a state) for mean field and gibbs."""

    describe = GaussianDiag.describe


class _TiedHMMFamily(_FullHMMFamily, GaussianTied):
    """'tied': hmmlearn's M-step for the point methods, GaussianTied's conjugate
    posterior (one precision shared by the states) for mean field and gibbs."""

    describe = GaussianFull.describe


class _CategoricalHMMFamily(Categorical):
    """Categorical (one feature of n_features symbols) with hmmlearn's M-step:
    max(emissionprob_prior - 1 + counts, 0), normalised; the conjugate prior of mean
    field and gibbs is Dirichlet(emissionprob_prior)."""

    def __init__(self, n_symbols, n_components, emissionprob_prior, update):
        super().__init__([n_symbols], alpha=0.0)
        self.emissionprob_prior = _broadcast(emissionprob_prior, (n_components, n_symbols),
                                             "emissionprob_prior")
        self.update = update
        self.kept_ = []

    def point_estimate(self, stats, nk, previous):
        if "e" not in self.update:
            self.kept_ = []
            return previous.copy()
        e = np.maximum(self.emissionprob_prior - 1.0 + stats, 0.0)
        tot = e.sum(1)
        bad = ~(tot > 0) | ~np.isfinite(tot)
        self.kept_ = np.flatnonzero(bad).tolist()
        out = e / np.where(bad, 1.0, tot)[:, None]
        out[bad] = previous[bad]
        return out

    def default_prior(self, X, sample_weight=None):
        if np.any(self.emissionprob_prior <= 0):
            raise ValueError("emissionprob_prior must be > 0 (a Dirichlet concentration) for "
                             "method='meanfield' or 'gibbs'")
        return self.emissionprob_prior

    def log_prior(self, theta):
        return float(np.sum((self.emissionprob_prior - 1.0)
                            * np.log(np.maximum(theta, PROB_FLOOR))))


class _MultinomialHMMFamily(Multinomial):
    """Multinomial counts over n_features symbols with hmmlearn's MultinomialHMM
    M-step (the expected counts normalised, no prior); the conjugate prior of mean
    field and gibbs is Dirichlet(1).  The kernel leaves the multinomial coefficient
    log n! - sum log x! out of log p(x | state); row_log_h holds it per row of the
    last prepared data (the estimator adds it to its scores)."""

    def __init__(self, n_symbols, update):
        super().__init__(n_symbols, alpha=0.0)
        self.update = update
        self.kept_ = []
        self.row_log_h = 0.0

    def prepare(self, X, fitting=False):
        from scipy.special import gammaln
        data = super().prepare(X, fitting)
        X = np.asarray(X, dtype=np.float64)
        self.row_log_h = gammaln(X.sum(1) + 1.0) - gammaln(X + 1.0).sum(1)
        return data

    def point_estimate(self, stats, nk, previous):
        if "e" not in self.update:
            self.kept_ = []
            return previous.copy()
        tot = stats.sum(1)
        bad = ~(tot > 0) | ~np.isfinite(tot)
        self.kept_ = np.flatnonzero(bad).tolist()
        out = stats / np.where(bad, 1.0, tot)[:, None]
        out[bad] = previous[bad]
        return out

    def log_prior(self, theta):
        return 0.0


class _PoissonHMMFamily(Poisson):
    """Poisson with hmmlearn's PoissonHMM M-step: (lambdas_prior + n y_bar) /
    (lambdas_weight + n), y_bar the state's mean and n the total occupancy (as
    hmmlearn 0.3 computes it).  Mean field and gibbs: Gamma(lambdas_prior,
    rate=lambdas_weight) where both are > 0, else the family's default prior."""

    def __init__(self, n_features, n_components, lambdas_prior, lambdas_weight, update):
        super().__init__(n_features)
        shape = (n_components, n_features)
        self.lambdas_prior = _broadcast(lambdas_prior, shape, "lambdas_prior")
        self.lambdas_weight = _broadcast(lambdas_weight, shape, "lambdas_weight")
        self.update = update
        self.kept_ = []

    def point_estimate(self, stats, nk, previous):
        if "l" not in self.update:
            self.kept_ = []
            return previous.copy()
        n = nk.sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            ybar = stats / nk[:, None]
            lam = (self.lambdas_prior + n * ybar) / (self.lambdas_weight + n)
        bad = ~np.all(np.isfinite(lam), 1) | np.any(lam < 0, 1)
        self.kept_ = np.flatnonzero(bad).tolist()
        lam[bad] = previous[bad]
        return lam

    def default_prior(self, X, sample_weight=None):
        if np.all(self.lambdas_prior > 0) and np.all(self.lambdas_weight > 0):
            return self.lambdas_prior[0], self.lambdas_weight[0]
        return super().default_prior(X, sample_weight)


# --------------------------------------------------------------- the monitor
class ConvergenceMonitor:
    """hmmlearn's convergence monitor: history (the total objective of every
    iteration), iter, and converged (n_iter reached, or the last gain below tol)."""

    _template = "{iter:>10d} {log_prob:>16.8f} {delta:>+16.8f}"

    def __init__(self, tol, n_iter, verbose):
        self.tol, self.n_iter, self.verbose = tol, n_iter, verbose
        self.history = deque()
        self.iter = 0

    def __repr__(self):
        return (f"ConvergenceMonitor(history={list(self.history)}, iter={self.iter}, "
                f"n_iter={self.n_iter}, tol={self.tol}, verbose={self.verbose})")

    def _reset(self):
        self.iter = 0
        self.history.clear()

    def report(self, log_prob):
        if self.verbose:
            delta = log_prob - self.history[-1] if self.history else np.nan
            print(self._template.format(iter=self.iter + 1, log_prob=log_prob, delta=delta),
                  file=sys.stderr)
        self.history.append(float(log_prob))
        self.iter += 1

    @property
    def converged(self):
        return (self.iter == self.n_iter
                or (len(self.history) >= 2 and self.history[-1] - self.history[-2] < self.tol))


# ---------------------------------------------------------------- validation
def _check_int(value, name, low):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) \
            or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _offsets(lengths, n_rows):
    """int64 offsets (n_seq + 1) of the sequences; ValueError naming lengths."""
    if lengths is None:
        return np.array([0, n_rows], dtype=np.int64)
    try:
        arr = np.asarray(lengths)
    except Exception:
        raise ValueError(f"lengths must be a 1-D array of positive integers, got "
                         f"{lengths!r}") from None
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"lengths must be a non-empty 1-D array of positive integers, got "
                         f"shape {arr.shape}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.floor(arr)):
            raise ValueError(f"lengths must hold integers, got {arr!r}")
    elif arr.dtype.kind not in "iu":
        raise ValueError(f"lengths must hold integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if np.any(arr <= 0):
        i = int(np.argmax(arr <= 0))
        raise ValueError(f"lengths must all be >= 1 (every sequence at least one row), got "
                         f"lengths[{i}] = {arr[i]}")
    if int(arr.sum()) != n_rows:
        raise ValueError(f"lengths must sum to the number of rows of X, {n_rows}; they sum "
                         f"to {int(arr.sum())}")
    return np.concatenate(([0], np.cumsum(arr))).astype(np.int64)


def _distribution(value, shape, name):
    """A user-given probability vector / matrix: shape, finite, >= 0, rows summing
    to 1 (hmmlearn's np.allclose); ValueError naming it."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must hold finite probabilities >= 0")
    s = arr.sum(-1)
    if not np.allclose(s, 1):
        raise ValueError(f"{name} rows must sum to 1 (got sums {s})")
    return arr / s[..., None] if arr.ndim > 1 else arr / s


def _row_constants(fam):
    """The per-row part of log p(x | state) the family's kernel leaves out (the
    multinomial coefficient of MultinomialHMM), or 0."""
    return getattr(fam, "row_log_h", 0.0)


def _sequence_constants(fam, offsets):
    """_row_constants summed per sequence (n_sequences,), or 0."""
    rows = _row_constants(fam)
    if np.ndim(rows) == 0:
        return 0.0
    return np.add.reduceat(rows, offsets[:-1]) if len(rows) else np.zeros(len(offsets) - 1)


def _shifted(step, constant):
    """A step whose objective is shifted by a constant (what the kernel leaves out)."""
    if not constant:
        return step

    def _step(params, iteration):
        obj, new, events = step(params, iteration)
        return obj + constant, new, events
    return _step


def _monitored_names(K, n_statistics):
    """The names of the quantities gibbs' diagnostics monitor (mixing_'s keys)."""
    n_mon = min(n_statistics, _MONITORED_ENTRIES)
    return (["log_joint"] + [f"sorted_occupancy_{j}" for j in range(K)]
            + [q for k in range(K) for q in [f"occupancy_{k}", f"stay_{k}"]
               + [f"theta_{k}_{j}" for j in range(n_mon)]])


def _posterior_start(fam, chain, prior, params, n_rows, n_seq):
    """Mean field's q from point parameters (startprob, transmat, theta): the
    posteriors of the statistics they imply with the rows spread evenly over the
    states."""
    startprob, transmat, theta = params
    K = len(startprob)
    nk0 = np.full(K, n_rows / K)
    return (fam.posterior(fam.initial_statistics(theta, nk0), nk0, prior),
            chain.initial_posterior(startprob, transmat, n_seq, n_rows - n_seq))


# the steps of the chain _implied_counts follows; a longer mean length takes, for
# the rest, the average distribution of the last _IMPLIED_TAIL of them (the chain's
# long-run occupancy, a periodic chain's included)
_IMPLIED_STEPS = 4096
_IMPLIED_TAIL = 1024


def _implied_counts(startprob, transmat, n_rows, n_seq):
    """(occupancies nk, start counts, transition counts) that (startprob, transmat)
    imply for n_seq sequences of n_rows rows in all, each of the mean length L:
    per sequence, the expected visits sum_{t < L} p_t (p_t = startprob A^t) and the
    transitions out of each state sum_{t < L - 1} p_t times its row of A; scaled so
    that the occupancies add to n_rows.  Past _IMPLIED_STEPS steps each row takes
    the average of p_t over the last _IMPLIED_TAIL steps computed."""
    K = len(startprob)
    L = max(int(round(n_rows / max(n_seq, 1.0))), 1)
    p = np.array(startprob, dtype=np.float64)
    visits, leaving, tail = np.zeros(K), np.zeros(K), np.zeros(K)
    for t in range(min(L, _IMPLIED_STEPS)):
        visits += p
        if t < L - 1:
            leaving += p
        if t >= _IMPLIED_STEPS - _IMPLIED_TAIL:
            tail += p
        p = p @ transmat
    if L > _IMPLIED_STEPS:
        tail /= _IMPLIED_TAIL
        visits += (L - _IMPLIED_STEPS) * tail
        leaving += (L - 1 - _IMPLIED_STEPS) * tail
    scale = n_rows / L
    return visits * scale, startprob * float(n_seq), (leaving * scale)[:, None] * transmat


def _relabel_params(params, perm):
    startprob, transmat, theta = params
    return startprob[perm], transmat[np.ix_(perm, perm)], theta[perm]


# ---------------------------------------------------------------- estimator
class _BaseHMM(BaseEstimator):
    """The shared HMM estimator; models name their family, emission codes and the
    mapping between theta and their fitted attributes."""

    _emission_codes = ""           # the codes of params / init_params for the emissions
    # what save writes and load reads (besides trace_): the chain, the run, and the
    # attributes of mean field and gibbs; each model adds its emission attributes
    _common_attributes = ("startprob_", "transmat_", "lower_bound_", "n_iter_",
                          "n_features_in_", "monitor_history_", "startprob_posterior_",
                          "transmat_posterior_", "emission_posterior_", "posterior_samples_",
                          "n_relabelled_", "log_joint_", "mixing_", "rhat_", "ess_",
                          "converged_", "n_rows_seen_", "n_sequences_seen_", "n_steps_",
                          "family_prior_")
    _emission_attributes = ()

    _fitted_attributes = _common_attributes
    # what fit drops first: a previous fit's attributes, which another method leaves
    _stale_attributes = ("startprob_posterior_", "transmat_posterior_", "emission_posterior_",
                         "posterior_samples_", "n_relabelled_", "reference_", "n_categories_",
                         "_sample_family", "log_joint_", "mixing_", "rhat_", "ess_",
                         "converged_")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._fitted_attributes = cls._common_attributes + cls._emission_attributes

    # -------------------------------------------------------- the monitor
    @property
    def monitor_(self):
        """hmmlearn's ConvergenceMonitor of the last fit (history: the total
        objective per iteration; saved as monitor_history_ and rebuilt on load)."""
        try:
            return self.__dict__["_monitor"]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no monitor_ (not fitted)") \
                from None

    @monitor_.setter
    def monitor_(self, monitor):
        self.__dict__["_monitor"] = monitor

    # the constructor parameters that shape the running statistics of partial_fit
    _STREAM_CONFIG = ("n_components", "method", "covariance_type", "n_mix", "n_features",
                      "n_trials", "params")

    def _stream_config(self):
        p = self.get_params(deep=False)
        return {k: repr(p[k]) for k in self._STREAM_CONFIG if k in p}

    def __getstate__(self):
        """Pickles leave out partial_fit's running state (its engine and family)."""
        state = dict(super().__getstate__())      # a copy: the model keeps its stream
        state.pop("_stream", None)
        return state

    # -------------------------------------------------------- persistence
    def save(self, path):
        """Write the fitted model to `path` (.npz, pickle-free, versioned;
        fastvem.load reads it back).  HMM(family=<a Family object>) stores the family
        as its JSON state (a built-in family or a Product of them); an
        ExponentialFamily holds the user's numba functions and is refused."""
        save_estimator(self, path)

    def _saved_attributes(self):
        """What save writes: the fitted attributes, and under mean field the family's
        prior the model was fitted with (family_prior_, JSON), which partial_fit
        continues with."""
        out = dict(vars(self))
        if out.get("_prior") is not None:
            from ..families.state import prior_dumps
            out["family_prior_"] = prior_dumps(out["_prior"])
        return out

    def _check_loaded(self):
        """Every fitted attribute of a loaded model against its schema
        (fastvem/_load_checks_hmm.py), then the state predictions need rebuilt
        (the monitor, the family); ValueError naming the attribute otherwise."""
        from .._load_checks_hmm import check_hmm
        prior = self.__dict__.pop("family_prior_", None)
        fam = check_hmm(self)
        if (get_method(self.method).update == "posterior"
                and getattr(self, "_variational_start", None) is None):
            if prior is None:
                raise ValueError("family_prior_ is missing (the prior a mean-field HMM was "
                                 "fitted with)")
            from ..families.state import prior_loads
            self._prior = prior_loads(prior, fam)
        elif prior is not None:
            raise ValueError(f"family_prior_ is stored, but a {type(self).__name__}"
                             f"(method={self.method!r}) keeps none")
        self._restore(fam)

    def _loaded_family(self):
        """The family of the saved model, from the constructor parameters and the
        fitted attributes (validated)."""
        raise NotImplementedError

    def _restore(self, fam):
        m = ConvergenceMonitor(self.tol, self.n_iter, self.verbose)
        m.history.extend(float(v) for v in self.monitor_history_)
        m.iter = len(m.history)
        self._monitor = m
        self._fitted_method = self.method
        self._fit_config = self._stream_config()    # partial_fit's "refit required"

    # ------------------------------------------------------------ hooks
    def _prepare_fit(self, X):
        """(family, prepared data) for fit (the family built from X)."""
        raise NotImplementedError

    def _prepare_predict(self, X):
        raise NotImplementedError

    def _init_emissions(self, fam, X, data, rs):
        """Set the emission attributes hmmlearn's _init would (for the codes in
        init_params, or where the attribute is missing)."""
        raise NotImplementedError

    def _theta(self, fam):
        """theta of the family from the emission attributes (validated)."""
        raise NotImplementedError

    def _set_theta(self, fam, theta):
        raise NotImplementedError

    def _n_emission_scalars(self):
        raise NotImplementedError

    def _generate_sample_from_state(self, state, rs):
        raise NotImplementedError

    # ------------------------------------------------------------ helpers
    def _needs_init(self, code, name):
        return code in self.init_params or not hasattr(self, name)

    def _check_common(self):
        K = _check_int(self.n_components, "n_components", 1)
        _check_int(self.n_iter, "n_iter", 0)
        if isinstance(self.tol, (bool, np.bool_)) or not isinstance(self.tol, numbers.Real) \
                or np.isnan(self.tol):
            raise ValueError(f"tol must be a number (the gain below which the fit stops; "
                             f"-inf: never), got {self.tol!r}")
        if self.algorithm not in ("viterbi", "map"):
            raise ValueError(f"algorithm must be 'viterbi' or 'map', got {self.algorithm!r}")
        if self.implementation not in ("log", "scaling"):
            raise ValueError(f"implementation must be 'log' or 'scaling', got "
                             f"{self.implementation!r}")
        for name in ("params", "init_params"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a string of parameter codes, got "
                                 f"{getattr(self, name)!r}")
        m = get_method(self.method)
        if "n_chains" in self.get_params(deep=False):
            _check_int(self.n_chains, "n_chains", 1)
        return K, m

    def _chain(self, K):
        return Chain(K, self.startprob_prior, self.transmat_prior)

    def _chain_params(self, K, rs):
        """(startprob, transmat): hmmlearn's Dirichlet(1 / K) draws where
        initialised, else the user's (validated)."""
        init = np.full(K, 1.0 / K)
        if self._needs_init("s", "startprob_"):
            startprob = rs.dirichlet(init)
        else:
            startprob = _distribution(self.startprob_, (K,), "startprob_")
        if self._needs_init("t", "transmat_"):
            transmat = rs.dirichlet(init, size=K)
        else:
            transmat = _distribution(self.transmat_, (K, K), "transmat_")
        return startprob, transmat

    def _fitted_params(self, fam):
        K = self.n_components
        return (_distribution(self.startprob_, (K,), "startprob_"),
                _distribution(self.transmat_, (K, K), "transmat_"), self._theta(fam))

    # ------------------------------------------------------------------ fit
    def fit(self, X, lengths=None):
        """Estimate the parameters from X (sequences of rows given by lengths);
        returns self.  X may also be a source of whole sequences read once per
        iteration (fastvem/models/hmm_sources.py): an iterable of sequences (2-D
        arrays, or pairs (rows, lengths); lengths=None then) or a Dask array with
        lengths, each block holding whole sequences.  From a source the start
        (k-means, the covariances) reads the first whole sequences holding at least
        100,000 rows (hmmlearn's reads every row; equal when they are all), the
        Gaussians' reference point and mean field's default prior the moments of
        every row; gibbs and the Variational* models need an array."""
        K, m = self._check_common()
        threads = default_n_threads(self.n_threads)
        source = sequence_source(X, lengths)
        if source is None:
            fam, data = self._prepare_fit(X)
            N = data.shape[0]
            offsets = _offsets(lengths, N)
            init_X, init_data, prior_data = X, data, data
            n_seq, constant = len(offsets) - 1, float(np.sum(_row_constants(fam)))
        else:
            if m.update == "sample" or getattr(self, "_variational_start", None) is not None:
                raise TypeError(f"{type(self).__name__}(method={m.name!r}) fits sequences in "
                                "memory only (an array and lengths), not an iterable of "
                                "sequences or a dask array")
            # a Dask block's task runs one thread unless told (blocks run side by side)
            if isinstance(source, DaskSequenceBlocks) and self.n_threads is None:
                threads = 1
            fam, survey, init_X = self._source_setup(source, K)
            init_data = fam.prepare(init_X)
            prior_data = survey.summary.prior_data(fam)
            N, n_seq, constant = survey.summary.n, survey.n_seq, survey.log_h
            data = SequenceStream(source, self, fam, N, threads)
            offsets = None
        # the input validated: a previous fit's state goes (a fit refused leaves the
        # model as it was, partial_fit's continuation included)
        for name in self._stale_attributes:
            self.__dict__.pop(name, None)       # a previous fit's, by another method
        self._stream = None                     # a later partial_fit continues this fit
        # hmmlearn's random streams: the chain's start from check_random_state(random_state),
        # the emissions' from another (an int seed starts both afresh; k-means takes
        # random_state itself), so that a start equals hmmlearn's for the same seed
        rs = check_random_state_param(self.random_state)
        chain = self._chain(K)
        variational = getattr(self, "_variational_start", None)
        if variational is not None:         # the start is q itself (hmmlearn's vhmm)
            startprob = transmat = None
            rs_e = rs
        else:
            startprob, transmat = self._chain_params(K, rs)
            rs_e = check_random_state_param(self.random_state)
            self._init_emissions(fam, init_X, init_data, rs_e)
        params = None if variational is not None else \
            self._start_params(fam, startprob, transmat)
        seed = int(rs_e.randint(2 ** 31))
        engine = self._engine(fam, chain, m, data, offsets, threads, seed)
        self.n_rows_seen_, self.n_sequences_seen_ = float(N), float(n_seq)
        if m.update == "sample":
            self._gibbs(engine, fam, chain, data, offsets, params, rs)
            self._fitted_stream(None, 0)
            return self
        self._monitor = ConvergenceMonitor(self.tol, self.n_iter, self.verbose)
        monitor = self._monitor
        if variational is not None:
            engine.prior = fam.default_prior(prior_data)
            chain.check_posterior_prior()
            params = variational(fam, chain, X, data, offsets)
        elif engine.posterior:
            engine.prior = fam.default_prior(prior_data)
            chain.check_posterior_prior()
            params = _posterior_start(fam, chain, engine.prior, params, N, n_seq)
        step = _shifted(engine.step(data, None, per_weight=False), constant)
        tol = self.tol

        def stop(n_iter, objective, params):
            monitor.report(objective)
            h = monitor.history
            return len(h) >= 2 and h[-1] - h[-2] < tol

        if self.n_iter == 0:
            res_params, trace = params, Trace()
        else:
            res = run_iterations(step, params, self.n_iter, 0.0, callback=stop)
            res_params, trace = res.params, res.trace
        self._fitted_stream(engine.prior if engine.posterior and variational is None
                            else None, 0)
        trace.objective = [o / N for o in trace.objective]
        self._set_fitted(fam, engine, chain, res_params)
        self._finish(fam, trace)
        return self

    def _stream_from_fit(self, fam, engine):
        """partial_fit's running state for a model fitted by fit (or loaded), as the
        mixtures': its parameters counted as the statistics of one earlier step over
        the rows it was fitted to (n_rows_seen_ rows in n_sequences_seen_ sequences).
        Point methods: the occupancies, start and transition counts the chain implies
        for sequences of the fitted mean length (_implied_counts) and the family's
        statistics at theta with those occupancies; mean field: the counts q holds
        above the prior it was fitted with.  The same from the fitted attributes
        whether the model was fitted here or loaded."""
        seen, n_seq = float(self.n_rows_seen_), float(self.n_sequences_seen_)
        if engine.posterior:
            engine.prior = self._prior
            q = fam.unpack_posterior(np.asarray(self.emission_posterior_, dtype=np.float64))
            qc = (np.asarray(self.startprob_posterior_, dtype=np.float64),
                  np.asarray(self.transmat_posterior_, dtype=np.float64))
            S, nk = fam.posterior_statistics(q, engine.prior)
            a0, A0 = engine.chain.check_posterior_prior()
            start, trans = np.maximum(qc[0] - a0, 0.0), np.maximum(qc[1] - A0, 0.0)
            params = (q, qc)
        else:
            params = self._fitted_params(fam)
            startprob, transmat, theta = self._implied_chain(params)
            nk, start, trans = _implied_counts(startprob, transmat, seen, n_seq)
            S = fam.initial_statistics(theta, nk)
        stats = HMMStats(S, np.asarray(nk, dtype=np.float64), start, trans, np.zeros(3), seen)
        # a fit counts as one step; a partial_fit stream continues at its own step
        stream = Stepwise(engine, params, stats, t=max(int(self.n_steps_), 1), seen=seen)
        stream.extra["n_seq"] = n_seq
        return stream

    def _fitted_stream(self, prior, steps):
        """What partial_fit reads of a fit or a step that ran: the configuration it
        ran with, mean field's prior (saved as family_prior_) and the stream's steps
        (n_steps_: 0 after fit)."""
        self._fit_config = self._stream_config()
        if prior is None:
            self.__dict__.pop("_prior", None)
        else:
            self._prior = prior
        self.n_steps_ = int(steps)

    @staticmethod
    def _implied_chain(params):
        """(startprob, transmat, theta) of the chain the kernel runs (GMMHMM: the
        expanded one)."""
        return params

    def _set_fitted(self, fam, engine, chain, params):
        """The fitted attributes from the engine's parameters."""
        if engine.posterior:
            q, qc = params
            self.startprob_posterior_, self.transmat_posterior_ = qc
            self.emission_posterior_ = fam.pack_posterior(q)
            startprob, transmat = chain.mean(qc)
            self.startprob_, self.transmat_ = startprob, transmat
            self._set_theta(fam, fam.posterior_mean(q))
            self._set_posterior(fam, q, chain, engine.prior)
        else:
            self._set_point(fam, params)

    # the hooks of a model whose point parameters are not (startprob, transmat,
    # theta) -- GMMHMM adds its mixture weights -- or whose engine is its own
    def _engine(self, fam, chain, m, data, offsets, threads, seed):
        return HMMEngine(fam, chain, m, data, offsets, threads, update=self.params, seed=seed)

    def _start_params(self, fam, startprob, transmat):
        """The point parameters of the start (the emissions from the attributes
        _init_emissions set)."""
        return startprob, transmat, self._theta(fam)

    def _set_point(self, fam, params):
        self.startprob_, self.transmat_ = params[0], params[1]
        self._set_theta(fam, params[2])

    def _source_setup(self, source, K):
        """(family, survey, first rows) of a fit from a source: one pass validates
        every batch (as fit would validate it) and pools what the family's set-up
        reads from all the rows (hmm_sources.survey)."""
        survey = source.sum(_survey_batch, self)
        fam = self._source_family(survey, source)
        survey.summary.set_up(fam)
        init_X, _ = source.head(max(K, _SOURCE_INIT_ROWS))
        return fam, survey, init_X

    def _source_family(self, survey, source):
        """The family of a fit from a source, set up as on all the rows (the first
        row and the column maxima: a categorical's symbols)."""
        return self._prepare_fit(survey.summary.setup_rows())[0]

    def _prepare_batch(self, fam, rows):
        """A batch of a source prepared with the fit's family (its reference point
        and categories kept)."""
        return fam.prepare(rows)

    # ------------------------------------------------------------ partial_fit
    def partial_fit(self, X, lengths=None):
        """One stochastic step on a batch of whole sequences; returns self.  em /
        vem / crisp: stepwise EM; meanfield: stochastic variational inference.

        The running statistics (the family's, the start and transition counts) are
        S <- (1 - rho) S + rho * scale * stats(batch), with rho = (learning_offset
        + t) ** -learning_decay (t = 0, 1, ... counts the steps; the first takes the
        batch's statistics whole; defaults 0.7 and 1, read from the estimator's
        learning_decay / learning_offset where set) and scale = (rows seen so far,
        or total_samples rows for meanfield when set) / (the batch's rows), so that
        the priors weigh as in a fit of the rows seen.  The parameters are then the
        method's update from S.  The first call starts as fit does (from this batch;
        the model's own parameters where init_params leaves them out); a model
        fitted by fit, or loaded (or unpickled), continues from its parameters as
        the statistics of the rows it was fitted to, at step max(n_steps_, 1)
        (n_steps_ = 0 after fit: _stream_from_fit), so that the first step after
        fit is the same in memory and after load, and a saved stream keeps its step
        sizes.  The family is fixed by the first batch (a categorical's symbols: set
        n_features to the alphabet's size); changing a parameter that shapes the
        statistics (n_components, method, covariance_type, ...) between calls is an
        error ("refit required"), not a silent restart.  Not for gibbs or the
        Variational* models."""
        K, m = self._check_common()
        if m.update == "sample" or getattr(self, "_variational_start", None) is not None:
            raise ValueError(f"partial_fit is not available for {type(self).__name__}"
                             f"(method={m.name!r})")
        refuse_sequence_source(X, "partial_fit")
        schedule = stepwise_schedule(self)
        stream = self.__dict__.get("_stream")
        threads = default_n_threads(self.n_threads)
        # the configuration of the fit or the steps the statistics come from
        config = self.__dict__.get("_fit_config")
        if config is not None and config != self._stream_config():
            changed = sorted(k for k, v in self._stream_config().items()
                             if config.get(k) != v)
            raise ValueError(f"{', '.join(changed)} changed since the model's statistics were "
                             "gathered: refit required before partial_fit (call fit)")
        if stream is None:
            fitted = hasattr(self, "n_features_in_")     # by fit, or loaded
            fam, data = self._prepare_predict(X) if fitted else self._prepare_fit(X)
            N = data.shape[0]
            offsets = _offsets(lengths, N)
            chain = self._chain(K)
            engine = self._engine(fam, chain, m, data, offsets, threads, 0)
            if fitted:
                stream = self._stream_from_fit(fam, engine)
            else:
                rs = check_random_state_param(self.random_state)
                startprob, transmat = self._chain_params(K, rs)
                rs_e = check_random_state_param(self.random_state)
                self._init_emissions(fam, X, data, rs_e)
                params = self._start_params(fam, startprob, transmat)
                if engine.posterior:
                    engine.prior = fam.default_prior(data)
                    chain.check_posterior_prior()
                    params = _posterior_start(fam, chain, engine.prior, params, N,
                                              len(offsets) - 1)
                stream = Stepwise(engine, params)
                stream.extra["n_seq"] = 0.0
        else:
            engine = stream.engine
            fam = engine.family
            data = self._prepare_batch(fam, X)
            N = data.shape[0]
            offsets = _offsets(lengths, N)
        engine.n_threads = threads
        engine.offsets = offsets
        params = stream.params
        stats, new, events = stream.step(data, None, float(N), schedule)
        obj = (engine.bound(stats, params) if engine.posterior else stats.objective) \
            + float(np.sum(_row_constants(fam)))
        engine.data = engine.offsets = None     # the stream keeps no rows
        self._stream = stream
        stream.extra["n_seq"] += len(offsets) - 1
        self.n_rows_seen_, self.n_sequences_seen_ = stream.seen, stream.extra["n_seq"]
        self._fitted_stream(engine.prior if engine.posterior else None, stream.t)
        self._set_fitted(fam, engine, engine.chain, new)
        # the run of partial_fit steps (a fit's own history is not continued): one
        # entry a step in monitor_ and trace_, n_iter_ the steps taken
        if "trace" not in stream.extra:
            stream.extra["trace"] = Trace()
            self.monitor_ = ConvergenceMonitor(self.tol, self.n_iter, self.verbose)
        trace = stream.extra["trace"]
        trace.append(obj / N, 0.0)
        trace.events.extend((len(trace), e) for e in events)
        self.monitor_.report(obj)
        self._finish(fam, trace)
        return self

    def _set_posterior(self, fam, q, chain, prior):
        """Mean field's q under the model's own names (the variational HMMs)."""

    def _finish(self, fam, trace):
        self.monitor_history_ = np.array(self._monitor.history, dtype=np.float64)
        self.trace_ = trace.as_dict()
        self.lower_bound_ = float(trace.objective[-1]) if len(trace) else -np.inf
        self.n_iter_ = len(trace)
        self.n_features_in_ = int(fam.n_features)
        self._fitted_method = self.method

    def _gibbs(self, engine, fam, chain, data, offsets, params, rs):
        """n_chains chains of n_iter sweeps each: the path drawn by forward
        filtering, backward sampling (keyed by seed, chain, sweep and row), then
        start, transitions and the emissions from their conditionals.  Chain 0
        starts from the estimator's start, chain c > 0 from the same emissions with
        startprob and transmat drawn from Dirichlet(1) (where init_params
        initialises them).  The draws after burn_in of every chain are relabelled
        together (Stephens, on the posteriors of up to 500 rows), kept in
        posterior_samples_ (chain after chain) and averaged into the fitted
        attributes.  Diagnostics as the mixtures': log_joint_ (n_chains, n_iter)
        -- the drawn path's log joint per row, sweep by sweep --, mixing_ (R-hat,
        bulk ESS of every monitored quantity after burn-in: the log joint, the
        sorted state occupancies, and per relabelled state its occupancy, its
        self-transition and its first mean parameters), rhat_, ess_, and
        converged_ only when every quantity mixed (a ConvergenceWarning
        otherwise).  trace_ and monitor_.history hold the mean over the chains;
        lower_bound_ the mean log joint per row after burn-in."""
        from ..diagnostics import relabel
        chain.check_posterior_prior()
        prior = fam.default_prior(data)
        N, K = data.shape[0], self.n_components
        n_chains = _check_int(self.n_chains, "n_chains", 1)
        burn = self.n_iter // 2 if self.burn_in is None else _check_int(self.burn_in,
                                                                         "burn_in", 0)
        if burn >= self.n_iter:
            raise ValueError(f"burn_in={burn} must be < n_iter={self.n_iter} (at least one "
                             "draw kept)")
        base = int(rs.randint(2 ** 31))
        seed0 = engine.seed
        log_h = float(np.sum(_row_constants(fam)))
        log_joint = np.empty((n_chains, self.n_iter))
        seconds = np.empty((n_chains, self.n_iter))
        draws, nks = [], []
        for c in range(n_chains):
            # chain 0: the generators of a single chain; chain c: its own streams
            gen = np.random.default_rng(base if c == 0 else [base, c])
            engine.seed = seed0 if c == 0 else (seed0 * 0x2545F4914F6CDD1D + c) & (2 ** 62 - 1)
            p = params
            if c > 0:
                startprob, transmat, theta = params
                if "s" in self.init_params:
                    startprob = gen.dirichlet(np.ones(K))
                if "t" in self.init_params:
                    transmat = gen.dirichlet(np.ones(K), size=K)
                p = (startprob, transmat, theta)
            last = {}

            def sweep_step(p, sweep, gen=gen, last=last):
                # the draws of the chain's sweep (0-based in the kernel's keys)
                stats = last["stats"] = engine.statistics(data, None, p, sweep - 1)
                startprob, transmat = chain.sample(chain.posterior(stats.start, stats.trans),
                                                   gen)
                theta = fam.sample_posterior(fam.posterior(stats.stats, stats.nk, prior), gen)
                return (stats.objective + log_h) / N, (startprob, transmat, theta), []

            res, kept = run_chain(sweep_step, p, self.n_iter, burn, 1,
                                  keep=lambda sweep, q, last=last: (q, last["stats"].nk.copy()))
            log_joint[c] = res.trace.objective
            seconds[c] = res.trace.seconds
            draws.extend(q for q, _ in kept)
            nks.extend(nk for _, nk in kept)
        engine.seed = seed0
        self._monitor = ConvergenceMonitor(self.tol, self.n_iter, self.verbose)
        for total in log_joint.mean(0) * N:
            self._monitor.report(total)
        # relabel the draws of every chain together, on the posteriors of reference rows
        rows = np.unique(np.linspace(0, N - 1, min(N, 500)).astype(np.int64))
        probs = []
        k = _kernel()
        for s, t, th in draws:
            W, c = fam.effective(th)
            ls, lt = chain.log_params(s, t)
            gamma = np.empty((N, K))
            ll = np.empty(len(offsets) - 1)
            k.hmm_posteriors(fam.kernel_data(data), fam.aux(), k.FEATURES[fam.features],
                             fam.address, W.shape[1], np.ascontiguousarray(W),
                             np.ascontiguousarray(c), ls, lt, offsets, gamma, ll,
                             engine.n_threads)
            probs.append(np.maximum(gamma[rows], 1e-300))
        perms, _ = relabel(np.array(probs))
        draws = [_relabel_params(d, p) for d, p in zip(draws, perms)]
        nks = np.array([nk[p] for nk, p in zip(nks, perms)])
        S = np.array([d[0] for d in draws])
        T = np.array([d[1] for d in draws])
        TH = np.array([d[2] for d in draws])
        self.posterior_samples_ = {"startprob": S, "transmat": T, "theta": TH}
        self.__dict__["_sample_family"] = fam       # what the draws' theta is about
        self.n_relabelled_ = int(np.sum(np.any(perms != np.arange(K), 1)))
        self.startprob_ = S.mean(0)
        self.transmat_ = T.mean(0)
        self._set_theta(fam, TH.mean(0))
        trace = Trace(objective=list(log_joint.mean(0)), seconds=list(seconds.mean(0)))
        self._finish(fam, trace)
        self._chain_diagnostics(log_joint, burn, nks / N, T, TH)

    def _chain_diagnostics(self, log_joint, burn, occupancy, T, TH):
        """log_joint_, mixing_, rhat_, ess_, converged_ (see _gibbs) and
        lower_bound_ (the mean log joint per row after burn-in)."""
        from ..diagnostics import check_mixing
        n_ch = log_joint.shape[0]
        K = self.n_components
        n_kept = occupancy.shape[0] // n_ch
        shaped = lambda a: a.reshape((n_ch, n_kept) + a.shape[1:])
        occ, stay, th = shaped(occupancy), shaped(np.diagonal(T, axis1=1, axis2=2)), shaped(TH)
        post = log_joint[:, burn:]
        quantities = {"log_joint": post}
        srt = np.sort(occ, axis=-1)
        for j in range(K):
            quantities[f"sorted_occupancy_{j}"] = srt[..., j]
        n_mon = min(TH.shape[-1], _MONITORED_ENTRIES)
        for k in range(K):
            quantities[f"occupancy_{k}"] = occ[..., k]
            quantities[f"stay_{k}"] = stay[..., k]
            for j in range(n_mon):
                quantities[f"theta_{k}_{j}"] = th[..., k, j]
        self.log_joint_ = log_joint
        self.mixing_, rhat, ess, self.converged_ = check_mixing(quantities,
                                                                "n_iter or n_chains")
        self.rhat_, self.ess_ = float(rhat), float(ess)
        self.lower_bound_ = float(post.mean())

    # ----------------------------------------------------------- predictions
    def _check_fitted(self):
        if not hasattr(self, "startprob_") or not hasattr(self, "transmat_"):
            from sklearn.exceptions import NotFittedError
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet (or "
                                 "its startprob_ / transmat_ are not set)")

    def _setup_predict(self, X, lengths):
        self._check_fitted()
        refuse_sequence_source(X, "score, score_samples, predict, predict_proba and decode")
        K = _check_int(self.n_components, "n_components", 1)
        fam, data = self._prepare_predict(X)
        offsets = _offsets(lengths, data.shape[0])
        startprob, transmat, theta = self._fitted_params(fam)
        W, c = fam.effective(theta)
        ls, lt = Chain.log_params(startprob, transmat)
        k = _kernel()
        args = (fam.kernel_data(data), fam.aux(), k.FEATURES[fam.features], fam.address,
                W.shape[1], np.ascontiguousarray(W), np.ascontiguousarray(c), ls, lt, offsets)
        return k, args, data.shape[0], K, offsets, _sequence_constants(fam, offsets)

    def _posteriors(self, X, lengths):
        k, args, N, K, offsets, log_h = self._setup_predict(X, lengths)
        gamma = np.empty((N, K))
        ll = np.empty(len(offsets) - 1)
        k.hmm_posteriors(*args, gamma, ll, default_n_threads(self.n_threads))
        return ll + log_h, gamma

    def score_samples(self, X, lengths=None):
        """(log p(X), posteriors (n_samples, n_components)), as hmmlearn's."""
        ll, gamma = self._posteriors(X, lengths)
        return float(ll.sum()), gamma

    def score(self, X, lengths=None):
        """log p(X) summed over the sequences, as hmmlearn's."""
        return float(self._posteriors(X, lengths)[0].sum())

    def predict_proba(self, X, lengths=None):
        return self._posteriors(X, lengths)[1]

    def decode(self, X, lengths=None, algorithm=None):
        """(log probability, state sequence) by 'viterbi' (the MAP path; its log
        joint) or 'map' (each row's most probable state; hmmlearn's log probability
        -- the sum of the largest posteriors)."""
        algorithm = algorithm or self.algorithm
        if algorithm not in ("viterbi", "map"):
            raise ValueError(f"algorithm must be 'viterbi' or 'map', got {algorithm!r}")
        if algorithm == "map":
            _, gamma = self._posteriors(X, lengths)
            return float(np.max(gamma, axis=1).sum()), np.argmax(gamma, axis=1)
        k, args, N, K, offsets, log_h = self._setup_predict(X, lengths)
        path = np.empty(N, dtype=np.int64)
        lj = np.empty(len(offsets) - 1)
        k.hmm_viterbi(*args, path, lj, default_n_threads(self.n_threads))
        return float((lj + log_h).sum()), path

    def predict(self, X, lengths=None):
        return self.decode(X, lengths)[1]

    def _log_evidence(self, X, lengths=None, method="em"):
        """Per sequence: log p(x) (method 'em') or the ELBO of vem's factorised q(z)
        (method 'vem') at the fitted parameters."""
        k, args, N, K, offsets, log_h = self._setup_predict(X, lengths)
        args = list(args)
        if method == "vem":
            args[7], args[8] = Chain.log_params(self.startprob_, self.transmat_, floor=True)
        gamma = np.empty((N, K))
        ll = np.empty(len(offsets) - 1)
        k.hmm_posteriors(*args, gamma, ll, 1, mode=3 if method == "vem" else 0)
        return ll + log_h

    def _draws_log_evidence(self, X, lengths=None):
        """(n_draws, n_sequences): log p(x_seq | draw) of every kept draw of gibbs
        (the fitted attributes set to each draw in turn); the log posterior
        predictive density of a sequence is the log mean over the draws.  Only in
        the session that fitted the model (the draws' family is not saved)."""
        import copy
        fam = self.__dict__.get("_sample_family")
        if fam is None or not hasattr(self, "posterior_samples_"):
            raise ValueError("the draws' log evidence needs a model fitted by gibbs in this "
                             "session")
        S = self.posterior_samples_
        one = copy.copy(self)
        one.__dict__ = dict(self.__dict__)
        out = []
        for s, t, th in zip(S["startprob"], S["transmat"], S["theta"]):
            one.startprob_, one.transmat_ = s, t
            one._set_theta(fam, th)
            out.append(one._log_evidence(X, lengths))
        return np.array(out)

    def _n_parameters(self):
        K = self.n_components
        per = {"s": K - 1, "t": K * (K - 1)}
        per.update(self._n_emission_scalars())
        return sum(per.get(c, 0) for c in set(self.params))

    def aic(self, X, lengths=None):
        return -2 * self.score(X, lengths) + 2 * self._n_parameters()

    def bic(self, X, lengths=None):
        refuse_sequence_source(X, "bic")
        n = self._prepare_predict(X)[1].shape[0]
        return -2 * self.score(X, lengths) + self._n_parameters() * np.log(n)

    def sample(self, n_samples=1, random_state=None, currstate=None):
        """(X, states): n_samples rows of one sequence drawn from the model, with
        hmmlearn's random stream (the same draws for the same random_state)."""
        self._check_fitted()
        _check_int(n_samples, "n_samples", 1)
        from sklearn.utils import check_random_state
        rs = check_random_state(self.random_state if random_state is None else random_state)
        K = self.n_components
        startprob = _distribution(self.startprob_, (K,), "startprob_")
        transmat = _distribution(self.transmat_, (K, K), "transmat_")
        tcdf = np.cumsum(transmat, axis=1)
        if currstate is None:
            currstate = (np.cumsum(startprob) > rs.rand()).argmax()
        states = [currstate]
        X = [self._generate_sample_from_state(currstate, rs)]
        for _ in range(n_samples - 1):
            currstate = (tcdf[currstate] > rs.rand()).argmax()
            states.append(currstate)
            X.append(self._generate_sample_from_state(currstate, rs))
        return np.atleast_2d(X), np.array(states, dtype=int)


_UNSET = object()


def _stepwise_init(est, learning_decay, learning_offset, total_samples):
    """partial_fit's schedule (see _BaseHMM.partial_fit)."""
    est.learning_decay = learning_decay
    est.learning_offset = learning_offset
    est.total_samples = total_samples


def _common_init(est, n_components, startprob_prior, transmat_prior, algorithm, random_state,
                 n_iter, tol, verbose, params, init_params, implementation, method, n_threads,
                 burn_in, n_chains=_UNSET, learning_decay=_UNSET, learning_offset=_UNSET,
                 total_samples=_UNSET):
    est.n_components = n_components
    est.startprob_prior = startprob_prior
    est.transmat_prior = transmat_prior
    est.algorithm = algorithm
    est.random_state = random_state
    est.n_iter = n_iter
    est.tol = tol
    est.verbose = verbose
    est.params = params
    est.init_params = init_params
    est.implementation = implementation
    est.method = method
    est.n_threads = n_threads
    est.burn_in = burn_in
    if n_chains is not _UNSET:          # gibbs' chains (the variational HMMs have none)
        est.n_chains = n_chains
    if learning_decay is not _UNSET:    # partial_fit's schedule (not the variational HMMs')
        _stepwise_init(est, learning_decay, learning_offset, total_samples)


# ---------------------------------------------------------------- Gaussian
class _RealRows:
    """The rows of a model with Gaussian emissions: the family for X's width (fit:
    _family; predictions: _predict_family, after X's width is checked against the
    fitted means_, whose last axis is the features')."""

    _means_ndim = 2         # means_ is (n_components, n_features)

    def _prepare_fit(self, X):
        return self._real_rows(X, True)

    def _prepare_predict(self, X):
        return self._real_rows(X, False)

    def _predict_family(self, D):
        """The family predictions read the point parameters with."""
        return self._family(D)

    def _check_gaussian(self):
        """covariance_type and min_covar, checked; ValueError naming them."""
        if self.covariance_type not in _COVARIANCE_TYPES:
            raise ValueError(f"covariance_type must be one of {list(_COVARIANCE_TYPES)}, got "
                             f"{self.covariance_type!r}")
        if isinstance(self.min_covar, (bool, np.bool_)) or not isinstance(
                self.min_covar, numbers.Real) or not np.isfinite(self.min_covar) \
                or self.min_covar <= 0:
            raise ValueError(f"min_covar must be a finite number > 0, got {self.min_covar!r}")

    def _real_rows(self, X, fitting):
        from ..families.discrete import _numeric
        D = _numeric(X).shape[1]
        if fitting:
            fam = self._family(D)
        else:
            means = getattr(self, "means_", None)
            if means is not None and np.ndim(means) == self._means_ndim \
                    and np.shape(means)[-1] != D:
                raise ValueError(f"X has {D} features, but {type(self).__name__} is expecting "
                                 f"{np.shape(means)[-1]} features as input")
            fam = self._predict_family(D)
        return fam, fam.prepare(X, fitting=True)


@register
class GaussianHMM(_RealRows, _BaseHMM):
    """Hidden Markov model with Gaussian emissions: hmmlearn.hmm.GaussianHMM's
    parameters, attributes and M-step, fitted by ``method`` ('em' default, 'vem',
    'crisp', 'meanfield', 'gibbs'; under mean field and gibbs a 'spherical' state
    has one precision for its features and 'tied' states share one precision,
    with their exact conjugate posteriors).  covars_ reads as full matrices (n_components, n_features, n_features)
    for every covariance_type and is set in the type's own shape: (n_components,)
    spherical, (n_components, n_features) diag, (n_features, n_features) tied,
    (n_components, n_features, n_features) full."""

    def __init__(self, n_components=1, covariance_type="diag", min_covar=1e-3,
                 startprob_prior=1.0, transmat_prior=1.0, means_prior=0, means_weight=0,
                 covars_prior=1e-2, covars_weight=1, algorithm="viterbi", random_state=None,
                 n_iter=10, tol=1e-2, verbose=False, params="stmc", init_params="stmc",
                 implementation="log", *, method="em", n_threads=None, burn_in=None,
                 n_chains=2, learning_decay=0.7, learning_offset=1.0,
                 total_samples=None):
        _common_init(self, n_components, startprob_prior, transmat_prior, algorithm,
                     random_state, n_iter, tol, verbose, params, init_params, implementation,
                     method, n_threads, burn_in, n_chains, learning_decay, learning_offset,
                     total_samples)
        self.covariance_type = covariance_type
        self.min_covar = min_covar
        self.means_prior = means_prior
        self.means_weight = means_weight
        self.covars_prior = covars_prior
        self.covars_weight = covars_weight

    _emission_attributes = ("means_", "covars_")

    @property
    def covars_(self):
        ct, K = self.covariance_type, self.n_components
        c = self._covars_
        if ct == "full":
            return c
        if ct == "diag":
            return np.array([np.diag(v) for v in c])
        if ct == "tied":
            return np.array([c] * K)
        D = self.means_.shape[1] if hasattr(self, "means_") else 1
        return np.eye(D)[None] * c[:, None, None]

    @covars_.setter
    def covars_(self, covars):
        self._covars_ = covars

    # the covariances in the covariance_type's own shape (hmmlearn's _covars_) are
    # kept in the instance's dict under 'covars_' -- what save writes and load sets
    # back through the setter -- while the covars_ property reads full matrices
    @property
    def _covars_(self):
        try:
            return self.__dict__["covars_"]
        except KeyError:
            raise AttributeError("covars_ is not set") from None

    @_covars_.setter
    def _covars_(self, covars):
        arr = np.array(covars, copy=True)
        if arr.dtype.kind in "biu":
            arr = arr.astype(np.float64)
        self.__dict__["covars_"] = arr

    def _restore(self, fam):
        super()._restore(fam)
        self.n_features = fam.n_features

    def _family(self, D):
        self._check_gaussian()
        cls = {"diag": _DiagHMMFamily, "spherical": _SphericalHMMFamily,
               "full": _FullHMMFamily, "tied": _TiedHMMFamily}[self.covariance_type]
        return cls(D, self.n_components, self.covariance_type, self.min_covar,
                   self.means_prior, self.means_weight, self.covars_prior,
                   self.covars_weight, self.params)


    def _init_emissions(self, fam, X, data, rs):
        D = fam.n_features
        K = self.n_components
        if not (self._needs_init("m", "means_") or self._needs_init("c", "covars_")):
            return                              # no float64 copy of the rows then
        Xd = np.asarray(data, dtype=np.float64)
        if self._needs_init("m", "means_"):
            from sklearn.cluster import KMeans
            if K > Xd.shape[0]:
                raise ValueError(f"n_components={K} must be <= n_samples={Xd.shape[0]} for "
                                 "the k-means start")
            krs = self.random_state if not isinstance(self.random_state, np.random.RandomState) \
                else rs
            self.means_ = KMeans(n_clusters=K, random_state=krs, n_init=10).fit(Xd) \
                .cluster_centers_
        if self._needs_init("c", "covars_"):
            cv = np.atleast_2d(np.cov(Xd.T)) if Xd.shape[0] > 1 else np.zeros((D, D))
            cv = cv + self.min_covar * np.eye(D)
            ct = self.covariance_type
            if ct == "spherical":
                self.covars_ = np.full(K, cv.mean())
            elif ct == "tied":
                self.covars_ = cv
            elif ct == "diag":
                self.covars_ = np.tile(np.diag(cv), (K, 1))
            else:
                self.covars_ = np.tile(cv, (K, 1, 1))

    def _theta(self, fam):
        from .._validation import check_array_param
        K, D = self.n_components, fam.n_features
        if not hasattr(self, "means_") or not hasattr(self, "_covars_"):
            from sklearn.exceptions import NotFittedError
            raise NotFittedError("means_ and covars_ must be set (fit, or set them)")
        means = check_array_param(self.means_, "means_", (K, D))
        ct = self.covariance_type
        shape = {"spherical": (K,), "diag": (K, D), "tied": (D, D), "full": (K, D, D)}[ct]
        try:
            c = np.asarray(self._covars_, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"covars_ must hold numbers, got dtype "
                             f"{np.asarray(self._covars_).dtype}") from None
        if ct == "spherical" and c.shape == (K, D):     # hmmlearn's tiled form
            c = c[:, 0]
        c = check_array_param(c, "covars_", shape)
        if ct in ("spherical", "diag"):
            if np.any(c <= 0):
                raise ValueError("covars_ must be positive")
            var = np.tile(c[:, None], (1, D)) if ct == "spherical" else c
            return fam.theta_from(means, var)
        full = np.tile(c, (K, 1, 1)) if ct == "tied" else c
        if not np.allclose(full, np.transpose(full, (0, 2, 1))):
            raise ValueError("covars_ must be symmetric")
        for k in range(K):
            try:
                np.linalg.cholesky(full[k])
            except np.linalg.LinAlgError:
                raise ValueError(f"covars_ must be positive definite (state {k} is not)") \
                    from None
        return fam.theta_from(means, full)

    def _set_theta(self, fam, theta):
        d = fam.describe(theta)
        self.means_ = d["means"]
        ct = self.covariance_type
        if ct == "diag":
            self._covars_ = d["variances"]
        elif ct == "spherical":     # one variance a state (gibbs: averaged draws')
            self._covars_ = d["variances"].mean(1)
        elif ct == "full":
            self._covars_ = d["covariances"]
        else:
            self._covars_ = d["covariances"][0].copy()
        self.n_features = fam.n_features

    def _n_emission_scalars(self):
        K, D = self.n_components, np.shape(self.means_)[1]
        return {"m": K * D, "c": {"spherical": K, "diag": K * D, "full": K * D * (D + 1) // 2,
                                  "tied": D * (D + 1) // 2}[self.covariance_type]}

    def _generate_sample_from_state(self, state, rs):
        return rs.multivariate_normal(self.means_[state], self.covars_[state])


# ---------------------------------------------------------------- Categorical
@register
class CategoricalHMM(_BaseHMM):
    """Hidden Markov model with categorical emissions (X: (n_samples, 1) integer
    symbols): hmmlearn.hmm.CategoricalHMM's parameters, attributes (emissionprob_)
    and M-step, by ``method``."""

    def __init__(self, n_components=1, startprob_prior=1.0, transmat_prior=1.0, *,
                 emissionprob_prior=1.0, n_features=None, algorithm="viterbi",
                 random_state=None, n_iter=10, tol=1e-2, verbose=False, params="ste",
                 init_params="ste", implementation="log", method="em", n_threads=None,
                 burn_in=None, n_chains=2, learning_decay=0.7, learning_offset=1.0,
                 total_samples=None):
        _common_init(self, n_components, startprob_prior, transmat_prior, algorithm,
                     random_state, n_iter, tol, verbose, params, init_params, implementation,
                     method, n_threads, burn_in, n_chains, learning_decay, learning_offset,
                     total_samples)
        self.emissionprob_prior = emissionprob_prior
        self.n_features = n_features

    _emission_attributes = ("emissionprob_",)

    def _symbols(self, codes):
        if codes.shape[1] != 1:
            raise ValueError(f"X must have shape (n_samples, 1) (one symbol a row), got "
                             f"{codes.shape}")
        nf = self.n_features
        if nf is None and hasattr(self, "emissionprob_") and "e" not in self.init_params:
            nf = np.shape(self.emissionprob_)[1]
        if nf is None:
            return int(codes.max()) + 1
        nf = _check_int(nf, "n_features", 1)
        if codes.max() >= nf:
            raise ValueError(f"X holds symbol {int(codes.max())}, but the model emits symbols "
                             f"up to {nf - 1} (n_features={nf})")
        return nf

    def _emission_family(self, n_symbols):
        return _CategoricalHMMFamily(n_symbols, self.n_components, self.emissionprob_prior,
                                     self.params)

    def _prepare_fit(self, X):
        codes = check_codes(X)
        nf = self._symbols(codes)
        fam = self._emission_family(nf)
        return fam, fam.prepare(codes, fitting=True)

    def _prepare_predict(self, X):
        codes = check_codes(X)
        if codes.shape[1] != 1:
            raise ValueError(f"X must have shape (n_samples, 1) (one symbol a row), got "
                             f"{codes.shape}")
        nf = np.shape(self.emissionprob_)[1]
        if codes.max() >= nf:
            raise ValueError(f"X holds symbol {int(codes.max())}, but the model emits symbols "
                             f"up to {nf - 1} (emissionprob_ has {nf} columns)")
        fam = self._emission_family(nf)
        return fam, fam.prepare(codes)

    def _init_emissions(self, fam, X, data, rs):
        if self._needs_init("e", "emissionprob_"):
            e = rs.rand(self.n_components, fam.n_categories[0])
            self.emissionprob_ = e / e.sum(1, keepdims=True)

    def _theta(self, fam):
        return _distribution(self.emissionprob_, (self.n_components, fam.n_categories[0]),
                             "emissionprob_")

    def _set_theta(self, fam, theta):
        self.emissionprob_ = np.array(theta)

    def _n_emission_scalars(self):
        K, nf = np.shape(self.emissionprob_)
        return {"e": K * (nf - 1)}

    def _generate_sample_from_state(self, state, rs):
        cdf = np.cumsum(self.emissionprob_[state, :])
        return [(cdf > rs.rand()).argmax()]


# ---------------------------------------------------------------- Multinomial
def _check_n_trials(n_trials):
    """n_trials as an array (0-d or 1-d) of integers >= 0; ValueError naming it."""
    try:
        nt = np.asarray(n_trials)
    except Exception:
        nt = np.asarray([None])
    if isinstance(n_trials, (bool, np.bool_)) or nt.dtype.kind not in "iuf" or nt.ndim > 1 \
            or not np.all(np.isfinite(nt)) or np.any(nt != np.floor(nt)) or np.any(nt < 0):
        raise ValueError(f"n_trials must be None, an integer >= 0 or one per row of X, got "
                         f"{n_trials!r}")
    return nt


def _check_counts(X, n_trials):
    """X (n_samples, n_symbols) of counts: integers >= 0 (integral floats
    accepted), each row summing to n_trials where it is given (an int, or one per
    row); ValueError naming X or n_trials otherwise."""
    from ..families.discrete import _numeric, first_non_count
    X = _numeric(X)
    bad = first_non_count(X)
    if bad is not None:
        i, j, what = bad
        got = "a negative count " if what == "negative" else ""
        raise ValueError(f"X must hold counts (integers >= 0), got {got}X[{i}, {j}] = "
                         f"{X[i, j]}")
    if X.dtype.kind == "b":
        X = X.astype(np.int64)
    if n_trials is None:
        return X
    nt = _check_n_trials(n_trials)
    if nt.ndim == 1 and nt.shape[0] != X.shape[0]:
        raise ValueError(f"n_trials has {nt.shape[0]} entries, but X has {X.shape[0]} rows "
                         "(n_trials is an integer or one per row)")
    sums = X.sum(1)
    off = sums != nt
    if np.any(off):
        i = int(np.argmax(off))
        want = nt if nt.ndim == 0 else nt[i]
        raise ValueError(f"X's rows must sum to n_trials: row {i} sums to {sums[i]}, "
                         f"n_trials is {want}")
    return X


@register
class MultinomialHMM(_BaseHMM):
    """Hidden Markov model with multinomial emissions (X: (n_samples, n_symbols)
    rows of counts, each summing to n_trials): hmmlearn.hmm.MultinomialHMM's
    parameters (n_trials: an integer, one per row, or None -- any totals),
    attributes (emissionprob_) and M-step, by ``method``.  log p(x | state)
    includes the multinomial coefficient, as hmmlearn's, in score, score_samples,
    decode and monitor_.history.  Unlike hmmlearn, fit does not overwrite
    n_trials (a constructor parameter) with the rows' totals; sample needs it to
    be one integer."""

    def __init__(self, n_components=1, n_trials=None, startprob_prior=1.0,
                 transmat_prior=1.0, algorithm="viterbi", random_state=None, n_iter=10,
                 tol=1e-2, verbose=False, params="ste", init_params="ste",
                 implementation="log", *, method="em", n_threads=None, burn_in=None,
                 n_chains=2, learning_decay=0.7, learning_offset=1.0,
                 total_samples=None):
        _common_init(self, n_components, startprob_prior, transmat_prior, algorithm,
                     random_state, n_iter, tol, verbose, params, init_params, implementation,
                     method, n_threads, burn_in, n_chains, learning_decay, learning_offset,
                     total_samples)
        self.n_trials = n_trials

    _emission_attributes = ("emissionprob_",)

    def _restore(self, fam):
        super()._restore(fam)
        self.n_features = fam.n_features

    def _prepare_fit(self, X):
        X = _check_counts(X, self.n_trials)
        nf = X.shape[1]
        if hasattr(self, "emissionprob_") and "e" not in self.init_params \
                and np.ndim(self.emissionprob_) == 2 and np.shape(self.emissionprob_)[1] != nf:
            raise ValueError(f"X has {nf} symbols, but emissionprob_ has "
                             f"{np.shape(self.emissionprob_)[1]} columns")
        fam = _MultinomialHMMFamily(nf, self.params)
        return fam, fam.prepare(X, fitting=True)

    def _prepare_predict(self, X):
        X = _check_counts(X, self.n_trials)
        nf = np.shape(self.emissionprob_)[1]
        if X.shape[1] != nf:
            raise ValueError(f"X has {X.shape[1]} symbols, but {type(self).__name__} is "
                             f"expecting {nf} (emissionprob_ has {nf} columns)")
        fam = _MultinomialHMMFamily(nf, self.params)
        return fam, fam.prepare(X)

    def _source_family(self, survey, source):
        """From a source: the family of the first sequences (the column maxima of
        every row would not sum to n_trials); n_trials one integer or None."""
        if np.ndim(self.n_trials) > 0:
            raise ValueError("n_trials must be one integer or None to fit from a source (one "
                             "per row cannot follow the batches)")
        return self._prepare_fit(source.head(1)[0])[0]

    def _prepare_batch(self, fam, rows):
        return fam.prepare(_check_counts(rows, self.n_trials))

    def _init_emissions(self, fam, X, data, rs):
        if self._needs_init("e", "emissionprob_"):
            e = rs.rand(self.n_components, fam.n_features)
            self.emissionprob_ = e / e.sum(1, keepdims=True)

    def _theta(self, fam):
        return _distribution(self.emissionprob_, (self.n_components, fam.n_features),
                             "emissionprob_")

    def _set_theta(self, fam, theta):
        self.emissionprob_ = np.array(theta)
        self.n_features = fam.n_features

    def _n_emission_scalars(self):
        K, nf = np.shape(self.emissionprob_)
        return {"e": K * (nf - 1)}

    def _generate_sample_from_state(self, state, rs):
        try:
            if self.n_trials is None:
                raise ValueError
            n, = np.unique(_check_n_trials(self.n_trials))
        except (ValueError, TypeError):
            raise ValueError(f"n_trials must be one integer to sample, got "
                             f"{self.n_trials!r}") from None
        return rs.multinomial(int(n), self.emissionprob_[state, :])


# ---------------------------------------------------------------- Poisson
@register
class PoissonHMM(_BaseHMM):
    """Hidden Markov model with Poisson emissions (counts, one rate per state and
    feature): hmmlearn.hmm.PoissonHMM's parameters, attributes (lambdas_) and
    M-step, by ``method``."""

    def __init__(self, n_components=1, startprob_prior=1.0, transmat_prior=1.0,
                 lambdas_prior=0.0, lambdas_weight=0.0, algorithm="viterbi", random_state=None,
                 n_iter=10, tol=1e-2, verbose=False, params="stl", init_params="stl",
                 implementation="log", *, method="em", n_threads=None, burn_in=None,
                 n_chains=2, learning_decay=0.7, learning_offset=1.0,
                 total_samples=None):
        _common_init(self, n_components, startprob_prior, transmat_prior, algorithm,
                     random_state, n_iter, tol, verbose, params, init_params, implementation,
                     method, n_threads, burn_in, n_chains, learning_decay, learning_offset,
                     total_samples)
        self.lambdas_prior = lambdas_prior
        self.lambdas_weight = lambdas_weight

    _emission_attributes = ("lambdas_",)

    def _restore(self, fam):
        super()._restore(fam)
        self.n_features = fam.n_features

    def _family(self, D):
        return _PoissonHMMFamily(D, self.n_components, self.lambdas_prior, self.lambdas_weight,
                                 self.params)

    def _prepare_fit(self, X):
        from ..families.discrete import _numeric
        fam = self._family(_numeric(X).shape[1])
        return fam, fam.prepare(X, fitting=True)

    def _prepare_predict(self, X):
        from ..families.discrete import _numeric
        D = _numeric(X).shape[1]
        if hasattr(self, "lambdas_") and np.shape(self.lambdas_)[-1] != D:
            raise ValueError(f"X has {D} features, but {type(self).__name__} is expecting "
                             f"{np.shape(self.lambdas_)[-1]} features as input")
        fam = self._family(D)
        return fam, fam.prepare(X)

    def _init_emissions(self, fam, X, data, rs):
        if self._needs_init("l", "lambdas_"):
            Xd = np.asarray(data, dtype=np.float64)
            mean, var = Xd.mean(), Xd.var()
            if not var > 0 or not mean > 0:
                raise ValueError("X must hold counts that vary (and are not all 0) for "
                                 "PoissonHMM's start (the method of moments); set lambdas_ "
                                 "and drop 'l' from init_params otherwise")
            self.lambdas_ = rs.gamma(shape=mean ** 2 / var, scale=var / mean,
                                     size=(self.n_components, fam.n_features))

    def _theta(self, fam):
        from .._validation import check_array_param
        lam = check_array_param(self.lambdas_, "lambdas_", (self.n_components, fam.n_features))
        if np.any(lam < 0):
            raise ValueError("lambdas_ must be >= 0")
        return lam

    def _set_theta(self, fam, theta):
        self.lambdas_ = np.array(theta)
        self.n_features = fam.n_features

    def _n_emission_scalars(self):
        return {"l": int(np.size(self.lambdas_))}

    def _generate_sample_from_state(self, state, rs):
        return rs.poisson(self.lambdas_[state])


# ---------------------------------------------------------------- generic
_FAMILIES = ("gaussian_diag", "gaussian_full", "gaussian", "categorical", "poisson",
             "bernoulli")


@register
class HMM(_BaseHMM):
    """A hidden Markov model over any family of the Family protocol: ``family`` a
    name ('gaussian_diag', 'gaussian_full' / 'gaussian', 'categorical', 'poisson',
    'bernoulli') or a Family object (its own point_estimate, priors and conjugate
    laws).  Its emission parameters are the family's mean parameters ``theta_``
    (n_components x n_statistics; ``emissions_`` names them); the emission code of
    params / init_params is 'e'.  The start of theta: the family's point estimate
    from k-means labels (init 'e')."""

    _emission_codes = "e"
    # reference_: a Gaussian family's reference point (theta_ holds moments about
    # it); n_categories_: a categorical family's categories per feature
    # family_state_: a family object's JSON state (fastvem.families.state), written by
    # save and read back by load
    _emission_attributes = ("theta_", "reference_", "n_categories_", "family_state_")

    def __init__(self, family="gaussian_diag", n_components=1, *, startprob_prior=1.0,
                 transmat_prior=1.0, algorithm="viterbi", random_state=None, n_iter=10,
                 tol=1e-2, verbose=False, params="ste", init_params="ste",
                 implementation="log", method="em", n_threads=None, burn_in=None,
                 n_chains=2, learning_decay=0.7, learning_offset=1.0,
                 total_samples=None):
        _common_init(self, n_components, startprob_prior, transmat_prior, algorithm,
                     random_state, n_iter, tol, verbose, params, init_params, implementation,
                     method, n_threads, burn_in, n_chains, learning_decay, learning_offset,
                     total_samples)
        self.family = family

    def _make_family(self, X):
        import copy
        if isinstance(self.family, Family):
            from ..families.base import check_row_family
            return copy.deepcopy(check_row_family(self.family))
        if self.family not in _FAMILIES:
            raise ValueError(f"family must be one of {list(_FAMILIES)} or a Family object, got "
                             f"{self.family!r}")
        from ..families.discrete import Bernoulli, _numeric
        if self.family == "categorical":
            codes = check_codes(X)
            return Categorical([int(v) + 1 for v in codes.max(0)])
        D = _numeric(X).shape[1]
        return {"gaussian_diag": GaussianDiag, "gaussian_full": GaussianFull,
                "gaussian": GaussianFull, "poisson": Poisson,
                "bernoulli": lambda d: Bernoulli(d, packed=False)}[self.family](D)

    def _prepare_fit(self, X):
        fam = self._make_family(X)
        self._family_ = fam
        return fam, fam.prepare(X, fitting=True)

    def _prepare_predict(self, X):
        import copy
        fam = copy.deepcopy(getattr(self, "_family_", None)) or self._make_family(X)
        return fam, fam.prepare(X)

    def _init_emissions(self, fam, X, data, rs):
        if not self._needs_init("e", "theta_"):
            return
        from sklearn.cluster import KMeans
        K = self.n_components
        feats = fam.dense_features(data)
        if K > data.shape[0]:
            raise ValueError(f"n_components={K} must be <= n_samples={data.shape[0]}")
        labels = KMeans(K, n_init=1, random_state=rs).fit(feats).labels_
        S = fam.n_statistics()
        from .._ext import _expfam as ek
        stats, nk, tot = np.zeros((K, S)), np.zeros(K), np.zeros(3)
        ek.row_pass(fam.kernel_data(data), fam.aux(), ek.FEATURES[fam.features], fam.address, S,
                    np.zeros((K, S)), np.zeros(K), np.zeros(K), None, labels.astype(np.int64),
                    np.empty(0, dtype=np.int64), stats, nk, tot, 3, 0, 1)
        mean = stats.sum(0) / max(nk.sum(), 1e-300)
        self.theta_ = fam.point_estimate(stats, nk, np.tile(mean, (K, 1)))

    def _theta(self, fam):
        th = np.asarray(self.theta_, dtype=np.float64)
        if th.shape != (self.n_components, fam.n_statistics()) or not np.all(np.isfinite(th)):
            raise ValueError(f"theta_ must be a finite array of shape "
                             f"({self.n_components}, {fam.n_statistics()}), got {th.shape}")
        return th

    def _set_theta(self, fam, theta):
        self.theta_ = np.array(theta)
        if isinstance(self.family, str):        # what load rebuilds the family from
            if getattr(fam, "ref", None) is not None:
                self.reference_ = np.array(fam.ref, dtype=np.float64)
            if isinstance(fam, Categorical):
                self.n_categories_ = np.array(fam.n_categories, dtype=np.int64)

    @property
    def emissions_(self):
        """The emission parameters by name (the family's describe of theta_)."""
        if "theta_" not in self.__dict__ or "_family_" not in self.__dict__:
            raise AttributeError("emissions_: the model is not fitted")
        return self._family_.describe(self.theta_)

    def _restore(self, fam):
        super()._restore(fam)
        self._family_ = fam

    # save / load of a family object (a built-in family or a Product of them): the
    # parameter and the fitted family as their JSON state; an ExponentialFamily is
    # refused (pickle the estimator)
    def _saved_params(self):
        from ..families.state import saved_family_param
        return saved_family_param(self.get_params(deep=False))

    def _saved_attributes(self):
        from ..families.state import dumps
        out = super()._saved_attributes()
        if isinstance(self.family, Family):
            out["family_state_"] = dumps(self._family_)
        return out

    @staticmethod
    def _loaded_params(params):
        from ..families.state import loaded_family_param
        return loaded_family_param(params)

    def _n_emission_scalars(self):
        return {"e": self._family_.n_parameters(self.n_components)}

    def _generate_sample_from_state(self, state, rs):
        return self._family_.sample_rows(self.theta_[state], 1, rs)[0]


# ------------------------------------------------- hmmlearn's variational HMMs
def _shared(value, name, per_state, shared):
    """A prior given once for every state (shape `shared`, or broadcastable to it),
    or per state (shape `per_state`) with every state's the same."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or an array, got {value!r}") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if per_state is not None and arr.shape == per_state and arr.shape != shared:
        if not np.all(arr == arr[:1]):
            raise NotImplementedError(
                f"{name} differs between states: priors shared by every state are built, "
                "not one per state")
        arr = arr[0]
    try:
        return np.array(np.broadcast_to(arr, shared))
    except ValueError:
        raise ValueError(f"{name} must have shape {shared} or {per_state}, got "
                         f"{arr.shape}") from None


def _fill(scale, ct, K, D):
    """hmmlearn's covariance-type shaped scale as K full matrices."""
    a = np.asarray(scale, dtype=np.float64)
    if ct == "full":
        return a.reshape(K, D, D).copy()
    if ct == "tied":
        return np.tile(a.reshape(D, D), (K, 1, 1))
    if ct == "diag":
        return np.einsum("kd,de->kde", a.reshape(K, D), np.eye(D))
    return a.reshape(K)[:, None, None] * np.eye(D)[None]


def _unfill(full, ct):
    if ct == "full":
        return np.array(full)
    if ct == "tied":
        return np.array(full[0])
    if ct == "diag":
        return np.array(np.diagonal(full, axis1=1, axis2=2))
    return np.array(full[:, 0, 0])


class _VariationalGaussianFamily(GaussianFull):
    """hmmlearn's VariationalGaussianHMM emissions: a Normal-Wishart q per state
    (mean m, beta, dof, scale = W^-1) on the full Gaussian's statistics; 'diag'
    and 'spherical' restrict the scale to a diagonal / a multiple of the identity,
    'tied' shares dof and scale between states (one Wishart in the KL), as
    hmmlearn does.  The E-step and KL are GaussianFull's conjugate formulas, which
    are hmmlearn's: E log|Lambda| by the Wishart's digammas, and the Normal KL at
    E[Lambda] (what hmmlearn computes)."""

    def __init__(self, n_features, n_components, covariance_type, means_prior, beta_prior,
                 dof_prior, scale_prior):
        super().__init__(n_features)
        K, D = n_components, n_features
        self.K, self.covariance_type = K, covariance_type
        self.m0 = None if means_prior is None else _shared(means_prior, "means_prior", (K, D),
                                                           (D,))
        self.beta0 = 1.0 if beta_prior is None else float(
            _shared(beta_prior, "beta_prior", (K,), ()))
        tied = covariance_type == "tied"
        self.nu0 = float(D) if dof_prior is None else float(
            _shared(dof_prior, "dof_prior", None if tied else (K,), ()))
        sshape = {"full": (D, D), "tied": (D, D), "diag": (D,), "spherical": ()}[covariance_type]
        per = {"full": (K, D, D), "tied": None, "diag": (K, D), "spherical": (K,)}[
            covariance_type]
        sc = np.full(sshape, 1e-3) if scale_prior is None else _shared(
            scale_prior, "scale_prior", per, sshape)
        if scale_prior is None and covariance_type in ("full", "tied"):
            sc = np.eye(D) * 1e-3
        self.scale0 = (sc if sshape == (D, D) else np.diag(sc) if sshape == (D,)
                       else float(sc) * np.eye(D))
        if self.beta0 <= 0:
            raise ValueError(f"beta_prior must be > 0, got {beta_prior!r}")
        if not self.nu0 > D - 1:
            raise ValueError(f"dof_prior must be > n_features - 1 = {D - 1}, got "
                             f"{dof_prior!r}")
        try:
            np.linalg.cholesky(self.scale0)
        except np.linalg.LinAlgError:
            raise ValueError("scale_prior must be positive definite") from None

    def default_prior(self, X, sample_weight=None):
        from ..families.normal import _column_moments
        m0 = (_column_moments(X, self.ref)[0] if self.m0 is None else self.m0 - self.ref)
        return np.array(m0, dtype=np.float64), self.beta0, self.nu0, self.scale0.copy()

    def expected_effective(self, q):
        """E_q log p(x | theta) + n_features / 2 log(2 pi): hmmlearn's sub-normalised
        log-likelihood leaves the constant out, and so its lower bound."""
        W, c = super().expected_effective(q)
        return W, c + 0.5 * self.n_features * np.log(2.0 * np.pi)

    def restrict(self, q, prior):
        """q of the covariance type from the full conjugate update."""
        m, beta, nu, Winv = q
        ct, D = self.covariance_type, self.n_features
        eye = np.eye(D)
        if ct == "diag":
            Winv = np.diagonal(Winv, axis1=1, axis2=2)[:, :, None] * eye[None]
        elif ct == "spherical":
            Winv = np.diagonal(Winv, axis1=1, axis2=2).mean(1)[:, None, None] * eye[None]
        elif ct == "tied":
            W0inv = prior[3]
            Winv = np.broadcast_to(W0inv + np.sum(Winv - W0inv, axis=0), Winv.shape).copy()
            nu = np.full_like(nu, prior[2] + np.sum(nu - prior[2]))
        return m, beta, nu, Winv

    def posterior(self, stats, nk, prior):
        return self.restrict(super().posterior(stats, nk, prior), prior)

    def kl(self, q, prior):
        total = super().kl(q, prior)
        if self.covariance_type != "tied":
            return total
        m0, beta0 = prior[0], prior[1]
        m, beta, nu, Winv = q
        K = m.shape[0]
        wishart = super().kl((np.tile(m0, (K, 1)), np.full(K, float(beta0)), nu, Winv), prior)
        return total - wishart * (K - 1) / K      # one shared Wishart, not K


def _variational_chain(est, K, rs, n_seq, N):
    """hmmlearn's start of q(startprob), q(transmat) (or the user's posteriors)."""
    if est._needs_init("s", "startprob_posterior_"):
        a = rs.dirichlet(np.full(K, 1.0 / K)) * n_seq
    else:
        a = _positive_array(est.startprob_posterior_, (K,), "startprob_posterior_")
    if est._needs_init("t", "transmat_posterior_"):
        A = rs.dirichlet(np.full(K, 1.0 / K), size=K) * (N / K)
    else:
        A = _positive_array(est.transmat_posterior_, (K, K), "transmat_posterior_")
    return a, A


def _positive_array(value, shape, name):
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must hold finite values > 0")
    return arr.copy()


def _variational_init(est, n_components, startprob_prior, transmat_prior, algorithm,
                      random_state, n_iter, tol, verbose, params, init_params, implementation,
                      n_threads):
    _common_init(est, n_components, startprob_prior, transmat_prior, algorithm, random_state,
                 n_iter, tol, verbose, params, init_params, implementation, "meanfield",
                 n_threads, None)


class _VariationalChain:
    """The variational HMMs' chain priors: hmmlearn's default 1 / n_components;
    q(startprob), q(transmat) set by the user are a fit's start (init_params)."""

    _stale_attributes = ("emission_posterior_", "posterior_samples_", "n_relabelled_")

    def _chain(self, K):
        sp = 1.0 / K if self.startprob_prior is None else self.startprob_prior
        tp = 1.0 / K if self.transmat_prior is None else self.transmat_prior
        return Chain(K, sp, tp)

    def _chain_posterior(self, chain):
        self.startprob_prior_, self.transmat_prior_ = chain.check_posterior_prior()


@register
class VariationalCategoricalHMM(_VariationalChain, CategoricalHMM):
    """hmmlearn.hmm.VariationalCategoricalHMM: CategoricalHMM by mean field
    (method='meanfield', fixed), with hmmlearn's parameters, defaults (priors
    1 / n_components and 1 / n_features, n_iter=100, tol=1e-6), its start of q
    (or the user's startprob_posterior_, transmat_posterior_,
    emissionprob_posterior_ where init_params leaves them out) and attributes
    (startprob_prior_, startprob_posterior_, transmat_prior_, transmat_posterior_,
    emissionprob_prior_, emissionprob_posterior_; startprob_, transmat_,
    emissionprob_ the posterior means).  monitor_.history is hmmlearn's lower
    bound, iterate for iterate."""

    _emission_attributes = ("emissionprob_", "emissionprob_posterior_", "startprob_prior_",
                            "transmat_prior_", "emissionprob_prior_")

    def __init__(self, n_components=1, startprob_prior=None, transmat_prior=None,
                 emissionprob_prior=None, n_features=None, algorithm="viterbi",
                 random_state=None, n_iter=100, tol=1e-6, verbose=False, params="ste",
                 init_params="ste", implementation="log", *, n_threads=None):
        _variational_init(self, n_components, startprob_prior, transmat_prior, algorithm,
                          random_state, n_iter, tol, verbose, params, init_params,
                          implementation, n_threads)
        self.emissionprob_prior = emissionprob_prior
        self.n_features = n_features

    def _emission_family(self, n_symbols):
        prior = 1.0 / n_symbols if self.emissionprob_prior is None else self.emissionprob_prior
        return _CategoricalHMMFamily(n_symbols, self.n_components, prior, self.params)

    def _variational_start(self, fam, chain, X, data, offsets):
        K, N = self.n_components, data.shape[0]
        nf = fam.n_categories[0]
        rs = check_random_state_param(self.random_state)
        qc = _variational_chain(self, K, rs, len(offsets) - 1, N)
        if self._needs_init("e", "emissionprob_posterior_"):
            rs = check_random_state_param(self.random_state)
            init = fam.emissionprob_prior[0, 0]
            q = rs.dirichlet(alpha=[init] * nf, size=K) * (N / K)
        else:
            q = _positive_array(self.emissionprob_posterior_, (K, nf), "emissionprob_posterior_")
        return q, qc

    def _set_posterior(self, fam, q, chain, prior):
        self._chain_posterior(chain)
        self.emissionprob_prior_ = np.array(prior)
        self.emissionprob_posterior_ = np.array(q)


@register
class VariationalGaussianHMM(_VariationalChain, GaussianHMM):
    """hmmlearn.hmm.VariationalGaussianHMM: GaussianHMM by mean field
    (method='meanfield', fixed), with hmmlearn's priors (startprob_prior,
    transmat_prior, means_prior, beta_prior, dof_prior, scale_prior; None:
    hmmlearn's defaults 1 / n_components, the data's mean, 1, n_features,
    1e-3 I), its start of q (k-means; or the user's startprob_posterior_,
    transmat_posterior_, means_posterior_, beta_posterior_, dof_posterior_,
    scale_posterior_ where init_params leaves them out) and attributes (the *_prior_
    and *_posterior_ arrays in hmmlearn's shapes; means_ and covars_ = scale /
    dof, the fitted point predictions read).  Every covariance_type; the priors
    must be the same for every state (hmmlearn allows one per state), and every
    parameter is updated (params='stmc').  monitor_.history is hmmlearn's lower
    bound (its ELBO without the constant -n_features / 2 log(2 pi) a row)."""

    _emission_attributes = ("means_", "covars_", "means_prior_", "means_posterior_",
                            "beta_prior_", "beta_posterior_", "dof_prior_", "dof_posterior_",
                            "scale_prior_", "scale_posterior_", "startprob_prior_",
                            "transmat_prior_")

    def __init__(self, n_components=1, covariance_type="full", startprob_prior=None,
                 transmat_prior=None, means_prior=None, beta_prior=None, dof_prior=None,
                 scale_prior=None, algorithm="viterbi", random_state=None, n_iter=100,
                 tol=1e-6, verbose=False, params="stmc", init_params="stmc",
                 implementation="log", *, n_threads=None):
        _variational_init(self, n_components, startprob_prior, transmat_prior, algorithm,
                          random_state, n_iter, tol, verbose, params, init_params,
                          implementation, n_threads)
        self.covariance_type = covariance_type
        self.means_prior = means_prior
        self.beta_prior = beta_prior
        self.dof_prior = dof_prior
        self.scale_prior = scale_prior

    def _family(self, D):
        if self.covariance_type not in _COVARIANCE_TYPES:
            raise ValueError(f"covariance_type must be one of {list(_COVARIANCE_TYPES)}, got "
                             f"{self.covariance_type!r}")
        if not isinstance(self.params, str) or set("stmc") - set(self.params):
            raise NotImplementedError(f"{type(self).__name__} updates every parameter "
                                      f"(params='stmc'), got params={self.params!r}")
        return _VariationalGaussianFamily(D, self.n_components, self.covariance_type,
                                          self.means_prior, self.beta_prior, self.dof_prior,
                                          self.scale_prior)

    def _predict_family(self, D):
        ct = self.covariance_type
        cls = _DiagHMMFamily if ct in ("diag", "spherical") else _FullHMMFamily
        return cls(D, self.n_components, ct, 1e-3, 0, 0, 1e-2, 1, "stmc")

    def _variational_start(self, fam, chain, X, data, offsets):
        K, N, D, ct = self.n_components, data.shape[0], fam.n_features, self.covariance_type
        rs = check_random_state_param(self.random_state)
        qc = _variational_chain(self, K, rs, len(offsets) - 1, N)
        Xd = np.asarray(data, dtype=np.float64)
        names = ("means_posterior_", "beta_posterior_", "dof_posterior_", "scale_posterior_")
        if any(self._needs_init(c, n) for c, n in zip("mmcc", names)):
            from sklearn.cluster import KMeans
            if K > N:
                raise ValueError(f"n_components={K} must be <= n_samples={N} for the "
                                 "k-means start")
            km = KMeans(n_clusters=K, random_state=self.random_state, n_init=10).fit(Xd)
            counts = np.bincount(km.predict(Xd), minlength=K).astype(np.float64)
        if self._needs_init("m", "means_posterior_") or self._needs_init("m", "beta_posterior_"):
            m, beta = km.cluster_centers_.copy(), counts.copy()
        else:
            m = _broadcast(self.means_posterior_, (K, D), "means_posterior_")
            beta = _positive_array(self.beta_posterior_, (K,), "beta_posterior_")
        if self._needs_init("c", "dof_posterior_") or self._needs_init("c", "scale_posterior_"):
            nu = np.full(K, counts.sum()) if ct == "tied" else counts.copy()
            cv = np.atleast_2d(np.cov(Xd.T)) + 1e-3 * np.eye(D)
            if ct == "spherical":
                scale = np.full(K, cv.mean()) * nu
            elif ct == "diag":
                scale = np.tile(np.diag(cv), (K, 1)) * nu[:, None]
            elif ct == "tied":
                scale = cv * nu[0]
            else:
                scale = cv[None] * nu[:, None, None]
        else:
            nu = np.broadcast_to(np.asarray(self.dof_posterior_, dtype=np.float64), (K,)).copy()
            scale = np.asarray(self.scale_posterior_, dtype=np.float64)
        Winv = _fill(scale, ct, K, D)
        if not np.all(nu > D - 1) or not np.all(np.isfinite(Winv)):
            raise ValueError("dof_posterior_ must be > n_features - 1 and scale_posterior_ "
                             "finite")
        q = (m - fam.ref, beta, nu, 0.5 * (Winv + np.transpose(Winv, (0, 2, 1))))
        if ct in ("diag", "spherical"):       # the scale's shape (tied: shared already)
            q = fam.restrict(q, None)
        return q, qc

    def _set_theta(self, fam, theta):
        d = fam.describe(theta)
        self.means_ = d["means"]
        self._covars_ = _unfill(d["covariances"], self.covariance_type)
        self.n_features = fam.n_features

    def _set_posterior(self, fam, q, chain, prior):
        self._chain_posterior(chain)
        K, ct = self.n_components, self.covariance_type
        m, beta, nu, Winv = q
        m0, beta0, nu0, W0inv = prior
        self.means_posterior_ = m + fam.ref
        self.beta_posterior_ = np.array(beta)
        self.dof_posterior_ = float(nu[0]) if ct == "tied" else np.array(nu)
        self.scale_posterior_ = _unfill(Winv, ct)
        self.means_prior_ = np.tile(m0 + fam.ref, (K, 1))
        self.beta_prior_ = np.full(K, float(beta0))
        self.dof_prior_ = float(nu0) if ct == "tied" else np.full(K, float(nu0))
        self.scale_prior_ = _unfill(np.tile(W0inv, (K, 1, 1)), ct)

    def _n_emission_scalars(self):
        K, D = self.n_components, np.shape(self.means_)[1]
        return {"m": K * D + K, "c": {"full": K + K * D * (D + 1) // 2,
                                      "tied": 1 + D * (D + 1) // 2, "diag": K + K * D,
                                      "spherical": 2 * K}[self.covariance_type]}
