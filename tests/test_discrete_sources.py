"""The discrete mixtures (and fastvem.Mixture: products, GaussianDiag) on large-data
sources: a re-iterable of chunks and a Dask array fit as the in-memory data do,
the fit-time set-up (categories, reference point, priors, mean length) reads every
chunk, the sums do not depend on threads or scheduler, and bad sources are clear
errors."""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import fastvem
from fastvem.families import Product
from fastvem.sources import tree_sum, tree_sum_iter

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

N, K, CHUNK = 1200, 3, 400


def _data():
    rng = np.random.RandomState(0)
    z = rng.randint(K, size=N)
    cat = np.column_stack([(z + (rng.rand(N) < 0.2)) % 3, (2 * z + rng.randint(2, size=N)) % 4])
    cat[-1, 1] = 5                                  # code 5 only in the last chunk
    gauss = np.array([[0.0, 0.0], [4.0, 4.0], [0.0, 7.0]])[z] + rng.randn(N, 2) + 1000.0
    return {
        "bernoulli": (rng.rand(N, 10) < rng.rand(K, 10)[z]).astype(np.uint8),
        "categorical": cat,
        "poisson": rng.poisson(rng.uniform(0.5, 6.0, (K, 6))[z]).astype(np.float64),
        "multinomial": rng.poisson(rng.uniform(0.0, 3.0, (K, 20))[z]).astype(np.float64),
        "product": np.column_stack([gauss, cat]).astype(np.float64),
        "gaussian_diag": gauss,
    }


DATA = _data()


def _product():
    return Product([("gaussian_diag", [0, 1]), ("categorical", [2, 3])])


def _model(family, **kw):
    if family == "product":
        return fastvem.Mixture(_product(), K, **kw)
    if family == "gaussian_diag":
        return fastvem.Mixture("gaussian_diag", K, **kw)
    cls = {"bernoulli": fastvem.BernoulliMixture, "categorical": fastvem.CategoricalMixture,
           "poisson": fastvem.PoissonMixture, "multinomial": fastvem.MultinomialMixture}[family]
    return cls(K, **kw)


def _fit(est, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")           # tol=0: never "converged"
        return est.fit(X)


def _inits(family, X):
    """weights_init and the family's own parameter init from a short in-memory fit."""
    s = _fit(_model(family, max_iter=2, random_state=0), X)
    name = {"poisson": "rates_init", "product": "params_init",
            "gaussian_diag": "params_init"}.get(family, "probabilities_init")
    theta = {"poisson": "rates_", "product": "params_",
             "gaussian_diag": "params_"}.get(family, "probabilities_")
    return {"weights_init": s.weights_, name: getattr(s, theta)}


def _chunks(X, size=CHUNK, sparse=False):
    out = [X[i:i + size] for i in range(0, X.shape[0], size)]
    return [sp.csr_matrix(c) for c in out] if sparse else out


def _params(est):
    """The fitted parameters in the data's coordinates, flattened."""
    if isinstance(est, fastvem.Mixture):
        desc = est.component_params_
        desc = desc if isinstance(desc, list) else [desc]
        vals = [np.asarray(v, dtype=float).ravel() for d in desc for k, v in sorted(d.items())
                if k not in ("columns", "family")
                for v in (v if isinstance(v, list) else [v])]
        return np.concatenate(vals + [est.weights_])
    theta = est.probabilities_ if hasattr(est, "probabilities_") else est.rates_
    theta = theta if isinstance(theta, list) else [theta]
    return np.concatenate([np.ravel(t) for t in theta] + [est.weights_])


def _close(a, b, rtol=1e-9):
    pa, pb = _params(a), _params(b)
    assert pa.shape == pb.shape
    np.testing.assert_allclose(pa, pb, rtol=rtol, atol=0)
    assert a.lower_bound_ == pytest.approx(b.lower_bound_, rel=rtol)
    assert a.n_iter_ == b.n_iter_


def _same(a, b):
    np.testing.assert_array_equal(_params(a), _params(b))
    assert a.lower_bound_ == b.lower_bound_


CASES = [(f, m) for f in ("bernoulli", "categorical", "poisson", "multinomial", "product")
         for m in ("em", "meanfield")] + [("bernoulli", "crisp"), ("poisson", "crisp")]


@pytest.mark.parametrize("family,method", CASES)
def test_chunks_and_dask_fit_as_in_memory(family, method):
    X = DATA[family]
    kw = dict(method=method, max_iter=8, tol=0, random_state=0, **_inits(family, X))
    ref = _fit(_model(family, **kw), X)
    chunks = _fit(_model(family, **kw), _chunks(X, sparse=family == "multinomial"))
    blocks = _fit(_model(family, **kw), da.from_array(X, chunks=(CHUNK, -1)))
    _close(chunks, ref)
    _close(blocks, ref)
    _same(chunks, blocks)         # the same chunks: the same tree, bit for bit
    assert chunks.n_rows_seen_ == blocks.n_rows_seen_ == N
    assert chunks.n_features_in_ == ref.n_features_in_
    if method == "meanfield":
        np.testing.assert_allclose(chunks.weight_concentration_, ref.weight_concentration_,
                                   rtol=1e-9)
    if family == "poisson":       # the default prior: the column means of all the rows
        np.testing.assert_allclose(chunks.rate_prior_, ref.rate_prior_, rtol=1e-12)
    if family == "multinomial":
        assert chunks.mean_length_ == pytest.approx(ref.mean_length_, rel=1e-12)


def test_kmeans_and_random_starts_read_the_first_rows():
    """A source smaller than the initialisation's rows starts as the in-memory fit."""
    X = DATA["poisson"]
    for init in ("kmeans", "random"):
        kw = dict(max_iter=5, tol=0, random_state=3, init_params=init)
        _close(_fit(fastvem.PoissonMixture(K, **kw), _chunks(X, 250)),
               _fit(fastvem.PoissonMixture(K, **kw), X))
        _close(_fit(fastvem.PoissonMixture(K, **kw), da.from_array(X, chunks=(500, -1))),
               _fit(fastvem.PoissonMixture(K, **kw), X))


def test_categories_are_inferred_over_all_chunks():
    X = DATA["categorical"]
    assert X[:-1, 1].max() == 3 and X[-1, 1] == 5
    P = DATA["product"]                 # its columns 2, 3 are X
    for source, mixed in ((_chunks(X), _chunks(P)),
                          (da.from_array(X, chunks=(CHUNK, -1)),
                           da.from_array(P, chunks=(CHUNK, -1)))):
        m = _fit(fastvem.CategoricalMixture(K, max_iter=3, random_state=0), source)
        assert m.n_categories_ == [3, 6]
        assert [p.shape for p in m.probabilities_] == [(K, 3), (K, 6)]
        g = _fit(fastvem.Mixture("categorical", K, max_iter=3, random_state=0), source)
        assert g.family_.n_categories == [3, 6]
        g = _fit(fastvem.Mixture(_product(), K, max_iter=3, random_state=0), mixed)
        assert g.family_.parts[1][0].n_categories == [3, 6]
        assert [p.shape for p in g.component_params_[1]["probabilities"]] == [(K, 3), (K, 6)]
    # categories given: the code in the last chunk is refused, naming its chunk
    with pytest.raises(ValueError, match=r"chunk 2: .*not a category of feature 1"):
        fastvem.CategoricalMixture(K, n_categories=[3, 4]).fit(_chunks(X))


def test_gaussian_reference_and_prior_read_every_chunk():
    """GaussianDiag's reference point (the data's mean) and its default Normal-Gamma
    prior (the data's mean and variance) are those of all the rows."""
    X = DATA["gaussian_diag"].copy()
    X[800:] += 5.0                      # the last chunk moves the mean and the variance
    kw = dict(method="meanfield", max_iter=8, tol=0, random_state=0, **_inits("gaussian_diag", X))
    ref = _fit(_model("gaussian_diag", **kw), X)
    for source in (_chunks(X), da.from_array(X, chunks=(CHUNK, -1))):
        m = _fit(_model("gaussian_diag", **kw), source)
        np.testing.assert_allclose(m.family_.ref, X.mean(0), rtol=1e-13)
        _close(m, ref)


def test_threads_and_chunk_order_do_not_change_the_sums():
    X = DATA["bernoulli"]
    for method in ("em", "gibbs"):
        kw = dict(method=method, max_iter=6, tol=0, random_state=0, n_samples=8, burn_in=4,
                  **_inits("bernoulli", X))
        fits = [_fit(fastvem.BernoulliMixture(K, n_threads=t, **kw), src)
                for t in (1, 3) for src in (_chunks(X), da.from_array(X, chunks=(CHUNK, -1)))]
        for f in fits[1:]:
            _same(f, fits[0])


def test_gibbs_on_sources():
    X = DATA["categorical"]
    kw = dict(method="gibbs", n_samples=10, burn_in=5, random_state=0, **_inits("categorical", X))
    mem = _fit(fastvem.CategoricalMixture(K, **kw), X)
    one = _fit(fastvem.CategoricalMixture(K, **kw), [X])       # one chunk: the same draws
    _same(one, mem)
    np.testing.assert_array_equal(one.posterior_samples_["theta"], mem.posterior_samples_["theta"])
    many = _fit(fastvem.CategoricalMixture(K, **kw), _chunks(X))
    assert many.posterior_samples_["theta"].shape == mem.posterior_samples_["theta"].shape
    assert not np.array_equal(many.posterior_samples_["theta"], mem.posterior_samples_["theta"])
    # a chain on chunks is a chain of the same posterior: close to the in-memory one
    np.testing.assert_allclose(np.sort(many.weights_), np.sort(mem.weights_), atol=0.1)


@pytest.mark.parametrize("family", ["bernoulli", "multinomial", "product"])
def test_fit_predict_labels_every_row_in_order(family):
    X = DATA[family]
    kw = dict(max_iter=5, tol=0, random_state=0, **_inits(family, X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = _model(family, **kw).fit(X).predict(X)
        for source in (_chunks(X, 350, sparse=family == "multinomial"),
                       da.from_array(X, chunks=(350, -1))):
            labels = _model(family, **kw).fit_predict(source)
            assert labels.shape == (N,)
            np.testing.assert_array_equal(labels, expected)


class _Files:
    """Chunks read again from .npy files (memory-mapped) on every iteration."""

    def __init__(self, paths):
        self.paths = paths
        self.loads = 0

    def __iter__(self):
        for p in self.paths:
            self.loads += 1
            yield np.load(p, mmap_mode="r")


def test_a_reiterable_of_memmapped_files(tmp_path):
    X = DATA["poisson"]
    paths = []
    for i, c in enumerate(_chunks(X, 300)):
        paths.append(tmp_path / f"c{i}.npy")
        np.save(paths[-1], c)
    kw = dict(max_iter=4, tol=0, random_state=0, **_inits("poisson", X))
    files = _Files(paths)
    _same(_fit(fastvem.PoissonMixture(K, **kw), files),
          _fit(fastvem.PoissonMixture(K, **kw), _chunks(X, 300)))
    # the set-up pass and one pass per iteration (the starts are given: no first rows)
    assert files.loads == len(paths) * (1 + 4)


def test_a_numba_family_fits_chunks_and_refuses_dask():
    pytest.importorskip("numba")
    from fastvem.families.numba_family import example_poisson
    X = DATA["poisson"]
    s = _fit(fastvem.PoissonMixture(K, max_iter=2, random_state=0), X)
    fam = example_poisson()
    kw = dict(max_iter=4, tol=0, weights_init=s.weights_, natural_params_init=np.log(s.rates_))
    ref = _fit(fastvem.Mixture(fam, K, **kw), X)
    chunks = _fit(fastvem.Mixture(fam, K, **kw), _chunks(X))
    np.testing.assert_allclose(chunks.params_, ref.params_, rtol=1e-9)
    assert chunks.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-9)
    with pytest.raises(TypeError, match="not on a dask array"):
        fastvem.Mixture(fam, K, **kw).fit(da.from_array(X, chunks=(CHUNK, -1)))


class _Empty:
    def __iter__(self):
        return iter(())


def test_bad_sources_are_clear_errors():
    X = DATA["poisson"]
    est = fastvem.PoissonMixture(K, max_iter=2)
    with pytest.raises(ValueError, match="one-shot iterator"):
        est.fit(c for c in _chunks(X))
    with pytest.raises(ValueError, match="chunk 1 has 5 columns.*inconsistent width"):
        est.fit([X[:400], X[400:800, :5]])
    bad = X.copy()
    bad[900, 2] = np.nan
    with pytest.raises(ValueError, match="chunk 2: .*NaN"):
        est.fit(_chunks(bad))
    with pytest.raises(ValueError, match="block 2: .*NaN"):
        est.fit(da.from_array(bad, chunks=(CHUNK, -1)))
    neg = X.copy()
    neg[1100, 0] = -1.0
    with pytest.raises(ValueError, match="chunk 2: Negative values"):
        est.fit(_chunks(neg))
    with pytest.raises(ValueError, match="block 2: Negative values"):
        est.fit(da.from_array(neg, chunks=(CHUNK, -1)))
    with pytest.raises(ValueError, match="chunk 1: X must hold only 0 and 1"):
        fastvem.BernoulliMixture(K).fit([DATA["bernoulli"][:400],
                                         DATA["bernoulli"][400:800] + 2])
    with pytest.raises(ValueError, match="chunk 1: .*category codes >= 0"):
        fastvem.CategoricalMixture(K).fit([DATA["categorical"][:400], -DATA["categorical"]])
    for empty in ([np.empty((0, 6))], _Empty(), da.zeros((0, 6), chunks=(10, 6))):
        with pytest.raises(ValueError, match="holds no rows"):
            est.fit(empty)
    with pytest.raises(ValueError, match="n_components=3 must be <= n_samples=2"):
        est.fit([X[:1], X[1:2]])
    with pytest.raises(ValueError, match="sample_weight is not supported"):
        est.fit(_chunks(X), sample_weight=np.ones(N))
    fitted = _fit(fastvem.PoissonMixture(K, max_iter=2), _chunks(X))
    with pytest.raises(TypeError, match="predict, predict_proba and score take in-memory"):
        fitted.predict(_chunks(X))
    with pytest.raises(TypeError, match="in-memory"):
        fitted.score(da.from_array(X, chunks=(CHUNK, -1)))
    with pytest.raises(TypeError, match="partial_fit take in-memory"):
        fitted.partial_fit(_chunks(X))
    assert fitted.predict(X).shape == (N,)       # arrays still predict


def test_tree_sum_iter_pairs_as_tree_sum():
    class Term:
        def __init__(self, text):
            self.text = text

        def __add__(self, other):
            return Term(f"({self.text}+{other.text})")

    for n in range(1, 70):
        terms = [Term(str(i)) for i in range(n)]
        assert tree_sum_iter(iter(terms)).text == tree_sum(terms).text
    with pytest.raises(ValueError, match="nothing to sum"):
        tree_sum_iter(iter(()))
