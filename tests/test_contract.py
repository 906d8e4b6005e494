"""The estimator contract, walked over every estimator x method (and LDA's
learning methods): finite fitted state, well-formed predictions, determinism,
the same result for any thread count, float32 kept, the input untouched, a clone
unfitted, and a save / load round trip that predicts bitwise the same."""
import os
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.exceptions import NotFittedError

import fastvem
from fastvem.datasets import make_lda_corpus

warnings.simplefilter("ignore")

MIXTURES = ([("GaussianMixture", dict(method=m, covariance_type=c))
             for m in ("em", "vem", "crisp", "meanfield", "gibbs")
             for c in ("full", "tied", "diag", "spherical")]
            + [("BayesianGaussianMixture", dict(weight_concentration_prior_type=t))
               for t in ("dirichlet_process", "dirichlet_distribution")])
LDAS = ([dict(method=m) for m in ("meanfield", "vem", "gibbs", "crisp")]
        + [dict(method=m, learning_method="online") for m in ("meanfield", "vem", "crisp")]
        + [dict(method="meanfield", learning_method="memoized")])


def _small(kw):
    return dict(n_samples=10, burn_in=5) if kw.get("method") == "gibbs" else {}


@pytest.fixture(scope="module")
def iris():
    return np.ascontiguousarray(load_iris().data)


@pytest.fixture(scope="module")
def corpus():
    X, _ = make_lda_corpus(120, 60, 3, doc_length=40, random_state=0)
    return X


def _mixture(name, kw, **extra):
    cls = getattr(fastvem, name)
    args = dict(n_components=3, random_state=0, max_iter=20, **kw, **_small(kw), **extra)
    return cls(**args)


def _predictions(est, X):
    return [est.predict(X), est.predict_proba(X), est.score_samples(X)]


@pytest.mark.parametrize("name, kw", MIXTURES, ids=[f"{n}-{'-'.join(map(str, k.values()))}"
                                                    for n, k in MIXTURES])
def test_mixture_contract(name, kw, iris, tmp_path):
    X = iris.copy()
    est = _mixture(name, kw, n_threads=1).fit(X)
    np.testing.assert_array_equal(X, iris)                      # input untouched
    for attr in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert np.all(np.isfinite(getattr(est, attr))), attr
    assert abs(est.weights_.sum() - 1) < 1e-9
    labels, proba, dens = _predictions(est, X)
    assert labels.shape == (150,) and proba.shape == (150, 3) and dens.shape == (150,)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-9)
    assert np.all(np.isfinite(dens)) and np.isfinite(est.score(X))
    assert np.isfinite(est.lower_bound_) and est.n_iter_ >= 1
    # deterministic, and the same for any thread count
    again = _mixture(name, kw, n_threads=2).fit(X)
    for a, b in zip(_predictions(est, X), _predictions(again, X)):
        np.testing.assert_array_equal(a, b)
    # float32 in, float32 fitted and predicted
    est32 = _mixture(name, kw).fit(X.astype(np.float32))
    assert est32.means_.dtype == np.float32 and est32.predict_proba(X.astype(np.float32)).dtype \
        == np.float32
    # save / load: bitwise the same predictions
    path = os.path.join(tmp_path, "m.npz")
    est.save(path)
    back = fastvem.load(path)
    for a, b in zip(_predictions(est, X), _predictions(back, X)):
        np.testing.assert_array_equal(a, b)
    # a clone is unfitted and fits to the same model
    c = clone(est)
    with pytest.raises(NotFittedError):
        c.predict(X)
    np.testing.assert_array_equal(c.fit(X).predict_proba(X), proba)
    # setting a parameter to its fitted value changes nothing
    est.set_params(n_components=3)
    np.testing.assert_array_equal(est.predict_proba(X), proba)


@pytest.mark.parametrize("kw", LDAS, ids=["-".join(k.values()) for k in LDAS])
def test_lda_contract(kw, corpus, tmp_path):
    X = corpus.copy()
    est = fastvem.LatentDirichletAllocation(3, max_iter=5, random_state=0, n_threads=1,
                                            **kw).fit(X)
    assert (X != corpus).nnz == 0                               # input untouched
    assert np.all(est.components_ > 0) and np.all(np.isfinite(est.components_))
    theta = est.transform(X)
    assert theta.shape == (120, 3)
    np.testing.assert_allclose(theta.sum(1), 1.0, rtol=1e-9)
    assert np.isfinite(est.perplexity(X)) and np.isfinite(est.score(X))
    again = fastvem.LatentDirichletAllocation(3, max_iter=5, random_state=0, n_threads=2,
                                              **kw).fit(X)
    np.testing.assert_array_equal(again.components_, est.components_)
    est32 = fastvem.LatentDirichletAllocation(3, max_iter=5, random_state=0, **kw).fit(
        X.astype(np.float32))
    assert est32.components_.dtype == np.float32
    path = os.path.join(tmp_path, "lda.npz")
    est.save(path)
    back = fastvem.load(path)
    np.testing.assert_array_equal(back.transform(X), theta)
    assert back.perplexity(X) == est.perplexity(X)
    c = clone(est)
    with pytest.raises(NotFittedError):
        c.transform(X)
    np.testing.assert_array_equal(c.fit(X).components_, est.components_)
