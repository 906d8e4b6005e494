"""Dask arrays as a data source: the E-step runs per block (on a LocalCluster's worker
processes, or Dask's local scheduler) and the fit equals the in-memory one; a worker
killed in the middle of a fit does not change the result; bad sources are refused."""
import os
import warnings

import numpy as np
import pytest

import fastvem
from fastvem.datasets import make_gaussian_mixture

da = pytest.importorskip("dask.array")


def _data():
    X, _, _ = make_gaussian_mixture(30000, 4, 3, "full", random_state=0)
    start = fastvem.GaussianMixture(3, max_iter=2, random_state=0).fit(X)
    return X, dict(weights_init=start.weights_, means_init=start.means_)


def _fit(X, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fastvem.GaussianMixture(3, random_state=0, max_iter=15, tol=0, **kw).fit(X)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("method", ["em", "crisp", "meanfield"])
def test_dask_local_scheduler_equals_in_memory(covariance_type, method):
    X, inits = _data()
    kw = dict(covariance_type=covariance_type, method=method)
    if method != "meanfield":
        kw.update(inits)
    a = _fit(X, **kw)
    b = _fit(da.from_array(X, chunks=(4000, 2)), **kw)       # column chunks are merged
    np.testing.assert_allclose(b.means_, a.means_, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b.covariances_, a.covariances_, rtol=1e-12, atol=1e-12)
    assert b.lower_bound_ == pytest.approx(a.lower_bound_, rel=1e-12, abs=1e-12)
    assert b.n_features_in_ == 4


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_local_cluster_fit_equals_in_memory_and_survives_a_killed_worker(client):
    X, inits = _data()
    a = _fit(X, **inits)
    Xd = da.from_array(X, chunks=(3000, 4))
    b = _fit(Xd, **inits)
    np.testing.assert_allclose(b.means_, a.means_, rtol=1e-12, atol=1e-12)
    assert b.lower_bound_ == pytest.approx(a.lower_bound_, rel=1e-12)
    # a worker dies after the third iteration: Dask recomputes its lost tasks
    killed = []

    def kill_one(iteration, objective, params):
        if iteration == 3 and not killed:
            worker = sorted(client.scheduler_info()["workers"])[0]
            try:
                client.run(os._exit, 1, workers=[worker])
            except Exception:
                pass
            killed.append(worker)
        return False

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = fastvem.GaussianMixture(3, random_state=0, max_iter=15, tol=0, **inits).fit(
            Xd, callback=kill_one)
    assert killed
    np.testing.assert_allclose(c.means_, a.means_, rtol=1e-12, atol=1e-12)
    assert c.lower_bound_ == pytest.approx(a.lower_bound_, rel=1e-12)


def test_bad_dask_sources():
    X, inits = _data()
    Xd = da.from_array(X, chunks=(5000, 4))
    unknown = Xd[Xd[:, 0] > -1e9]            # boolean indexing: unknown chunk sizes
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        fastvem.GaussianMixture(3).fit(unknown)
    bad = da.from_array(np.where(np.arange(X.shape[0])[:, None] == 7, np.nan, X),
                        chunks=(5000, 4))
    with pytest.raises(ValueError, match="NaN"):
        fastvem.GaussianMixture(3).fit(bad)
    with pytest.raises(ValueError, match="gibbs"):
        fastvem.GaussianMixture(3, method="gibbs").fit(Xd)
    with pytest.raises(ValueError, match="sample_weight"):
        fastvem.GaussianMixture(3).fit(Xd, sample_weight=np.ones(X.shape[0]))
    with pytest.raises(ValueError, match="2-D"):
        fastvem.GaussianMixture(3).fit(da.ones(10, chunks=5))
    # empty blocks are skipped
    Xe = da.concatenate([Xd[:0], Xd, Xd[:0]])
    a = _fit(Xd, **inits)
    b = _fit(Xe, **inits)
    np.testing.assert_allclose(b.means_, a.means_, rtol=1e-12, atol=1e-12)


class _Files:
    """Chunks read again from .npy files every time (a re-iterable)."""

    def __init__(self, paths):
        self.paths = paths

    def __iter__(self):
        return (np.load(p, mmap_mode="r") for p in self.paths)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("method", ["em", "meanfield"])
def test_iterable_of_chunks_equals_in_memory(tmp_path, covariance_type, method):
    X, inits = _data()
    kw = dict(covariance_type=covariance_type, method=method)
    if method != "meanfield":
        kw.update(inits)
    a = _fit(X, **kw)
    edges = [0, 7000, 7000, 15001, 22000, X.shape[0]]          # one empty chunk
    chunks = [X[lo:hi] for lo, hi in zip(edges[:-1], edges[1:])]
    b = _fit(chunks, **kw)
    paths = []
    for i, c in enumerate(chunks):
        paths.append(str(tmp_path / f"c{i}.npy"))
        np.save(paths[-1], c)
    c = _fit(_Files(paths), **kw)
    for f in (b, c):
        np.testing.assert_allclose(f.means_, a.means_, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(f.covariances_, a.covariances_, rtol=1e-12, atol=1e-12)
        assert f.lower_bound_ == pytest.approx(a.lower_bound_, rel=1e-12, abs=1e-12)


def test_bad_iterables_of_chunks():
    X, _ = _data()
    with pytest.raises(ValueError, match="inconsistent width"):
        fastvem.GaussianMixture(3).fit([X[:100], X[100:200, :3]])
    with pytest.raises(ValueError, match="no rows"):
        fastvem.GaussianMixture(3).fit([X[:0], X[:0]])
    with pytest.raises(ValueError, match="one-shot"):
        fastvem.GaussianMixture(3).fit(iter([X[:100], X[100:]]))
    with pytest.raises(ValueError, match="NaN"):
        bad = X[:100].copy()
        bad[3, 1] = np.inf
        fastvem.GaussianMixture(3).fit([X[100:], bad])
    with pytest.raises(ValueError, match="2-D"):
        fastvem.GaussianMixture(3).fit(_Chunks([X[:100], X[100:200, 0]]))
    # a list of 1-D rows stays ordinary data, as in scikit-learn
    rows = [np.asarray(r) for r in X[:300]]
    a = fastvem.GaussianMixture(2, random_state=0).fit(rows)
    b = fastvem.GaussianMixture(2, random_state=0).fit(X[:300])
    np.testing.assert_array_equal(a.means_, b.means_)


class _Chunks:
    def __init__(self, chunks):
        self.chunks = chunks

    def __iter__(self):
        return iter(self.chunks)


# ---------------------------------------------------------------- LDA: a corpus in blocks
@pytest.mark.parametrize("method", ["meanfield", "vem", "crisp"])
def test_lda_corpus_in_blocks_equals_in_memory(method):
    import scipy.sparse as sp
    from fastvem.datasets import make_lda_corpus
    X, _ = make_lda_corpus(1200, 300, 5, doc_length=60, random_state=0)
    X = sp.csr_matrix(X, dtype=np.float64)
    kw = dict(n_components=5, method=method, max_iter=8, random_state=0)
    a = fastvem.LatentDirichletAllocation(**kw).fit(X)
    chunks = [X[:400], X[400:400], X[400:1000], X[1000:].toarray()]     # mixed, one empty
    b = fastvem.LatentDirichletAllocation(**kw).fit(chunks)
    c = fastvem.LatentDirichletAllocation(**kw).fit(da.from_array(X.toarray(),
                                                                  chunks=(300, 100)))
    # sums in another order: round-off, amplified a little over passes (vem learns alpha)
    for f in (b, c):
        np.testing.assert_allclose(f.components_, a.components_, rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(f.trace_["objective"], a.trace_["objective"], rtol=1e-10)
        assert f.bound_ == pytest.approx(a.bound_, rel=1e-9)
        assert f.n_features_in_ == 300


def test_lda_bad_corpus_blocks():
    import scipy.sparse as sp
    X = sp.random(100, 50, density=0.1, format="csr", random_state=0)
    X.data = np.ceil(X.data * 3)
    with pytest.raises(ValueError, match="inconsistent width"):
        fastvem.LatentDirichletAllocation(2).fit([X[:50], X[50:, :40]])
    with pytest.raises(ValueError, match="one-shot"):
        fastvem.LatentDirichletAllocation(2).fit(iter([X[:50], X[50:]]))
    with pytest.raises(ValueError, match="gibbs"):
        fastvem.LatentDirichletAllocation(2, method="gibbs").fit([X[:50], X[50:]])
    with pytest.raises(ValueError, match="doc_topic_init"):
        fastvem.LatentDirichletAllocation(2, doc_topic_init="best").fit([X[:50], X[50:]])
    with pytest.raises(ValueError, match="all-zero"):
        fastvem.LatentDirichletAllocation(2).fit([X[:50] * 0, X[50:] * 0])
    with pytest.raises(ValueError, match="Negative"):
        fastvem.LatentDirichletAllocation(2).fit([X[:50], -X[50:]])
