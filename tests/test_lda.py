"""LatentDirichletAllocation: equality with scikit-learn and with a NumPy oracle,
monotone objectives, ground-truth recovery, real data, determinism, bad input."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from sklearn.decomposition import LatentDirichletAllocation as SkLDA
from sklearn.utils import check_random_state

import fastvem
from fastvem import LatentDirichletAllocation as LDA
from fastvem.datasets import make_lda_corpus
from fastvem.topics import (document_completion_perplexity, split_documents, top_words,
                            topic_coherence)

from oracle import word_topic_lists, lda_vem_oracle


class SkLDAOnes(SkLDA):
    """scikit-learn's LDA with its documents' fixed point started from gamma = 1 when
    fitting (it draws Gamma(100, 0.01) values there), as fastvem does: the only
    difference between the two algorithms, removed so iterates can be compared."""

    def _e_step(self, X, cal_sstats, random_init, parallel=None):
        return super()._e_step(X, cal_sstats, False, parallel)


@pytest.fixture
def exact_digamma_sklearn(monkeypatch):
    """scikit-learn's LDA with scipy's digamma in place of its truncated series
    (accurate to ~1e-9 only), so that its iterates can be compared tightly."""
    import sklearn.decomposition._lda as sk_lda
    from scipy.special import psi

    def expect_1d(doc_topic, prior, out):
        doc_topic += prior
        out[:] = np.exp(psi(doc_topic) - psi(doc_topic.sum()))

    def expect_2d(arr):
        return psi(arr) - psi(arr.sum(axis=1))[:, None]

    monkeypatch.setattr(sk_lda, "cy_dirichlet_expectation_1d",
                        {"float": expect_1d, "double": expect_1d})
    monkeypatch.setattr(sk_lda, "_dirichlet_expectation_2d", expect_2d)


@pytest.fixture(scope="module")
def small_corpus():
    X = sp.random(300, 200, density=0.05, random_state=0, format="csr")
    X.data = np.ceil(X.data * 5)
    return X


@pytest.fixture(scope="module")
def synthetic():
    X, truth = make_lda_corpus(2500, 400, 5, doc_length=100, doc_topic_prior=0.2,
                               topic_word_prior=0.05, random_state=2)
    return X[:2000], X[2000:], truth


@pytest.fixture(scope="module")
def reuters():
    lda_datasets = pytest.importorskip("lda.datasets")
    return sp.csr_matrix(lda_datasets.load_reuters())


def _matched_cosines(components, truth_topics):
    B = components / np.linalg.norm(components, axis=1, keepdims=True)
    T = truth_topics / np.linalg.norm(truth_topics, axis=1, keepdims=True)
    cos = B @ T.T
    r, c = linear_sum_assignment(-cos)
    return cos[r, c]


# ---------------------------------------------------------------- equality with references
@pytest.mark.parametrize("dense", [False, True])
def test_batch_meanfield_equals_sklearn(small_corpus, dense, exact_digamma_sklearn):
    X = small_corpus.toarray() if dense else small_corpus
    sk = SkLDAOnes(n_components=6, max_iter=8, random_state=3).fit(X)
    fv = LDA(n_components=6, max_iter=8, random_state=3, doc_topic_init="ones").fit(X)
    np.testing.assert_allclose(fv.components_, sk.components_, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(fv.exp_dirichlet_component_, sk.exp_dirichlet_component_,
                               rtol=1e-7)
    assert fv.bound_ == pytest.approx(sk.bound_, rel=1e-7)
    assert fv.score(X) == pytest.approx(sk.score(X), rel=1e-7)
    assert fv.perplexity(X) == pytest.approx(sk.perplexity(X), rel=1e-7)
    # X as a mini-batch of total_samples documents (both at their default 1e6)
    assert fv.perplexity(X, sub_sampling=True) == pytest.approx(
        sk.perplexity(X, sub_sampling=True), rel=1e-7)
    assert fv.perplexity(X, sub_sampling=True) != pytest.approx(fv.perplexity(X), rel=1e-3)
    np.testing.assert_allclose(fv.transform(X), sk.transform(X), atol=1e-5)
    assert fv.n_iter_ == sk.n_iter_ and fv.n_batch_iter_ == sk.n_batch_iter_
    assert fv.doc_topic_prior_ == sk.doc_topic_prior_
    assert fv.topic_word_prior_ == sk.topic_word_prior_


def test_online_meanfield_equals_sklearn_and_partial_fit(small_corpus, exact_digamma_sklearn):
    X = small_corpus
    kw = dict(n_components=5, learning_method="online", batch_size=64, max_iter=3,
              random_state=1)
    sk = SkLDAOnes(**kw).fit(X)
    fv = LDA(**kw).fit(X)      # lazy updates: only the batch's words are touched
    np.testing.assert_allclose(fv.components_, sk.components_, rtol=1e-7, atol=1e-10)
    assert fv.n_batch_iter_ == sk.n_batch_iter_
    # partial_fit over a stream: the same steps as one online pass
    one = LDA(n_components=5, learning_method="online", batch_size=64, max_iter=1,
              random_state=1).fit(X)
    pf = LDA(n_components=5, batch_size=64, random_state=1, total_samples=X.shape[0])
    for s in range(0, X.shape[0], 64):
        pf.partial_fit(X[s:s + 64])
    np.testing.assert_allclose(pf.components_, one.components_, rtol=1e-12)
    sk_pf = SkLDAOnes(n_components=5, batch_size=64, random_state=1, total_samples=X.shape[0])
    for s in range(0, X.shape[0], 64):
        sk_pf.partial_fit(X[s:s + 64])
    np.testing.assert_allclose(pf.components_, sk_pf.components_, rtol=1e-7, atol=1e-10)


def test_vem_equals_blei_oracle(small_corpus):
    X = small_corpus[:120]
    K, eta, alpha0, n_iter = 4, 0.1, 0.25, 5
    fv = LDA(n_components=K, method="vem", max_iter=n_iter, random_state=7, doc_topic_init="ones",
             doc_topic_prior=alpha0, topic_word_prior=eta, mean_change_tol=1e-3).fit(X)
    topics0 = check_random_state(7).gamma(100.0, 0.01, (K, X.shape[1]))
    comps, alphas, bounds = lda_vem_oracle(X.toarray(), topics0, alpha0, eta, n_iter)
    np.testing.assert_allclose(fv.components_, comps[-1], rtol=1e-6, atol=1e-9)
    assert fv.doc_topic_prior_ == pytest.approx(alphas[-1], rel=1e-6)
    words = X.sum()
    np.testing.assert_allclose(fv.trace_["objective"] * words, bounds, rtol=1e-9)
    # step for step: every pass of the oracle against a fit of that many passes
    for i in (0, 2):
        f = LDA(n_components=K, method="vem", max_iter=i + 1, random_state=7,
                doc_topic_init="ones", doc_topic_prior=alpha0, topic_word_prior=eta).fit(X)
        np.testing.assert_allclose(f.components_, comps[i], rtol=1e-6, atol=1e-9)


def test_digamma_kernel_accuracy():
    from scipy.special import psi
    from fastvem._ext import _lda
    x = np.logspace(-6, 4, 3000)
    out = np.empty_like(x)
    _lda.digamma_array(x, out)
    assert np.all(np.abs(out - psi(x)) <= 1e-12 * np.maximum(1.0, np.abs(psi(x))))


@pytest.mark.parametrize("ps", [-20.0, 0.0, 1.5, 14.0])
def test_exp_digamma_kernel_accuracy(ps):
    """The sweep's e = exp(psi(x) - ps), computed without psi's log (y exp(-(h + Q'/Q +
    ps))), against scipy from tiny gamma (where it underflows) to 1e300 (past the point
    where Q(x) = x (x+1) ... (x+5) alone would overflow): relative error within the
    rounding of the terms of its argument, psi(x) and ps."""
    from scipy.special import psi
    from fastvem._ext import _lda
    x = np.concatenate([np.logspace(-8, 4, 3000), np.logspace(4, 300, 300)])
    out = np.empty_like(x)
    _lda.exp_digamma_array(x, ps, out)
    arg = psi(x) - ps
    with np.errstate(over="ignore"):
        ref = np.exp(arg)                    # inf past 1.8e308 (ps < 0 only)
    keep = np.isfinite(ref)
    assert keep.sum() > 3200
    x, out, arg, ref = x[keep], out[keep], arg[keep], ref[keep]
    assert np.all(np.isfinite(out)) and np.all(out >= 0)
    tiny = ref < 1e-290                      # the kernel's exp flushes there to 0
    np.testing.assert_array_less(out[tiny], 1e-280)
    rel = np.abs(out[~tiny] - ref[~tiny]) / ref[~tiny]
    scale = np.maximum.reduce([np.ones_like(x), np.abs(psi(x)), np.full_like(x, abs(ps))])
    assert np.all(rel <= 1e-13 * scale[~tiny])


# ---------------------------------------------------------------- monotone objectives
@pytest.mark.parametrize("method,kw", [
    ("vem", {}), ("vem", {"learn_doc_topic_prior": "asymmetric"}),
    ("meanfield", {}), ("meanfield", {"learn_doc_topic_prior": True,
                                      "learn_topic_word_prior": True}),
    ("crisp", {}), ("crisp", {"learn_doc_topic_prior": True})])
@pytest.mark.parametrize("init", ["best", "warm"])
def test_objective_never_decreases(synthetic, method, kw, init):
    """Exact coordinate ascent: the bound (vem, meanfield) and the crisp objective
    never decrease when each pass starts from, or keeps, the previous gamma."""
    Xtr, _, _ = synthetic
    fv = LDA(n_components=5, method=method, max_iter=25, random_state=0, doc_topic_init=init,
             **kw).fit(Xtr)
    obj = fv.trace_["objective"]
    assert len(obj) == 25
    assert np.all(np.diff(obj) >= -1e-12 * np.abs(obj[1:])), np.diff(obj).min()


@pytest.mark.parametrize("method", ["vem", "meanfield"])
def test_restarted_documents_bound_dips_at_most_by_the_inner_tolerance(synthetic, method):
    """The default (scikit-learn's restart of every document from gamma = 1) gives up
    the exact guarantee; what it can lose is set by mean_change_tol: with a tight
    inner tolerance the bound is monotone again."""
    Xtr, _, _ = synthetic
    loose = LDA(n_components=5, method=method, max_iter=30, random_state=1).fit(Xtr)
    d = np.diff(loose.trace_["objective"])
    assert d.min() > -1e-4, d.min()
    tight = LDA(n_components=5, method=method, max_iter=30, random_state=1,
                mean_change_tol=1e-7, max_doc_update_iter=2000).fit(Xtr)
    d = np.diff(tight.trace_["objective"])
    assert d.min() >= -1e-9, d.min()


# ---------------------------------------------------------------- ground truth
@pytest.mark.parametrize("method,kw", [
    ("vem", {}), ("meanfield", {}), ("meanfield", {"learning_method": "online"}),
    ("gibbs", {"max_iter": 120}), ("crisp", {"n_init": 4})])
def test_recovers_true_topics(synthetic, method, kw):
    Xtr, Xte, truth = synthetic
    args = dict(n_components=5, max_iter=60, random_state=0, method=method)
    args.update(kw)
    fv = LDA(**args).fit(Xtr)
    cos = _matched_cosines(fv.components_, truth["topics"])
    assert cos.min() >= 0.9, cos
    true_perp = document_completion_perplexity((truth["topics"], truth["doc_topic_prior"]), Xte)
    perp = document_completion_perplexity(fv, Xte)
    assert perp <= 1.05 * true_perp, (perp, true_perp)


# ---------------------------------------------------------------- real data
@pytest.mark.parametrize("method", ["meanfield", "vem", "gibbs", "crisp"])
def test_reuters(reuters, method):
    X = reuters
    train, test = X[:320], X[320:]
    fv = LDA(n_components=10, method=method, max_iter=40 if method != "gibbs" else 150,
             random_state=0).fit(train)
    perp = document_completion_perplexity(fv, test)
    freq = np.asarray(train.sum(axis=0)).ravel() + 0.01
    unigram = document_completion_perplexity((freq[None, :], 1.0), test)
    assert np.isfinite(perp) and perp < unigram, (perp, unigram)
    assert np.isfinite(fv.perplexity(test))
    # coherent top words: more coherent than random sets of equally frequent words
    coh = topic_coherence(fv.components_, train, top_n=10, measure="npmi").mean()
    rng = np.random.default_rng(0)
    rand = rng.permuted(np.tile(freq, (10, 1)) * rng.random((10, freq.size)), axis=1)
    coh_rand = topic_coherence(rand, train, top_n=10, measure="npmi").mean()
    assert coh > coh_rand + 0.05, (coh, coh_rand)


# ---------------------------------------------------------------- determinism, dtypes, inputs
@pytest.mark.parametrize("method", ["gibbs", "vem", "meanfield", "crisp"])
def test_identical_for_any_thread_count(synthetic, method):
    Xtr, _, _ = synthetic
    fits = [LDA(n_components=5, method=method, max_iter=6, random_state=4,
                n_threads=t).fit(Xtr) for t in (1, 2, 3)]
    for f in fits[1:]:
        np.testing.assert_array_equal(f.components_, fits[0].components_)
        np.testing.assert_array_equal(f.trace_["objective"], fits[0].trace_["objective"])
        np.testing.assert_array_equal(f.transform(Xtr[:50]), fits[0].transform(Xtr[:50]))


def test_gibbs_log_joint_rises_and_learns_alpha(synthetic):
    Xtr, _, truth = synthetic
    fv = LDA(n_components=5, method="gibbs", max_iter=60, random_state=0,
             learn_doc_topic_prior=True).fit(Xtr)
    assert fv.log_joint_[-1] > fv.log_joint_[0]
    assert fv.doc_topic_prior_ == pytest.approx(truth["doc_topic_prior"], rel=0.3)


def test_vem_learns_alpha_near_truth(synthetic):
    Xtr, _, truth = synthetic
    fv = LDA(n_components=5, method="vem", max_iter=60, random_state=0).fit(Xtr)
    assert fv.doc_topic_prior_ == pytest.approx(truth["doc_topic_prior"], rel=0.3)
    fa = LDA(n_components=5, method="vem", max_iter=30, random_state=0,
             learn_doc_topic_prior="asymmetric").fit(Xtr)
    assert np.shape(fa.doc_topic_prior_) == (5,)


def test_float32_and_input_forms(small_corpus):
    X = small_corpus
    f64 = LDA(n_components=4, max_iter=5, random_state=0).fit(X)
    f32 = LDA(n_components=4, max_iter=5, random_state=0).fit(X.astype(np.float32))
    assert f32.components_.dtype == np.float32
    # float32 arithmetic in the fixed point (tolerance 1e-3) moves the iterates slightly
    rel = np.abs(f32.components_ - f64.components_) / np.abs(f64.components_)
    assert np.median(rel) < 1e-4 and rel.max() < 2e-2, (np.median(rel), rel.max())
    for other in (X.tocsc(), X.tocoo(), X.toarray().astype(np.int64)):
        f = LDA(n_components=4, max_iter=5, random_state=0).fit(other)
        np.testing.assert_allclose(f.components_, f64.components_, rtol=1e-12)
    coo = X.tocoo()
    bow = [[] for _ in range(X.shape[0])]
    for r, c, v in zip(coo.row, coo.col, coo.data):
        bow[r].append((int(c), float(v)))
    last_word = X.shape[1] - 1
    bow[0].append((last_word, 0.0))        # keep the vocabulary size
    f = LDA(n_components=4, max_iter=5, random_state=0).fit(bow)
    np.testing.assert_allclose(f.components_, f64.components_, rtol=1e-12)
    np.testing.assert_allclose(f.transform(bow), f64.transform(X), rtol=1e-12)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_float32_fit_with_subnormal_topics_restores_the_fp_mode(n_threads):
    """float32 fixed points flush subnormals to zero (FTZ / DAZ) while they run: with a
    tiny eta most exp(E log beta) fall below FLT_MIN after a few passes.  The thread that
    called keeps its own floating-point mode (numpy in it still makes subnormals), and
    the fit agrees with float64 as closely as float32 fits do."""
    X, _ = make_lda_corpus(300, 2000, 8, doc_length=60, random_state=4)
    kw = dict(n_components=8, max_iter=6, random_state=0, topic_word_prior=1e-4,
              n_threads=n_threads)
    f32 = LDA(**kw).fit(X.astype(np.float32))
    assert (f32.exp_dirichlet_component_ < np.finfo(np.float32).tiny).mean() > 0.2
    sub = np.array([1e-39], dtype=np.float32)
    assert sub[0] > 0 and (sub * np.float32(1.0))[0] == sub[0]
    f64 = LDA(**kw).fit(X.astype(np.float64))
    big = f64.components_ > 1.0
    rel = np.abs(f32.components_[big] - f64.components_[big]) / f64.components_[big]
    # float32's own drift (its fixed points stop at tolerance 1e-3 in other sweeps) is
    # ~4e-4 here, with or without the flush (the float32 fit is bitwise the one made
    # before the flush was added)
    assert np.median(rel) < 1e-3, np.median(rel)
    np.testing.assert_allclose(f32.transform(X[:50]), f64.transform(X[:50]), atol=1e-2)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and RLIMIT_AS")
def test_fixed_point_work_buffers_out_of_memory_is_a_memory_error():
    """A document too long for its thread's work buffers (2 x distinct words x K values
    each) is a MemoryError naming the sizes, not a NULL dereference: run in a child
    whose address space is capped 300 MB above what it has mapped."""
    code = textwrap.dedent("""
        import resource, numpy as np, scipy.sparse as sp
        from fastvem._ext import _lda
        V, K = 20000, 2000
        eb = np.full((V, K), 1e-4)
        X = sp.csr_matrix((np.ones(V), (np.zeros(V, dtype=np.int64), np.arange(V))),
                          shape=(1, V))
        g, st, tot = np.ones((1, K)), np.zeros((1, K)), np.zeros(3 + K)
        vm = [l for l in open("/proc/self/status") if l.startswith("VmSize")][0]
        cap = int(vm.split()[1]) * 1024 + (300 << 20)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        try:
            _lda.doc_fixed_point(X.indptr.astype(np.int64), X.indices, X.data, eb,
                                 np.full(K, 0.1), g, st, tot, 0, 2, 1e-3, False, 0, 2)
            print("ran")
        except MemoryError as err:
            print("MemoryError", err)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("MemoryError"), out.stdout + out.stderr[-2000:]
    assert "20000 distinct words" in out.stdout and "K = 2000" in out.stdout


def test_transform_score_perplexity_relations(small_corpus):
    X = small_corpus
    fv = LDA(n_components=4, max_iter=5, random_state=0).fit(X)
    th = fv.transform(X)
    np.testing.assert_allclose(th.sum(axis=1), 1.0)
    assert fv.perplexity(X) == pytest.approx(np.exp(-fv.score(X) / X.sum()), rel=1e-12)
    assert fv.bound_ == pytest.approx(fv.perplexity(X), rel=1e-12)
    np.testing.assert_allclose(fv.fit_transform(X), th, rtol=1e-12)
    assert fv.get_feature_names_out().shape == (4,)


def test_empty_documents_are_allowed(small_corpus):
    X = sp.vstack([small_corpus, sp.csr_matrix((3, small_corpus.shape[1]))]).tocsr()
    for method in ("meanfield", "vem", "gibbs", "crisp"):
        fv = LDA(n_components=3, max_iter=4, method=method, random_state=0).fit(X)
        th = fv.transform(X)
        np.testing.assert_allclose(th[-3:], 1.0 / 3)
        assert np.all(np.isfinite(fv.components_))


def test_save_load_roundtrip(tmp_path, small_corpus):
    fv = LDA(n_components=4, max_iter=5, random_state=0, method="vem").fit(small_corpus)
    path = tmp_path / "lda.npz"
    fv.save(path)
    back = fastvem.load(path)
    np.testing.assert_array_equal(back.components_, fv.components_)
    np.testing.assert_array_equal(back.transform(small_corpus), fv.transform(small_corpus))


@pytest.mark.parametrize("method", ["meanfield", "vem", "crisp"])
def test_bound_on_first_read_is_the_one_fit_computes(tmp_path, small_corpus, method):
    """After a batch fit bound_ is computed when first read (or saved, pickled, or by
    fit_transform's own fixed point), from copies of what fit left: bitwise the value
    computed at the end of fit, whatever happens to X or to the fitted attributes in
    between, and replaced by a refit."""
    import pickle
    from fastvem.corpus import check_corpus
    X = small_corpus.copy()
    kw = dict(n_components=4, max_iter=3, random_state=0, method=method)
    ref = LDA(**kw).fit(X)
    ref_bound = ref._perplexity(check_corpus(X))        # what fit computed eagerly
    assert "bound_" not in vars(ref)
    fv = LDA(**kw).fit(X)
    X.data *= 3.0                                       # the caller's arrays, in place
    fv.components_ *= 2.0
    fv.exp_dirichlet_component_[:] = 1.0
    assert fv.bound_ == ref_bound and vars(fv)["bound_"] == ref_bound
    X.data /= 3.0
    ft = LDA(**kw)
    np.testing.assert_array_equal(ft.fit_transform(X), LDA(**kw).fit(X).transform(X))
    assert vars(ft)["bound_"] == ref_bound
    assert pickle.loads(pickle.dumps(LDA(**kw).fit(X))).bound_ == ref_bound
    LDA(**kw).fit(X).save(tmp_path / "m.npz")
    assert fastvem.load(tmp_path / "m.npz").bound_ == ref_bound
    refit = LDA(**kw).fit(X[:150]).fit(X)
    assert refit.bound_ == ref_bound
    online = LDA(**kw).fit(X)
    online.partial_fit(X[:50])                          # bound_ stays fit's
    assert online.bound_ == ref_bound
    with pytest.raises(AttributeError, match="no attribute 'bound_'"):
        LDA(**kw).bound_


# ---------------------------------------------------------------- evaluation helpers
def test_split_documents_partitions_the_tokens(reuters):
    obs, held = split_documents(reuters[:50], random_state=0)
    np.testing.assert_array_equal((obs + held).toarray(), reuters[:50].toarray())
    lengths = np.asarray(reuters[:50].sum(axis=1)).ravel()
    np.testing.assert_array_equal(np.asarray(obs.sum(axis=1)).ravel(), (lengths + 1) // 2)


def test_coherence_matches_brute_force():
    rng = np.random.default_rng(0)
    X = (rng.random((60, 12)) < 0.3) * rng.integers(1, 4, (60, 12))
    comp = rng.random((3, 12))
    B = X > 0
    for measure in ("umass", "npmi"):
        got = topic_coherence(comp, X, top_n=4, measure=measure)
        for k, top in enumerate(top_words(comp, 4)):
            vals = []
            for i in range(1, 4):
                for j in range(i):
                    wi, wj = top[i], top[j]
                    dij = np.sum(B[:, wi] & B[:, wj])
                    if measure == "umass":
                        vals.append(np.log((dij + 1) / B[:, wj].sum()))
                    else:
                        pij, pi, pj = dij / 60, B[:, wi].mean(), B[:, wj].mean()
                        vals.append(np.log(pij / (pi * pj)) / -np.log(pij) if pij > 0 else -1.0)
            assert got[k] == pytest.approx(np.mean(vals), rel=1e-12)


# ---------------------------------------------------------------- bad input
def test_em_is_refused_with_the_reason(small_corpus):
    with pytest.raises(ValueError, match="intractable.*vem"):
        LDA(method="em").fit(small_corpus)


@pytest.mark.parametrize("make,match", [
    (lambda X: X.multiply(-1).tocsr(), "Negative values"),
    (lambda X: X.toarray() * np.where(np.arange(X.shape[1]) == 3, np.nan, 1.0), "NaN"),
    (lambda X: sp.csr_matrix(X.shape), "all-zero"),
    (lambda X: np.zeros((0, 5)), "no documents"),
    (lambda X: np.zeros((5, 0)), "empty vocabulary"),
    (lambda X: np.ones(5), "Reshape"),
    (lambda X: np.ones((3, 3), dtype=complex), "Complex"),
    (lambda X: [[(0, 1.0), (1, 2.0, 3.0)]], "pairs"),
    (lambda X: np.array(["a", "b"]).reshape(1, 2), "numeric"),
])
def test_bad_corpus(small_corpus, make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        LDA(n_components=2, max_iter=2).fit(make(small_corpus))


def test_gibbs_needs_whole_counts(small_corpus):
    X = small_corpus.copy()
    X.data = X.data + 0.5
    with pytest.raises(ValueError, match="non-integer"):
        LDA(n_components=2, max_iter=2, method="gibbs").fit(X)
    LDA(n_components=2, max_iter=2, method="vem").fit(X)   # fractional counts are fine there


def test_vocabulary_mismatch_and_bad_priors(small_corpus):
    fv = LDA(n_components=3, max_iter=2).fit(small_corpus)
    with pytest.raises(ValueError, match="n_features_in_"):
        fv.transform(small_corpus[:, :-1])
    with pytest.raises(ValueError, match="n_features_in_"):
        fv.transform([[(small_corpus.shape[1] + 5, 1.0)]])
    with pytest.raises(ValueError, match="doc_topic_prior"):
        LDA(n_components=3, doc_topic_prior=[0.1, 0.2]).fit(small_corpus)
    with pytest.raises(ValueError, match="doc_topic_prior"):
        LDA(n_components=3, doc_topic_prior=-1.0).fit(small_corpus)
    with pytest.raises(ValueError, match="topic_word_prior"):
        LDA(n_components=3, topic_word_prior=0.0).fit(small_corpus)
    with pytest.raises(ValueError, match="learning_method"):
        LDA(learning_method="stochastic").fit(small_corpus)
    with pytest.raises(ValueError, match="online"):
        LDA(method="gibbs", learning_method="online").fit(small_corpus)
    with pytest.raises(ValueError, match="burn_in"):
        LDA(method="gibbs", max_iter=5, burn_in=5).fit(small_corpus)
    with pytest.raises(TypeError, match="n_components"):
        LDA(n_components=2.5).fit(small_corpus)
    with pytest.raises(ValueError, match="learn_topic_word_prior"):
        LDA(learning_method="online", learn_topic_word_prior=True).fit(small_corpus)
    for method in ("vem", "crisp"):      # point topics: eta would run to its floor
        with pytest.raises(ValueError, match="learn_topic_word_prior.*meanfield"):
            LDA(method=method, learn_topic_word_prior=True).fit(small_corpus)
    with pytest.raises(ValueError, match="doc_topic_init"):
        LDA(doc_topic_init="random").fit(small_corpus)


def test_gibbs_sweep_keeps_its_count_structures_consistent(small_corpus):
    """The kernel's bookkeeping after sweeps: each word's topic list holds exactly the
    nonzero counts of the tokens' topics, positions agree, totals agree."""
    from fastvem._ext import _lda
    from fastvem.corpus import check_corpus
    X = small_corpus.tolil(copy=True)
    X[5] = 0                                   # an empty document
    corpus = check_corpus(X.tocsr(), integer=True)
    doc_ptr, words = corpus.tokens()
    K, V = 7, corpus.n_words
    z = np.random.default_rng(0).integers(0, K, words.shape[0], dtype=np.int32)
    nwk = np.zeros((V, K), np.int64)
    np.add.at(nwk, (words, z), 1)
    wlist, wcnt, wlen, wpos = word_topic_lists(nwk)
    nk = nwk.sum(axis=0)
    doc_ll = np.zeros(corpus.n_docs)
    alpha = np.full(K, 0.3)
    n_d = np.diff(doc_ptr)
    dk_ptr = np.concatenate([[0], np.cumsum(np.minimum(n_d, K))])
    dk_top = np.full(dk_ptr[-1], -7, np.int32)
    dk_cnt = np.full(dk_ptr[-1], -7, np.int32)
    for sweep in range(4):
        _lda.gibbs_sweep(doc_ptr, words, z, nk, wlist, wcnt, wlen, wpos, doc_ll, alpha, 0.1,
                         5, sweep, 2, dk_ptr, dk_top, dk_cnt)
    truth = np.zeros((V, K), np.int64)
    np.add.at(truth, (words, z), 1)
    # the sparse document-topic counts written by the last sweep
    assert (n_d == 0).any() and (n_d > K).any()
    assert np.all(dk_cnt >= 0)
    doc_of = np.repeat(np.arange(corpus.n_docs), n_d)
    ndk = np.zeros((corpus.n_docs, K), np.int64)
    np.add.at(ndk, (doc_of, z), 1)
    got = np.zeros_like(ndk)
    slot_doc = np.repeat(np.arange(corpus.n_docs), np.diff(dk_ptr))
    used = dk_cnt > 0
    np.add.at(got, (slot_doc[used], dk_top[used]), dk_cnt[used])
    np.testing.assert_array_equal(got, ndk)
    assert used.sum() == np.count_nonzero(ndk)     # each nonzero count in one slot
    with pytest.raises(ValueError, match="slots"):
        _lda.gibbs_sweep(doc_ptr, words, z, nk, wlist, wcnt, wlen, wpos, doc_ll, alpha, 0.1,
                         5, 9, 2, dk_ptr - np.arange(dk_ptr.shape[0]), dk_top, dk_cnt)
    np.testing.assert_array_equal(nk, truth.sum(axis=0))
    for w in range(V):
        n = wlen[w]
        topics = wlist[w, :n]
        assert set(topics.tolist()) == set(np.nonzero(truth[w])[0].tolist())
        np.testing.assert_array_equal(wcnt[w, :n], truth[w, topics])
        np.testing.assert_array_equal(wpos[w, topics], np.arange(n))
        assert np.all(np.delete(wpos[w], topics) == -1)
    assert np.all(np.isfinite(doc_ll)) and np.all(doc_ll <= 0)


def test_memoized_meanfield_elbo_monotone_after_first_pass(synthetic):
    Xtr, Xte, truth = synthetic
    fv = LDA(n_components=5, learning_method="memoized", batch_size=250, max_iter=20,
             random_state=0).fit(Xtr)
    elbo = fv.trace_["objective"]
    assert len(elbo) == 20
    assert np.all(np.diff(elbo[1:]) >= -1e-12 * np.abs(elbo[2:])), np.diff(elbo).min()
    assert _matched_cosines(fv.components_, truth["topics"]).min() >= 0.9
    true_perp = document_completion_perplexity((truth["topics"], truth["doc_topic_prior"]), Xte)
    assert document_completion_perplexity(fv, Xte) <= 1.05 * true_perp
    with pytest.raises(ValueError, match="memoized"):
        LDA(method="vem", learning_method="memoized").fit(Xtr)


def test_blocked_pass_from_ones_equals_one_call(monkeypatch, synthetic):
    """A pass from gamma = 1 runs in blocks of documents (no documents x topics array);
    the sums run in the same order, so the statistics are bitwise those of one call."""
    import fastvem.structures.topic_model as tm
    from fastvem.corpus import check_corpus
    from fastvem.structures.topic_model import TopicModel
    Xtr, _, _ = synthetic
    c = check_corpus(Xtr)
    eb = np.ascontiguousarray(np.random.default_rng(0).dirichlet(np.ones(c.n_words), 5).T)
    alpha = np.full(5, 0.2)
    one = TopicModel.local_step(c, eb, alpha, np.ones((c.n_docs, 5)), False, 100, 1e-3, True, 2)
    monkeypatch.setattr(tm, "BLOCK_DOCS", 96)          # 3 partitions; 21 blocks here
    blk = TopicModel.local_step(c, eb, alpha, None, False, 100, 1e-3, True, 2)
    np.testing.assert_array_equal(blk[0], one[0])
    np.testing.assert_array_equal(blk[1], one[1])


@pytest.fixture
def dense_sweeps():
    """Run the soft fixed point over every topic (the reference) inside a test."""
    from fastvem._ext import _lda

    def use(flag):
        _lda.set_dense_sweeps(flag)
    yield use
    _lda.set_dense_sweeps(False)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", ["sharp", "flat", "asymmetric", "fractional", "long"])
def test_active_topic_sweeps_equal_dense_sweeps(dense_sweeps, case, dtype):
    """The fixed point sweeps only each document's active topics (a topic whose whole
    contribution is below half an ulp of its alpha is skipped, and put back when the
    bound fails).  Its gamma, statistics, bound terms and inner-iteration counts equal
    those of sweeping every topic up to round-off, on sharp and flat topics, small and
    large alpha, an asymmetric alpha, fractional counts and long documents."""
    from fastvem.corpus import check_corpus
    from fastvem.structures.topic_model import TopicModel
    rng = np.random.default_rng(3)
    K, V = 20, 300
    conc = {"sharp": 0.02, "flat": 5.0, "asymmetric": 0.05, "fractional": 0.05,
            "long": 0.05}[case]
    topics = rng.dirichlet(np.full(V, conc), K)
    alpha = {"asymmetric": np.geomspace(1e-3, 2.0, K), "flat": np.full(K, 1.0)}.get(
        case, np.full(K, 0.05))
    length = 2000 if case == "long" else 60
    theta = rng.dirichlet(np.full(K, 0.1), 150)
    X = np.vstack([rng.multinomial(length, t @ topics) for t in theta]).astype(dtype)
    if case == "fractional":
        X = X * rng.uniform(0.01, 1.0, X.shape).astype(dtype)
    c = check_corpus(sp.csr_matrix(X))
    eb = np.ascontiguousarray(topics.T, dtype=dtype)
    out = {}
    for dense in (True, False):
        dense_sweeps(dense)
        g = np.ones((c.n_docs, K), dtype=dtype)
        stats, tot = TopicModel.local_step(c, eb, alpha, g, False, 200, 1e-6, True, 2)
        out[dense] = g, stats, tot
    rtol = 1e-10 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(out[False][0], out[True][0], rtol=rtol, atol=1e-300)
    np.testing.assert_allclose(out[False][1], out[True][1], rtol=rtol,
                               atol=rtol * out[True][1].max())
    np.testing.assert_allclose(out[False][2][:2], out[True][2][:2], rtol=rtol)
    assert abs(out[False][2][2] - out[True][2][2]) <= 0.01 * out[True][2][2]


def test_active_topic_sweeps_equal_dense_in_a_fit(dense_sweeps, small_corpus):
    """Whole fits (batch meanfield, vem, online) agree with the dense sweeps."""
    for kw in ({}, {"method": "vem"}, {"learning_method": "online", "batch_size": 50}):
        fits = []
        for dense in (True, False):
            dense_sweeps(dense)
            fits.append(LDA(6, max_iter=4, random_state=0, n_threads=2, **kw).fit(small_corpus))
        # equal up to round-off, which 4 passes of fixed points amplify to ~1e-9
        np.testing.assert_allclose(fits[1].components_, fits[0].components_, rtol=1e-8)
        np.testing.assert_allclose(fits[1].bound_, fits[0].bound_, rtol=1e-10)


@pytest.mark.parametrize("V,nnz", [(50, 400), (100000, 300)])
def test_local_vocabulary_is_unique_with_inverse(V, nnz):
    """The mini-batch vocabulary kernel (a scan of V, or a sort) = np.unique."""
    from fastvem._ext import _lda
    idx = np.random.default_rng(0).integers(0, V, nnz).astype(np.int32)
    scratch = np.full(V, -1, dtype=np.int32)
    words = np.empty(nnz, dtype=np.int32)
    local = np.empty(nnz, dtype=np.int32)
    u = _lda.local_vocabulary(idx, scratch, words, local)
    ref, inv = np.unique(idx, return_inverse=True)
    np.testing.assert_array_equal(words[:u], ref)
    np.testing.assert_array_equal(local, inv)
    assert (scratch == -1).all()


def test_gibbs_word_terms_kernel_matches_numpy():
    """The Gibbs word terms (sum of lgamma(n_wk + eta) over the nonzero counts, their
    number, and acc += counts) equal NumPy's, counts past the kernel's table included."""
    from scipy.special import gammaln
    from fastvem._ext import _lda
    rng = np.random.default_rng(0)
    V, K, eta = 40, 6, 0.05
    nwk = rng.integers(0, 3, (V, K)) * rng.integers(1, 9000, (V, K))
    wlen = (nwk > 0).sum(axis=1).astype(np.int32)
    wlist = np.ascontiguousarray(np.argsort(-nwk, axis=1, kind="stable"), dtype=np.int32)
    wcnt = np.ascontiguousarray(np.take_along_axis(nwk, wlist, axis=1), dtype=np.int32)
    acc = np.ones((V, K))
    lg, nnz = _lda.gibbs_word_terms(wlist, wcnt, wlen, acc, True, eta, 2)
    c = nwk[nwk > 0]
    assert nnz == c.size and (c > 4096).any()
    np.testing.assert_allclose(lg, gammaln(c + eta).sum(), rtol=1e-13)
    np.testing.assert_array_equal(acc, 1 + nwk)
    lg2, _ = _lda.gibbs_word_terms(wlist, wcnt, wlen, acc, False, eta, 1)
    assert lg2 == lg
    np.testing.assert_array_equal(acc, 1 + nwk)


def test_gibbs_alpha_update_matches_its_digamma_form():
    """Minka's fixed point from count tails (sum_j tails_j / (a + j)) equals the plain
    digamma form, sum_d psi(n_dk + a_k) - psi(a_k), counts past the tails' cap included."""
    from scipy.special import psi
    from fastvem.structures.topic_model import TopicModel
    rng = np.random.default_rng(0)
    D, K = 400, 6
    n_d = rng.integers(0, 2500, D)
    n_d[:3] = [6000, 0, 1]
    alpha0 = rng.uniform(0.05, 1.0, K)
    ndk = np.array([rng.multinomial(n, rng.dirichlet(alpha0)) for n in n_d])
    assert ndk.max() > 1024

    def digamma_form(a, symmetric, n_iter=20):
        a = a.copy()
        for _ in range(n_iter):
            den = np.sum(psi(n_d + a.sum()) - psi(a.sum()))
            num = np.array([np.sum(psi(c[c > 0] + a[k]) - psi(a[k]))
                            for k, c in enumerate(ndk.T)])
            new = np.full_like(a, a.mean() * num.sum() / (K * den)) if symmetric \
                else a * num / den
            new = np.maximum(new, 1e-6)
            done = np.max(np.abs(new - a) / a) < 1e-8
            a = new
            if done:
                break
        return a
    d, k = np.nonzero(ndk)
    len_tails = TopicModel.count_tails(n_d, np.zeros(D), 1)
    for symmetric in (False, True):
        got = TopicModel.update_alpha_counts(k.astype(np.int32), ndk[d, k].astype(np.int32),
                                             len_tails, alpha0, symmetric)
        np.testing.assert_allclose(got, digamma_form(alpha0, symmetric), rtol=1e-12)
    from fastvem._ext import _lda
    hist = np.zeros((3, 4), np.int64)
    assert _lda.count_histogram(np.array([0, 2, 2, 1], np.int32),
                                np.array([1, 3, 0, 9], np.int32), hist) == 1
    np.testing.assert_array_equal(hist, [[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]])
    with pytest.raises(ValueError, match="groups"):
        _lda.count_histogram(np.array([0, 3], np.int32), np.array([1, 1], np.int32), hist)


def test_gibbs_sampler_draws_from_the_exact_conditional():
    """Calibration of the sampler's draw: the first token of a document is drawn, given
    the block's snapshot counts (its own count removed) and the document's other tokens,
    from (n_dk + alpha_k)(n_wk + eta) / (n_k + V eta).  Identical documents give
    independent draws of the same conditional; 200 sweeps from the same state (new
    keys) are compared with it by a chi-square test."""
    from scipy import stats
    from fastvem._ext import _lda
    K, V, D, eta = 4, 6, 200, 0.05
    alpha = np.array([0.2, 0.5, 1.0, 0.1])
    rng = np.random.default_rng(0)
    words = np.tile(np.array([0, 2, 1, 0, 3, 5, 1, 4], np.int32), D)
    z0 = np.tile(np.array([1, 0, 2, 1, 3, 0, 2, 0], np.int32), D)
    z0[8::8] = rng.choice(K, size=D - 1, p=[0.1, 0.5, 0.2, 0.2])   # uneven totals
    doc_ptr = np.arange(0, words.shape[0] + 1, 8, dtype=np.int64)
    nwk = np.zeros((V, K), np.int64)
    np.add.at(nwk, (words, z0), 1)
    ko = z0[0]
    ndk = np.bincount(z0[1:8], minlength=K)
    nw = nwk[0] - (np.arange(K) == ko)
    nk = nwk.sum(axis=0) - (np.arange(K) == ko)
    p = (ndk + alpha) * (nw + eta) / (nk + V * eta)
    p /= p.sum()
    same = z0[doc_ptr[:-1]] == ko          # documents identical to document 0
    counts = np.zeros(K)
    for rep in range(200):
        wlist, wcnt, wlen, wpos = word_topic_lists(nwk)
        z = z0.copy()
        _lda.gibbs_sweep(doc_ptr, words, z, nwk.sum(axis=0), wlist, wcnt, wlen, wpos,
                         np.zeros(D), alpha, eta, 3, rep, 2)
        counts += np.bincount(z[doc_ptr[:-1]][same], minlength=K)
    assert counts.sum() > 15000 and p.min() > 0.02, (counts.sum(), p)
    assert stats.chisquare(counts, p * counts.sum()).pvalue > 1e-3


def test_gibbs_diagnostics_relabelling_and_persistence(synthetic, tmp_path):
    """The mixtures' relabelling, occupancy and R-hat / ESS serve LDA's Gibbs: a
    chain whose topics keep their labels reports none switched; the model with
    its log joint and diagnostics saves and loads."""
    X, _, _ = synthetic
    fv = LDA(n_components=5, method="gibbs", max_iter=60, burn_in=30, random_state=0,
             n_threads=2).fit(X)
    assert fv.n_relabelled_ == 0
    np.testing.assert_allclose(fv.occupancy_, 1.0)
    assert fv.n_occupied_posterior_[5] == 1.0
    assert np.isfinite(fv.rhat_) and fv.ess_ > 0 and set(fv.mixing_) == {"log_joint"}
    path = str(tmp_path / "lda_gibbs.npz")
    fv.save(path)
    back = fastvem.load(path)
    np.testing.assert_array_equal(back.log_joint_, fv.log_joint_)
    np.testing.assert_array_equal(back.components_, fv.components_)
    assert back.n_relabelled_ == 0 and back.rhat_ == fv.rhat_


def test_gibbs_reports_topics_that_switch_labels():
    rng = np.random.default_rng(0)
    rows = rng.gamma(0.3, size=(40, 3)) * 50                  # 40 words x 3 topics
    snaps = [rows + rng.poisson(1.0, rows.shape) for _ in range(10)]
    snaps[6:] = [s[:, [1, 0, 2]] for s in snaps[6:]]        # topics 0 and 1 swap at sweep 6
    fv = LDA(n_components=3, method="gibbs")
    fv.log_joint_ = rng.normal(size=20)
    with pytest.warns(RuntimeWarning, match="switched labels in 4 of 10"):
        fv._gibbs_diagnostics(snaps, [np.ones(3)] * 10, 10, 0.01)
    assert fv.n_relabelled_ == 4


def test_verbose_prints_scikit_learns_lines_and_gibbs_a_per_token_bar(capsys):
    X = sp.random(50, 30, density=0.2, random_state=0, format="csr")
    X.data = np.ceil(X.data * 3)
    LDA(2, max_iter=3, verbose=1, random_state=0).fit(X)
    assert capsys.readouterr().out.splitlines() == [f"iteration: {i} of max_iter: 3"
                                                    for i in (1, 2, 3)]
    LDA(2, max_iter=4, verbose=1, evaluate_every=2, random_state=0).fit(X)
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("iteration: 2 of max_iter: 4, perplexity: ")
    LDA(2, method="gibbs", max_iter=4, verbose=1, random_state=0).fit(X)
    captured = capsys.readouterr()
    assert captured.out == "" and "/4" in captured.err and "nan" not in captured.err


def test_meanfield_learns_the_topic_word_prior(synthetic):
    """The corpus was drawn with eta = 0.05: mean field's empirical-Bayes eta lands
    near it (not on a floor)."""
    Xtr, _, _ = synthetic
    learnt = LDA(n_components=5, method="meanfield", max_iter=30, random_state=0,
                 learn_topic_word_prior=True).fit(Xtr)
    assert 0.04 < learnt.topic_word_prior_ < 0.065, learnt.topic_word_prior_
