"""Document-term corpora: validated once, in Python, before any kernel runs.

Accepted: scipy.sparse matrices (CSR, CSC, COO, ...), dense array-likes of
counts (int or float), and gensim-style bag-of-words lists (one list of
``(word_id, count)`` pairs per document).  The kernels read one layout: CSR
with int64 row pointers, int32 word ids and float32 or float64 counts.
"""
import numbers

import numpy as np
import scipy.sparse as sp

__all__ = ["Corpus", "check_corpus", "is_bag_of_words"]


class Corpus:
    """A validated CSR corpus: indptr (int64), indices (int32), data (float32/64)."""

    def __init__(self, indptr, indices, data, n_words):
        self.indptr = indptr
        self.indices = indices
        self.data = data
        self.n_docs = indptr.shape[0] - 1
        self.n_words = int(n_words)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def total(self):
        return float(self.data.sum(dtype=np.float64))

    def csr(self):
        return sp.csr_matrix((self.data, self.indices, self.indptr),
                             shape=(self.n_docs, self.n_words))

    def rows(self, start, stop):
        """Documents start..stop-1 as a Corpus (views, offsets rebased)."""
        a, b = self.indptr[start], self.indptr[stop]
        return Corpus(np.ascontiguousarray(self.indptr[start:stop + 1] - a),
                      self.indices[a:b], self.data[a:b], self.n_words)

    def tokens(self):
        """(doc_ptr, words): every token in document order (integer counts only)."""
        counts = self.data.astype(np.int64)
        cum = np.zeros(counts.shape[0] + 1, np.int64)
        np.cumsum(counts, out=cum[1:])
        per_doc = cum[self.indptr[1:]] - cum[self.indptr[:-1]]
        doc_ptr = np.zeros(self.n_docs + 1, np.int64)
        np.cumsum(per_doc, out=doc_ptr[1:])
        words = np.repeat(self.indices, counts).astype(np.int32)
        return doc_ptr, words


def is_bag_of_words(X):
    """True for a gensim-style corpus: a list/tuple of documents, each a list of
    (word_id, count) pairs (an empty document is an empty list)."""
    if not isinstance(X, (list, tuple)) or len(X) == 0:
        return False
    for doc in X:
        if not isinstance(doc, (list, tuple)):
            return False
        if len(doc):
            first = doc[0]
            return isinstance(first, (list, tuple)) and len(first) == 2
    return True   # every document empty


def _from_bag_of_words(X, n_words, name):
    lengths = np.fromiter((len(d) for d in X), dtype=np.int64, count=len(X))
    pairs = [p for d in X for p in d]
    if pairs:
        try:
            arr = np.asarray(pairs, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}: each document must be a list of (word_id, count) "
                             f"pairs ({exc})") from None
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ValueError(f"{name}: each document must be a list of (word_id, count) pairs")
        ids, counts = arr[:, 0], arr[:, 1]
        if not np.all(np.isfinite(ids)) or np.any(ids != np.round(ids)) or np.any(ids < 0):
            raise ValueError(f"{name}: word ids must be non-negative integers")
        ids = ids.astype(np.int64)
    else:
        ids = np.zeros(0, np.int64)
        counts = np.zeros(0)
    V = int(ids.max()) + 1 if ids.size else 0
    if n_words is not None:
        if V > n_words:
            raise ValueError(f"{name}: word id {V - 1} is out of range for a vocabulary of "
                             f"{n_words} words (n_features_in_)")
        V = n_words
    rows = np.repeat(np.arange(len(X)), lengths)
    return sp.csr_matrix((counts, (rows, ids)), shape=(len(X), max(V, 1) if n_words is None
                                                         else V))


# the largest corpus total (sum of all counts) that the fixed point's and the
# statistics' products hold without overflow, per working dtype (measured: 1e50
# fits in float64, 1e75 overflows; 1e30 fits in float32)
_MAX_TOTAL = {np.dtype(np.float64): 1e40, np.dtype(np.float32): 1e24}


def check_corpus(X, *, name="X", n_words=None, dtype=None, integer=False, fitting=False,
                 allow_empty=False, integer_reason="method='gibbs' samples one topic per "
                                                   "token and needs whole-number counts"):
    """A Corpus from X, or a ValueError / TypeError naming the problem.

    n_words: the vocabulary size X must have (transform after fit).
    integer: counts must be whole numbers (collapsed Gibbs works on tokens).
    fitting: the corpus must hold at least one token.
    allow_empty: zero documents are allowed (an empty block of a larger corpus).
    """
    if X is None:
        raise ValueError(f"{name} is None; expected a document-term matrix")
    if is_bag_of_words(X):
        X = _from_bag_of_words(X, n_words, name)
    if sp.issparse(X):
        X = sp.csr_matrix(X)          # copies COO/CSC; CSR stays a view-like matrix
        if X.dtype.kind == "c":
            raise ValueError(f"Complex data not supported: {name} has dtype {X.dtype}")
        if X.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold numeric counts, got dtype {X.dtype}")
        if not X.has_canonical_format:
            # duplicates summed / indices sorted on a copy: never the caller's arrays
            X = X.copy()
            X.sum_duplicates()
    else:
        try:
            arr = np.asarray(X)
        except Exception as exc:
            raise ValueError(f"{name} could not be converted to an array: {exc}") from None
        if arr.dtype.kind == "c":
            raise ValueError(f"Complex data not supported: {name} has dtype {arr.dtype}")
        if arr.dtype.kind == "O":
            arr = arr.astype(np.float64)      # numbers held as objects; TypeError otherwise
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold numeric counts, got dtype {arr.dtype}")
        if arr.dtype == np.float16 or arr.dtype == np.longdouble:
            arr = arr.astype(np.float32 if arr.dtype == np.float16 else np.float64)
        if arr.ndim != 2:
            raise ValueError(f"{name} must be 2D (documents x words), got shape {arr.shape}. "
                             "Reshape your data: one row per document.")
        X = sp.csr_matrix(arr)
    D, V = X.shape
    if D == 0 and not allow_empty:
        raise ValueError(f"Found array with 0 sample(s) (shape=({D}, {V})) while a minimum of "
                         f"1 is required: {name} holds no documents")
    if V == 0:
        raise ValueError(f"Found array with 0 feature(s) (shape=({D}, 0)) while a minimum of "
                         f"1 is required: {name} has an empty vocabulary")
    if n_words is not None and V != n_words:
        raise ValueError(f"{name} has {V} features, but LatentDirichletAllocation is "
                         f"expecting {n_words} features as input (n_features_in_: words the "
                         "model was fitted with)")
    if V >= 2**31:
        raise ValueError(f"{name} has {V} words; at most 2**31 - 1 are supported")
    want = dtype
    if want is None:
        want = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
    data = np.asarray(X.data)
    if data.size:
        if not np.all(np.isfinite(data)):
            raise ValueError(f"{name} contains NaN or infinity")
        if data.min() < 0:
            raise ValueError(f"Negative values in data passed to {name}: counts must be >= 0")
        total = float(np.sum(data, dtype=np.float64))
        limit = _MAX_TOTAL[np.dtype(want)]
        if total > limit:
            raise ValueError(f"{name} holds counts summing to {total:.3g}, beyond the "
                             f"{limit:.0e} that the topic statistics hold in {np.dtype(want)} "
                             "without overflow; counts are numbers of tokens -- divide X by a "
                             "constant")
        if integer and np.any(data != np.round(data)):
            raise ValueError(f"{name} contains non-integer counts; {integer_reason}")
    keep = data != 0
    if not np.all(keep):
        X = X.copy()
        X.eliminate_zeros()
        data = X.data
    if fitting and data.size == 0:
        raise ValueError(f"{name} is an all-zero corpus: there is no word to fit topics to")
    return Corpus(np.ascontiguousarray(X.indptr, dtype=np.int64),
                  np.ascontiguousarray(X.indices, dtype=np.int32),
                  np.ascontiguousarray(data, dtype=want), V)


def check_positive_int(value, name, minimum=1):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


class _EStep:
    """A block's E-step result; adds (statistics and totals) for tree sums."""

    def __init__(self, stats, totals):
        self.stats = stats
        self.totals = totals

    def __add__(self, other):
        stats = None if self.stats is None else self.stats + other.stats
        return _EStep(stats, self.totals + other.totals)


def _block_summary(block):
    c = check_corpus(block, name="a block of X", allow_empty=True)
    return np.array([c.n_docs, c.n_words, c.total, c.data.size, c.dtype == np.float32])


def block_estep(block, eb, alpha, hard, max_iter, tol, need_stats, n_threads):
    """The per-document fixed point on one block of documents, from gamma = 1."""
    from .structures.topic_model import TopicModel
    c = check_corpus(block, name="a block of X", dtype=eb.dtype, allow_empty=True)
    stats, tot = TopicModel.local_step(c, eb, alpha, None, hard, max_iter, tol, need_stats,
                                       n_threads)
    return _EStep(stats, tot)


class CorpusSource:
    """A corpus in blocks of documents: a Dask array (dense or scipy.sparse blocks),
    or a re-iterable of document-term chunks (CSR, dense), read through the shared
    sources (``fastvem.sources``: ``DaskRowBlocks`` runs each block's work where it
    lives, ``RowChunks`` streams the chunks; both refuse a one-shot iterator, blocks
    of inconsistent width and unknown Dask chunk sizes, and skip blocks without
    rows).  Validated in one pass; each iteration runs the E-step per block and sums
    the blocks' statistics in block order by the sources' fixed pairwise tree."""

    def __init__(self, X, name="X"):
        from .sources import DaskRowBlocks, RowChunks, is_dask_array
        self.dask = is_dask_array(X)
        self.source = DaskRowBlocks(X, name) if self.dask else RowChunks(X, name)
        summaries = self._map(_block_summary)
        self.n_words = int(self.source.width)
        self.n_docs = int(sum(s[0] for s in summaries))
        self.total = float(sum(s[2] for s in summaries))
        if self.n_docs == 0:
            raise ValueError(f"{name} holds no documents")
        if sum(s[3] for s in summaries) == 0:
            raise ValueError(f"{name} is an all-zero corpus: there is no word to fit topics to")
        self.dtype = np.dtype(np.float32) if all(s[4] for s in summaries) else np.dtype(np.float64)

    def _map(self, fn, *args):
        from .sources import _positional
        return list(self.source.map(_positional, fn, *args))

    def estep(self, eb, alpha, hard, max_iter, tol, need_stats, n_threads):
        """The blocks' E-steps, summed in block order (a stream of chunks holds
        O(log n) partial sums, never every block's statistics)."""
        from .sources import _positional, tree_sum_iter
        return tree_sum_iter(self.source.map(_positional, block_estep, eb, alpha, hard,
                                             max_iter, tol, need_stats, n_threads))
