"""airspeed velocity benchmarks: hidden Markov models by method.

The HMM issue's workload, smaller: 20 training and 5 held-out sequences of 2,000
steps from a sticky K=8 chain (0.95 on the diagonal); GaussianHMM (D=4, diag and
full) and CategoricalHMM (20 symbols).  Every fit starts from the same fixed
parameters (init_params='') and runs N_ITER iterations (tol=-inf; gibbs: N_ITER
sweeps, one chain).  time_fit and peakmem_fit time and measure a whole fit;
track_loglik is ``.score`` of the held-out sequences per step (the exact
log-likelihood at the fitted parameters; meanfield at the posterior means, gibbs
at the averaged draws).  The side-by-side comparison with hmmlearn is
``asv_bench/peer_compare_hmm.py``.
"""
import warnings

import numpy as np

import fastvem

K, T, N_TRAIN, N_TEST, D, SYMBOLS = 8, 2000, 20, 5, 4, 20
N_ITER = 10
METHODS = ["em", "vem", "crisp", "meanfield", "gibbs"]
MODELS = ["gaussian-diag", "gaussian-full", "categorical"]


def _chain(rng, n_seq):
    A = np.full((K, K), 0.05 / (K - 1))
    np.fill_diagonal(A, 0.95)
    cum = A.cumsum(1)
    z = np.empty(n_seq * T, dtype=np.int64)
    for s in range(n_seq):
        z[s * T] = rng.integers(K)
        u = rng.random(T)
        for t in range(1, T):
            z[s * T + t] = min(np.searchsorted(cum[z[s * T + t - 1]], u[t]), K - 1)
    return z


def _data(model, rng, n_seq):
    z = _chain(rng, n_seq)
    if model == "categorical":
        emit = np.random.default_rng(1).dirichlet(np.full(SYMBOLS, 0.3), size=K)
        X = (rng.random(z.size)[:, None] > emit[z].cumsum(1)).sum(1)
        return np.minimum(X, SYMBOLS - 1)[:, None]
    centres = np.random.default_rng(1).normal(scale=3.0, size=(K, D))
    return centres[z] + rng.normal(size=(z.size, D))


def _estimator(model, method, X):
    r = np.random.RandomState(1)
    kw = dict(method=method, init_params="", n_iter=N_ITER, tol=-np.inf, random_state=0,
              n_chains=1, burn_in=N_ITER // 2) if method == "gibbs" else \
        dict(method=method, init_params="", n_iter=N_ITER, tol=-np.inf, random_state=0)
    if model == "categorical":
        est = fastvem.CategoricalHMM(K, n_features=SYMBOLS, **kw)
        est.emissionprob_ = r.dirichlet(np.ones(SYMBOLS), size=K)
    else:
        ct = model.split("-")[1]
        est = fastvem.GaussianHMM(K, covariance_type=ct, **kw)
        est.means_ = X[r.choice(X.shape[0], K, replace=False)]
        est.covars_ = (np.tile(np.cov(X.T), (K, 1, 1)) if ct == "full"
                       else np.tile(X.var(0), (K, 1)))
    est.startprob_ = r.dirichlet(np.ones(K))
    est.transmat_ = r.dirichlet(np.ones(K) * 5, size=K)
    return est


class HMM:
    params = (MODELS, METHODS)
    param_names = ["model", "method"]
    timeout = 600

    def setup_cache(self):
        out = {}
        for model in MODELS:
            rng = np.random.default_rng(0)
            out[model] = (_data(model, rng, N_TRAIN), _data(model, rng, N_TEST))
        return out

    def setup(self, data, model, method):
        warnings.simplefilter("ignore")
        self.X, self.X_test = data[model]
        self.lengths = [T] * N_TRAIN
        self.lengths_test = [T] * N_TEST
        self.est = _estimator(model, method, self.X)

    def time_fit(self, data, model, method):
        self.est.fit(self.X, self.lengths)

    def peakmem_fit(self, data, model, method):
        self.est.fit(self.X, self.lengths)

    def track_loglik(self, data, model, method):
        est = self.est.fit(self.X, self.lengths)
        return float(est.score(self.X_test, self.lengths_test) / self.X_test.shape[0])
