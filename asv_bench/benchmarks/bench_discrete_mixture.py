"""airspeed velocity benchmarks: the discrete mixtures (BernoulliMixture,
CategoricalMixture, PoissonMixture, MultinomialMixture) by method, and the generic
fastvem.Mixture over a Product (Gaussian diag + categorical + Poisson columns) and
over a numba ExponentialFamily (the Poisson example).

Every fit uses the same seeded data (drawn from a known mixture, held-out rows
from the same draw), the same fixed initial parameters and MAX_ITER iterations
(tol=0; gibbs: MAX_ITER sweeps after 2 of burn-in).  time_fit and peakmem_fit
time and measure a whole fit; track_loglik is ``.score`` of the held-out rows
(the mean log-likelihood per row at the fitted parameters; for meanfield at the
posterior means).  The StepMix comparison (per iteration and whole fit) is
``asv_bench/peer_compare_discrete.py``.
"""
import warnings

import numpy as np
import scipy.sparse as sp

import fastvem

N = 100_000
N_TEST = 20_000
K = 8
MAX_ITER = 10
METHODS = ["em", "vem", "crisp", "meanfield", "gibbs"]
FAMILIES = ["bernoulli", "categorical", "poisson", "multinomial"]


def _data(family, n, rng):
    z = rng.integers(K, size=n)
    if family == "bernoulli":
        p = np.random.default_rng(1).uniform(0.05, 0.95, (K, 64))
        return (rng.random((n, 64)) < p[z]).astype(np.uint8)
    if family == "categorical":
        probs = np.random.default_rng(1).dirichlet(np.full(5, 0.5), size=(K, 10))
        cum = probs[z].cumsum(-1)
        return np.minimum((rng.random((n, 10, 1)) > cum).sum(-1), 4)
    if family == "poisson":
        rates = np.random.default_rng(1).uniform(0.5, 10.0, (K, 16))
        return rng.poisson(rates[z]).astype(np.float64)
    beta = np.random.default_rng(1).dirichlet(np.full(2000, 0.05), size=K)
    counts = rng.poisson(40, n)
    rows = [rng.choice(2000, size=c, p=beta[zi]) for c, zi in zip(counts, z)]
    ind = np.concatenate(rows)
    ptr = np.concatenate(([0], np.cumsum(counts)))
    X = sp.csr_matrix((np.ones(len(ind)), ind, ptr), shape=(n, 2000))
    X.sum_duplicates()
    return X


def _estimator(family, method):
    cls = {"bernoulli": fastvem.BernoulliMixture, "categorical": fastvem.CategoricalMixture,
           "poisson": fastvem.PoissonMixture, "multinomial": fastvem.MultinomialMixture}[family]
    return cls(K, method=method, max_iter=MAX_ITER, tol=0.0, random_state=0,
               n_samples=MAX_ITER, burn_in=2, init_params="random")


class _Fits:
    """The measured calls (setup builds self.est, self.X, self.X_test)."""

    def time_fit(self, data, family, method):
        self.est.fit(self.X)

    def peakmem_fit(self, data, family, method):
        self.est.fit(self.X)

    def track_loglik(self, data, family, method):
        return float(self.est.fit(self.X).score(self.X_test))

    track_loglik.unit = "mean log-likelihood per held-out row"


class DiscreteMixture(_Fits):
    params = (FAMILIES, METHODS)
    param_names = ["family", "method"]
    timeout = 600

    def setup_cache(self):
        out = {}
        for family in FAMILIES:
            rng = np.random.default_rng(0)
            out[family] = (_data(family, N, rng), _data(family, N_TEST, rng))
        return out

    def setup(self, data, family, method):
        warnings.simplefilter("ignore")
        self.X, self.X_test = data[family]
        self.est = _estimator(family, method)


def _mixed(n, rng):
    """Gaussian (2 columns), categorical (1) and Poisson (2) columns of one mixture."""
    z = rng.integers(K, size=n)
    g = np.random.default_rng(1)
    means, rates = g.normal(scale=3.0, size=(K, 2)), g.uniform(0.5, 10.0, (K, 2))
    probs = g.dirichlet(np.full(4, 0.5), size=K)
    codes = (rng.random((n, 1)) > probs[z].cumsum(-1)).sum(-1, keepdims=True)
    return np.column_stack([means[z] + rng.normal(size=(n, 2)), np.minimum(codes, 3),
                            rng.poisson(rates[z])]).astype(np.float64)


def _generic(kind, method):
    from fastvem.families import Product
    if kind == "product":
        family = Product([("gaussian_diag", [0, 1]), ("categorical", [2]), ("poisson", [3, 4])])
    else:
        from fastvem.families.numba_family import example_poisson
        family = example_poisson(shape_prior=1.5, rate_prior=0.7)   # with its conjugate
    return fastvem.Mixture(family, K, method=method, max_iter=MAX_ITER, tol=0.0,
                           random_state=0, n_samples=MAX_ITER, burn_in=2, init_params="random")


class GenericMixture(_Fits):
    """fastvem.Mixture over a Product and over a numba ExponentialFamily (its
    compile is paid in setup, by a first fit)."""
    params = (["product", "numba_poisson"], METHODS)
    param_names = ["family", "method"]
    timeout = 600

    def setup_cache(self):
        rng = np.random.default_rng(0)
        mixed = (_mixed(N, rng), _mixed(N_TEST, rng))
        rng = np.random.default_rng(0)
        counts = (_data("poisson", N, rng), _data("poisson", N_TEST, rng))
        return {"product": mixed, "numba_poisson": counts}

    def setup(self, data, kind, method):
        warnings.simplefilter("ignore")
        self.X, self.X_test = data[kind]
        self.est = _generic(kind, method)
        if kind == "numba_poisson":
            self.est.set_params(max_iter=1).fit(self.X[:1000])     # numba's compile
            self.est.set_params(max_iter=MAX_ITER)
