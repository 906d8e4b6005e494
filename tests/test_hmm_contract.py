"""The estimator contract for the hidden Markov models, walked over every HMM
estimator x method: finite fitted state, well-formed predictions (posteriors that
are distributions, labels in range, a finite score), determinism (two fits from
the same random_state are bitwise equal), the input left untouched, float32
input fitted, and a clone that is unfitted and refuses to predict."""
import warnings

import numpy as np
import pytest
from sklearn.base import clone

import fastvem

warnings.simplefilter("ignore")

K = 2
LENGTHS = [40, 1, 25, 14]


def _data(kind):
    rng = np.random.default_rng(0)
    z = np.repeat(rng.integers(K, size=16), 5)
    N = sum(LENGTHS)
    z = z[:N]
    if kind == "gaussian":
        return rng.normal(size=(N, 2)) + 4.0 * z[:, None]
    if kind == "categorical":
        return (rng.integers(2, size=N) + 2 * z)[:, None]
    if kind == "poisson":
        return rng.poisson(1.0 + 5.0 * z[:, None], size=(N, 3)).astype(np.float64)
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7]])[z]
    return np.array([rng.multinomial(6, pi) for pi in p])


METHODS = ("em", "vem", "crisp", "meanfield", "gibbs")
CASES = ([("GaussianHMM", "gaussian", dict(covariance_type=c), m)
          for c in ("diag", "full", "spherical", "tied") for m in METHODS]
         + [("GMMHMM", "gaussian", dict(covariance_type=c, n_mix=2), m)
            for c in ("diag", "full", "spherical", "tied") for m in ("em", "vem", "crisp")]
         + [("CategoricalHMM", "categorical", {}, m) for m in METHODS]
         + [("PoissonHMM", "poisson", {}, m) for m in METHODS]
         + [("MultinomialHMM", "multinomial", dict(n_trials=6), m) for m in METHODS]
         + [("VariationalGaussianHMM", "gaussian", {}, None),
            ("VariationalCategoricalHMM", "categorical", {}, None)])


def _make(cls, kw, method):
    extra = {} if method is None else dict(method=method)
    if method == "gibbs":
        extra.update(n_iter=16)
    return getattr(fastvem, cls)(K, random_state=0, n_threads=1, **kw,
                                 **({"n_iter": 6} | extra))


@pytest.mark.parametrize("cls, kind, kw, method", CASES,
                         ids=[f"{c}-{'-'.join(map(str, k.values()))}-{m}"
                              for c, _, k, m in CASES])
def test_hmm_contract(cls, kind, kw, method):
    X = _data(kind)
    X0 = X.copy()
    a = _make(cls, kw, method).fit(X, LENGTHS)
    b = _make(cls, kw, method).fit(X, LENGTHS)
    np.testing.assert_array_equal(X, X0)                     # the input untouched
    for name in ("startprob_", "transmat_"):
        va, vb = getattr(a, name), getattr(b, name)
        assert np.all(np.isfinite(va))
        np.testing.assert_allclose(va.sum(-1), 1.0, atol=1e-9)
        np.testing.assert_array_equal(va, vb)                 # deterministic
    post = a.predict_proba(X, LENGTHS)
    assert post.shape == (X.shape[0], K) and np.all(post >= 0)
    np.testing.assert_allclose(post.sum(1), 1.0, atol=1e-9)
    np.testing.assert_array_equal(post, b.predict_proba(X, LENGTHS))
    labels = a.predict(X, LENGTHS)
    assert labels.shape == (X.shape[0],) and set(labels) <= set(range(K))
    assert np.isfinite(a.score(X, LENGTHS))
    # a clone is unfitted: it refuses to predict until fitted
    c = clone(a)
    with pytest.raises(Exception, match="(?i)fit"):
        c.predict(X, LENGTHS)
    if kind == "gaussian":                                    # float32 input fits
        f = _make(cls, kw, method).fit(X.astype(np.float32), LENGTHS)
        assert np.isfinite(f.score(X.astype(np.float32), LENGTHS))
