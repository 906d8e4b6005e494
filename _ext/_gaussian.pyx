# Gaussian kernels: one fused pass per chunk of rows computes the K
# log-densities, forms q(z) (softmax / argmax / sample) and accumulates the
# weighted sufficient statistics; a separate E-step-only entry serves predict,
# predict_proba and score_samples.
#
# Conventions (DESIGN.md): inputs, outputs (overwritten), accumulators (added
# to), scalars, n_threads.  Data are float32 or float64 (fused); statistics are
# float64.  Rows are cut into partitions of PART_ROWS rows; each partition is
# reduced sequentially, chunk by chunk, by one thread into its own float64
# accumulator, and partitions are added into the result in index order, so the
# result is bitwise identical for any n_threads.  Memory: O(threads * chunk * K
# + statistics); no N x K array exists.
#
# Effective parameters (prepared by `prepare`):
#   means  (K, D)          centres; also the shift of the centred statistics
#   fac    full: (D, D*K)  column d*K+k = column d of U_k, precision_k = U_k U_k^T
#          tied: (D, D)    U
#          diag: (2D, K)   [-0.5 P^T ; (P * (mu - ref))^T]
#          spherical: (D+1, K) [-0.5 p ; (p_k (mu_k - ref))^T]
#   bvec   full: (D*K + D,) b = ((mu_k - ref) U_k)^T (D x K), then ref; tied: (D, K) (mu_k U)^T;
#          diag / spherical: (D,) the reference point ref
#   cst    (K,)            additive constants (log weights + log-normalisers;
#                          diag / spherical: minus 0.5 (mu-ref)^T P (mu-ref))
# so that  log p(x, z=k) = cst_k - 0.5 * (x - mu_k)^T P_k (x - mu_k).
# Full, diag and spherical run as GEMMs on per-row features Z about a reference
# point ref near the data (the mean of the means): full Z = [x-ref, packed
# (x-ref)(x-ref)^T upper triangle], diag Z = [(x-ref)^2, x-ref], spherical
# Z = [|x-ref|^2, x-ref].  The E-step is a GEMM on Z, the soft statistics are
# one GEMM R^T Z per chunk; statistics are centred at ref, which keeps the
# one-pass moments accurate.
#
# Statistics vector (float64), centred at mu_k (full, tied) or ref (diag, spherical):
#   [ N_k (K) | S1_k = sum r (x - mu_k) (K*D) | S2 | objective (1) ]
#   S2: full (K, D, D) lower triangle of sum r (x-c)(x-c)^T (row-major),
#       diag (K, D) sum r (x-mu_k)^2, spherical (K,) sum r |x-mu_k|^2, tied: none.

cimport cython
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.stdint cimport uint64_t
from libc.string cimport memset
from libc.math cimport sqrt, log
from scipy.linalg.cython_blas cimport dgemm, sgemm, dsyrk, ssyrk

from _common cimport local_step_row, local_step_chunk, MODE_SOFT, MODE_HARD, MODE_SAMPLE

import numpy as np

cdef enum:
    COV_FULL = 0
    COV_TIED = 1
    COV_DIAG = 2
    COV_SPHERICAL = 3

PART_ROWS = 4096
COVARIANCE_TYPES = {"full": COV_FULL, "tied": COV_TIED, "diag": COV_DIAG,
                    "spherical": COV_SPHERICAL}


def s2_size(int cov, Py_ssize_t K, Py_ssize_t D):
    if cov == COV_FULL:
        return K * D * D
    if cov == COV_DIAG:
        return K * D
    if cov == COV_SPHERICAL:
        return K
    return 0


def stats_size(int cov, Py_ssize_t K, Py_ssize_t D):
    return K + K * D + s2_size(cov, K, D) + 1


def chunk_rows(int cov, Py_ssize_t K, Py_ssize_t D):
    """Rows per chunk: the chunk's work buffers stay within ~256 KB."""
    cdef Py_ssize_t width = K * D + _zwidth(cov, D) if cov == COV_FULL else (K + 2 * D)
    cdef Py_ssize_t b = 32768 // max(width, 1)
    return int(max(16, min(256, b)))


def workspace_size(int cov, Py_ssize_t K, Py_ssize_t D, Py_ssize_t B):
    """Per-thread scratch (in data dtype): logp/R, Y or dist, W, chunk stats."""
    cdef Py_ssize_t n = B * K
    if cov == COV_FULL:   # Y (B x KD), Z (B x zw), G (K x zw)
        n += B * K * D + (B + K) * _zwidth(cov, D)
    elif cov == COV_TIED:
        n += B * D
    else:   # Z (B x zw) and the chunk's R^T Z (K x zw)
        n += (B + K) * _zwidth(cov, D)
    return n + stats_size(cov, K, D)


cdef inline Py_ssize_t _zwidth(int cov, Py_ssize_t D) noexcept nogil:
    if cov == COV_FULL:
        return D + D * (D + 1) // 2
    return 2 * D if cov == COV_DIAG else D + 1


# --------------------------------------------------------------------------
# chunk-level E-step: log p(x, z=k) for B rows into lp (B x K)
# --------------------------------------------------------------------------

cdef inline void _gemm_rowmajor(const floating* A, const floating* Bm, floating* C,
                                int m, int n, int k, int lda) noexcept nogil:
    """C (m x n) = A (m x k, row stride lda) @ Bm (k x n), row-major."""
    cdef floating one = 1.0, zero = 0.0
    cdef char tr = b'N'
    # column-major view: C^T (n x m) = Bm^T (n x k) A^T (k x m)
    if floating is float:
        sgemm(&tr, &tr, &n, &m, &k, &one, <float*>Bm, &n, <float*>A, &lda, &zero, C, &n)
    else:
        dgemm(&tr, &tr, &n, &m, &k, &one, <double*>Bm, &n, <double*>A, &lda, &zero, C, &n)


cdef void _logdens(int cov, const floating* X, Py_ssize_t B, Py_ssize_t D, Py_ssize_t K,
                   const floating* means, const floating* fac,
                   const floating* bvec, const floating* cst,
                   floating* lp, floating* work, bint products) noexcept nogil:
    cdef Py_ssize_t n, k, d, e, j, KD = K * D, zw
    cdef floating t, acc, xd
    cdef floating* z
    cdef floating* y
    cdef floating* row
    cdef const floating* x
    if cov == COV_FULL:
        # Z = [x-ref | (x-ref)(x-ref)^T packed] in work after Y; the products only
        # when statistics follow (products != 0).  Y = (x-ref) @ [U_1..U_K] (B x KD)
        zw = _zwidth(cov, D)
        z = work + B * KD
        for n in range(B):
            x = X + n * D
            y = z + n * zw
            for d in range(D):
                y[d] = x[d] - bvec[KD + d]
            if products:
                j = D
                for d in range(D):
                    xd = y[d]
                    for e in range(d, D):
                        y[j + e - d] = xd * y[e]
                    j = j + D - d
        # columns of Y are d-major (d * K + k): the sum over d runs over
        # contiguous K-vectors, so it vectorises across components
        _gemm_rowmajor(z, fac, work, <int>B, <int>KD, <int>D, <int>zw)
        for n in range(B):
            y = work + n * KD
            row = lp + n * K
            for k in range(K):
                row[k] = 0
            for d in range(D):
                for k in range(K):
                    t = y[d * K + k] - bvec[d * K + k]
                    row[k] = row[k] + t * t
            for k in range(K):
                row[k] = cst[k] - <floating>0.5 * row[k]
    elif cov == COV_TIED:
        _gemm_rowmajor(X, fac, work, <int>B, <int>D, <int>D, <int>D)
        for n in range(B):
            y = work + n * D
            row = lp + n * K
            for k in range(K):
                row[k] = 0
            for d in range(D):
                xd = y[d]
                for k in range(K):
                    t = xd - bvec[d * K + k]
                    row[k] = row[k] + t * t
            for k in range(K):
                row[k] = cst[k] - <floating>0.5 * row[k]
    else:
        # diag / spherical: lp = Z @ A + cst with Z = [(x-ref)^2 | x-ref] (diag)
        # or [|x-ref|^2 | x-ref] (spherical), built in work
        zw = _zwidth(cov, D)
        for n in range(B):
            x = X + n * D
            y = work + n * zw
            if cov == COV_DIAG:
                for d in range(D):
                    t = x[d] - bvec[d]
                    y[d] = t * t
                    y[D + d] = t
            else:
                acc = 0
                for d in range(D):
                    t = x[d] - bvec[d]
                    y[1 + d] = t
                    acc = acc + t * t
                y[0] = acc
        _gemm_rowmajor(work, fac, lp, <int>B, <int>K, <int>zw, <int>zw)
        for n in range(B):
            row = lp + n * K
            for k in range(K):
                row[k] = row[k] + cst[k]


# --------------------------------------------------------------------------
# chunk-level accumulation of sum r, sum r (x - mu), second moments
# --------------------------------------------------------------------------

cdef void _accumulate(int cov, const floating* X, Py_ssize_t B, Py_ssize_t D, Py_ssize_t K,
                      const floating* means, const floating* R, floating* work,
                      floating* W, floating* nk, floating* s1, floating* s2) noexcept nogil:
    cdef Py_ssize_t n, k, d, m
    cdef floating r, t, sr
    cdef const floating* x
    cdef const floating* mu
    cdef floating* s1k
    cdef floating* s2k
    cdef floating* wrow
    cdef floating one = 1.0
    cdef int iD = <int>D, im
    cdef char up = b'U', notr = b'N'
    if cov == COV_FULL:
        for k in range(K):
            mu = means + k * D
            s1k = s1 + k * D
            m = 0
            for n in range(B):
                r = R[n * K + k]
                if r == 0:
                    continue
                x = X + n * D
                wrow = W + m * D
                sr = sqrt(r)
                nk[k] = nk[k] + r
                for d in range(D):
                    t = x[d] - mu[d]
                    s1k[d] = s1k[d] + r * t
                    wrow[d] = sr * t
                m = m + 1
            if m > 0:
                # column-major: S2_k (D x D, upper) += W^T-view  -> row-major lower
                im = <int>m
                if floating is float:
                    ssyrk(&up, &notr, &iD, &im, &one, W, &iD, &one, s2 + k * D * D, &iD)
                else:
                    dsyrk(&up, &notr, &iD, &im, &one, W, &iD, &one, s2 + k * D * D, &iD)
        return
    for n in range(B):
        x = X + n * D
        for k in range(K):
            r = R[n * K + k]
            if r == 0:
                continue
            mu = means + k * D
            s1k = s1 + k * D
            nk[k] = nk[k] + r
            if cov == COV_DIAG:
                s2k = s2 + k * D
                for d in range(D):
                    t = x[d] - mu[d]
                    s1k[d] = s1k[d] + r * t
                    s2k[d] = s2k[d] + r * t * t
            else:
                sr = 0
                for d in range(D):
                    t = x[d] - mu[d]
                    s1k[d] = s1k[d] + r * t
                    sr = sr + t * t
                if cov == COV_SPHERICAL:
                    s2[k] = s2[k] + r * sr


cdef void _accumulate_z(int cov, Py_ssize_t B, Py_ssize_t D, Py_ssize_t K, int mode,
                        const floating* Z, const floating* R, const Py_ssize_t* labels,
                        floating* G,
                        floating* nk, floating* s1, floating* s2) noexcept nogil:
    """Statistics about ref from the features Z of the chunk: G = R^T Z by one
    GEMM (soft R) or by adding each one-hot row to its component; then G is
    added into N_k, S1 and S2 (full: the packed products unpacked into the
    lower triangle of the row-major (D, D) block)."""
    cdef Py_ssize_t zw = _zwidth(cov, D), n, k, d, e, j, p
    cdef Py_ssize_t off1 = 0 if cov == COV_FULL else (D if cov == COV_DIAG else 1)
    cdef Py_ssize_t off2 = D if cov == COV_FULL else 0
    cdef Py_ssize_t sq = D if cov == COV_DIAG else 1      # diag / spherical squared part
    cdef floating r, one = 1.0, zero = 0.0
    cdef const floating* z
    cdef const floating* row
    cdef floating* g
    cdef floating* s2k
    cdef int izw = <int>zw, iK = <int>K, iB = <int>B
    cdef char nt = b'N', tr = b'T'
    if mode == MODE_SOFT:
        # column-major: G^T (zw x K) = Z^T-view (zw x B) @ R (B x K)
        if floating is float:
            sgemm(&nt, &tr, &izw, &iK, &iB, &one, <float*>Z, &izw, <float*>R, &iK, &zero, G, &izw)
        else:
            dgemm(&nt, &tr, &izw, &iK, &iB, &one, <double*>Z, &izw, <double*>R, &iK, &zero, G, &izw)
        for n in range(B):
            row = R + n * K
            for k in range(K):
                nk[k] = nk[k] + row[k]
    else:
        memset(G, 0, K * zw * sizeof(floating))
        for n in range(B):          # one-hot rows: add the row to its component
            j = labels[n]
            r = R[n * K + j]
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
            s1[k * D + d] = s1[k * D + d] + g[off1 + d]
        if cov == COV_FULL:
            s2k = s2 + k * D * D
            p = off2
            for d in range(D):
                for e in range(d, D):
                    s2k[e * D + d] = s2k[e * D + d] + g[p]
                    p = p + 1
        else:
            for d in range(sq):
                s2[k * sq + d] = s2[k * sq + d] + g[off2 + d]


# --------------------------------------------------------------------------
# one partition: chunks in order, statistics into acc (float64)
# --------------------------------------------------------------------------

cdef void _partition(int cov, const floating* X, const double* w, bint weighted,
                     Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t B, Py_ssize_t D, Py_ssize_t K,
                     const floating* means, const floating* fac,
                     const floating* bvec, const floating* cst,
                     int mode, uint64_t seed, floating* ws, Py_ssize_t* labels,
                     double* acc, Py_ssize_t S) noexcept nogil:
    cdef Py_ssize_t c0, nb, n, j
    cdef floating* lp = ws
    cdef floating* work = ws + B * K
    cdef floating* W = work
    cdef floating* cs
    cdef Py_ssize_t s2off = K + K * D
    cdef double obj = 0, wt
    cdef Py_ssize_t yw = B * K * D if cov == COV_FULL else 0   # full: Y before Z
    if cov == COV_TIED:
        cs = work + B * D
    else:
        W = work + yw + B * _zwidth(cov, D)     # G = R^T Z
        cs = W + K * _zwidth(cov, D)
    if floating is double:
        cs = acc           # float64 data: accumulate straight into the partition sums
    else:
        memset(cs, 0, S * sizeof(float))
    memset(acc, 0, S * sizeof(double))
    c0 = r0
    while c0 < r1:
        nb = min(B, r1 - c0)
        _logdens(cov, X + c0 * D, nb, D, K, means, fac, bvec, cst, lp, work, True)
        obj = obj + local_step_chunk(lp, nb, K, mode, w + c0 if weighted else NULL, seed,
                                     <uint64_t>c0, labels)
        if cov != COV_TIED:
            _accumulate_z(cov, nb, D, K, mode, work + (nb * K * D if cov == COV_FULL else 0),
                          lp, labels, W, cs, cs + K, cs + s2off)
        else:
            _accumulate(cov, X + c0 * D, nb, D, K, means, lp, work, W,
                        cs, cs + K, cs + s2off)
        if floating is float:
            for j in range(S - 1):
                acc[j] = acc[j] + cs[j]
            memset(cs, 0, S * sizeof(float))
        c0 = c0 + nb
    acc[S - 1] = obj


def fit_pass(const floating[:, ::1] X, const double[::1] sample_weight,
             const floating[:, ::1] means,
             const floating[::1] fac, const floating[::1] bvec, const floating[::1] cst,
             double[::1] stats,
             str covariance_type, int mode, unsigned long long seed, int n_threads):
    """One E+M-statistics pass over X (IN), adding into stats (INOUT).

    sample_weight: length N, or length 0 for unit weights.  mode: 0 soft,
    1 hard (argmax), 2 sample (draws keyed by (seed, row)).  The last entry of
    stats receives sum_n w_n * objective_n."""
    cdef int cov = COVARIANCE_TYPES[covariance_type]
    cdef Py_ssize_t N = X.shape[0], D = X.shape[1], K = means.shape[0]
    cdef Py_ssize_t B = chunk_rows(cov, K, D)
    cdef Py_ssize_t S = stats_size(cov, K, D)
    cdef Py_ssize_t P = PART_ROWS
    cdef Py_ssize_t n_parts = (N + P - 1) // P
    cdef int T = max(1, min(n_threads, <int>max(n_parts, 1)))
    cdef Py_ssize_t wsz = workspace_size(cov, K, D, B)
    cdef bint weighted = sample_weight.shape[0] > 0
    if stats.shape[0] != S:
        raise ValueError(f"stats must have length {S}, got {stats.shape[0]}")
    if N == 0:
        return
    dtype = np.float32 if floating is float else np.float64
    cdef floating[:, ::1] ws = np.empty((T, wsz), dtype=dtype)
    cdef double[:, ::1] acc = np.empty((T, S), dtype=np.float64)
    cdef Py_ssize_t[:, ::1] labels = np.zeros((T, B), dtype=np.intp)
    cdef const double* wptr = &sample_weight[0] if weighted else NULL
    cdef Py_ssize_t wave, i, nw, p, j
    with nogil:
        wave = 0
        while wave < n_parts:
            nw = min(<Py_ssize_t>T, n_parts - wave)
            for i in prange(nw, num_threads=T, schedule='static', chunksize=1):
                p = wave + i
                _partition(cov, &X[0, 0], wptr, weighted, p * P, min(N, (p + 1) * P), B, D, K,
                           &means[0, 0], &fac[0], &bvec[0], &cst[0],
                           mode, <uint64_t>seed, &ws[i, 0], &labels[i, 0], &acc[i, 0], S)
            for i in range(nw):           # partitions reduced in index order
                for j in range(S):
                    stats[j] = stats[j] + acc[i, j]
            wave = wave + nw


def estep(const floating[:, ::1] X,
          const floating[:, ::1] means,
          const floating[::1] fac, const floating[::1] bvec, const floating[::1] cst,
          floating[:, ::1] out, double[::1] out_norm, Py_ssize_t[::1] out_label,
          str covariance_type, bint responsibilities, int n_threads):
    """E-step only, chunk by chunk (no statistics).

    out (N x K, or 0 x K to skip): log p(x, z=k) or, with responsibilities,
    p(z=k | x).  out_norm (N or 0): log p(x).  out_label (N or 0): argmax_k."""
    cdef int cov = COVARIANCE_TYPES[covariance_type]
    cdef Py_ssize_t N = X.shape[0], D = X.shape[1], K = means.shape[0]
    cdef Py_ssize_t B = chunk_rows(cov, K, D)
    cdef Py_ssize_t n_chunks = (N + B - 1) // B
    cdef int T = max(1, min(n_threads, <int>max(n_chunks, 1)))
    cdef Py_ssize_t wsz = workspace_size(cov, K, D, B)
    cdef bint want_out = out.shape[0] > 0, want_norm = out_norm.shape[0] > 0
    cdef bint want_label = out_label.shape[0] > 0
    if N == 0:
        return
    dtype = np.float32 if floating is float else np.float64
    cdef floating[:, ::1] ws = np.empty((T, wsz), dtype=dtype)
    cdef Py_ssize_t c, tid
    with nogil:
        for c in prange(n_chunks, num_threads=T, schedule='static'):
            tid = threadid()
            _estep_chunk(cov, &X[0, 0], c * B, min(N, (c + 1) * B), D, K,
                         &means[0, 0], &fac[0], &bvec[0], &cst[0],
                         &ws[tid, 0], &out[0, 0] if want_out else NULL,
                         &out_norm[0] if want_norm else NULL,
                         &out_label[0] if want_label else NULL, responsibilities)


cdef void _estep_chunk(int cov, const floating* X, Py_ssize_t r0, Py_ssize_t r1,
                       Py_ssize_t D, Py_ssize_t K,
                       const floating* means, const floating* fac,
                       const floating* bvec, const floating* cst, floating* ws,
                       floating* out, double* out_norm, Py_ssize_t* out_label,
                       bint responsibilities) noexcept nogil:
    cdef Py_ssize_t nb = r1 - r0, n, k, best, dummy
    cdef floating* lp = ws
    cdef floating* row
    cdef floating* dst
    cdef double lse
    _logdens(cov, X + r0 * D, nb, D, K, means, fac, bvec, cst, lp, ws + nb * K, False)
    for n in range(nb):
        row = lp + n * K
        if out_label != NULL:
            best = 0
            for k in range(1, K):
                if row[k] > row[best]:
                    best = k
            out_label[r0 + n] = best
        if out != NULL and not responsibilities:
            dst = out + (r0 + n) * K
            for k in range(K):
                dst[k] = row[k]
        if out_norm != NULL or (out != NULL and responsibilities):
            lse = local_step_row(row, K, MODE_SOFT, 1.0, 0, 0, &dummy)
            if out_norm != NULL:
                out_norm[r0 + n] = lse
            if out != NULL and responsibilities:
                dst = out + (r0 + n) * K
                for k in range(K):
                    dst[k] = row[k]


cdef void _accumulate_partition(int cov, const floating* X, const floating* R,
                                Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t B,
                                Py_ssize_t D, Py_ssize_t K, const floating* shift,
                                floating* ws, double* acc, Py_ssize_t S) noexcept nogil:
    cdef Py_ssize_t c0, nb, j
    cdef floating* lp = ws
    cdef floating* work = ws + B * K
    cdef floating* W = work
    cdef floating* cs
    if cov == COV_FULL:
        W = work + B * K * D
        cs = W + B * D
    elif cov == COV_TIED:
        cs = work + B * D
    else:
        cs = work
    if floating is double:
        cs = acc
    else:
        memset(cs, 0, S * sizeof(float))
    memset(acc, 0, S * sizeof(double))
    c0 = r0
    while c0 < r1:
        nb = min(B, r1 - c0)
        _accumulate(cov, X + c0 * D, nb, D, K, shift, R + c0 * K, work, W,
                    cs, cs + K, cs + K + K * D)
        if floating is float:
            for j in range(S - 1):
                acc[j] = acc[j] + cs[j]
            memset(cs, 0, S * sizeof(float))
        c0 = c0 + nb


def accumulate(const floating[:, ::1] X, const floating[:, ::1] R,
               const floating[:, ::1] shift, double[::1] stats,
               str covariance_type, int n_threads):
    """Statistics of given (already weighted) responsibilities R (IN, N x K),
    centred at shift (IN, K x D), added into stats (INOUT).  Deterministic for
    any n_threads, like fit_pass; the objective entry is left untouched."""
    cdef int cov = COVARIANCE_TYPES[covariance_type]
    cdef Py_ssize_t N = X.shape[0], D = X.shape[1], K = shift.shape[0]
    cdef Py_ssize_t B = chunk_rows(cov, K, D)
    cdef Py_ssize_t S = stats_size(cov, K, D)
    cdef Py_ssize_t P = PART_ROWS
    cdef Py_ssize_t n_parts = (N + P - 1) // P
    cdef int T = max(1, min(n_threads, <int>max(n_parts, 1)))
    if stats.shape[0] != S or R.shape[0] != N or R.shape[1] != K or shift.shape[1] != D:
        raise ValueError("accumulate: inconsistent shapes")
    if N == 0:
        return
    dtype = np.float32 if floating is float else np.float64
    cdef floating[:, ::1] ws = np.empty((T, workspace_size(cov, K, D, B)), dtype=dtype)
    cdef double[:, ::1] acc = np.empty((T, S), dtype=np.float64)
    cdef Py_ssize_t wave, i, nw, p, j
    with nogil:
        wave = 0
        while wave < n_parts:
            nw = min(<Py_ssize_t>T, n_parts - wave)
            for i in prange(nw, num_threads=T, schedule='static', chunksize=1):
                p = wave + i
                _accumulate_partition(cov, &X[0, 0], &R[0, 0], p * P, min(N, (p + 1) * P),
                                      B, D, K, &shift[0, 0],
                                      &ws[i, 0], &acc[i, 0], S)
            for i in range(nw):
                for j in range(S - 1):
                    stats[j] = stats[j] + acc[i, j]
            wave = wave + nw
