"""GMMHMM: a hidden Markov model whose states emit a mixture of Gaussians -- an
hmmlearn 0.3 ``GMMHMM`` drop-in, fitted by the methods em (default), vem and crisp.

The model.  K states, M mixture components per state:

    z_1 ~ startprob,   z_t | z_t-1 = j ~ transmat[j],
    m_t | z_t = k ~ weights[k],   x_t | z_t = k, m_t = m ~ N(means[k, m], covars[k, m]).

The expanded chain.  (z_t, m_t) is itself a first-order Markov chain over K M
expanded states (k, m):

    start'(k, m)                  = startprob[k] weights[k, m]
    transmat'((j, m), (k, m'))    = transmat[j, k] weights[k, m']
    emission'(x | (k, m))         = N(x; means[k, m], covars[k, m])

(the next component depends on the next state only, never on the current
component), so forward-backward on the expanded chain is exact for the GMMHMM:

- its posteriors gamma_t(k, m) are p(z_t = k, m_t = m | x) = gamma_t(k) times the
  within-state responsibility w_km N_km(x_t) / sum_m' w_km' N_km'(x_t) -- exactly
  hmmlearn's ``post_comp_mix``;
- its expected transition counts summed over m and m' are the state transition
  counts sum_t xi_t(j, k); its start counts summed over m the state start counts;
- sum_t gamma_t(k, m) are the mixture-weight counts (hmmlearn's ``post_mix_sum``)
  and sum_m of them the state occupancies (``post_sum``);
- its log p(x) is the GMMHMM's (the sum over m is the marginal over m_t).

So one pass of the compiled sequence driver (``_ext/_hmm.pyx: hmm_pass``) over K M
states with a Gaussian family of K M components gives every sufficient statistic
of hmmlearn's E-step, with no kernel of its own; threads and bitwise thread
invariance come with it.  The cost: the driver's forward-backward is O((K M)^2)
a row where the factored transition allows O(K^2 + K M) (see "Cost" below).

The M-step is hmmlearn's ``GMMHMM._do_mstep`` (hmmlearn 0.3), prior for prior:

    startprob, transmat  max(prior - 1 + counts, 0), normalised (the other HMMs')
    weights[k, m]        (n_km + weights_prior_km - 1) / (n_k + sum_m (prior - 1))
    means[k, m]          (means_weight mu0 + sum_t gamma x_t) / (means_weight + n_km)
    covariances          (prior terms + means_weight (mu - mu0)(mu - mu0)^T + C_km) / d
       with C_km = sum_t gamma_t(k, m) (x_t - mu_old)(x_t - mu_old)^T about the means
       the E-step ran with (as hmmlearn, which accumulates them before updating
       the means) and d, the prior terms and their defaults per covariance_type:
       full       d = n_km + covars_weight + D + 2, + covars_prior^T
                  (defaults 0 and -(D + 2): the ML covariance)
       diag       d = n_km + 2 covars_prior + 3, + 2 covars_weight
                  (defaults -1.5 and 0: ML)
       spherical  d = D (n_km + 1) + 2 covars_prior + 2, + 2 covars_weight,
                  C summed over the features (defaults -(M + 2) / 2 and 0)
       tied       one covariance per state, shared by its M components (hmmlearn's
                  meaning for GMMHMM): the numerators summed over m,
                  d = n_k + M + covars_weight + D + 1, + covars_prior^T
                  (defaults 0 and -(M + D + 1): the pooled ML covariance)

(``params`` letters s t m c w choose what is updated; min_covar, as in hmmlearn's
GMMHMM, only enters the start's covariances.)  The update centred at the old means
is still a generalised EM step: with B(mu) = prior terms + means_weight (mu - mu0)
(mu - mu0)^T + sum_t gamma (x_t - mu)(x_t - mu)^T, the new means minimise B, and
hmmlearn's numerator lies between B(new means) and B(old means) (in the positive
semi-definite order), so the expected complete log posterior at (new means, its
covariances) is at least its value at the old parameters; em's objective (the
log-likelihood under the maximum-likelihood defaults, with priors the log
posterior these updates are the mode of) never decreases.

Methods:

    em     forward-backward on the expanded chain; objective log p(X) at the
           iteration's start (hmmlearn's monitor_.history, iterate for iterate)
    vem    the driver's factorised q(z_1, m_1) ... q(z_T, m_T) on the expanded
           chain (mode 3); objective its ELBO, which never decreases (HMMEngine's
           rule: the previous q is kept where the fresh fixed point is lower)
    crisp  Viterbi on the expanded chain: the joint MAP path of (state, component);
           objective log p(X, path), which never decreases (hard EM)

meanfield and gibbs are refused (ValueError): their conjugate laws for the
per-state mixture (Dirichlet weights x Normal-Wishart / Normal-Gamma components, and
the tied / spherical laws) are not built.

Predictions (score, score_samples, predict_proba, decode, predict) are hmmlearn's:
they run on the K-state chain with the state emission log-densities
log p(x | k) = logsumexp_m (log w_km + log N_km(x)).  These are computed in chunks
of rows by the compiled row driver (``_ext/_expfam.pyx: log_joint_rows``: the K M
weighted component log-densities, then a logsumexp over m in NumPy; O(K M) memory
per row of a chunk, never N x K M) and handed to the sequence driver as the rows of
a unit Gaussian family: features T(y) = (y, y^2) of the K log-densities y with
W = [I, 0] and c = 0, so the driver's log-density of state k is y_k - K log(2 pi) / 2
exactly up to one rounding (the constant is added back to every returned log
probability).  This matters for the Viterbi path: the expanded chain's Viterbi
maximises over (state, component) paths -- the emission of state k would be
max_m w_km N_km(x), not the sum -- so decode(algorithm='viterbi') and predict use the
K-state chain, as hmmlearn's, while crisp fits with the joint path.  (Posteriors and
log p(X) of the K-state chain equal the expanded chain's summed over m.)

Cost.  A fitting pass is O(N (K M)^2 + N K M D^2) time (full covariances; D for
diag), memory per thread O(longest sequence x K M) plus (K M)^2 transition counts.
Predictions add the chunked state log-densities, O(N K M D^2).  A structured
forward step (alpha'_t(k, m) = w_km N_km(x_t) sum_j A_jk sum_m' alpha_t-1(j, m'))
would bring the chain to O(N (K^2 + K M)); it needs a kernel mode of its own.

Differences from hmmlearn, on purpose: a component or state whose update is not
finite or not positive definite (no occupancy: hmmlearn sets its mean to 0 and,
under the default priors, its covariance to 0 / 0 = NaN, which then spreads to
every score) keeps its previous mean and covariance (a weight of 0 stays 0; under
vem, whose fixed point floors log 0 at log of the smallest normal double, it stays
below 1e-300), a state without
mass keeps its weights row, transition rows as the other HMMs (all recorded in
``trace_["events"]``); weights floored at 0 and renormalised where weights_prior < 1
would make hmmlearn's negative; k-means clusters with fewer than n_mix rows draw
their means from random_state (hmmlearn uses NumPy's global generator there); the
number of free parameters of aic / bic counts the weights of every state,
K (M - 1) (hmmlearn 0.3 counts M - 1); ``implementation`` is accepted and ignored
(the driver's scaled forward-backward is exact).
"""

import numpy as np

from ..engine import default_n_threads
from ..families.normal import GaussianDiag, GaussianFull, _to_matrix
from ..io import register
from ..structures.hmm import LOG_FLOOR, Chain
from .._validation import check_array_param
from .hmm import (HMMEngine, _BaseHMM, _check_int, _distribution,
                  _broadcast, _kernel, _offsets, _RealRows, _stepwise_init)

__all__ = ["GMMHMM", "GMMHMMEngine", "expanded_log_params"]

_BUILT = ("em", "vem", "crisp")
_LOG_H = -0.9189385332046727        # -log(2 pi) / 2: the driver's log h per feature
_LP_LIMIT = 1e150                   # |log-density| the unit family's squares hold
_CHUNK = 1 << 20                    # doubles of a chunk of component log-densities


def _expanded(start, trans, weights, combine):
    """The expanded chain over the K M states (k, m), k major, from the states'
    start (K), transitions (K x K) and mixture weights (K x M) combined by
    `combine` (np.multiply on probabilities, np.add on logs): start[k] o w[k, m]
    and trans[j, k] o w[k, m'] for the move (j, m) -> (k, m')."""
    K, M = weights.shape
    s = combine(start[:, None], weights).reshape(K * M)
    t = np.broadcast_to(combine(trans[:, None, :, None], weights[None, None, :, :]),
                        (K, M, K, M))
    return s, t.reshape(K * M, K * M)


def expanded_log_params(startprob, transmat, weights, floor=False):
    """(log_start', log_trans') of the expanded chain over the K M states (k, m),
    k major: log startprob[k] + log weights[k, m] and
    log transmat[j, k] + log weights[k, m'] for the move (j, m) -> (k, m').  -inf
    where a probability is 0, or LOG_FLOOR there when floor (vem)."""
    with np.errstate(divide="ignore"):
        lpi, lA, lw = np.log(startprob), np.log(transmat), np.log(weights)
    ls, lt = _expanded(lpi, lA, lw, np.add)
    if floor:
        ls, lt = np.maximum(ls, LOG_FLOOR), np.maximum(lt, LOG_FLOOR)
    return (np.ascontiguousarray(ls, dtype=np.float64),
            np.ascontiguousarray(lt, dtype=np.float64))


# ------------------------------------------------------------- the families
def _components(fam, K, M, covariance_type, update, means_prior, means_weight):
    """The settings both GMM families share (the K M components, k major, and
    their means' prior); returns (K, M, D)."""
    D = fam.n_features
    fam.K, fam.M, fam.covariance_type, fam.update = K, M, covariance_type, update
    fam.means_prior = _broadcast(means_prior, (K, M, D), "means_prior").reshape(K * M, D)
    fam.means_weight = _broadcast(means_weight, (K, M), "means_weight").reshape(K * M)
    return K, M, D


class _GMMDiagFamily(GaussianDiag):
    """The K M components of a 'diag' or 'spherical' GMMHMM (k major) as one
    GaussianDiag, with hmmlearn's GMMHMM M-step as its point estimate."""

    def __init__(self, n_features, n_components, n_mix, covariance_type, min_covar,
                 means_prior, means_weight, covars_prior, covars_weight, update):
        super().__init__(n_features, reg_covar=min_covar)
        K, M, D = _components(self, n_components, n_mix, covariance_type, update, means_prior,
                              means_weight)
        if covariance_type == "diag":
            shape = (K, M, D)
            a0, b0 = -1.5, 0.0
        else:
            shape = (K, M)
            a0, b0 = -(M + 2.0) / 2.0, 0.0
        self.covars_prior = _broadcast(a0 if covars_prior is None else covars_prior, shape,
                                       "covars_prior").reshape((K * M,) + shape[2:])
        self.covars_weight = _broadcast(b0 if covars_weight is None else covars_weight, shape,
                                        "covars_weight").reshape((K * M,) + shape[2:])
        self.kept_ = []

    def point_estimate(self, stats, nk, previous):
        D = self.n_features
        mu0, var0 = self._split(previous)            # about the reference point
        s1, s2 = stats[:, :D], stats[:, D:]
        n = nk[:, None]
        lam = self.means_weight[:, None]
        mp = self.means_prior - self.ref
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if "m" in self.update:
                mu = (lam * mp + s1) / (lam + n)
                bad_mu = ~np.all(np.isfinite(mu), 1)
                mu[bad_mu] = mu0[bad_mu]
            else:
                mu, bad_mu = mu0, np.zeros(len(nk), dtype=bool)
            if "c" in self.update:
                # sum_t gamma (x_t - mu_old)^2 from the sums about the reference point
                C = s2 - 2.0 * mu0 * s1 + n * mu0 * mu0
                cm2 = lam * (mu - mp) ** 2
                a, b = self.covars_prior, self.covars_weight
                if self.covariance_type == "diag":
                    var = (cm2 + 2.0 * b + C) / (n + 1.0 + 2.0 * (a + 1.0))
                else:
                    v = ((cm2.sum(1) + 2.0 * b + C.sum(1))
                         / (D * (nk + 1.0) + 2.0 * (a + 1.0)))
                    var = np.tile(v[:, None], (1, D))
                bad_c = ~(np.all(np.isfinite(var), 1) & np.all(var > 0, 1))
                var[bad_c] = var0[bad_c]
            else:
                var, bad_c = var0, np.zeros(len(nk), dtype=bool)
        self.kept_ = np.flatnonzero(bad_mu | bad_c).tolist()
        return np.hstack((mu, var + mu * mu))


class _GMMFullFamily(GaussianFull):
    """The K M components of a 'full' or 'tied' GMMHMM (k major) as one
    GaussianFull (tied: every component of state k holds the state's covariance),
    with hmmlearn's GMMHMM M-step as its point estimate."""

    def __init__(self, n_features, n_components, n_mix, covariance_type, min_covar,
                 means_prior, means_weight, covars_prior, covars_weight, update):
        super().__init__(n_features, reg_covar=min_covar)
        K, M, D = _components(self, n_components, n_mix, covariance_type, update, means_prior,
                              means_weight)
        if covariance_type == "full":
            pshape, wshape, w0 = (K, M, D, D), (K, M), -(1.0 + D + 1.0)
        else:
            pshape, wshape, w0 = (K, D, D), (K,), -(M + D + 1.0)
        psi = _broadcast(0.0 if covars_prior is None else covars_prior, pshape, "covars_prior")
        self.covars_prior_t = np.swapaxes(psi, -1, -2).reshape((-1, D, D))
        self.covars_weight = _broadcast(w0 if covars_weight is None else covars_weight, wshape,
                                        "covars_weight").reshape(-1)
        self.kept_ = []

    def point_estimate(self, stats, nk, previous):
        D, K, M = self.n_features, self.K, self.M
        mu0, cov0 = self._split(previous)
        s1 = stats[:, :D]
        S2 = _to_matrix(stats[:, D:], D)
        lam = self.means_weight
        mp = self.means_prior - self.ref
        outer = lambda a, b: a[:, :, None] * b[:, None, :]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if "m" in self.update:
                mu = (lam[:, None] * mp + s1) / (lam + nk)[:, None]
                bad_mu = ~np.all(np.isfinite(mu), 1)
                mu[bad_mu] = mu0[bad_mu]
            else:
                mu, bad_mu = mu0, np.zeros(len(nk), dtype=bool)
            if "c" in self.update:
                # sum_t gamma (x_t - mu_old)(x_t - mu_old)^T from the sums about ref
                C = S2 - outer(s1, mu0) - outer(mu0, s1) + nk[:, None, None] * outer(mu0, mu0)
                cm = mu - mp
                num = lam[:, None, None] * outer(cm, cm) + C
                if self.covariance_type == "full":
                    den = nk + 1.0 + self.covars_weight + D + 1.0
                    cov = (self.covars_prior_t + num) / den[:, None, None]
                else:
                    num_k = num.reshape(K, M, D, D).sum(1) + self.covars_prior_t
                    den = nk.reshape(K, M).sum(1) + M + self.covars_weight + D + 1.0
                    cov = np.repeat(num_k / den[:, None, None], M, axis=0)
                cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
                bad_c = ~np.all(np.isfinite(cov), (1, 2))
                for i in np.flatnonzero(~bad_c):
                    try:
                        np.linalg.cholesky(cov[i])
                    except np.linalg.LinAlgError:
                        bad_c[i] = True
                if self.covariance_type == "tied":   # a state's covariance, or none
                    bad_c = np.repeat(bad_c.reshape(K, M).any(1), M)
                cov[bad_c] = cov0[bad_c]
            else:
                cov, bad_c = cov0, np.zeros(len(nk), dtype=bool)
        self.kept_ = np.flatnonzero(bad_mu | bad_c).tolist()
        return self._theta(mu, cov)


# ---------------------------------------------------------------- the engine
class GMMHMMEngine(HMMEngine):
    """HMMEngine on the expanded chain (see the module doc): parameters
    (startprob (K), transmat (K x K), weights (K x M), theta (K M x S)); the kernel
    runs K M states, the update folds the expanded counts back to the K states and
    their mixture weights (hmmlearn's GMMHMM M-step)."""

    def __init__(self, family, chain, method, data, offsets, n_threads, n_mix, weights_prior,
                 update="stmcw", seed=0):
        super().__init__(family, chain, method, data, offsets, n_threads, update=update,
                         seed=seed)
        self.n_mix = n_mix
        self.weights_prior = weights_prior

    def effective(self, params):
        startprob, transmat, weights, theta = params
        W, c = self.family.effective(theta)
        ls, lt = expanded_log_params(startprob, transmat, weights, floor=self.mode == 3)
        return W, c, ls, lt

    def fold(self, stats):
        """(state start counts (K), state transition counts (K x K), component
        counts n_km (K x M)) from the expanded statistics."""
        K, M = self.chain.n_components, self.n_mix
        return (stats.start.reshape(K, M).sum(1), stats.trans.reshape(K, M, K, M).sum((1, 3)),
                stats.nk.reshape(K, M))

    def update(self, stats, iteration=0, params=None):
        startprob, transmat, weights, theta = params
        start, trans, nkm = self.fold(stats)
        startprob, transmat, events = self.chain.point_estimate(
            start, trans, startprob, transmat, self.update_codes)
        if "w" in self.update_codes:
            a1 = self.weights_prior - 1.0
            num = nkm + a1
            den = nkm.sum(1) + a1.sum(1)
            with np.errstate(divide="ignore", invalid="ignore"):
                new = num / den[:, None]
            if np.any(new < 0):
                # weights_prior < 1 below the counts: the MAP lies on the boundary
                new = np.maximum(num, 0.0)
                with np.errstate(divide="ignore", invalid="ignore"):
                    new = new / new.sum(1, keepdims=True)
                events.append("weights_ floored at 0 (weights_prior < 1)")
            dead = ~np.all(np.isfinite(new), 1) | ~(np.abs(new.sum(1) - 1.0) < 1e-6)
            if np.any(dead):
                new[dead] = weights[dead]
                events.append(f"weights_ rows {np.flatnonzero(dead).tolist()} kept: no mass")
            weights = new
        fam = self.family
        theta = fam.point_estimate(stats.stats, stats.nk, theta)
        empty = np.flatnonzero(stats.nk <= 0)
        if len(empty):
            events.append(f"components {[divmod(int(i), self.n_mix) for i in empty]} "
                          "(state, component) never visited")
        if fam.kept_:
            events.append(f"components {[divmod(int(i), self.n_mix) for i in fam.kept_]} "
                          "kept their mean and covariance (update not finite or not "
                          "positive definite)")
        return (startprob, transmat, weights, theta), events


# ---------------------------------------------------------------- estimator
@register
class GMMHMM(_RealRows, _BaseHMM):
    """Hidden Markov model with Gaussian-mixture emissions: hmmlearn.hmm.GMMHMM's
    parameters, attributes and M-step (hmmlearn 0.3), fitted by ``method`` ('em'
    default, 'vem', 'crisp'; see the module doc for the expanded chain they run on).

    Attributes: startprob_ (K), transmat_ (K x K), weights_ (K x n_mix), means_
    (K x n_mix x D), covars_ in hmmlearn's shapes -- (K, n_mix) spherical,
    (K, n_mix, D) diag, (K, n_mix, D, D) full, (K, D, D) tied (one covariance per
    state shared by its components) --, monitor_ (hmmlearn's ConvergenceMonitor:
    history the total objective per iteration), n_features_in_, lower_bound_ and
    trace_ (the objective per row and the seconds of every iteration, and the
    events), n_iter_."""

    _emission_codes = "mcw"
    _emission_attributes = ("weights_", "means_", "covars_")

    def __init__(self, n_components=1, n_mix=1, min_covar=1e-3, startprob_prior=1.0,
                 transmat_prior=1.0, weights_prior=1.0, means_prior=0.0, means_weight=0.0,
                 covars_prior=None, covars_weight=None, algorithm="viterbi",
                 covariance_type="diag", random_state=None, n_iter=10, tol=1e-2,
                 verbose=False, params="stmcw", init_params="stmcw", implementation="log",
                 *, method="em", n_threads=None, learning_decay=0.7, learning_offset=1.0,
                 total_samples=None):
        self.n_components = n_components
        self.n_mix = n_mix
        self.min_covar = min_covar
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.weights_prior = weights_prior
        self.means_prior = means_prior
        self.means_weight = means_weight
        self.covars_prior = covars_prior
        self.covars_weight = covars_weight
        self.algorithm = algorithm
        self.covariance_type = covariance_type
        self.random_state = random_state
        self.n_iter = n_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.method = method
        self.n_threads = n_threads
        _stepwise_init(self, learning_decay, learning_offset, total_samples)

    # ------------------------------------------------------------ checks
    def _check_common(self):
        K, m = super()._check_common()
        _check_int(self.n_mix, "n_mix", 1)
        self._check_gaussian()
        if m.name not in _BUILT:
            raise ValueError(
                f"method={m.name!r} is not built for GMMHMM (em, vem and crisp are): its "
                "conjugate laws -- Dirichlet mixture weights per state with Normal-Wishart / "
                "Normal-Gamma components, and the tied and spherical laws -- are not "
                "implemented")
        return K, m

    def _family(self, D):
        K, M = self.n_components, self.n_mix
        cls = _GMMDiagFamily if self.covariance_type in ("diag", "spherical") \
            else _GMMFullFamily
        return cls(D, K, M, self.covariance_type, self.min_covar, self.means_prior,
                   self.means_weight, self.covars_prior, self.covars_weight, self.params)

    def _weights_prior(self):
        return _broadcast(self.weights_prior, (self.n_components, self.n_mix), "weights_prior")

    _means_ndim = 3         # means_ is (n_components, n_mix, n_features)

    # ------------------------------------------------------------ the start
    def _init_emissions(self, fam, X, data, rs):
        """hmmlearn's GMMHMM._init: k-means of the rows into K clusters, then k-means of
        each cluster into n_mix (a cluster with fewer rows: n_mix draws about the mean
        of the K centres, from random_state), weights 1 / n_mix, covariances the
        data's covariance plus min_covar on its diagonal in every component."""
        K, M, D = self.n_components, self.n_mix, fam.n_features
        Xd = np.asarray(data, dtype=np.float64)
        N = Xd.shape[0]
        cv = None

        def compute_cv():
            c = np.atleast_2d(np.cov(Xd.T)) if N > 1 else np.zeros((D, D))
            return c + self.min_covar * np.eye(D)

        if self._needs_init("w", "weights_"):
            self.weights_ = np.full((K, M), 1.0 / M)
        if self._needs_init("m", "means_"):
            from sklearn.cluster import KMeans
            if K > N:
                raise ValueError(f"n_components={K} must be <= n_samples={N} for the "
                                 "k-means start")
            krs = self.random_state if not isinstance(self.random_state,
                                                      np.random.RandomState) else rs
            main = KMeans(n_clusters=K, random_state=krs, n_init=10)
            labels = main.fit_predict(Xd)
            centre = np.mean(main.cluster_centers_, axis=0)
            means = []
            for k in range(K):
                rows = Xd[labels == k]
                if rows.shape[0] >= M:
                    means.append(KMeans(n_clusters=M, random_state=krs, n_init=10)
                                 .fit(rows).cluster_centers_)
                else:
                    if cv is None:
                        cv = compute_cv()
                    means.append(rs.multivariate_normal(centre, cv, size=M))
            self.means_ = np.stack(means)
        if self._needs_init("c", "covars_"):
            if cv is None:
                cv = compute_cv()
            ct = self.covariance_type
            if ct == "tied":
                self.covars_ = np.tile(cv, (K, 1, 1))
            elif ct == "full":
                self.covars_ = np.tile(cv, (K, M, 1, 1))
            elif ct == "diag":
                self.covars_ = np.tile(np.diag(cv), (K, M, 1))
            else:
                self.covars_ = np.full((K, M), cv.mean())

    # ------------------------------------------- attributes <-> parameters
    def _mixture(self, fam):
        """(weights (K x M), theta (K M x S)) from the attributes, validated."""
        K, M, D = self.n_components, self.n_mix, fam.n_features
        if not all(hasattr(self, n) for n in ("weights_", "means_", "covars_")):
            from sklearn.exceptions import NotFittedError
            raise NotFittedError("weights_, means_ and covars_ must be set (fit, or set them)")
        weights = _distribution(self.weights_, (K, M), "weights_")
        means = check_array_param(self.means_, "means_", (K, M, D)).reshape(K * M, D)
        ct = self.covariance_type
        shape = {"spherical": (K, M), "diag": (K, M, D), "full": (K, M, D, D),
                 "tied": (K, D, D)}[ct]
        c = check_array_param(self.covars_, "covars_", shape)
        if ct in ("spherical", "diag"):
            if np.any(c <= 0):
                raise ValueError(f"covars_ must be positive ({ct!r} mixture covariances)")
            var = (np.repeat(c.reshape(K * M, 1), D, axis=1) if ct == "spherical"
                   else c.reshape(K * M, D))
            return weights, fam.theta_from(means, var)
        full = np.repeat(c, M, axis=0) if ct == "tied" else c.reshape(K * M, D, D)
        for i in range(K * M):
            k, m = divmod(i, M)
            where = f"state {k}" if ct == "tied" else f"state {k}, component {m}"
            if not np.allclose(full[i], full[i].T):
                raise ValueError(f"covars_ must be symmetric ({where} is not)")
            try:
                np.linalg.cholesky(full[i])
            except np.linalg.LinAlgError:
                raise ValueError(f"covars_ must be positive definite ({where} is not)") \
                    from None
        return weights, fam.theta_from(means, full)

    def _fitted_params(self, fam):
        K = self.n_components
        weights, theta = self._mixture(fam)
        return (_distribution(self.startprob_, (K,), "startprob_"),
                _distribution(self.transmat_, (K, K), "transmat_"), weights, theta)

    def _set_params(self, fam, weights, theta):
        K, M, D = self.n_components, self.n_mix, fam.n_features
        self.weights_ = np.array(weights)
        d = fam.describe(theta)
        self.means_ = d["means"].reshape(K, M, D)
        ct = self.covariance_type
        if ct == "diag":
            self.covars_ = d["variances"].reshape(K, M, D)
        elif ct == "spherical":
            self.covars_ = d["variances"][:, 0].reshape(K, M).copy()
        elif ct == "full":
            self.covars_ = d["covariances"].reshape(K, M, D, D)
        else:
            self.covars_ = d["covariances"].reshape(K, M, D, D)[:, 0].copy()
        self.n_features = D

    def _restore(self, fam):
        super()._restore(fam)
        self.n_features = fam.n_features

    # ------------------------------------------------- the base fit's hooks
    def _engine(self, fam, chain, m, data, offsets, threads, seed):
        return GMMHMMEngine(fam, chain, m, data, offsets, threads, int(self.n_mix),
                            self._weights_prior(), update=self.params, seed=seed)

    def _start_params(self, fam, startprob, transmat):
        return (startprob, transmat) + self._mixture(fam)

    def _set_point(self, fam, params):
        self.startprob_, self.transmat_ = params[0], params[1]
        self._set_params(fam, params[2], params[3])

    @staticmethod
    def _implied_chain(params):
        """The expanded chain's (startprob, transmat) over the K M (state, component)
        pairs, and theta: what partial_fit's counts from the parameters read."""
        startprob, transmat, weights, theta = params
        return _expanded(startprob, transmat, weights, np.multiply) + (theta,)

    # ----------------------------------------------------------- predictions
    def _state_log_densities(self, fam, data, weights, theta, n_threads):
        """log p(x_t | state k) = logsumexp_m (log w_km + log N_km(x_t)) (N x K),
        from the row driver's component log-densities in chunks of rows."""
        from scipy.special import logsumexp
        from .._ext import _expfam as ek
        K, M = weights.shape
        N = data.shape[0]
        W, c = fam.effective(theta)
        W, c = np.ascontiguousarray(W), np.ascontiguousarray(c)
        with np.errstate(divide="ignore"):
            logw = np.ascontiguousarray(np.log(weights).reshape(K * M))
        out = np.empty((N, K))
        step = max(256, _CHUNK // (K * M))
        code = ek.FEATURES[fam.features]
        for r0 in range(0, N, step):
            r1 = min(N, r0 + step)
            buf = np.empty((r1 - r0, K * M))
            ek.log_joint_rows(fam.kernel_data(data[r0:r1]), fam.aux(), code, fam.address,
                              W.shape[1], W, c, logw, buf, n_threads)
            with np.errstate(under="ignore"):
                out[r0:r1] = logsumexp(buf.reshape(r1 - r0, K, M), axis=2)
        return out

    def _state_chain(self, X, lengths):
        """The K-state chain of the fitted model on X: (kernel, its arguments up to
        offsets -- the state log-densities as a unit Gaussian family --, N, K,
        offsets, the constant to add back per sequence, threads)."""
        self._check_fitted()
        K = _check_int(self.n_components, "n_components", 1)
        _check_int(self.n_mix, "n_mix", 1)
        fam, data = self._prepare_predict(X)
        offsets = _offsets(lengths, data.shape[0])
        startprob, transmat, weights, theta = self._fitted_params(fam)
        threads = default_n_threads(self.n_threads)
        lp = self._state_log_densities(fam, data, weights, theta, threads)
        np.clip(lp, -_LP_LIMIT, _LP_LIMIT, out=lp)
        ls, lt = Chain.log_params(startprob, transmat)
        k = _kernel()
        W = np.ascontiguousarray(np.hstack((np.eye(K), np.zeros((K, K)))))
        args = (lp, np.zeros(K), k.FEATURES["gaussian_float64"], 0, 2 * K, W, np.zeros(K),
                ls, lt, offsets)
        # the unit family's log h, -K log(2 pi) / 2 a row, taken back out
        back = -_LOG_H * K * np.diff(offsets).astype(np.float64)
        return k, args, data.shape[0], K, offsets, back, threads

    def _posteriors(self, X, lengths):
        k, args, N, K, offsets, back, threads = self._state_chain(X, lengths)
        gamma = np.empty((N, K))
        ll = np.empty(len(offsets) - 1)
        k.hmm_posteriors(*args, gamma, ll, threads)
        return ll + back, gamma

    def decode(self, X, lengths=None, algorithm=None):
        """(log probability, state sequence) by 'viterbi' (the MAP state path of the
        K-state chain, the mixture summed in each state's emission, as hmmlearn's;
        its log joint) or 'map' (each row's most probable state; hmmlearn's log
        probability, the sum of the largest posteriors).  States only, never
        mixture components."""
        algorithm = algorithm or self.algorithm
        if algorithm not in ("viterbi", "map"):
            raise ValueError(f"algorithm must be 'viterbi' or 'map', got {algorithm!r}")
        if algorithm == "map":
            _, gamma = self._posteriors(X, lengths)
            return float(np.max(gamma, axis=1).sum()), np.argmax(gamma, axis=1)
        k, args, N, K, offsets, back, threads = self._state_chain(X, lengths)
        path = np.empty(N, dtype=np.int64)
        lj = np.empty(len(offsets) - 1)
        k.hmm_viterbi(*args, path, lj, threads)
        return float((lj + back).sum()), path

    def _log_evidence(self, X, lengths=None, method="em"):
        """Per sequence: log p(x) (method 'em') or the ELBO of vem's factorised
        q(z_t, m_t) on the expanded chain (method 'vem') at the fitted parameters."""
        if method != "vem":
            return self._posteriors(X, lengths)[0]
        self._check_fitted()
        fam, data = self._prepare_predict(X)
        offsets = _offsets(lengths, data.shape[0])
        startprob, transmat, weights, theta = self._fitted_params(fam)
        W, c = fam.effective(theta)
        ls, lt = expanded_log_params(startprob, transmat, weights, floor=True)
        k = _kernel()
        gamma = np.empty((data.shape[0], W.shape[0]))
        ll = np.empty(len(offsets) - 1)
        k.hmm_posteriors(fam.kernel_data(data), fam.aux(), k.FEATURES[fam.features],
                         fam.address, W.shape[1], np.ascontiguousarray(W),
                         np.ascontiguousarray(c), ls, lt, offsets, gamma, ll, 1, mode=3)
        return ll

    def _draws_log_evidence(self, X, lengths=None):
        raise ValueError("GMMHMM is not fitted by gibbs (no draws)")

    def _n_emission_scalars(self):
        K, M, D = np.shape(self.means_)
        return {"m": K * M * D, "w": K * (M - 1),
                "c": {"spherical": K * M, "diag": K * M * D, "full": K * M * D * (D + 1) // 2,
                      "tied": K * D * (D + 1) // 2}[self.covariance_type]}

    def _generate_sample_from_state(self, state, rs):
        """hmmlearn's draw: a component from weights_[state], then its Gaussian."""
        M = self.n_mix
        i = rs.choice(M, p=self.weights_[state])
        ct, D = self.covariance_type, np.shape(self.means_)[2]
        if ct == "tied":
            cov = self.covars_[state]
        elif ct == "full":
            cov = self.covars_[state, i]
        elif ct == "diag":
            cov = np.diag(self.covars_[state, i])
        else:
            cov = np.eye(D) * self.covars_[state, i]
        return rs.multivariate_normal(self.means_[state, i], cov)
