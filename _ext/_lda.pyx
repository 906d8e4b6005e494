# Kernels of the topic-model structure over the categorical family (LDA).
#
# 1. `doc_fixed_point`: the per-document fixed point of the factorised q(theta_d) q(z_d)
#    (vem and meanfield: soft, digamma), or its crisp version (one topic per distinct
#    word of a document: argmax).  Documents are cut into partitions of PART_DOCS
#    documents; partitions run in rounds of up to ROUND per thread (crisp, whose
#    partition buffers they bound; soft: all in one round), taken dynamically by the
#    threads (a preempted thread delays only its own partition: no barrier per wave
#    of T).  Crisp: each partition into its own sparse word x topic accumulator;
#    after a round every touched word adds its accumulators in partition order (the
#    words in parallel).  Soft: each token's r = c / norm and each document's e are
#    kept, and after the documents every word (in parallel) sums r e over its
#    documents partition by partition and adds the partitions' sums in order -- the
#    same operations, in the same order, as the accumulators, without them.  Either
#    way the statistics are bitwise identical for any n_threads.
#    Layout: the effective topic-word matrix `eb` is word-major (V x K, a word's K
#    values contiguous), so the per-token dot product and axpy run down contiguous
#    memory; the statistics are word-major too.
# 2. `gibbs_sweep`: collapsed Gibbs sampling with the SparseLDA bucket decomposition
#    (smoothing s, document r, word q), over a snapshot of the word-topic counts that
#    is refreshed after every block of BLOCK_DOCS documents.  Within a block documents
#    run in parallel against the same snapshot (each token's own count removed
#    exactly); the counts are then updated serially in token order.  Draws are keyed
#    by (seed, sweep, document, token) by the kernels' one convention (_common.pxd:
#    sweep_key, stream_key, uniform01), so the chain is identical for any n_threads.
#
# Conventions (DESIGN.md): inputs, outputs (overwritten), accumulators (added to),
# scalars, n_threads.  The data are validated in Python (fastvem/models/lda.py,
# fastvem/corpus.py: indices < V, counts, topics < K); every Python-callable entry
# here still checks, with the GIL and before any allocation or nogil loop, that each
# buffer has exactly the shape its loops assume (K, V, D, N each from one source),
# and clamps its threads to the CPUs available (ValueError for n_threads < 1).
from cython cimport floating
from cython.parallel cimport prange, parallel, threadid
from libc.math cimport log, lgamma, fabs
from libc.stdint cimport uint64_t, int64_t, int32_t
from libc.stdlib cimport malloc, free, calloc, qsort
from libc.string cimport memset, memcpy

cimport numpy as cnp
import numpy as np

from _common cimport fexp, fv_exp, uniform01, sweep_key, stream_key
from _common cimport clamp_threads, check_len, check_shape

cnp.import_array()

cdef extern from *:
    void __builtin_prefetch(const void *p) noexcept nogil

cdef extern from "fv_lda.h" nogil:
    double fv_digamma(double x)
    double fv_dot_d(const double *a, const double *b, long n)
    float fv_dot_f(const float *a, const float *b, long n)
    double fv_expect_log_d(const double *gamma, double *e, double *elog, long K)
    double fv_expect_log_f(const float *gamma, float *e, double *elog, long K)
    void fv_lda_pass_d(const double *G, const double *GT, const double *c, const double *e,
                       double *t, double *r, long n, long K, double eps)
    void fv_lda_pass_f(const float *G, const float *GT, const float *c, const float *e,
                       float *t, float *r, long n, long K, float eps)
    void fv_lda_gather_d(const double *eb, const int32_t *idx, long n, long K, double *G,
                         double *GT)
    void fv_lda_gather_f(const float *eb, const int32_t *idx, long n, long K, float *G,
                         float *GT)
    long FV_LDA_PAD_d, FV_LDA_PAD_f
    long fv_lda_padded(long n, long L)
    void fv_lda_gather_t_d(const double *eb, const int32_t *idx, const double *cnt, long n,
                           long npad, long K, double *GT, double *S, double *mx, double *lmax,
                           double *cp)
    void fv_lda_gather_t_f(const float *eb, const int32_t *idx, const float *cnt, long n,
                           long npad, long K, float *GT, float *S, float *mx, double *lmax,
                           float *cp)
    void fv_lda_eexp_d(const double *gA, double ps, double *eA, long nA)
    void *fv_lda_alloc64(size_t bytes)
    unsigned int fv_fp_flush_subnormals()
    void fv_fp_restore(unsigned int old)
    void fv_lda_add(double *b, const double *a, long K)
    void fv_lda_axpy_d(double *b, double r, const double *e, long K)
    void fv_lda_axpy_f(double *b, double r, const float *e, long K)
    double fv_lda_norm_act_d(const double *GT, const double *c, const double *eA,
                             const int *act, double *r, double *nrm, long n, long nA,
                             double eps)
    double fv_lda_norm_act_f(const float *GT, const float *c, const float *eA, const int *act,
                             float *r, float *nrm, long n, long nA, float eps)
    void fv_lda_effective_row_d(const double *S, double a, double b, const double *ps,
                                double *out, long K, int posterior)
    void fv_lda_effective_row_f(const double *S, double a, double b, const double *ps,
                                float *out, long K, int posterior)
    long fv_lda_sparse_d(const double *GT, const double *c, long n, long K,
                         const double *alpha, const double *psa, const double *lal,
                         const double *lmax, double *gamma, long max_iter, double tol,
                         double eps, double *vA,
                         double *r, double *dw, int *act, int *on, int *dl, long *n_active)
    long fv_lda_sparse_f(const float *GT, const float *c, long n, long K,
                         const double *alpha, const double *psa, const double *lal,
                         const double *lmax, float *gamma, long max_iter, double tol,
                         float eps, float *vA,
                         float *r, double *dw, int *act, int *on, int *dl, long *n_active)

cdef enum:
    PART_DOCS = 32      # documents per partition of the fixed point (fixed: thread-invariant)
    BLOCK_DOCS = 256    # documents per snapshot block of the Gibbs sweep
    ROUND = 8           # partitions per thread in a round of the fixed point

PARTITION_DOCS = PART_DOCS
GIBBS_BLOCK_DOCS = BLOCK_DOCS

cdef int _dense_sweeps = 0


cdef int check_pointer(str fn, str name, const cnp.int64_t[::1] ptr, Py_ssize_t total,
                       str of) except -1:
    """ValueError unless a CSR-style pointer (D + 1 entries) runs from 0 to `total`,
    the length of the array `of` it indexes."""
    cdef Py_ssize_t D = ptr.shape[0] - 1
    if D < 0:
        raise ValueError(f"{fn}: {name} is empty; it needs D + 1 >= 1 entries")
    if ptr[0] != 0 or ptr[D] != total:
        raise ValueError(f"{fn}: {name} runs from {ptr[0]} to {ptr[D]}, expected 0 to "
                         f"{total} (the length of {of})")
    return 0


def set_dense_sweeps(bint flag):
    """Make the soft fixed point sweep every topic (the reference the active-topic
    sweeps are tested against); returns the previous setting."""
    global _dense_sweeps
    old = bool(_dense_sweeps)
    _dense_sweeps = flag
    return old


cdef inline double digamma(double x) noexcept nogil:
    return fv_digamma(x)


cdef inline floating fdot(const floating *a, const floating *b, Py_ssize_t n) noexcept nogil:
    if floating is float:
        return fv_dot_f(a, b, n)
    else:
        return fv_dot_d(a, b, n)


def digamma_array(const double[::1] x, double[::1] out):
    """psi elementwise (exposed for the tests against scipy)."""
    cdef Py_ssize_t i
    check_len("digamma_array", "out", out.shape[0], x.shape[0], "the length of x")
    for i in range(x.shape[0]):
        out[i] = digamma(x[i])


def exp_digamma_array(const double[::1] x, double ps, double[::1] out):
    """exp(psi(x) - ps) elementwise, as the active-topic sweep computes its e (exposed
    for the tests against scipy)."""
    check_len("exp_digamma_array", "out", out.shape[0], x.shape[0], "the length of x")
    if x.shape[0] > 0:
        fv_lda_eexp_d(&x[0], ps, &out[0], x.shape[0])


cdef inline double _expect_log(floating *gamma, const double *alpha, floating *e, double *elog,
                               Py_ssize_t K, int hard) noexcept nogil:
    """e = exp(E log theta) (soft) or theta = gamma / sum (hard); elog = E log theta or
    log theta.  Returns sum(gamma)."""
    cdef Py_ssize_t k
    cdef double s = 0.0, ps
    if not hard:
        if floating is float:
            return fv_expect_log_f(gamma, e, elog, K)
        else:
            return fv_expect_log_d(gamma, e, elog, K)
    for k in range(K):
        s += gamma[k]
    ps = log(s)
    for k in range(K):
        elog[k] = log(<double>gamma[k]) - ps
        e[k] = <floating>(gamma[k] / s)
    return s


cdef inline Py_ssize_t _argmax(const floating *e, const floating *row, Py_ssize_t K,
                               floating *value) noexcept nogil:
    """The topic k maximising e_k row_k (crisp assignment of one word), and that value."""
    cdef Py_ssize_t k, best = 0
    cdef floating bv = e[0] * row[0], v
    for k in range(1, K):
        v = e[k] * row[k]
        if v > bv:
            bv = v
            best = k
    value[0] = bv
    return best


cdef inline double _dirichlet_term(const floating *gamma, const double *alpha,
                                   const double *elog, Py_ssize_t K,
                                   const double *lga) noexcept nogil:
    """The soft Dirichlet term of one document: sum_k (alpha_k - gamma_k) E log theta_k
    + lgamma(gamma_k), - lgamma(sum gamma).  lga (or NULL): lgamma(alpha_k), used where
    gamma_k is alpha_k (the topics the active-topic sweep left at their prior)."""
    cdef Py_ssize_t k
    cdef double sg = 0.0, acc = 0.0
    for k in range(K):
        sg += gamma[k]
        acc += (alpha[k] - gamma[k]) * elog[k]
        if lga != NULL and gamma[k] == <floating>alpha[k]:
            acc += lga[k]
        else:
            acc += lgamma(<double>gamma[k])
    return acc - lgamma(sg)


cdef inline Py_ssize_t _padded_len(Py_ssize_t n, const floating *tag) noexcept nogil:
    """n rounded up to whole vectors of floating (the active-topic sweeps' token count)."""
    if floating is float:
        return fv_lda_padded(n, FV_LDA_PAD_f)
    else:
        return fv_lda_padded(n, FV_LDA_PAD_d)


cdef int _one_doc(const int32_t *idx, const floating *cnt, Py_ssize_t n,
                  const floating *eb, const double *alpha, floating *gamma, Py_ssize_t K,
                  int hard, int max_iter, double tol, floating eps,
                  floating *e, floating *t, double *elog, floating *G, floating *rb,
                  floating *cp, const double *psa, const double *lal, const double *lga,
                  double *dw, int *ia,
                  long *nact, double *out) noexcept nogil:
    """The fixed point of one document; gamma (K) is the start and is overwritten.
    out[0] += word term, out[1] += Dirichlet term; elog holds E log theta at exit.
    Soft: sweeps over the document's active topics only (fv_lda_sparse_*, equal to the
    dense sweep up to round-off), on the tokens padded to np = _padded_len(n) (count
    0, topic rows 0); at exit the active topics are ia[0..nact), and G + np K holds
    norm_j + eps over them (for _doc_r_e).  Otherwise nact = -1.
    Workspace: t (3K), G (2 np K + np + 1), rb, cp (np + 1 each), dw (7K), ia (3K);
    psa[k] = psi(alpha_k), lal[k] = log(alpha_k), lga[k] = lgamma(alpha_k).  Returns the
    number of inner iterations."""
    cdef Py_ssize_t j, k, it, best
    cdef const floating *row
    cdef floating norm, r, bv, v
    cdef double change, acc, g
    cdef Py_ssize_t np_ = _padded_len(n, cnt)
    cdef floating *nrm = G + np_ * K
    cdef floating *eA = t + K
    nact[0] = -1
    if not hard and not _dense_sweeps:
        # the document's topic rows (K x np) and log max_j, gathered once
        if floating is float:
            fv_lda_gather_t_f(eb, idx, cnt, n, np_, K, G, nrm, t, dw + 6 * K, cp)
            it = fv_lda_sparse_f(G, cp, np_, K, alpha, psa, lal, dw + 6 * K, gamma, max_iter, tol,
                                 eps, eA, rb, dw, ia, ia + K, ia + 2 * K, nact)
        else:
            fv_lda_gather_t_d(eb, idx, cnt, n, np_, K, G, nrm, t, dw + 6 * K, cp)
            it = fv_lda_sparse_d(G, cp, np_, K, alpha, psa, lal, dw + 6 * K, gamma, max_iter, tol,
                                 eps, eA, rb, dw, ia, ia + K, ia + 2 * K, nact)
        _expect_log(gamma, alpha, e, elog, K, hard)
        # the bound terms at the final gamma, the word term over the active topics
        for j in range(nact[0]):
            eA[j] = e[ia[j]]
        if floating is float:
            fv_lda_norm_act_f(G, cp, eA, ia, rb, nrm, np_, nact[0], eps)
        else:
            fv_lda_norm_act_d(G, cp, eA, ia, rb, nrm, np_, nact[0], eps)
        acc = 0.0
        for j in range(n):
            acc += cnt[j] * log(<double>nrm[j])
        out[0] += acc
        out[1] += _dirichlet_term(gamma, alpha, elog, K, lga)
        return <int>it
    _expect_log(gamma, alpha, e, elog, K, hard)
    if not hard:        # the dense sweep (reference for the tests)
        if floating is float:
            fv_lda_gather_f(eb, idx, n, K, G, G + n * K)
        else:
            fv_lda_gather_d(eb, idx, n, K, G, G + n * K)
    it = 0
    while it < max_iter:
        it += 1
        for k in range(K):
            t[k] = 0
        if hard:
            for j in range(n):
                best = _argmax(e, eb + idx[j] * K, K, &bv)
                t[best] += cnt[j]
            change = 0.0
            for k in range(K):
                g = alpha[k] + t[k]
                change += fabs(g - gamma[k])
                gamma[k] = <floating>g
        else:
            if floating is float:
                fv_lda_pass_f(G, G + n * K, cnt, e, t, rb, n, K, eps)
            else:
                fv_lda_pass_d(G, G + n * K, cnt, e, t, rb, n, K, eps)
            change = 0.0
            for k in range(K):
                g = alpha[k] + e[k] * t[k]
                change += fabs(g - gamma[k])
                gamma[k] = <floating>g
        _expect_log(gamma, alpha, e, elog, K, hard)
        if change / K < tol:
            break
    _doc_terms(idx, cnt, n, eb, alpha, gamma, K, hard, eps, e, elog, out, 0)
    return <int>it


cdef void _doc_terms(const int32_t *idx, const floating *cnt, Py_ssize_t n,
                     const floating *eb, const double *alpha, floating *gamma, Py_ssize_t K,
                     int hard, floating eps, floating *e, double *elog, double *out,
                     int refresh) noexcept nogil:
    """out[0] += the word term, out[1] += the Dirichlet term of one document at gamma,
    with phi optimal for gamma (e, elog must hold gamma's expectations unless refresh)."""
    cdef Py_ssize_t j, k
    cdef const floating *row
    cdef floating norm, bv, v
    cdef double acc
    if refresh:
        _expect_log(gamma, alpha, e, elog, K, hard)
    acc = 0.0
    if hard:
        for j in range(n):
            _argmax(e, eb + idx[j] * K, K, &bv)
            acc += cnt[j] * log(<double>bv)
        out[0] += acc
        acc = 0.0
        for k in range(K):
            acc += alpha[k] * elog[k]
        out[1] += acc
    else:
        for j in range(n):
            row = eb + idx[j] * K
            norm = fdot(e, row, K)
            acc += cnt[j] * log(<double>norm + eps)
        out[0] += acc
        out[1] += _dirichlet_term(gamma, alpha, elog, K, NULL)


cdef void _doc_stats(const int32_t *idx, const floating *cnt, Py_ssize_t n,
                     const floating *eb, Py_ssize_t K, const floating *e, int32_t *slot,
                     double *buf) noexcept nogil:
    """Add one document's crisp statistics (the counts of its words' argmax topics) into
    the partition buffer, rows addressed through slot[word]."""
    cdef Py_ssize_t j
    cdef floating bv
    for j in range(n):
        buf[slot[idx[j]] * K + _argmax(e, eb + idx[j] * K, K, &bv)] += cnt[j]


cdef void _doc_r_e(const int32_t *idx, const floating *cnt, Py_ssize_t n,
                   const floating *eb, Py_ssize_t K, floating eps, const floating *e,
                   const floating *nrm, const int *act, Py_ssize_t n_act,
                   const cnp.int64_t *tp, double *wr, double *Ed) noexcept nogil:
    """One document's share of the soft statistics, sum_d r_dw e_d (before the product
    with eb): r_j = c_j / norm_j of each token, stored at its place tp[j] of the
    word-major order, and e_d (Ed, K).  n_act >= 0: the active-topic sweep's norms (nrm
    from _one_doc) and e at its active topics act[0..n_act), 0 at the others (which add
    nothing); n_act < 0: every topic, the norms from eb."""
    cdef Py_ssize_t j, k, q
    cdef floating norm
    if n_act >= 0:
        for j in range(n):
            wr[tp[j]] = cnt[j] / <double>nrm[j]
        if n_act == K:          # every topic active: act is 0..K-1 in order
            for k in range(K):
                Ed[k] = e[k]
        else:
            for k in range(K):
                Ed[k] = 0.0
            for q in range(n_act):
                Ed[act[q]] = e[act[q]]
    else:
        for j in range(n):
            norm = fdot(e, eb + idx[j] * K, K)
            wr[tp[j]] = cnt[j] / (<double>norm + eps)
        for k in range(K):
            Ed[k] = e[k]


cdef void _word_stats(Py_ssize_t lo, Py_ssize_t hi, const int32_t *wdoc, const double *wr,
                      const double *Ed, Py_ssize_t K, double *acc,
                      double *out) noexcept nogil:
    """out (K) += a word's soft statistics: its documents wdoc[lo..hi) (in order, their
    r in wr) summed partition by partition, each partition's sum of r_dw e_d formed from
    0 in document order and added to out in partition order."""
    cdef Py_ssize_t pos, d, part
    if lo >= hi:
        return
    part = wdoc[lo] // PART_DOCS
    memset(acc, 0, K * sizeof(double))
    for pos in range(lo, hi):
        d = wdoc[pos]
        if d // PART_DOCS != part:
            fv_lda_add(out, acc, K)
            memset(acc, 0, K * sizeof(double))
            part = d // PART_DOCS
        fv_lda_axpy_d(acc, wr[pos], Ed + d * K, K)
    fv_lda_add(out, acc, K)


def doc_fixed_point(const cnp.int64_t[::1] indptr, const cnp.int32_t[::1] indices,
                    const floating[::1] data, const floating[:, ::1] eb,
                    const double[::1] alpha,
                    floating[:, ::1] gamma,
                    double[:, ::1] sstats, double[::1] totals,
                    int hard, int max_iter, double tol, bint need_stats, int restart, int n_threads):
    """The per-document fixed point over every document of a CSR corpus.

    IN    indptr (D+1), indices (nnz, int32 < V), data (nnz counts), eb (V x K: exp E log
          beta for meanfield, beta for vem/crisp, word-major), alpha (K)
    INOUT gamma (D x K): the starting values, overwritten with the fixed point
    INOUT sstats (V x K, float64): += sum_d phi_dw c_dw (soft: before the product with eb,
          which the caller applies; hard: the counts of the argmax topics)
    INOUT totals (3 + K): [word term, Dirichlet term, inner iterations, sum_d E log theta_d]
    hard: 0 soft (digamma fixed point), 1 crisp (argmax / relative frequencies)
    restart: 0 iterate from the given gamma; 1 iterate from gamma = 1 and keep the given
          gamma where its bound is higher (the bound then never decreases across passes)
    """
    cdef str fn = "doc_fixed_point"
    # one source for each size: D and nnz from the corpus (indptr, indices), V and K
    # from the topics eb; every other buffer must agree
    cdef Py_ssize_t D = indptr.shape[0] - 1, K = eb.shape[1], V = eb.shape[0]
    cdef Py_ssize_t nnz_all = indices.shape[0]
    check_pointer(fn, "indptr", indptr, nnz_all, "indices")
    if K < 1:
        raise ValueError(f"{fn}: eb has shape ({V}, {K}); it needs K >= 1 topics (columns)")
    check_len(fn, "data", data.shape[0], nnz_all, "nnz = the length of indices")
    check_shape(fn, "gamma", gamma.shape[0], gamma.shape[1], D, K,
                "D documents from indptr, K topics from eb")
    check_len(fn, "alpha", alpha.shape[0], K, "K topics from eb")
    check_len(fn, "totals", totals.shape[0], 3 + K, "3 + K, K topics from eb")
    if need_stats:
        check_shape(fn, "sstats", sstats.shape[0], sstats.shape[1], V, K,
                    "V x K from eb, with need_stats")
    elif sstats.shape[1] != K:
        check_shape(fn, "sstats", sstats.shape[0], sstats.shape[1], sstats.shape[0], K,
                    "K topics from eb (unused rows without need_stats)")
    cdef Py_ssize_t n_parts = (D + PART_DOCS - 1) // PART_DOCS
    cdef int T = clamp_threads(fn, n_threads, n_parts)
    cdef Py_ssize_t wave, wave_i, p, t, d, d0, d1, j, k, w, nw, max_slots = 0
    cdef floating eps = <floating>(np.finfo(np.float32).eps if floating is float
                                   else np.finfo(np.float64).eps)
    cdef int64_t nnz_p
    lengths = np.diff(indptr)
    if D > 0 and np.min(lengths) < 0:
        raise ValueError(f"{fn}: indptr decreases; document lengths must be >= 0")
    cdef Py_ssize_t max_n = int(np.max(lengths)) if D > 0 else 0
    cdef Py_ssize_t max_np = (max_n + 15) // 16 * 16      # padded to whole vectors
    cdef Py_ssize_t P, per_part
    for p in range(n_parts):
        d0 = p * PART_DOCS
        d1 = min(D, d0 + PART_DOCS)
        nnz_p = indptr[d1] - indptr[d0]
        if nnz_p > max_slots:
            max_slots = nnz_p
    if max_slots > V:
        max_slots = V
    # crisp statistics go through partition buffers; the soft ones are kept per token
    # and per document (r, e) and summed word by word after the documents
    cdef bint part_stats = need_stats and hard
    cdef bint soft_stats = need_stats and not hard
    if not part_stats:
        max_slots = 1
    # a round is P partitions (up to ROUND per thread, taken dynamically), each with its
    # own totals (3 + K) and sparse row buffer, within 64 MB of buffers
    per_part = (V if part_stats else 1) * 4 + max(max_slots, 1) * (K * 8 + 4) + (3 + K) * 8
    # (soft: no partition buffers, so every partition in one round -- one parallel
    # region and one wait for the slowest thread per call, instead of one per round)
    P = max(T, min(n_parts, ROUND * T if part_stats else n_parts, (64 << 20) // per_part))
    cdef double[:, ::1] ptot = np.zeros((P, 3 + K))
    cdef double[:, ::1] pbuf = np.empty((P, max(max_slots, 1) * K))   # rows zeroed on first use
    cdef int32_t[:, ::1] slot = np.full((P, V if part_stats else 1), -1, dtype=np.int32)
    cdef int32_t[:, ::1] words = np.zeros((P, max(max_slots, 1)), dtype=np.int32)
    cdef int32_t[::1] n_words = np.zeros(P, dtype=np.int32)
    # the words a round touched, each once (mark[w] >= 0 while listed)
    cdef int32_t[::1] touched = np.empty(V if part_stats else 1, dtype=np.int32)
    cdef int32_t[::1] mark = np.full(V if part_stats else 1, -1, dtype=np.int32)
    # soft: the corpus word by word (wptr, V + 1; wdoc: each word's documents in order;
    # tpos: each token's place there), r per token in that order (wr), e per document (Ed)
    cdef Py_ssize_t n_soft = nnz_all if soft_stats else 0
    cdef cnp.int64_t[::1] wptr = np.zeros(V + 1 if soft_stats else 1, dtype=np.int64)
    cdef cnp.int64_t[::1] wcur = np.empty(V if soft_stats else 1, dtype=np.int64)
    cdef int32_t[::1] wdoc = np.empty(max(n_soft, 1), dtype=np.int32)
    cdef cnp.int64_t[::1] tpos = np.empty(max(n_soft, 1), dtype=np.int64)
    cdef double[::1] wr = np.empty(max(n_soft, 1))
    cdef double[:, ::1] Ed = np.empty((D if soft_stats else 1, K))
    cdef double *acc
    cdef Py_ssize_t n_touched, n_round, s_
    cdef floating *e
    cdef floating *tt
    cdef double *elog
    cdef floating *g0
    cdef floating *G
    cdef floating *rb
    cdef floating *cp
    cdef double *tmp
    cdef double *pt
    cdef int32_t *sl
    cdef int32_t *wl
    cdef double *bf
    cdef double *dw
    cdef int *ia
    cdef double[::1] psa = np.empty(max(K, 1))
    cdef double[::1] lga = np.empty(max(K, 1))
    cdef double[::1] lal = np.empty(max(K, 1))
    cdef long nact
    cdef unsigned int csr = 0
    # set by a thread whose work buffers could not be allocated (MemoryError after)
    cdef int[::1] no_mem = np.zeros(1, dtype=np.intc)
    cdef bint have
    for k in range(K):
        psa[k] = digamma(alpha[k])
        lal[k] = log(alpha[k])
        lga[k] = lgamma(<double>(<floating>alpha[k]))
    with nogil:
        if soft_stats:
            for j in range(nnz_all):
                wptr[indices[j] + 1] += 1
            for w in range(V):
                wptr[w + 1] += wptr[w]
                wcur[w] = wptr[w]
            for d in range(D):
                for j in range(indptr[d], indptr[d + 1]):
                    w = indices[j]
                    tpos[j] = wcur[w]
                    wdoc[wcur[w]] = <int32_t>d
                    wcur[w] += 1
        for wave_i in range((n_parts + P - 1) // P):
            wave = wave_i * P
            with parallel(num_threads=T):
                e = <floating *>malloc(K * sizeof(floating))
                tt = <floating *>malloc(3 * K * sizeof(floating))
                dw = <double *>malloc(7 * K * sizeof(double))
                ia = <int *>malloc(3 * K * sizeof(int))
                elog = <double *>malloc(K * sizeof(double))
                g0 = <floating *>malloc(K * sizeof(floating))
                tmp = <double *>malloc(4 * sizeof(double))
                # 64-byte aligned: the sweeps load whole vectors from G, rb and cp
                G = <floating *>fv_lda_alloc64((2 * max_np * K + max_np + 1) * sizeof(floating))
                rb = <floating *>fv_lda_alloc64((max_np + 1) * sizeof(floating))
                cp = <floating *>fv_lda_alloc64((max_np + 1) * sizeof(floating))
                have = (e != NULL and tt != NULL and dw != NULL and ia != NULL
                        and elog != NULL and g0 != NULL and tmp != NULL and G != NULL
                        and rb != NULL and cp != NULL)
                if not have:
                    no_mem[0] = 1
                if floating is float:
                    csr = fv_fp_flush_subnormals()
                for t in prange(P, schedule='dynamic', chunksize=1):
                    p = wave + t
                    if p >= n_parts or not have:
                        continue
                    pt = &ptot[t, 0]
                    sl = &slot[t, 0]
                    wl = &words[t, 0]
                    bf = &pbuf[t, 0]
                    memset(pt, 0, (3 + K) * sizeof(double))
                    n_words[t] = 0
                    for d in range(p * PART_DOCS, min(D, (p + 1) * PART_DOCS)):
                        if restart:
                            # from gamma = 1, unless the given gamma has the higher bound
                            for k in range(K):
                                g0[k] = gamma[d, k]
                                gamma[d, k] = 1
                            tmp[0] = 0.0
                            tmp[1] = 0.0
                            tmp[2] = 0.0
                            tmp[3] = 0.0
                            pt[2] += _one_doc(&indices[indptr[d]], &data[indptr[d]],
                                              indptr[d + 1] - indptr[d], &eb[0, 0], &alpha[0],
                                              &gamma[d, 0], K, hard, max_iter, tol, eps,
                                              e, tt, elog, G, rb, cp, &psa[0], &lal[0],
                                              &lga[0], dw, ia, &nact, tmp)
                            _doc_terms(&indices[indptr[d]], &data[indptr[d]],
                                       indptr[d + 1] - indptr[d], &eb[0, 0], &alpha[0],
                                       g0, K, hard, eps, e, elog, tmp + 2, 1)
                            if tmp[2] + tmp[3] > tmp[0] + tmp[1]:
                                # the restart stopped short of the previous bound: iterate
                                # it on (tolerance 0), and only if that still falls short
                                # keep the previous gamma
                                tmp[0] = 0.0
                                tmp[1] = 0.0
                                pt[2] += _one_doc(&indices[indptr[d]], &data[indptr[d]],
                                                  indptr[d + 1] - indptr[d], &eb[0, 0],
                                                  &alpha[0], &gamma[d, 0], K, hard, max_iter,
                                                  0.0, eps, e, tt, elog, G, rb, cp, &psa[0],
                                                  &lal[0], &lga[0], dw, ia, &nact, tmp)
                            if tmp[2] + tmp[3] > tmp[0] + tmp[1]:
                                for k in range(K):
                                    gamma[d, k] = g0[k]
                                _expect_log(&gamma[d, 0], &alpha[0], e, elog, K, hard)
                                pt[0] += tmp[2]
                                pt[1] += tmp[3]
                            else:
                                _expect_log(&gamma[d, 0], &alpha[0], e, elog, K, hard)
                                pt[0] += tmp[0]
                                pt[1] += tmp[1]
                            nact = -1       # the statistics at the chosen gamma: dense
                        else:
                            pt[2] += _one_doc(&indices[indptr[d]], &data[indptr[d]],
                                              indptr[d + 1] - indptr[d], &eb[0, 0], &alpha[0],
                                              &gamma[d, 0], K, hard, max_iter, tol, eps,
                                              e, tt, elog, G, rb, cp, &psa[0], &lal[0],
                                              &lga[0], dw, ia, &nact, pt)
                        for k in range(K):
                            pt[3 + k] += elog[k]
                        if soft_stats:
                            _doc_r_e(&indices[indptr[d]], &data[indptr[d]],
                                     indptr[d + 1] - indptr[d], &eb[0, 0], K, eps, e,
                                     G + _padded_len(indptr[d + 1] - indptr[d],
                                                     <floating *>NULL) * K,
                                     ia, nact, &tpos[indptr[d]], &wr[0], &Ed[d, 0])
                        elif part_stats:
                            for j in range(indptr[d], indptr[d + 1]):
                                w = indices[j]
                                if sl[w] < 0:
                                    sl[w] = n_words[t]
                                    wl[n_words[t]] = <int32_t>w
                                    memset(bf + n_words[t] * K, 0, K * sizeof(double))
                                    n_words[t] += 1
                            _doc_stats(&indices[indptr[d]], &data[indptr[d]],
                                       indptr[d + 1] - indptr[d], &eb[0, 0], K, e, sl, bf)
                if floating is float:
                    fv_fp_restore(csr)
                free(e)
                free(tt)
                free(dw)
                free(ia)
                free(elog)
                free(g0)
                free(tmp)
                free(G)
                free(rb)
                free(cp)
            if no_mem[0]:
                break
            # reduce the round's partitions in partition order: the totals serially, the
            # statistics word by word in parallel (each word adds its partitions in order)
            n_round = min(P, n_parts - wave)
            n_touched = 0
            for t in range(n_round):
                for k in range(3 + K):
                    totals[k] += ptot[t, k]
                if part_stats:
                    for j in range(n_words[t]):
                        w = words[t, j]
                        if mark[w] < 0:
                            mark[w] = 0
                            touched[n_touched] = <int32_t>w
                            n_touched += 1
            if part_stats and n_touched > 0:
                for j in prange(n_touched, num_threads=T, schedule='dynamic', chunksize=64):
                    w = touched[j]
                    for t in range(n_round):
                        s_ = slot[t, w]
                        if s_ >= 0:
                            fv_lda_add(&sstats[w, 0], &pbuf[t, s_ * K], K)
                            slot[t, w] = -1
                    mark[w] = -1
        if soft_stats and not no_mem[0]:
            # word by word, in parallel: the sums the partition buffers would hold, added
            # in partition order (the same operations in the same order)
            with parallel(num_threads=T):
                acc = <double *>malloc(K * sizeof(double))
                if acc == NULL:
                    no_mem[0] = 1
                for w in prange(V, schedule='dynamic', chunksize=64):
                    if acc != NULL:
                        _word_stats(wptr[w], wptr[w + 1], &wdoc[0], &wr[0], &Ed[0, 0], K,
                                    acc, &sstats[w, 0])
                free(acc)
    if no_mem[0]:
        raise MemoryError(f"{fn}: could not allocate a thread's work buffers (the longest "
                          f"document has {max_n} distinct words, K = {K} topics)")


cdef inline void _move(int32_t *wl, int32_t *wc, int32_t *wp, int32_t *ln,
                       Py_ssize_t ko, Py_ssize_t kn) noexcept nogil:
    """One token of a word moves from topic ko to kn: the word's nonzero topics and
    their counts (unordered; an emptied topic is swapped out with the last entry)."""
    cdef Py_ssize_t m, last
    m = wp[ko]
    wc[m] -= 1
    if wc[m] == 0:
        ln[0] -= 1
        last = ln[0]
        if m != last:
            wl[m] = wl[last]
            wc[m] = wc[last]
            wp[wl[m]] = <int32_t>m
        wp[ko] = -1
    m = wp[kn]
    if m < 0:
        m = ln[0]
        wl[m] = <int32_t>kn
        wc[m] = 0
        wp[kn] = <int32_t>m
        ln[0] += 1
    wc[m] += 1


cdef double _sample_doc(const int32_t *words, int32_t *z, Py_ssize_t n, Py_ssize_t K,
                        const int32_t *wcnt, const int32_t *wlist, const int32_t *wlen,
                        const double *alpha, double eta, double alpha_sum,
                        const double *denom, const double *inv, const double *s, double s_sum,
                        const double *cbase, uint64_t key,
                        const int32_t *wpos,
                        int32_t *ndk, int32_t *dlist, int32_t *dpos, double *qv,
                        double *coef, int32_t *dk_top, int32_t *dk_cnt,
                        Py_ssize_t dk_len) noexcept nogil:
    """One document's tokens, in order, against the block's count snapshot; returns the
    document's term of the collapsed log joint (its Dirichlet-multinomial).  If dk_top
    is not NULL, the document's nonzero topic counts are written to its dk_len slots
    (topics to dk_top, counts to dk_cnt; count 0 in the slots left over)."""
    cdef Py_ssize_t i, j, k, ko, kn, nd = 0, m, jo
    cdef const int32_t *wl
    cdef const int32_t *wc
    cdef int32_t w
    cdef double r_sum = 0.0, q_sum, p_o, s_ex, r_ex, total, u, v, ll
    cdef Py_ssize_t pw
    # document counts and their nonzero list
    for i in range(n):
        k = z[i]
        if ndk[k] == 0:
            dpos[k] = <int32_t>nd
            dlist[nd] = <int32_t>k
            nd += 1
        ndk[k] += 1
    # coef[k] = (alpha_k + n_dk) / (V eta + n_k): the word bucket's per-topic factor
    for k in range(K):
        coef[k] = cbase[k]
    for j in range(nd):
        k = dlist[j]
        r_sum += ndk[k] * eta * inv[k]
        coef[k] = cbase[k] + ndk[k] * inv[k]
    for i in range(min(n, 3)):      # the first tokens' word rows (then 3 ahead)
        pw = <Py_ssize_t>words[i] * K
        for j in range(0, K, 16):
            __builtin_prefetch(wlist + pw + j)
            __builtin_prefetch(wcnt + pw + j)
    for i in range(n):
        w = words[i]
        ko = z[i]
        wl = wlist + <Py_ssize_t>w * K
        wc = wcnt + <Py_ssize_t>w * K
        jo = wpos[<Py_ssize_t>w * K + ko]       # the old topic is in the word's list
        # remove the token from its document
        ndk[ko] -= 1
        r_sum -= eta * inv[ko]
        coef[ko] = cbase[ko] + ndk[ko] * inv[ko]
        if ndk[ko] == 0:
            nd -= 1
            m = dpos[ko]
            dlist[m] = dlist[nd]
            dpos[dlist[m]] = <int32_t>m
        # the old topic's exact conditional (the snapshot still counts this token)
        p_o = (alpha[ko] + ndk[ko]) * (eta + wc[jo] - 1) / (denom[ko] - 1.0)
        s_ex = s_sum - s[ko]
        r_ex = r_sum - ndk[ko] * eta * inv[ko]
        if i + 1 < n:                            # the next token's word rows
            __builtin_prefetch(wpos + <Py_ssize_t>words[i + 1] * K + z[i + 1])
        if i + 3 < n:                            # every line of a later token's rows
            pw = <Py_ssize_t>words[i + 3] * K
            for j in range(0, K, 16):
                __builtin_prefetch(wlist + pw + j)
                __builtin_prefetch(wcnt + pw + j)
        # the word's bucket over its nonzero topics, as running
        # sums; the old topic is excluded by zeroing its factor for the loop
        v = coef[ko]
        coef[ko] = 0.0
        q_sum = 0.0
        for j in range(wlen[w]):
            q_sum += coef[wl[j]] * wc[j]
            qv[j] = q_sum
        coef[ko] = v
        total = p_o + q_sum + r_ex + s_ex
        u = uniform01(key, <uint64_t>i) * total
        kn = -1
        if u < p_o:
            kn = ko
        else:
            u -= p_o
            if u < q_sum:
                for j in range(wlen[w]):
                    if u < qv[j]:
                        kn = wl[j]
                        break
            else:
                u -= q_sum
                if u < r_ex:
                    for j in range(nd):
                        k = dlist[j]
                        if k != ko:
                            u -= ndk[k] * eta * inv[k]
                            if u < 0:
                                kn = k
                                break
                else:
                    u -= r_ex
                    for k in range(K):
                        if k != ko:
                            u -= s[k]
                            if u < 0:
                                kn = k
                                break
        if kn < 0:      # round-off at the end of a bucket: its last topic
            kn = ko
        z[i] = <int32_t>kn
        ndk[kn] += 1
        r_sum += eta * inv[kn]
        coef[kn] = cbase[kn] + ndk[kn] * inv[kn]
        if ndk[kn] == 1:
            dpos[kn] = <int32_t>nd
            dlist[nd] = <int32_t>kn
            nd += 1
    ll = lgamma(alpha_sum) - lgamma(alpha_sum + n)
    for j in range(nd):
        k = dlist[j]
        ll += lgamma(alpha[k] + ndk[k]) - lgamma(alpha[k])
        if dk_top != NULL:
            dk_top[j] = <int32_t>k
            dk_cnt[j] = ndk[k]
        ndk[k] = 0
    if dk_top != NULL:
        for j in range(nd, dk_len):
            dk_cnt[j] = 0
    return ll


def gibbs_sweep(const cnp.int64_t[::1] doc_ptr, const cnp.int32_t[::1] words,
                cnp.int32_t[::1] z, cnp.int64_t[::1] nk,
                cnp.int32_t[:, ::1] wlist, cnp.int32_t[:, ::1] wcnt, cnp.int32_t[::1] wlen,
                cnp.int32_t[:, ::1] wpos, double[::1] doc_ll,
                const double[::1] alpha, double eta, cnp.uint64_t seed, cnp.int64_t sweep,
                int n_threads, const cnp.int64_t[::1] dk_ptr=None,
                cnp.int32_t[::1] dk_top=None, cnp.int32_t[::1] dk_cnt=None):
    """One collapsed Gibbs sweep over every token.

    With dk_ptr (D+1; document d owns slots dk_ptr[d] .. dk_ptr[d+1], at least
    min(K, n_d) of them), the document-topic counts after the sweep are written
    sparsely: dk_top (topics) and dk_cnt (counts; 0 in unused slots), each of length
    dk_ptr[D] (dk_ptr[0] = 0), and given with dk_ptr or not at all.  They are what
    learning alpha needs, without a documents x topics array.

    IN    doc_ptr (D+1, token offsets), words (N tokens), alpha (K), eta
    INOUT z (N topics); nk (K topic totals), and each word's nonzero topics: wlist
          (V x K topics, first wlen[w] valid), wcnt (their counts), wlen (V), wpos (V x K:
          a topic's place in the list, -1 absent)
    OUT   doc_ll (D): each document's log p(z_d | alpha) (Dirichlet-multinomial)
    """
    cdef str fn = "gibbs_sweep"
    # one source for each size: D from doc_ptr, N from words, V and K from wlist
    cdef Py_ssize_t D = doc_ptr.shape[0] - 1, K = wlist.shape[1], V = wlist.shape[0]
    cdef Py_ssize_t N = words.shape[0]
    check_pointer(fn, "doc_ptr", doc_ptr, N, "words")
    if K < 1:
        raise ValueError(f"{fn}: wlist has shape ({V}, {K}); it needs K >= 1 topics (columns)")
    check_len(fn, "z", z.shape[0], N, "N tokens = the length of words")
    check_len(fn, "nk", nk.shape[0], K, "K topics from wlist")
    check_shape(fn, "wcnt", wcnt.shape[0], wcnt.shape[1], V, K, "V x K from wlist")
    check_len(fn, "wlen", wlen.shape[0], V, "V words from wlist")
    check_shape(fn, "wpos", wpos.shape[0], wpos.shape[1], V, K, "V x K from wlist")
    check_len(fn, "doc_ll", doc_ll.shape[0], D, "D documents from doc_ptr")
    check_len(fn, "alpha", alpha.shape[0], K, "K topics from wlist")
    cdef Py_ssize_t n_blocks = (D + BLOCK_DOCS - 1) // BLOCK_DOCS
    cdef int T = clamp_threads(fn, n_threads, n_threads)
    cdef Py_ssize_t b, d, d0, d1, i, i2, k, k2, w, w2, ko, kn, m, t0, t1, max_tok = 0
    cdef double alpha_sum = 0.0, s_sum, Veta = V * eta
    cdef uint64_t skey = sweep_key(<uint64_t>seed, <uint64_t>sweep)     # _common.pxd
    cdef bint want_dk = dk_ptr is not None
    for d in range(D):          # O(D): token ranges must not overlap or run past words
        if doc_ptr[d + 1] < doc_ptr[d]:
            raise ValueError(f"{fn}: doc_ptr decreases at document {d}")
    if want_dk:
        if dk_top is None or dk_cnt is None:
            raise ValueError(f"{fn}: dk_ptr needs dk_top and dk_cnt")
        check_len(fn, "dk_ptr", dk_ptr.shape[0], D + 1, "D + 1, D documents from doc_ptr")
        for d in range(D):
            if dk_ptr[d + 1] - dk_ptr[d] < max(0, min(K, doc_ptr[d + 1] - doc_ptr[d])):
                raise ValueError(f"{fn}: dk_ptr gives a document fewer than min(K, n_d) slots")
        if dk_ptr[0] != 0:
            raise ValueError(f"{fn}: dk_ptr must start at 0, got {dk_ptr[0]}")
        check_len(fn, "dk_top", dk_top.shape[0], dk_ptr[D], "dk_ptr[D]")
        check_len(fn, "dk_cnt", dk_cnt.shape[0], dk_ptr[D], "dk_ptr[D]")
    elif dk_top is not None or dk_cnt is not None:
        raise ValueError(f"{fn}: dk_top and dk_cnt need dk_ptr")
    for k in range(K):
        alpha_sum += alpha[k]
    for b in range(n_blocks):
        d0 = b * BLOCK_DOCS
        d1 = min(D, d0 + BLOCK_DOCS)
        if doc_ptr[d1] - doc_ptr[d0] > max_tok:
            max_tok = doc_ptr[d1] - doc_ptr[d0]
    cdef cnp.int32_t[::1] zold = np.empty(max(max_tok, 1), dtype=np.int32)
    cdef cnp.int32_t[:, ::1] mv = np.empty((T, max(max_tok, 1)), dtype=np.int32)   # moved tokens
    cdef Py_ssize_t nmv
    cdef cnp.int32_t[::1] owner = (np.arange((V >> 6) + 1) % T).astype(np.int32)
    cdef double[::1] denom = np.empty(K)
    cdef double[::1] inv = np.empty(K)
    cdef double[::1] s = np.empty(K)
    cdef double[::1] cbase = np.empty(K)
    # one row per thread, padded to whole cache lines (no false sharing)
    cdef cnp.int64_t[:, ::1] dnk = np.zeros((T, (K + 15) // 8 * 8), dtype=np.int64)
    cdef Py_ssize_t t
    cdef int32_t *ndk
    cdef int32_t *dlist
    cdef int32_t *dpos
    cdef double *qv
    cdef double *coef
    with nogil:
        for b in range(n_blocks):
            d0 = b * BLOCK_DOCS
            d1 = min(D, d0 + BLOCK_DOCS)
            t0 = doc_ptr[d0]
            t1 = doc_ptr[d1]
            s_sum = 0.0
            for k in range(K):
                denom[k] = Veta + nk[k]
                inv[k] = 1.0 / denom[k]
                s[k] = alpha[k] * eta * inv[k]
                cbase[k] = alpha[k] * inv[k]
                s_sum += s[k]
            for i in range(t0, t1):
                zold[i - t0] = z[i]
            with parallel(num_threads=T):
                ndk = <int32_t *>calloc(K, sizeof(int32_t))
                dlist = <int32_t *>malloc(K * sizeof(int32_t))
                dpos = <int32_t *>malloc(K * sizeof(int32_t))
                qv = <double *>malloc(K * sizeof(double))
                coef = <double *>malloc(K * sizeof(double))
                for d in prange(d0, d1, schedule='dynamic', chunksize=4):
                    doc_ll[d] = _sample_doc(&words[doc_ptr[d]], &z[doc_ptr[d]],
                                            doc_ptr[d + 1] - doc_ptr[d], K, &wcnt[0, 0],
                                            &wlist[0, 0], &wlen[0], &alpha[0], eta, alpha_sum,
                                            &denom[0], &inv[0], &s[0], s_sum, &cbase[0],
                                            stream_key(skey, <uint64_t>d),
                                            &wpos[0, 0], ndk, dlist, dpos, qv, coef,
                                            &dk_top[dk_ptr[d]] if want_dk else NULL,
                                            &dk_cnt[dk_ptr[d]] if want_dk else NULL,
                                            dk_ptr[d + 1] - dk_ptr[d] if want_dk else 0)
                free(ndk)
                free(dlist)
                free(dpos)
                free(qv)
                free(coef)
            # apply the block's moves to the counts in token order; thread t owns the
            # words in blocks of 64 (w >> 6) % T == t, so each word's row sees the same
            # sequence of updates whatever T is (integer totals are summed after).
            # A branch-free pass first lists the thread's moved tokens.
            with parallel(num_threads=T):
                for t in prange(T, schedule='static', chunksize=1):
                    for k in range(K):
                        dnk[t, k] = 0
                    nmv = 0
                    for i in range(t0, t1):
                        mv[t, nmv] = <int32_t>i
                        nmv = nmv + ((zold[i - t0] != z[i]) & (owner[words[i] >> 6] == t))
                    for m in range(nmv):
                        i = mv[t, m]
                        if m + 8 < nmv:          # rows of a word a few moves ahead
                            i2 = mv[t, m + 8]
                            w2 = words[i2]
                            __builtin_prefetch(&wpos[w2, zold[i2 - t0]])
                            __builtin_prefetch(&wpos[w2, z[i2]])
                            for k2 in range(0, K, 16):
                                __builtin_prefetch(&wcnt[w2, k2])
                                __builtin_prefetch(&wlist[w2, k2])
                        ko = zold[i - t0]
                        kn = z[i]
                        w = words[i]
                        dnk[t, ko] -= 1
                        dnk[t, kn] += 1
                        _move(&wlist[w, 0], &wcnt[w, 0], &wpos[w, 0], &wlen[w], ko, kn)
            for t in range(T):
                for k in range(K):
                    nk[k] += dnk[t, k]


def count_histogram(const cnp.int32_t[::1] groups, const cnp.int32_t[::1] values,
                    cnp.int64_t[:, ::1] hist):
    """hist[g, c] += the number of j with groups[j] = g and values[j] = c, for
    0 < c <= C (C = hist.shape[1] - 1); values <= 0 are skipped.  Returns the number of
    values above C (left to the caller).  Groups must lie in [0, hist.shape[0])."""
    cdef Py_ssize_t n = values.shape[0], C = hist.shape[1] - 1, G = hist.shape[0], j
    cdef Py_ssize_t big = 0, bad = 0
    cdef int32_t c, g
    check_len("count_histogram", "groups", groups.shape[0], n, "the length of values")
    with nogil:
        for j in range(n):
            c = values[j]
            if c > 0:
                g = groups[j]
                if g < 0 or g >= G:
                    bad += 1
                elif c <= C:
                    hist[g, c] += 1
                else:
                    big += 1
    if bad:
        raise ValueError(f"{bad} groups outside [0, {G})")
    return big


cdef int _cmp_i32(const void *a, const void *b) noexcept nogil:
    cdef int32_t x = (<const int32_t *>a)[0], y = (<const int32_t *>b)[0]
    return (x > y) - (x < y)


def local_vocabulary(const cnp.int32_t[::1] indices, cnp.int32_t[::1] scratch,
                     cnp.int32_t[::1] words, cnp.int32_t[::1] local):
    """A mini-batch's distinct words, sorted, and its indices renumbered into them
    (np.unique(indices, return_inverse=True) in O(nnz + u log u)).

    IN    indices (nnz, each < V)
    INOUT scratch (V): -1 on entry, and again on exit
    OUT   words (>= u): the u distinct words, ascending; local (nnz): their places
    Returns u."""
    cdef Py_ssize_t nnz = indices.shape[0], V = scratch.shape[0], j, u = 0
    cdef int32_t w
    check_len("local_vocabulary", "local", local.shape[0], nnz, "nnz = the length of indices")
    if words.shape[0] < min(nnz, V):
        raise ValueError(f"local_vocabulary: words has length {words.shape[0]}, expected at "
                         f"least {min(nnz, V)} (min(nnz, V), V = the length of scratch)")
    with nogil:
        for j in range(nnz):
            w = indices[j]
            if scratch[w] < 0:
                scratch[w] = 0
                words[u] = w
                u += 1
        if V <= 16 * nnz:       # a scan of the vocabulary is cheaper than a sort
            u = 0
            for j in range(V):
                if scratch[j] == 0:
                    words[u] = <int32_t>j
                    u += 1
        else:
            qsort(&words[0], u, sizeof(int32_t), _cmp_i32)
        for j in range(u):
            scratch[words[j]] = <int32_t>j
        for j in range(nnz):
            local[j] = scratch[indices[j]]
        for j in range(u):
            scratch[words[j]] = -1
    return u


def lazy_effective(const double[:, ::1] S, double a, double b, const cnp.int32_t[::1] words,
                   const double[::1] total, floating[:, ::1] out, bint posterior,
                   int n_threads):
    """effective_topics at lambda = a S[words] + b, without forming lambda.

    IN  S (V x K), words (n), total (K): each topic's sum of lambda over all V words
    OUT out (n x K)"""
    cdef Py_ssize_t n = words.shape[0], K = S.shape[1], i, k
    check_len("lazy_effective", "total", total.shape[0], K, "K topics from S")
    check_shape("lazy_effective", "out", out.shape[0], out.shape[1], n, K,
                "n = the length of words, K topics from S")
    cdef int T = clamp_threads("lazy_effective", n_threads, n)
    cdef double[::1] ps = np.empty(K)
    for k in range(K):
        ps[k] = fv_digamma(total[k]) if posterior else 1.0 / total[k]
    with nogil:
        for i in prange(n, num_threads=T, schedule='static'):
            if floating is float:
                fv_lda_effective_row_f(&S[words[i], 0], a, b, &ps[0], &out[i, 0], K, posterior)
            else:
                fv_lda_effective_row_d(&S[words[i], 0], a, b, &ps[0], &out[i, 0], K, posterior)


def lazy_add(double[:, ::1] S, double[::1] colsum, const cnp.int32_t[::1] words,
             const double[:, ::1] stats, const floating[:, ::1] eb, double coef, bint soft,
             int n_threads):
    """S[words] += coef * stats (* eb, soft) and colsum += the column sums of what was
    added.  The rows are updated in parallel; the column sums are a second, serial
    pass in word order, so that they do not depend on n_threads.

    IN    words (n, distinct), stats (n x K), eb (n x K)
    INOUT S (V x K), colsum (K)"""
    cdef Py_ssize_t n = words.shape[0], K = S.shape[1], i, k
    cdef double v
    cdef double *row
    check_len("lazy_add", "colsum", colsum.shape[0], K, "K topics from S")
    check_shape("lazy_add", "stats", stats.shape[0], stats.shape[1], n, K,
                "n = the length of words, K topics from S")
    if soft:
        check_shape("lazy_add", "eb", eb.shape[0], eb.shape[1], n, K,
                    "n = the length of words, K topics from S")
    cdef int T = clamp_threads("lazy_add", n_threads, n)
    with nogil:
        for i in prange(n, num_threads=T, schedule='static'):
            row = &S[words[i], 0]
            for k in range(K):
                v = coef * stats[i, k]
                if soft:
                    v = v * eb[i, k]
                row[k] += v
        for i in range(n):
            for k in range(K):
                v = coef * stats[i, k]
                if soft:
                    v = v * eb[i, k]
                colsum[k] += v


def gibbs_word_terms(const cnp.int32_t[:, ::1] wlist, const cnp.int32_t[:, ::1] wcnt,
                     const cnp.int32_t[::1] wlen, double[:, ::1] acc, bint add, double eta,
                     int n_threads):
    """After a Gibbs sweep, over each word's nonzero topics: sum lgamma(n_wk + eta) and
    the number of nonzero counts (the word part of the collapsed log joint), and, if
    add, acc[w, k] += n_wk (the running sum of the counts after burn-in).  Per-word
    sums are added in word order, whatever n_threads.

    IN    wlist, wcnt (V x K), wlen (V), eta
    INOUT acc (V x K) when add
    Returns (sum lgamma(n_wk + eta), number of nonzero n_wk)."""
    cdef Py_ssize_t V = wlist.shape[0], K = wlist.shape[1], w, j, c, n_table = 4096
    check_shape("gibbs_word_terms", "wcnt", wcnt.shape[0], wcnt.shape[1], V, K,
                "V x K from wlist")
    check_len("gibbs_word_terms", "wlen", wlen.shape[0], V, "V words from wlist")
    if add:
        check_shape("gibbs_word_terms", "acc", acc.shape[0], acc.shape[1], V, K,
                    "V x K from wlist, with add")
    cdef int T = clamp_threads("gibbs_word_terms", n_threads, V)
    cdef double[::1] table = np.empty(n_table)
    cdef double[::1] per_word = np.empty(V)
    cdef double s, total = 0.0
    cdef int64_t nnz = 0
    for c in range(n_table):
        table[c] = lgamma(c + eta)
    with nogil:
        for w in prange(V, num_threads=T, schedule='static'):
            s = 0.0
            for j in range(wlen[w]):
                c = wcnt[w, j]
                s = s + (table[c] if c < n_table else lgamma(c + eta))
                if add:
                    acc[w, wlist[w, j]] += c
            per_word[w] = s
        for w in range(V):
            total += per_word[w]
            nnz += wlen[w]
    return total, nnz
