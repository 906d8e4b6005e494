"""Evaluation of topic models: document-completion perplexity and topic coherence.

Document completion (Wallach et al. 2009): each test document's tokens are split
at random into two halves; theta_d is inferred from the first half (the
per-document fixed point with the model's point topics and alpha) and the second
half is scored under sum_k theta_dk beta_kw.  Every method is scored the same
way, so the figure compares methods (and peers) on one footing.
"""
import numpy as np
import scipy.sparse as sp

from .corpus import check_corpus
from .engine import default_n_threads
from .structures.topic_model import TopicModel

__all__ = ["split_documents", "document_completion_perplexity", "topic_coherence", "top_words"]


def split_documents(X, random_state=0):
    """(X_observed, X_held_out): each document's tokens split at random into halves
    (the observed half gets the extra token of an odd-length document).  Counts must
    be whole numbers."""
    corpus = check_corpus(X, integer=True, integer_reason="held-out document completion "
                          "splits each document's tokens and needs whole-number counts")
    doc_ptr, words = corpus.tokens()
    n_tok = words.shape[0]
    doc_of = np.repeat(np.arange(corpus.n_docs), np.diff(doc_ptr))
    rng = np.random.default_rng(random_state)
    order = np.lexsort((rng.random(n_tok), doc_of))
    rank = np.arange(n_tok) - doc_ptr[doc_of]
    lengths = np.diff(doc_ptr)[doc_of]
    observed = np.empty(n_tok, dtype=bool)
    observed[order] = rank < (lengths + 1) // 2
    shape = (corpus.n_docs, corpus.n_words)

    def build(mask):
        return sp.csr_matrix((np.ones(mask.sum()), (doc_of[mask], words[mask])), shape=shape)

    return build(observed), build(~observed)


def _model_topics(model):
    """(point topics K x V, alpha K) of a fitted fastvem or scikit-learn LDA, or a
    (topics, alpha) pair."""
    if isinstance(model, tuple):
        topics, alpha = model
        topics = np.asarray(topics, dtype=np.float64)
    else:
        comp = np.asarray(model.components_, dtype=np.float64)
        topics = comp
        alpha = model.doc_topic_prior_
    topics = topics / topics.sum(axis=1, keepdims=True)
    alpha = np.asarray(alpha, dtype=np.float64)
    if alpha.ndim == 0:
        alpha = np.full(topics.shape[0], float(alpha))
    return topics, alpha


def document_completion_perplexity(model, X, random_state=0, max_doc_update_iter=200,
                                   mean_change_tol=1e-4, n_threads=None):
    """Held-out document-completion perplexity of X under `model` (lower is better).

    model: a fitted LatentDirichletAllocation (fastvem's or scikit-learn's, whose
    normalised components_ are the topics) or a pair (topics K x V, alpha)."""
    topics, alpha = _model_topics(model)
    X_obs, X_held = split_documents(X, random_state)
    obs = check_corpus(X_obs)
    if obs.n_words != topics.shape[1]:
        raise ValueError(f"X has {obs.n_words} words but the topics have {topics.shape[1]}")
    gamma = np.ones((obs.n_docs, topics.shape[0]))
    TopicModel.local_step(obs, np.ascontiguousarray(topics.T), alpha, gamma, False,
                          max_doc_update_iter, mean_change_tol, False,
                          default_n_threads(n_threads))
    theta = gamma / gamma.sum(axis=1, keepdims=True)
    held = sp.coo_matrix(X_held)
    total, n = 0.0, held.data.sum()
    if n == 0:
        raise ValueError("X has no held-out token (documents of one token or empty)")
    step = 1 << 16
    for s in range(0, held.nnz, step):
        r, c, v = held.row[s:s + step], held.col[s:s + step], held.data[s:s + step]
        p = np.einsum("ik,ki->i", theta[r], topics[:, c])
        total += np.dot(v, np.log(p))
    return float(np.exp(-total / n))


def top_words(components, n=10):
    """Indices of each topic's n most probable words (K x n), most probable first."""
    comp = np.asarray(components)
    return np.argsort(-comp, axis=1, kind="stable")[:, :n]


def topic_coherence(components, X, top_n=10, measure="umass"):
    """Coherence of each topic's top_n words over the documents of X.

    'umass' (Mimno et al. 2011): mean over ordered pairs (w_i ranked below w_j) of
    log((D(w_i, w_j) + 1) / D(w_j)).  'npmi' (Bouma 2009; Aletras & Stevenson 2013):
    mean over pairs of log(p(w_i, w_j) / (p(w_i) p(w_j))) / -log p(w_i, w_j) with
    document probabilities, -1 for pairs that never co-occur.  D(.) counts
    documents.  Returns an array of K scores (higher is more coherent)."""
    if measure not in ("umass", "npmi"):
        raise ValueError(f"measure must be 'umass' or 'npmi', got {measure!r}")
    corpus = check_corpus(X)
    comp = np.asarray(components)
    if comp.ndim != 2 or comp.shape[1] != corpus.n_words:
        raise ValueError(f"components must have shape (n_topics, {corpus.n_words}), got "
                         f"{comp.shape}")
    if not 2 <= top_n <= corpus.n_words:
        raise ValueError(f"top_n must be in [2, {corpus.n_words}], got {top_n}")
    B = corpus.csr()
    B = sp.csr_matrix((np.ones_like(B.data, dtype=np.float64), B.indices, B.indptr),
                      shape=B.shape).tocsc()
    n_docs = B.shape[0]
    scores = np.empty(comp.shape[0])
    iu = np.triu_indices(top_n, 1)            # pairs (j < i): j ranked higher
    for k, top in enumerate(top_words(comp, top_n)):
        sub = B[:, top]
        co = (sub.T @ sub).toarray()
        df = np.diag(co).copy()
        j, i = iu
        if measure == "umass":
            scores[k] = np.mean(np.log((co[i, j] + 1.0) / np.maximum(df[j], 1.0)))
        else:
            pij = co[i, j] / n_docs
            pi, pj = df[i] / n_docs, df[j] / n_docs
            with np.errstate(divide="ignore", invalid="ignore"):
                npmi = np.where(pij > 0, np.log(pij / (pi * pj)) / -np.log(pij), -1.0)
                npmi = np.where(pij >= 1.0, 1.0, npmi)
            scores[k] = np.mean(npmi)
    return scores
