"""LDA on the shared engine: the word-topic family is the mixture of unigrams'
Multinomial (TopicWords), TopicModel is a Structure, TopicEngine's statistics are
additive, and memoized passes through engine.memoized give LDA's ELBO trace."""
import time

import numpy as np
import pytest
import scipy.sparse as sp

from fastvem import LatentDirichletAllocation as LDA, MultinomialMixture
from fastvem.corpus import check_corpus
from fastvem.datasets import make_lda_corpus
from fastvem.engine import FamilyEngine, Trace
from fastvem.families.categorical import TopicWords
from fastvem.families.discrete import Multinomial
from fastvem.structures.mixture import Mixture
from fastvem.structures.topic_model import TopicEngine, TopicModel, TopicStats


def _one_topic_corpus(seed=0, K=3, block=12, n_docs=90):
    """Each document draws all its words from one topic; topic k's words are the
    k-th block of the vocabulary.  Returns (X, labels, start topics P): P puts
    nearly all of topic k's mass on its block, so that every method assigns each
    word (LDA) and each document (the mixture) to its true topic."""
    rng = np.random.default_rng(seed)
    V = K * block
    labels = rng.integers(0, K, n_docs)
    X = np.zeros((n_docs, V))
    for d, k in enumerate(labels):
        words = rng.integers(k * block, (k + 1) * block, rng.integers(5, 40))
        np.add.at(X[d], words, 1.0)
    P = np.full((K, V), 1e-4)
    for k in range(K):
        P[k, k * block:(k + 1) * block] = rng.uniform(0.5, 1.5, block)
    P /= P.sum(1, keepdims=True)
    return sp.csr_matrix(X), labels, P


def _mixture_crisp_statistics(X, P, eta):
    """MultinomialMixture(method='crisp')'s statistics (K x V) and counts at the
    start (uniform weights, topics P), by its own engine and pass."""
    K, V = P.shape
    mm = MultinomialMixture(K, method="crisp", alpha=eta)
    mm._threads = 2
    fam = Multinomial(V, eta)
    data = fam.prepare(X, fitting=True)
    engine = FamilyEngine(fam, Mixture(K), "crisp",
                          lambda d, w, W, c, logw, mode, seed:
                          mm._pass(fam, d, w, W, c, logw, mode, seed))
    stats = engine.statistics(data, None, (np.full(K, 1.0 / K), P))
    return stats.stats, stats.nk


def test_crisp_lda_and_mixture_of_unigrams_share_the_word_topic_family():
    """One topic per document: LDA's crisp pass (each distinct word of a document to
    a topic) and the mixture of unigrams' crisp pass (each document to a topic)
    give the same word-topic statistics from the same topics, and the shared family
    maps them to the same topics."""
    X, labels, P = _one_topic_corpus()
    K, V = P.shape
    eta = 0.1
    corpus = check_corpus(X)
    fam = TopicWords(V, eta)
    assert isinstance(fam, Multinomial)
    engine = TopicEngine(fam, TopicModel(K, False, hard=True), "crisp", np.full(K, 0.5), eta,
                         np.float64, 100, 1e-3, 2)
    engine.reset_documents(corpus)
    lda = engine.statistics(corpus, None, (P, np.full(K, 0.5), eta))
    mix_stats, mix_nk = _mixture_crisp_statistics(X, P, eta)
    # the truth: topic k's statistics are the counts of the documents labelled k
    truth = np.stack([np.asarray(X[labels == k].sum(0)).ravel() for k in range(K)])
    np.testing.assert_allclose(mix_stats, truth, rtol=0, atol=1e-12)
    np.testing.assert_allclose(lda.stats.T, mix_stats, rtol=0, atol=1e-12)
    # the shared family: the mixture's point estimate applied to LDA's statistics is
    # what MultinomialMixture fits after one crisp iteration from P ...
    words_per_topic = lda.stats.sum(0)
    from_lda = fam.point_estimate(np.ascontiguousarray(lda.stats.T), words_per_topic, P)
    mm = MultinomialMixture(K, method="crisp", alpha=eta, max_iter=1,
                            weights_init=np.full(K, 1.0 / K), probabilities_init=P,
                            n_threads=2).fit(X)
    np.testing.assert_allclose(mm.probabilities_, from_lda, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(np.sort(mix_nk), np.sort(np.bincount(labels, minlength=K)))
    # ... and LDA's own update (components eta + stats, read as point topics) agrees
    (comp, _, _), _ = engine.update(lda, 1, (P, np.full(K, 0.5), eta))
    point = fam.effective_topics(comp, False, np.float64).T
    np.testing.assert_allclose(point, from_lda, rtol=0, atol=1e-12)
    np.testing.assert_allclose(point, mm.probabilities_, rtol=0, atol=1e-12)


@pytest.fixture(scope="module")
def corpus():
    X, _ = make_lda_corpus(700, 120, 4, doc_length=50, doc_topic_prior=0.3,
                           topic_word_prior=0.05, random_state=5)
    return check_corpus(sp.csr_matrix(X))


@pytest.mark.parametrize("method", ["meanfield", "vem", "crisp"])
def test_topic_engine_statistics_are_additive(corpus, method):
    """Batches' statistics sum to the whole corpus's; -, * act field by field."""
    K, V = 4, corpus.n_words
    rng = np.random.default_rng(0)
    params = (rng.gamma(100.0, 0.01, (K, V)), np.full(K, 0.25), 0.1)
    engine = TopicEngine(TopicWords(V, 0.1), TopicModel(K), method, params[1], 0.1,
                         np.float64, 100, 1e-3, 2, keep_beta_free=True)
    whole = engine.statistics(corpus, None, params)
    edges = [0, 150, 151, 400, corpus.n_docs]
    parts = [engine.statistics(corpus.rows(a, b), None, params) for a, b in zip(edges, edges[1:])]
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    assert isinstance(total, TopicStats)
    np.testing.assert_allclose(total.stats, whole.stats, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(total.totals, whole.totals, rtol=1e-12)
    assert total.n_docs == whole.n_docs == corpus.n_docs
    assert total.weight == pytest.approx(whole.weight, rel=1e-15)
    assert total.beta_free == pytest.approx(whole.beta_free, rel=1e-12)
    back = total - parts[-1]
    np.testing.assert_allclose(back.stats, sum(p.stats for p in parts[:-1]), rtol=1e-12,
                               atol=1e-12)
    twice = parts[1] * 2.0
    np.testing.assert_array_equal(twice.stats, parts[1].stats + parts[1].stats)
    assert twice.n_docs == 2 * parts[1].n_docs
    # the engine's update from the sum is the update from the whole
    a, _ = engine.update(total, 1, params)
    b, _ = engine.update(whole, 1, params)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-12)


def _memoized_reference(corpus, comp, alpha, eta, batch_size, max_iter):
    """LDA's memoized passes as they were written before the engine ran them (its
    own loop over batches, kept statistics and kept beta-free terms)."""
    D, K, V = corpus.n_docs, comp.shape[0], corpus.n_words
    fam = TopicWords(V, eta)
    edges = list(range(0, D, batch_size)) + [D]
    kept_stats = [None] * (len(edges) - 1)
    kept_const = np.zeros(len(edges) - 1)
    total = np.zeros((V, K))
    trace = Trace()
    for _ in range(max_iter):
        t0 = time.perf_counter()
        for b in range(len(edges) - 1):
            batch = corpus.rows(edges[b], edges[b + 1])
            elog = fam.expected_log(comp)
            eb = np.ascontiguousarray(np.exp(elog).T, dtype=corpus.dtype)
            stats, tot = TopicModel.local_step(batch, eb, alpha, None, False, 100, 1e-3, True,
                                               2)
            kept_const[b] = (TopicModel.documents_term(tot, alpha, batch.n_docs, False)
                             - float(np.sum(stats * elog.T)))
            if kept_stats[b] is not None:
                total -= kept_stats[b]
            total += stats
            np.maximum(total, 0.0, out=total)
            kept_stats[b] = stats
            comp = fam.components(total, eta)
        elog = fam.expected_log(comp)
        elbo = (kept_const.sum() + float(np.sum(total * elog.T))
                - fam.kl(comp, eta))
        trace.append(elbo / corpus.total, time.perf_counter() - t0)
    return comp, np.array(trace.objective)


@pytest.mark.parametrize("batch_size", [64, 250, 1000])
def test_memoized_through_the_engine_gives_the_same_elbo_trace(corpus, batch_size):
    est = LDA(n_components=4, learning_method="memoized", batch_size=batch_size, max_iter=6,
              random_state=3, n_threads=2)
    est.fit(corpus.csr())
    comp0 = np.random.RandomState(3).gamma(100.0, 0.01, (4, corpus.n_words))
    comp, elbo = _memoized_reference(corpus, comp0, np.full(4, 0.25), 0.25, batch_size, 6)
    np.testing.assert_array_equal(est.trace_["objective"], elbo)
    np.testing.assert_array_equal(est.components_, comp)


def test_topic_model_is_a_structure():
    K = 3
    stats = TopicStats(np.zeros((5, K)), np.array([0.0, 0.0, 0.0, -4.0, -6.0, -9.0]), 4, 10.0)
    fixed = TopicModel(K)
    assert fixed.local_step_kind == "document" and fixed.statistics_size() == K + 1
    block = fixed.block(stats)
    np.testing.assert_array_equal(block, [-4.0, -6.0, -9.0, 4.0])
    alpha = np.full(K, 0.3)
    assert fixed.point_estimate(block, alpha) is alpha
    for learn, sym in (("symmetric", True), ("asymmetric", False)):
        for hard in (False, True):
            got = TopicModel(K, learn, hard).point_estimate(block, alpha)
            ref = TopicModel.update_alpha(stats.totals[3:], 4, alpha, hard, sym)
            np.testing.assert_array_equal(got, ref)
    assert fixed.empty_components(block, 10.0).size == 0
    assert fixed.prior() is None
    with pytest.raises(NotImplementedError, match="no posterior"):
        fixed.posterior(block)
    with pytest.raises(ValueError, match="learn"):
        TopicModel(K, "sometimes")
