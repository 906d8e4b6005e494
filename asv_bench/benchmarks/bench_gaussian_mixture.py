"""airspeed velocity benchmarks: fastvem.GaussianMixture against scikit-learn.

Every fit uses the same seeded data, the same fixed initial parameters
(weights_init / means_init / precisions_init, built the way
``asv_bench/peer_compare.py`` builds them) and a fixed number of iterations
(``max_iter=MAX_ITER``, ``tol=0``).  Data and inits are made once per run
with ``setup_cache``; every class inherits that one ``setup_cache``, so asv
makes them a single time for all classes.

Benchmarks
----------
FastvemGaussianMixture  covariance_type x dtype x method('em', 'crisp'):
                        time_fit, peakmem_fit, track_loglik
SklearnPeer             same params, method 'em' only (sklearn has no crisp
                        EM): time_fit, peakmem_fit, track_loglik -- shown
                        beside the fastvem rows by ``asv compare`` / the
                        html parameter tables.
FastvemInference        covariance_type x dtype: time_predict,
                        time_score_samples on the held-out rows.

``track_loglik`` is ``.score(X_test)``: the mean log-likelihood per sample of
held-out rows drawn in the same ``make_gaussian_mixture`` call as the
training rows (same true mixture), after the ``MAX_ITER`` iterations.  It is
the log-likelihood for every method (for 'crisp' it is not the crisp
objective).

Threads are left at the defaults of each side, as in peer_compare.py:
fastvem's kernels use all CPUs (BLAS single-threaded inside them);
scikit-learn uses its default BLAS threads.  ``peakmem_*`` is asv's peak RSS
of the benchmark process, so it includes the data (the same for both sides).

The size constants below are read at call time, so a smoke test can shrink
them (e.g. ``N = N_TEST = 2000``) before calling ``setup_cache``.
"""
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture as SkBayesianGaussianMixture
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import fastvem
from fastvem.datasets import make_gaussian_mixture

# Workload size: big enough to be dominated by the E/M-steps, small enough
# that the whole suite runs in a few minutes on a laptop.
N = 100_000          # training rows
N_TEST = 100_000     # held-out rows (track_loglik, predict, score_samples)
D = 16               # features
K = 16               # components
MAX_ITER = 10        # EM iterations per fit (tol=0: always runs all of them)
SEPARATION = 1.5     # overlapping clusters, as in peer_compare.py
SEED = 0

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]
DTYPES = ["float64", "float32"]
PARAM_NAMES = ["covariance_type", "dtype", "method"]


def _initial_params(X, n_components, covariance_type, seed=0):
    """Fixed initial parameters (same logic as peer_compare.initial_params):
    K distinct rows as means, equal weights, precisions = 1 / per-feature
    variance (of the first 20000 rows) in the layout of covariance_type."""
    rng = np.random.default_rng(seed)
    n_features = X.shape[1]
    means = X[rng.choice(X.shape[0], n_components, replace=False)].astype(np.float64)
    var = X[:20000].astype(np.float64).var(0)
    prec = {"full": np.broadcast_to(np.diag(1 / var),
                                    (n_components, n_features, n_features)).copy(),
            "tied": np.diag(1 / var),
            "diag": np.broadcast_to(1 / var, (n_components, n_features)).copy(),
            "spherical": np.full(n_components, 1 / var.mean())}[covariance_type]
    return dict(weights_init=np.full(n_components, 1.0 / n_components),
                means_init=means, precisions_init=prec)


def _fit(est, X):
    # tol=0 with a small max_iter never "converges": silence the warning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X)


class _Base:
    """Shared data cache and timing settings (not a benchmark itself)."""

    param_names = PARAM_NAMES
    params = [COVARIANCE_TYPES, DTYPES, ["em"]]

    # One fit is long enough to time on its own: 1 call per sample, at most
    # 3 samples (fewer once 20 s are spent), one process round.
    number = 1
    repeat = (1, 3, 20.0)
    rounds = 1
    warmup_time = 0.0
    timeout = 300

    def setup_cache(self):
        # Train and held-out rows come from ONE call, so they share the true
        # mixture (make_gaussian_mixture derives it from random_state).
        X, _, _ = make_gaussian_mixture(N + N_TEST, D, K, "diag", separation=SEPARATION,
                                        random_state=SEED)
        X_train = np.ascontiguousarray(X[:N])
        X_test = np.ascontiguousarray(X[N:])
        # Inits from the float64 training data, shared by both dtypes so that
        # float32 and float64 runs start from the same point.
        inits = {ct: _initial_params(X_train, K, ct, SEED) for ct in COVARIANCE_TYPES}
        return {"X_train": X_train, "X_test": X_test, "inits": inits,
                "n_components": K, "max_iter": MAX_ITER}

    def setup(self, data, covariance_type, dtype, method="em"):
        self.X = data["X_train"].astype(dtype)
        self.X_test = data["X_test"].astype(dtype)
        self.init = data["inits"][covariance_type]
        self.n_components = data["n_components"]
        self.max_iter = data["max_iter"]



class _FitBase(_Base):
    """time / peakmem / track of one fit; subclasses say what `make` builds."""

    def make(self, covariance_type, method):
        raise NotImplementedError

    def time_fit(self, data, covariance_type, dtype, method):
        _fit(self.make(covariance_type, method), self.X)

    def peakmem_fit(self, data, covariance_type, dtype, method):
        _fit(self.make(covariance_type, method), self.X)

    def track_loglik(self, data, covariance_type, dtype, method):
        est = _fit(self.make(covariance_type, method), self.X)
        return float(est.score(self.X_test))

    track_loglik.unit = "log-likelihood per sample"


class FastvemGaussianMixture(_FitBase):
    """fastvem.GaussianMixture.fit, MAX_ITER iterations from fixed inits (mean
    field: from the k-means responsibilities of random_state=0, as its peer;
    gibbs: MAX_ITER sweeps, held-out score = log mean density over the draws)."""

    params = [COVARIANCE_TYPES, DTYPES, ["em", "crisp", "meanfield", "gibbs"]]

    def make(self, covariance_type, method):
        if method == "gibbs":       # MAX_ITER sweeps of one chain, every draw kept
            return fastvem.GaussianMixture(
                self.n_components, covariance_type=covariance_type, method="gibbs",
                n_samples=self.max_iter, burn_in=0, n_chains=1, random_state=0)
        if method == "meanfield":
            return fastvem.BayesianGaussianMixture(
                n_components=self.n_components, covariance_type=covariance_type,
                max_iter=self.max_iter, tol=0, random_state=0)
        return fastvem.GaussianMixture(self.n_components, covariance_type=covariance_type,
                                       max_iter=self.max_iter, tol=0, method=method,
                                       **self.init)


class SklearnPeer(_FitBase):
    """scikit-learn on the same data, inits and iterations: GaussianMixture for
    'em', BayesianGaussianMixture for 'meanfield' (it has no crisp EM)."""

    params = [COVARIANCE_TYPES, DTYPES, ["em", "meanfield"]]

    def make(self, covariance_type, method):
        if method == "meanfield":
            return SkBayesianGaussianMixture(
                n_components=self.n_components, covariance_type=covariance_type,
                max_iter=self.max_iter, tol=0, random_state=0)
        return SkGaussianMixture(self.n_components, covariance_type=covariance_type,
                                 max_iter=self.max_iter, tol=0, **self.init)


class FastvemInference(_Base):
    """predict / score_samples of a fitted fastvem model on the held-out rows
    (the model is fitted once per process in setup, with method 'em')."""

    params = [COVARIANCE_TYPES, DTYPES]
    param_names = PARAM_NAMES[:2]

    # These are fast: let asv pick the number of calls per sample.
    number = 0
    repeat = (1, 5, 10.0)

    def setup(self, data, covariance_type, dtype):
        super().setup(data, covariance_type, dtype)
        self.est = _fit(fastvem.GaussianMixture(self.n_components,
                                                covariance_type=covariance_type,
                                                max_iter=self.max_iter, tol=0, method="em",
                                                **self.init), self.X)

    def time_predict(self, data, covariance_type, dtype):
        self.est.predict(self.X_test)

    def time_score_samples(self, data, covariance_type, dtype):
        self.est.score_samples(self.X_test)
