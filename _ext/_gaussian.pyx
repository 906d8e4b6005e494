# Gaussian kernels: one fused pass per chunk of rows computes the K
# log-densities, forms q(z) (softmax / argmax / sample) and accumulates the
# weighted sufficient statistics; a separate E-step-only entry serves predict,
# predict_proba and score_samples.
#
# Conventions (DESIGN.md): inputs, outputs (overwritten), accumulators (added
# to), scalars, n_threads.  Data are float32 or float64 (fused); statistics are
# float64.  The passes run on the shared row driver (_driver.pxd): rows are cut
# into partitions of PART_ROWS rows; each partition is reduced sequentially,
# chunk by chunk, by one thread into its own float64 slot (the callback
# `_partition` below: features, log-densities, local step, statistics), and the
# slots are added into the result in partition order, so the result is bitwise
# identical for any n_threads.  Memory: O(threads * chunk * K + statistics); no
# N x K array exists.
#
# Per chunk, every row x becomes features Z = [x - ref | sq] about a reference
# point ref near the data (the mean of the means):
#   full       sq = packed upper triangle of (x-ref)(x-ref)^T, D(D+1)/2 entries
#   diag       sq = (x-ref)^2, D entries
#   spherical  sq = |x-ref|^2, 1 entry
#   tied       sq empty
# The soft statistics of a chunk are one GEMM G = R^T Z (K x zw), so the
# statistics are centred at ref, which keeps the one-pass moments accurate.
# The log-densities are kept transposed, (K x chunk): the softmax, argmax and
# draw then run down columns of contiguous rows (vertical, vectorised), never
# across a short row of K.
#
# Effective parameters (prepared by fastvem.families.gaussian.KernelParams):
#   fac   full: (D, D*K)  column d*K+k = column d of U_k (precision_k = U_k U_k^T)
#         tied: (D, D)    U
#         diag: (zw, K)   [(P * (mu - ref))^T ; -0.5 P^T]
#         spherical: (zw, K) [(p_k (mu_k - ref))^T ; -0.5 p]
#   bvec  full: (D, K)    ((mu_k - ref) U_k)^T;  tied: (D, K) ((mu_k - ref) U)^T;
#         diag / spherical: unused (length 1)
#   ref   (D,)            the reference point
#   cst   (K,)            additive constants, so that
#                         log p(x, z=k) = cst_k - 0.5 (x - mu_k)^T P_k (x - mu_k)
#
# Statistics vector (float64), centred at ref:
#   [ N_k (K) | S1_k = sum r (x - ref) (K*D) | S2 | objective (1) | entropy (1) ]
#   entropy: sum_n w_n H[q(z_n)] (soft mode; 0 otherwise).
#   S2: full (K, D, D) lower triangle of sum r (x-ref)(x-ref)^T (row-major),
#       diag (K, D) sum r (x-ref)^2, spherical (K,) sum r |x-ref|^2, tied: none.

cimport cython
from cython cimport floating
from libc.stdint cimport uint64_t
from libc.string cimport memset

from scipy.linalg.cython_blas cimport dgemm, sgemm

from _common cimport fexp, flog, uniform01, local_step_t, MODE_SOFT, MODE_HARD, MODE_SAMPLE
from _common cimport clamp_threads, check_len, check_shape
from _driver cimport run_partitions, run_chunks, round_slots

import numpy as np

cdef enum:
    PART = 4096        # rows per partition (fixed: results must not depend on threads)
    ROUND = 8          # partitions per thread in a round of dynamic scheduling

cdef enum:
    COV_FULL = 0
    COV_TIED = 1
    COV_DIAG = 2
    COV_SPHERICAL = 3

PART_ROWS = PART
COVARIANCE_TYPES = {"full": COV_FULL, "tied": COV_TIED, "diag": COV_DIAG,
                    "spherical": COV_SPHERICAL}


cdef inline Py_ssize_t _sqwidth(int cov, Py_ssize_t D) noexcept nogil:
    if cov == COV_FULL:
        return D * (D + 1) // 2
    if cov == COV_DIAG:
        return D
    if cov == COV_SPHERICAL:
        return 1
    return 0


def s2_size(int cov, Py_ssize_t K, Py_ssize_t D):
    if cov == COV_FULL:
        return K * D * D
    return K * _sqwidth(cov, D)


def stats_size(int cov, Py_ssize_t K, Py_ssize_t D):
    return K + K * D + s2_size(cov, K, D) + 2


def chunk_rows(int cov, Py_ssize_t K, Py_ssize_t D):
    """Rows per chunk: the chunk's buffers stay within ~256 KB."""
    cdef Py_ssize_t zw = D + _sqwidth(cov, D)
    cdef Py_ssize_t width = K + zw + (K * D if cov == COV_FULL else (D if cov == COV_TIED else 0))
    cdef Py_ssize_t b = 32768 // max(width, 1)
    return int(max(16, min(256, b)))


def workspace_size(int cov, Py_ssize_t K, Py_ssize_t D, Py_ssize_t B):
    """Per-thread scratch in the data dtype: lpT (K x B), Z (B x zw), Y^T
    (full K*D x B, tied D x B), G (K x zw), four row vectors, chunk stats."""
    cdef Py_ssize_t zw = D + _sqwidth(cov, D)
    cdef Py_ssize_t ny = K * D * B if cov == COV_FULL else (D * B if cov == COV_TIED else 0)
    return K * B + B * zw + ny + K * zw + 4 * B + stats_size(cov, K, D)


cdef inline void _gemm(char ta, char tb, int m, int n, int k,
                       const floating* A, int lda, const floating* Bm, int ldb,
                       floating* C, int ldc) noexcept nogil:
    """Row-major C (m x n) = op(A) (m x k) @ op(Bm) (k x n); ta/tb 'N' or 'T'."""
    cdef floating one = 1.0, zero = 0.0
    # a row-major matrix is its column-major transpose: C^T = op(B)^T op(A)^T
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &one, <float*>Bm, &ldb, <float*>A, &lda, &zero, C, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &one, <double*>Bm, &ldb, <double*>A, &lda, &zero, C, &ldc)


# --------------------------------------------------------------------------
# chunk-level pieces
# --------------------------------------------------------------------------

cdef void _features(int cov, const floating* X, Py_ssize_t nb, Py_ssize_t D,
                    const floating* ref, floating* Z, bint squares) noexcept nogil:
    """Z (nb x zw) = [x - ref | sq].  The full covariance's products feed only
    the statistics and are skipped when `squares` is false; diag and spherical
    need their squares for the log-densities too."""
    cdef Py_ssize_t zw = D + _sqwidth(cov, D), n, d, e, j
    cdef floating t, acc, xd
    cdef const floating* x
    cdef floating* z
    for n in range(nb):
        x = X + n * D
        z = Z + n * zw
        for d in range(D):
            z[d] = x[d] - ref[d]
        if cov == COV_DIAG:
            for d in range(D):
                z[D + d] = z[d] * z[d]
        elif cov == COV_SPHERICAL:
            acc = 0
            for d in range(D):
                acc = acc + z[d] * z[d]
            z[D] = acc
        elif cov == COV_FULL and squares:
            j = D
            for d in range(D):
                xd = z[d]
                for e in range(d, D):
                    z[j + e - d] = xd * z[e]
                j = j + D - d


cdef void _logdens_t(int cov, Py_ssize_t nb, Py_ssize_t B, Py_ssize_t D, Py_ssize_t K,
                     const floating* Z, const floating* fac, const floating* bvec,
                     const floating* cst, floating* lpT, floating* YT) noexcept nogil:
    """lpT (K x nb, row stride B): log p(x_n, z=k) from the features Z."""
    cdef Py_ssize_t zw = D + _sqwidth(cov, D), n, k, d, KD = K * D
    cdef floating t, bb, c
    cdef floating* lk
    cdef const floating* yk
    cdef int izw = <int>zw, iB = <int>B, iK = <int>K, iKD = <int>KD, iD = <int>D
    if cov == COV_DIAG or cov == COV_SPHERICAL:
        # lpT = fac^T (K x zw) @ Z^T (zw x nb)
        _gemm(c'T', c'T', iK, <int>nb, izw, fac, iK, Z, izw, lpT, iB)
        for k in range(K):
            lk = lpT + k * B
            c = cst[k]
            for n in range(nb):
                lk[n] = lk[n] + c
        return
    if cov == COV_FULL:
        # Y^T (KD x nb) = fac^T (KD x D) @ (x-ref)^T (D x nb)
        _gemm(c'T', c'T', iKD, <int>nb, iD, fac, iKD, Z, izw, YT, iB)
    else:
        _gemm(c'T', c'T', iD, <int>nb, iD, fac, iD, Z, izw, YT, iB)
    for k in range(K):
        lk = lpT + k * B
        for n in range(nb):
            lk[n] = 0
        for d in range(D):
            bb = bvec[d * K + k]
            yk = YT + ((d * K + k) if cov == COV_FULL else d) * B
            for n in range(nb):
                t = yk[n] - bb
                lk[n] = lk[n] + t * t
        c = cst[k]
        for n in range(nb):
            lk[n] = c - <floating>0.5 * lk[n]


cdef void _accumulate_t(int cov, int mode, Py_ssize_t nb, Py_ssize_t B, Py_ssize_t D,
                        Py_ssize_t K, const floating* Z, const floating* RT,
                        const Py_ssize_t* labels, const double* w, floating* G,
                        floating* nk, floating* s1, floating* s2) noexcept nogil:
    """Add the chunk's statistics about ref: G = R^T Z by one GEMM (soft) or
    each row added to its label's component (hard / sample); then G into
    N_k, S1 and S2 (full: packed products into the lower triangle)."""
    cdef Py_ssize_t zw = D + _sqwidth(cov, D), sq = _sqwidth(cov, D), n, k, d, e, j, p
    cdef floating r, acc
    cdef const floating* z
    cdef const floating* rk
    cdef floating* g
    cdef floating* s2k
    if mode == MODE_SOFT:
        # G (K x zw) = R^T (K x nb, stride B) @ Z (nb x zw)
        _gemm(c'N', c'N', <int>K, <int>zw, <int>nb, RT, <int>B, Z, <int>zw, G, <int>zw)
        for k in range(K):
            rk = RT + k * B
            acc = 0
            for n in range(nb):
                acc = acc + rk[n]
            nk[k] = nk[k] + acc
    else:
        memset(G, 0, K * zw * sizeof(floating))
        for n in range(nb):
            j = labels[n]
            r = <floating>(w[n] if w != NULL else 1.0)
            if r == 0:
                continue
            z = Z + n * zw
            g = G + j * zw
            nk[j] = nk[j] + r
            for d in range(zw):
                g[d] = g[d] + r * z[d]
    for k in range(K):
        g = G + k * zw
        for d in range(D):
            s1[k * D + d] = s1[k * D + d] + g[d]
        if cov == COV_FULL:
            s2k = s2 + k * D * D
            p = D
            for d in range(D):
                for e in range(d, D):
                    s2k[e * D + d] = s2k[e * D + d] + g[p]
                    p = p + 1
        else:
            for d in range(sq):
                s2[k * sq + d] = s2[k * sq + d] + g[D + d]


cdef struct Scratch:
    void* lpT
    void* Z
    void* YT
    void* G
    void* mx
    void* sm
    void* aux
    void* ea
    void* cs


cdef inline Scratch _scratch(int cov, floating* ws, Py_ssize_t B, Py_ssize_t D,
                             Py_ssize_t K) noexcept nogil:
    cdef Scratch s
    cdef Py_ssize_t zw = D + _sqwidth(cov, D)
    cdef Py_ssize_t ny = K * D * B if cov == COV_FULL else (D * B if cov == COV_TIED else 0)
    s.lpT = ws
    s.Z = ws + K * B
    s.YT = ws + K * B + B * zw
    s.G = ws + K * B + B * zw + ny
    s.mx = ws + K * B + B * zw + ny + K * zw
    s.sm = ws + K * B + B * zw + ny + K * zw + B
    s.aux = ws + K * B + B * zw + ny + K * zw + 2 * B
    s.ea = ws + K * B + B * zw + ny + K * zw + 3 * B
    s.cs = ws + K * B + B * zw + ny + K * zw + 4 * B
    return s


cdef void _partition(int cov, const floating* X, const double* w,
                     Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t B, Py_ssize_t D, Py_ssize_t K,
                     const floating* fac, const floating* bvec, const floating* ref,
                     const floating* cst, const floating* R, int mode, uint64_t seed,
                     floating* ws, Py_ssize_t* labels, double* acc,
                     Py_ssize_t S) noexcept nogil:
    """One partition, chunk by chunk, into acc (float64).  R == NULL: the
    E-step forms q(z) by `mode`; otherwise R (N x K, weighted) is given."""
    cdef Py_ssize_t c0, nb, j, n, k, zw = D + _sqwidth(cov, D)
    cdef Scratch s = _scratch(cov, ws, B, D, K)
    cdef floating* lpT = <floating*>s.lpT
    cdef floating* Z = <floating*>s.Z
    cdef floating* cs = <floating*>s.cs
    cdef Py_ssize_t s2off = K + K * D
    cdef double obj = 0, ent = 0
    cdef const double* wc
    cdef int m
    if floating is double:
        cs = acc           # float64 data: accumulate straight into the partition sums
    else:
        memset(cs, 0, S * sizeof(float))
    memset(acc, 0, S * sizeof(double))
    c0 = r0
    while c0 < r1:
        nb = min(B, r1 - c0)
        wc = (w + c0) if w != NULL else NULL
        _features(cov, X + c0 * D, nb, D, ref, Z, True)
        if R == NULL:
            _logdens_t(cov, nb, B, D, K, Z, fac, bvec, cst, lpT, <floating*>s.YT)
            obj = obj + local_step_t(mode, lpT, nb, B, K, wc, seed, <uint64_t>c0, labels,
                                      <floating*>s.mx, <floating*>s.sm, <floating*>s.aux,
                                      <floating*>s.ea, &ent)
            m = MODE_SOFT if mode == MODE_SOFT else MODE_HARD
        else:
            for k in range(K):          # given responsibilities, transposed
                for n in range(nb):
                    lpT[k * B + n] = R[(c0 + n) * K + k]
            m = MODE_SOFT
        _accumulate_t(cov, m, nb, B, D, K, Z, lpT, labels, wc, <floating*>s.G,
                      cs, cs + K, cs + s2off)
        if floating is float:
            for j in range(S - 2):
                acc[j] = acc[j] + cs[j]
            memset(cs, 0, S * sizeof(float))
        c0 = c0 + nb
    acc[S - 2] = obj
    acc[S - 1] = ent


# the driver's context and callbacks (one per dtype: a callback is not fused)
cdef struct GaussPass:
    int cov
    const void *X
    const double *w
    Py_ssize_t B, D, K, S
    const void *fac
    const void *bvec
    const void *ref
    const void *cst
    const void *R
    int mode
    uint64_t seed
    void *ws
    Py_ssize_t ws_stride
    Py_ssize_t *labels
    Py_ssize_t labels_stride
    double *stats


cdef void _part_f64(void *vc, Py_ssize_t p, Py_ssize_t r0, Py_ssize_t r1, int tid,
                    double *slot) noexcept nogil:
    cdef GaussPass *c = <GaussPass *>vc
    _partition(c.cov, <const double *>c.X, c.w, r0, r1, c.B, c.D, c.K,
               <const double *>c.fac, <const double *>c.bvec, <const double *>c.ref,
               <const double *>c.cst, <const double *>c.R, c.mode, c.seed,
               <double *>c.ws + tid * c.ws_stride, c.labels + tid * c.labels_stride, slot, c.S)


cdef void _part_f32(void *vc, Py_ssize_t p, Py_ssize_t r0, Py_ssize_t r1, int tid,
                    double *slot) noexcept nogil:
    cdef GaussPass *c = <GaussPass *>vc
    _partition(c.cov, <const float *>c.X, c.w, r0, r1, c.B, c.D, c.K,
               <const float *>c.fac, <const float *>c.bvec, <const float *>c.ref,
               <const float *>c.cst, <const float *>c.R, c.mode, c.seed,
               <float *>c.ws + tid * c.ws_stride, c.labels + tid * c.labels_stride, slot, c.S)


cdef void _fold(void *vc, const double *slot) noexcept nogil:
    cdef GaussPass *c = <GaussPass *>vc
    cdef Py_ssize_t j
    for j in range(c.S):
        c.stats[j] = c.stats[j] + slot[j]


cdef void _reduce_passes(int cov, const floating* X, const double* w, Py_ssize_t N,
                         Py_ssize_t D, Py_ssize_t K, const floating* fac,
                         const floating* bvec, const floating* ref, const floating* cst,
                         const floating* R, int mode, uint64_t seed, floating[:, ::1] ws,
                         Py_ssize_t[:, ::1] labels, double[:, ::1] acc, double* stats,
                         Py_ssize_t S, Py_ssize_t B, int T) noexcept nogil:
    """Every partition through the shared driver (_driver.pxd: run_partitions),
    in rounds of acc.shape[0] slots, added into stats in partition order."""
    cdef GaussPass c
    c.cov = cov
    c.X = X
    c.w = w
    c.B = B
    c.D = D
    c.K = K
    c.S = S
    c.fac = fac
    c.bvec = bvec
    c.ref = ref
    c.cst = cst
    c.R = R
    c.mode = mode
    c.seed = seed
    c.ws = &ws[0, 0]
    c.ws_stride = ws.shape[1]
    c.labels = &labels[0, 0]
    c.labels_stride = labels.shape[1]
    c.stats = stats
    run_partitions(&c, _part_f64 if floating is double else _part_f32, _fold, N, PART,
                   &acc[0, 0], acc.shape[0], S, T)


cdef Py_ssize_t _slots(Py_ssize_t N, int T):
    return round_slots(N, PART, T, ROUND)


def _threads(Py_ssize_t N, int n_threads):
    """Threads of a pass over N rows: n_threads (>= 1) clamped to the CPUs available
    and to the number of partitions (which alone fix the result)."""
    return clamp_threads("_threads", n_threads, (N + PART_ROWS - 1) // PART_ROWS)


# --------------------------------------------------------------------------
# contracts: every buffer has exactly the size the loops assume (O(1) checks,
# with the GIL, before any allocation or nogil loop).  K comes from cst (from R
# in accumulate), N and D from X.
# --------------------------------------------------------------------------

cdef int _cov_code(str fn, str covariance_type) except -1:
    try:
        return COVARIANCE_TYPES[covariance_type]
    except (KeyError, TypeError):
        raise ValueError(f"{fn}: covariance_type must be one of "
                         f"{tuple(COVARIANCE_TYPES)}, got {covariance_type!r}") from None


cdef int _check_dims(str fn, str kname, Py_ssize_t K, Py_ssize_t D) except -1:
    if K < 1:
        raise ValueError(f"{fn}: {kname} gives K = {K} components: K must be >= 1")
    if D < 1:
        raise ValueError(f"{fn}: X has no columns: D (X.shape[1]) must be >= 1")
    return 0


cdef int _check_params(str fn, int cov, Py_ssize_t K, Py_ssize_t D, Py_ssize_t n_fac,
                       Py_ssize_t n_bvec, Py_ssize_t n_ref) except -1:
    """fac, bvec, ref against the layout of the covariance type (see the header);
    the messages are formed only on failure."""
    cdef Py_ssize_t zw = D + _sqwidth(cov, D)
    if cov == COV_FULL:
        check_len(fn, "fac", n_fac, D * D * K, "full: (D, D*K), D from X, K from cst")
        check_len(fn, "bvec", n_bvec, D * K, "full: (D, K), D from X, K from cst")
    elif cov == COV_TIED:
        check_len(fn, "fac", n_fac, D * D, "tied: (D, D), D from X")
        check_len(fn, "bvec", n_bvec, D * K, "tied: (D, K), D from X, K from cst")
    elif cov == COV_DIAG:
        check_len(fn, "fac", n_fac, zw * K, "diag: (2*D, K), D from X, K from cst")
        check_len(fn, "bvec", n_bvec, 1, "diag: unused, one entry")
    else:
        check_len(fn, "fac", n_fac, zw * K, "spherical: (D+1, K), D from X, K from cst")
        check_len(fn, "bvec", n_bvec, 1, "spherical: unused, one entry")
    check_len(fn, "ref", n_ref, D, "D from X")
    return 0


def fit_pass(const floating[:, ::1] X, const double[::1] sample_weight,
             const floating[::1] fac, const floating[::1] bvec, const floating[::1] ref,
             const floating[::1] cst, double[::1] stats,
             str covariance_type, int mode, unsigned long long seed, int n_threads):
    """One E-step + statistics pass over X (IN), adding into stats (INOUT).

    sample_weight: length N, or length 0 for unit weights.  mode: 0 soft,
    1 hard (argmax), 2 sample (draws keyed by (seed, row)).  The last entry of
    stats receives sum_n w_n * objective_n, the last sum_n w_n H[q(z_n)] (soft)."""
    cdef int cov = _cov_code("fit_pass", covariance_type)
    cdef Py_ssize_t N = X.shape[0], D = X.shape[1], K = cst.shape[0]
    _check_dims("fit_pass", "cst", K, D)
    _check_params("fit_pass", cov, K, D, fac.shape[0], bvec.shape[0], ref.shape[0])
    if sample_weight.shape[0] != 0:
        check_len("fit_pass", "sample_weight", sample_weight.shape[0], N,
                  "N rows of X, or 0 for unit weights")
    if mode != MODE_SOFT and mode != MODE_HARD and mode != MODE_SAMPLE:
        raise ValueError(f"fit_pass: mode must be 0 (soft), 1 (hard) or 2 (sample), got {mode}")
    cdef Py_ssize_t B = chunk_rows(cov, K, D)
    cdef Py_ssize_t S = stats_size(cov, K, D)
    check_len("fit_pass", "stats", stats.shape[0], S, "stats_size(cov, K from cst, D from X)")
    cdef int T = clamp_threads("fit_pass", n_threads, (N + PART - 1) // PART)
    if N == 0:
        return
    dtype = np.float32 if floating is float else np.float64
    cdef floating[:, ::1] ws = np.empty((T, workspace_size(cov, K, D, B)), dtype=dtype)
    cdef double[:, ::1] acc = np.empty((_slots(N, T), S), dtype=np.float64)
    cdef Py_ssize_t[:, ::1] labels = np.zeros((T, B), dtype=np.intp)
    cdef const double* wptr = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    with nogil:
        _reduce_passes(cov, &X[0, 0], wptr, N, D, K, &fac[0], &bvec[0], &ref[0], &cst[0],
                       NULL, mode, <uint64_t>seed, ws, labels, acc, &stats[0], S, B, T)


def accumulate(const floating[:, ::1] X, const floating[:, ::1] R, const floating[::1] ref,
               double[::1] stats, str covariance_type, int n_threads):
    """Statistics of given, already weighted, responsibilities R (IN, N x K)
    about ref (IN, D), added into stats (INOUT); deterministic like fit_pass.
    The objective and entropy entries are left untouched."""
    cdef int cov = _cov_code("accumulate", covariance_type)
    cdef Py_ssize_t N = X.shape[0], D = X.shape[1], K = R.shape[1]
    _check_dims("accumulate", "R", K, D)
    check_shape("accumulate", "R", R.shape[0], R.shape[1], N, K, "N rows of X, K = R.shape[1]")
    check_len("accumulate", "ref", ref.shape[0], D, "D from X")
    cdef Py_ssize_t B = chunk_rows(cov, K, D)
    cdef Py_ssize_t S = stats_size(cov, K, D)
    check_len("accumulate", "stats", stats.shape[0], S, "stats_size(cov, K from R, D from X)")
    cdef int T = clamp_threads("accumulate", n_threads, (N + PART - 1) // PART)
    if N == 0:
        return
    dtype = np.float32 if floating is float else np.float64
    cdef floating[:, ::1] ws = np.empty((T, workspace_size(cov, K, D, B)), dtype=dtype)
    cdef double[:, ::1] acc = np.empty((_slots(N, T), S), dtype=np.float64)
    cdef Py_ssize_t[:, ::1] labels = np.zeros((T, B), dtype=np.intp)
    cdef floating[::1] dummy = np.zeros(max(K, 1), dtype=dtype)
    cdef double obj = stats[S - 2], ent = stats[S - 1]
    with nogil:
        _reduce_passes(cov, &X[0, 0], NULL, N, D, K, &dummy[0], &dummy[0], &ref[0], &dummy[0],
                       &R[0, 0], MODE_SOFT, 0, ws, labels, acc, &stats[0], S, B, T)
    stats[S - 2] = obj
    stats[S - 1] = ent


cdef void _estep_chunk(int cov, const floating* X, Py_ssize_t r0, Py_ssize_t r1,
                       Py_ssize_t B, Py_ssize_t D, Py_ssize_t K,
                       const floating* fac, const floating* bvec, const floating* ref,
                       const floating* cst, floating* ws, Py_ssize_t* labels,
                       floating* out, double* out_norm, Py_ssize_t* out_label,
                       bint responsibilities) noexcept nogil:
    cdef Py_ssize_t nb = r1 - r0, n, k
    cdef Scratch s = _scratch(cov, ws, B, D, K)
    cdef floating* lpT = <floating*>s.lpT
    cdef floating* mx = <floating*>s.mx
    cdef floating* sm = <floating*>s.sm
    cdef floating* aux = <floating*>s.aux
    cdef double ent = 0
    _features(cov, X + r0 * D, nb, D, ref, <floating*>s.Z, False)
    _logdens_t(cov, nb, B, D, K, <floating*>s.Z, fac, bvec, cst, lpT, <floating*>s.YT)
    if out != NULL and not responsibilities:
        for n in range(nb):
            for k in range(K):
                out[(r0 + n) * K + k] = lpT[k * B + n]
    if out_label != NULL or out_norm != NULL or (out != NULL and responsibilities):
        local_step_t(MODE_SOFT if (out_norm != NULL or responsibilities) else MODE_HARD,
                      lpT, nb, B, K, NULL, 0, 0, labels, mx, sm, aux, <floating*>s.ea, &ent)
        for n in range(nb):
            if out_label != NULL:
                out_label[r0 + n] = labels[n]
        if out_norm != NULL:
            for n in range(nb):       # log p(x) = max + log(sum of exp)
                out_norm[r0 + n] = <double>mx[n] + <double>aux[n]
        if out != NULL and responsibilities:
            for n in range(nb):
                for k in range(K):
                    out[(r0 + n) * K + k] = lpT[k * B + n]


cdef struct GaussEstep:
    int cov
    const void *X
    Py_ssize_t B, D, K
    const void *fac
    const void *bvec
    const void *ref
    const void *cst
    void *ws
    Py_ssize_t ws_stride
    Py_ssize_t *labels
    Py_ssize_t labels_stride
    void *out
    double *out_norm
    Py_ssize_t *out_label
    bint responsibilities


cdef void _estep_f64(void *vc, Py_ssize_t r0, Py_ssize_t r1, int tid) noexcept nogil:
    cdef GaussEstep *c = <GaussEstep *>vc
    _estep_chunk(c.cov, <const double *>c.X, r0, r1, c.B, c.D, c.K, <const double *>c.fac,
                 <const double *>c.bvec, <const double *>c.ref, <const double *>c.cst,
                 <double *>c.ws + tid * c.ws_stride, c.labels + tid * c.labels_stride,
                 <double *>c.out, c.out_norm, c.out_label, c.responsibilities)


cdef void _estep_f32(void *vc, Py_ssize_t r0, Py_ssize_t r1, int tid) noexcept nogil:
    cdef GaussEstep *c = <GaussEstep *>vc
    _estep_chunk(c.cov, <const float *>c.X, r0, r1, c.B, c.D, c.K, <const float *>c.fac,
                 <const float *>c.bvec, <const float *>c.ref, <const float *>c.cst,
                 <float *>c.ws + tid * c.ws_stride, c.labels + tid * c.labels_stride,
                 <float *>c.out, c.out_norm, c.out_label, c.responsibilities)


def estep(const floating[:, ::1] X, const floating[::1] fac, const floating[::1] bvec,
          const floating[::1] ref, const floating[::1] cst,
          floating[:, ::1] out, double[::1] out_norm, Py_ssize_t[::1] out_label,
          str covariance_type, bint responsibilities, int n_threads):
    """E-step only, chunk by chunk (no statistics).

    out (N x K, or 0 x K or 0 x 0 to skip): log p(x, z=k) or, with responsibilities,
    p(z=k | x).  out_norm (N or 0): log p(x).  out_label (N or 0): argmax_k.
    K is cst's length, N and D are X's; every other size must agree (ValueError)."""
    cdef int cov = _cov_code("estep", covariance_type)
    cdef Py_ssize_t N = X.shape[0], D = X.shape[1], K = cst.shape[0]
    _check_dims("estep", "cst", K, D)
    _check_params("estep", cov, K, D, fac.shape[0], bvec.shape[0], ref.shape[0])
    if not (out.shape[0] == 0 and (out.shape[1] == K or out.shape[1] == 0)):
        check_shape("estep", "out", out.shape[0], out.shape[1], N, K,
                    "N rows of X, K from cst; or (0, K) to skip")
    if out_norm.shape[0] != 0:
        check_len("estep", "out_norm", out_norm.shape[0], N, "N rows of X, or 0 to skip")
    if out_label.shape[0] != 0:
        check_len("estep", "out_label", out_label.shape[0], N, "N rows of X, or 0 to skip")
    cdef Py_ssize_t B = chunk_rows(cov, K, D)
    cdef Py_ssize_t n_chunks = (N + B - 1) // B
    cdef int T = clamp_threads("estep", n_threads, n_chunks)
    cdef bint want_out = out.shape[0] > 0, want_norm = out_norm.shape[0] > 0
    cdef bint want_label = out_label.shape[0] > 0
    if N == 0:
        return
    dtype = np.float32 if floating is float else np.float64
    cdef floating[:, ::1] ws = np.empty((T, workspace_size(cov, K, D, B)), dtype=dtype)
    cdef Py_ssize_t[:, ::1] labels = np.zeros((T, B), dtype=np.intp)
    cdef GaussEstep c
    c.cov = cov
    c.X = &X[0, 0]
    c.B = B
    c.D = D
    c.K = K
    c.fac = &fac[0]
    c.bvec = &bvec[0]
    c.ref = &ref[0]
    c.cst = &cst[0]
    c.ws = &ws[0, 0]
    c.ws_stride = ws.shape[1]
    c.labels = &labels[0, 0]
    c.labels_stride = labels.shape[1]
    c.out = &out[0, 0] if want_out else NULL
    c.out_norm = &out_norm[0] if want_norm else NULL
    c.out_label = &out_label[0] if want_label else NULL
    c.responsibilities = responsibilities
    with nogil:
        run_chunks(&c, _estep_f64 if floating is double else _estep_f32, N, B, T)
