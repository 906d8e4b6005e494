# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# The row driver for exponential families (DESIGN.md: the compiled family
# interface).  One chunked, threaded, deterministic pass over the rows of a
# mixture, written once; a family reaches it through a table of nogil C
# functions, in one of two forms:
#
#   sparse  active(data, aux, row, D, idx, val, logh) -> n: the non-zero statistics
#           of one row (indices into 0..S-1, values) and log h(x).  Every built-in
#           family (FEATURES): packed bits, categorical codes, counts, sparse rows.
#           lp[n, k] = c[k] + logw[k] + logh[n] + sum_a val_a W[k, idx_a], the row
#           held in vector registers; statistics S[idx_a, k] += val_a r[n, k].
#   dense   features(data, aux, r0, nb, D, S, T, logh): T (nb x S) = T(x) of a
#           chunk, at a given address (a user's numba cfunc), with the
#           exponential-family defaults: lp = T W^T + c + logw + logh and
#           S += R^T T, one GEMM each (soft; a row add for one-hot r).
#
# (W, c) are the family's effective parameters: (eta, -A(eta)) for a point
# estimate, (E[eta], E[-A(eta)]) under q(theta) for mean field, so that one kernel
# gives log p(x | theta_k) or E_q log p(x | theta_k); logw are the structure's
# (expected) log weights.  The mixture's local step (softmax, argmax, draw) is the
# one the Gaussian kernels use (_common.pxd: local_step_t).
#
# Determinism and contention: the passes run on the shared row driver
# (_driver.pxd, as the Gaussian kernels do): rows are cut into fixed partitions
# of PART rows; the threads take partitions dynamically in rounds of ROUND per
# thread, each into its own slot, and the slots are added in partition order, so
# the sums do not depend on the thread count or on which thread ran what, and a
# preempted thread delays only its own partition.  This unit's callbacks are
# `_pass_partition` / `_pass_fold` (row_pass) and `_joint_chunk`
# (log_joint_rows).  Draws (gibbs) are
# keyed by (seed, global row).  BLAS runs single-threaded inside (the caller
# limits it).
#
# Conventions (DESIGN.md): inputs, outputs (overwritten), accumulators (added
# to), scalars, n_threads.  The data are validated in Python
# (fastvem/families/discrete.py); every entry still checks each buffer's size.
from cython cimport floating
from libc.math cimport log, lgamma, INFINITY, NAN, isnan
from libc.stdint cimport uint8_t, int32_t, int64_t, uintptr_t
from libc.string cimport memset
from scipy.linalg.cython_blas cimport dgemm

cimport numpy as cnp
import numpy as np

from libc.stdint cimport uint64_t
from _common cimport fv_exp, fv_log, uniform01, local_step_t, MODE_SOFT, MODE_HARD, MODE_SAMPLE
from _common cimport clamp_threads, check_len, check_shape
from _driver cimport run_partitions, run_chunks

cnp.import_array()

cdef extern from "fv_expfam.h" nogil:
    void fv_axpy(double *y, const double *x, double a, long n)
    void fv_init_row(double *row, const double *c, const double *logw, double h, long n)
    void fv_gather_rows(double *row, const double *Wt, const int32_t *idx, const double *val,
                        long na, long K)
    void fv_scatter_rows(double *St, const double *r, const int32_t *idx, const double *val,
                         long na, long K)
    double fv_exp_row(double *row, double *d, double mx, long K)
    int fv_bits_fast(long K)
    void fv_bits_gather(double *lpT, long B, const double *tab, const uint8_t *x, long G,
                        long nb, const double *base, long K)
    void fv_bits_scatter(double *st, double *nk, const double *lpT, long B, const uint8_t *x,
                         long G, long nb, long K)

ctypedef void (*features_fn)(const void *data, const void *aux, Py_ssize_t r0, Py_ssize_t nb,
                             Py_ssize_t D, Py_ssize_t S, double *T, double *logh) noexcept nogil

# the sparse form every built-in family has: for one row, the statistics that are
# non-zero (their indices into 0..S-1 and values), and log h(x); returns their number
ctypedef Py_ssize_t (*active_fn)(const void *data, const void *aux, Py_ssize_t row,
                                 Py_ssize_t D, int32_t *idx, double *val,
                                 double *logh) noexcept nogil

cdef enum:
    PART = 4096        # rows per partition (fixed: the sums do not depend on threads)
    B = 256            # rows per chunk inside a partition
    ROUND = 8          # partitions per thread in a round of dynamic scheduling
    MODE_GIVEN = 3     # one-hot from given labels (initialisation)

# the features kinds (FEATURES below names them for Python)
cdef enum:
    F_BERNOULLI_U8 = 0     # uint8 0/1 (one byte a feature), T = x
    F_COUNTS_F64 = 1       # float64 counts (Poisson), T = x, log h = -sum lgamma(x + 1)
    F_COUNTS_F32 = 2       # float32 counts
    F_CATEGORICAL_I32 = 3  # int32 codes, aux = int64 offsets (F + 1): T = one-hot per feature
    F_ADDRESS = 4          # a dense features function at a given address
    F_BITS = 5             # packed 0/1 bits (np.packbits, little bit order), 8 per byte:
                           # each half byte is one "statistic" of 16 values (a lookup
                           # table of the sums of its bits' parameters); its E-step
                           # reads the bytes itself (fv_expfam.h: fv_bits_gather)
    F_CSR = 6              # sparse rows: data (N x 2 int64) the [start, end) of each row
                           # in aux, (nnz x 2 float64) the column (exact in float64) and
                           # the value of each non-zero
    F_GAUSS_F64 = 7        # real rows (float64), aux = the D reference point (float64):
                           # T = (x - ref, (x - ref)^2), S = 2 D, log h = -D log(2 pi) / 2
    F_GAUSS_F32 = 8        # the same, float32 rows
    F_GAUSS_FULL_F64 = 10  # real rows (float64), aux = the reference point: T = (x - ref,
                           # the upper triangle of (x - ref)(x - ref)^T row by row),
                           # S = D + D (D + 1) / 2, log h = -D log(2 pi) / 2
    F_GAUSS_FULL_F32 = 11  # the same, float32 rows
    F_PRODUCT = 9          # a product of sparse-form families over disjoint columns: data
                           # is the list of its parts (kind, data, aux, S); a row's
                           # statistics are the parts' side by side, log h their sum

FEATURES = {"bernoulli_uint8": F_BERNOULLI_U8, "counts_float64": F_COUNTS_F64,
            "counts_float32": F_COUNTS_F32, "categorical_int32": F_CATEGORICAL_I32,
            "address": F_ADDRESS, "bernoulli_bits": F_BITS, "csr_float64": F_CSR,
            "gaussian_float64": F_GAUSS_F64, "gaussian_float32": F_GAUSS_F32,
            "product": F_PRODUCT, "gaussian_full_float64": F_GAUSS_FULL_F64,
            "gaussian_full_float32": F_GAUSS_FULL_F32}
PARTITION_ROWS = PART


cdef Py_ssize_t _bernoulli_u8_act(const void *data, const void *aux, Py_ssize_t row,
                                  Py_ssize_t D, int32_t *idx, double *val,
                                  double *logh) noexcept nogil:
    cdef const uint8_t *x = <const uint8_t *>data + row * D
    cdef Py_ssize_t d, n = 0
    for d in range(D):              # branch-free compaction (the bits are random)
        idx[n] = <int32_t>d
        val[n] = 1.0
        n += x[d] != 0
    logh[0] = 0.0
    return n



cdef inline Py_ssize_t _counts_act(const floating *x, Py_ssize_t D, int32_t *idx, double *val,
                                   double *logh) noexcept nogil:
    """Non-zero counts of one row and log h = -sum log x!."""
    cdef Py_ssize_t d, n = 0
    cdef double h = 0.0, v
    for d in range(D):
        if x[d] != 0:
            v = x[d]
            if not (v > 0.0 and v < INFINITY):
                # a negative or non-finite count: as a code out of range (NaN log h)
                logh[0] = NAN
                return 0
            idx[n] = <int32_t>d
            val[n] = v
            h -= lgamma(v + 1.0)
            n += 1
    logh[0] = h
    return n


cdef Py_ssize_t _counts_f64_act(const void *data, const void *aux, Py_ssize_t row,
                                Py_ssize_t D, int32_t *idx, double *val,
                                double *logh) noexcept nogil:
    return _counts_act(<const double *>data + row * D, D, idx, val, logh)


cdef Py_ssize_t _counts_f32_act(const void *data, const void *aux, Py_ssize_t row,
                                Py_ssize_t D, int32_t *idx, double *val,
                                double *logh) noexcept nogil:
    return _counts_act(<const float *>data + row * D, D, idx, val, logh)


cdef Py_ssize_t _categorical_i32_act(const void *data, const void *aux, Py_ssize_t row,
                                     Py_ssize_t D, int32_t *idx, double *val,
                                     double *logh) noexcept nogil:
    cdef const int32_t *x = <const int32_t *>data + row * D
    cdef const int64_t *off = <const int64_t *>aux
    cdef Py_ssize_t j
    for j in range(D):
        if x[j] < 0 or x[j] >= off[j + 1] - off[j]:
            # a code outside its feature's categories: the row reads and writes
            # nothing, and its log h is NaN, which the entries turn into an error
            logh[0] = NAN
            return 0
        idx[j] = <int32_t>(off[j] + x[j])
        val[j] = 1.0
    logh[0] = 0.0
    return D


cdef Py_ssize_t _csr_act(const void *data, const void *aux, Py_ssize_t row,
                         Py_ssize_t D, int32_t *idx, double *val, double *logh) noexcept nogil:
    """A sparse row: its non-zeros as they are stored (columns and values)."""
    cdef const int64_t *span = <const int64_t *>data + 2 * row
    cdef const double *nz = <const double *>aux
    cdef Py_ssize_t j, n = 0
    for j in range(span[0], span[1]):
        idx[n] = <int32_t>nz[2 * j]
        val[n] = nz[2 * j + 1]
        n += 1
    logh[0] = 0.0
    return n


cdef inline Py_ssize_t _gauss_act(const floating *x, const double *ref, Py_ssize_t D,
                                  int32_t *idx, double *val, double *logh) noexcept nogil:
    """A real row about the reference point: (x - ref) then its squares."""
    cdef Py_ssize_t d
    cdef double v
    for d in range(D):
        v = x[d] - ref[d]
        idx[d] = <int32_t>d
        val[d] = v
        idx[D + d] = <int32_t>(D + d)
        val[D + d] = v * v
    logh[0] = -0.9189385332046727 * D          # -log(2 pi) / 2 a feature
    return 2 * D


cdef Py_ssize_t _gauss_f64_act(const void *data, const void *aux, Py_ssize_t row,
                               Py_ssize_t D, int32_t *idx, double *val,
                               double *logh) noexcept nogil:
    return _gauss_act(<const double *>data + row * D, <const double *>aux, D, idx, val, logh)


cdef Py_ssize_t _gauss_f32_act(const void *data, const void *aux, Py_ssize_t row,
                               Py_ssize_t D, int32_t *idx, double *val,
                               double *logh) noexcept nogil:
    return _gauss_act(<const float *>data + row * D, <const double *>aux, D, idx, val, logh)


cdef inline Py_ssize_t _gauss_full_act(const floating *x, const double *ref, Py_ssize_t D,
                                       int32_t *idx, double *val, double *logh) noexcept nogil:
    """A real row about the reference point: (x - ref), then the products of its
    entries (i <= j, row by row of the upper triangle)."""
    cdef Py_ssize_t d, e, p = D
    cdef double v
    for d in range(D):
        idx[d] = <int32_t>d
        val[d] = x[d] - ref[d]
    for d in range(D):
        v = val[d]
        for e in range(d, D):
            idx[p] = <int32_t>p
            val[p] = v * val[e]
            p += 1
    logh[0] = -0.9189385332046727 * D
    return p


cdef Py_ssize_t _gauss_full_f64_act(const void *data, const void *aux, Py_ssize_t row,
                                    Py_ssize_t D, int32_t *idx, double *val,
                                    double *logh) noexcept nogil:
    return _gauss_full_act(<const double *>data + row * D, <const double *>aux, D, idx, val,
                           logh)


cdef Py_ssize_t _gauss_full_f32_act(const void *data, const void *aux, Py_ssize_t row,
                                    Py_ssize_t D, int32_t *idx, double *val,
                                    double *logh) noexcept nogil:
    return _gauss_full_act(<const float *>data + row * D, <const double *>aux, D, idx, val,
                           logh)


# one part of a product: its sparse form, data, aux, features and first statistic
cdef struct part_t:
    active_fn act
    const void *data
    const void *aux
    Py_ssize_t D
    Py_ssize_t offset


cdef Py_ssize_t _product_act(const void *data, const void *aux, Py_ssize_t row,
                             Py_ssize_t P, int32_t *idx, double *val,
                             double *logh) noexcept nogil:
    """The parts' statistics side by side (each shifted by its first statistic) and
    the sum of their log h: data is the table of the P parts."""
    cdef const part_t *parts = <const part_t *>data
    cdef Py_ssize_t p, a, n = 0, m
    cdef double h = 0.0, hp
    for p in range(P):
        m = parts[p].act(parts[p].data, parts[p].aux, row, parts[p].D, idx + n, val + n, &hp)
        for a in range(n, n + m):
            idx[a] = <int32_t>(idx[a] + parts[p].offset)
        n += m
        h += hp
    logh[0] = h
    return n


cdef Py_ssize_t _bits_act(const void *data, const void *aux, Py_ssize_t row,
                          Py_ssize_t G, int32_t *idx, double *val, double *logh) noexcept nogil:
    """Packed bits: half byte h (4 features) of the row is statistic 16 h + its value
    in the lookup space (see _bits_table), value 1: two per byte."""
    cdef const uint8_t *x = <const uint8_t *>data + row * G
    cdef Py_ssize_t g
    for g in range(G):
        idx[2 * g] = <int32_t>(32 * g + (x[g] & 15))
        idx[2 * g + 1] = <int32_t>(32 * g + 16 + (x[g] >> 4))
        val[2 * g] = 1.0
        val[2 * g + 1] = 1.0
    logh[0] = 0.0
    return 2 * G


cdef void _bits_table(const double[:, ::1] W, Py_ssize_t G, double[:, ::1] tab) noexcept nogil:
    """tab[16 h + b, k] = sum of W[k, 4 h + j] over the bits j set in the half byte b
    (bits past the last feature add nothing), built from b without its lowest bit:
    every entry is the same sum whatever the thread count.  16 entries a half byte
    keep the table and the slots' statistics small (in cache): measured faster
    than 256 a byte, which halves the lookups but misses the cache."""
    cdef Py_ssize_t g, b, j, k, S = W.shape[1], K = W.shape[0], prev
    for g in range(2 * G):
        for k in range(K):
            tab[g * 16, k] = 0.0
        for b in range(1, 16):
            j = 0
            while not (b >> j) & 1:
                j += 1
            prev = g * 16 + (b & (b - 1))
            for k in range(K):
                tab[g * 16 + b, k] = tab[prev, k] + (W[k, g * 4 + j] if g * 4 + j < S
                                                     else 0.0)


cdef void _bits_fold(const double *h, Py_ssize_t G, Py_ssize_t S, Py_ssize_t K,
                     double *stT) noexcept nogil:
    """stT[4 g + j, :] += h[16 g + b, :] over the half bytes b with bit j set: the
    statistics of a slot kept in the lookup space, back in the features' (S x K,
    a feature's K values contiguous, so the additions vectorise)."""
    cdef Py_ssize_t g, b, j
    for g in range(2 * G):
        for b in range(1, 16):
            for j in range(4):
                if (b >> j) & 1 and g * 4 + j < S:
                    fv_axpy(stT + (g * 4 + j) * K, h + (g * 16 + b) * K, 1.0, K)


cdef active_fn _active(int kind) noexcept:
    if kind == F_BERNOULLI_U8:
        return _bernoulli_u8_act
    if kind == F_COUNTS_F64:
        return _counts_f64_act
    if kind == F_COUNTS_F32:
        return _counts_f32_act
    if kind == F_CATEGORICAL_I32:
        return _categorical_i32_act
    if kind == F_BITS:
        return _bits_act
    if kind == F_CSR:
        return _csr_act
    if kind == F_GAUSS_F64:
        return _gauss_f64_act
    if kind == F_GAUSS_F32:
        return _gauss_f32_act
    if kind == F_PRODUCT:
        return _product_act
    if kind == F_GAUSS_FULL_F64:
        return _gauss_full_f64_act
    if kind == F_GAUSS_FULL_F32:
        return _gauss_full_f32_act
    return NULL


cdef void _chunk_active(active_fn act, bint bits, const void *data, const void *aux,
                        Py_ssize_t r0, Py_ssize_t nb, Py_ssize_t D, Py_ssize_t Am,
                        Py_ssize_t S, Py_ssize_t K,
                        const double *Wt, const double *c, const double *logw,
                        const double *sw, int mode, unsigned long long seed,
                        const int64_t *given, int64_t *labels_out, int32_t *idx, double *val,
                        double *ws, Py_ssize_t *lab, double *acc) noexcept nogil:
    """One chunk of nb <= B rows by the sparse form, into the slot acc = [stats^T
    (S x K), nk (K), objective, entropy, sum w log h]:
      1. each row's non-zero statistics (idx, val: B x D) and log h;
      2. lp[i, k] = c + logw + log h + sum_a val_a Wt[idx_a, k] (Wt: S x K);
      3. the mixture's local step on the transposed chunk (shared with the Gaussian
         kernels: _common.pxd local_step_t);
      4. stT[idx_a, k] += val_a r[i, k] (soft), or the row to its label's column.
    ws: B (6 + 2 K) doubles of scratch; lab: B labels; idx, val: B x Am (the most
    non-zero statistics of a row).
    bits: packed bits with a K that fv_bits_gather / fv_bits_scatter serve
    (fv_expfam.h): step 2 (and step 4 when soft) reads the rows' bytes itself, 4 rows
    at a time, straight into lpT: the same sums in the same order (log h = 0, every
    value 1), so step 1 runs only for the one-hot step 4 of the other modes."""
    cdef Py_ssize_t i, k, a, na, z
    cdef double w, ent = 0.0, obj = 0.0, slh = 0.0
    cdef double *st = acc
    cdef double *nk = acc + K * S
    cdef double *lh = ws
    cdef double *nav = ws + B
    cdef double *mx = ws + 2 * B
    cdef double *sm = ws + 3 * B
    cdef double *ax = ws + 4 * B
    cdef double *ea = ws + 5 * B
    cdef double *lpR = ws + 6 * B
    cdef double *lpT = lpR + B * K
    cdef double *row
    cdef const uint8_t *xb = <const uint8_t *>data + r0 * D
    if not (bits and mode == MODE_SOFT):    # (packed bits: log h = 0, slh stays 0)
        for i in range(nb):
            nav[i] = <double>act(data, aux, r0 + i, D, idx + i * Am, val + i * Am, lh + i)
            slh += (1.0 if sw == NULL else sw[r0 + i]) * lh[i]
    if mode == MODE_GIVEN:
        for i in range(nb):
            w = 1.0 if sw == NULL else sw[r0 + i]
            z = given[r0 + i]
            nk[z] += w
            for a in range(<Py_ssize_t>nav[i]):
                st[idx[i * Am + a] * K + z] += w * val[i * Am + a]
        acc[K * S + K + 2] += slh
        return
    if bits:
        fv_init_row(lpR, c, logw, 0.0, K)           # the rows' common start
        fv_bits_gather(lpT, B, Wt, xb, D, nb, lpR, K)
    else:
        for i in range(nb):
            row = lpR + i * K
            fv_init_row(row, c, logw, lh[i], K)
            fv_gather_rows(row, Wt, idx + i * Am, val + i * Am, <long>nav[i], K)
            for k in range(K):
                lpT[k * B + i] = row[k]
    obj = local_step_t(MODE_SOFT if mode == MODE_SOFT else
                       (MODE_HARD if mode == MODE_HARD else MODE_SAMPLE),
                       lpT, nb, B, K, (sw + r0) if sw != NULL else NULL, <uint64_t>seed,
                       <uint64_t>r0, lab, mx, sm, ax, ea, &ent)
    if mode == MODE_SOFT and bits:
        fv_bits_scatter(st, nk, lpT, B, xb, D, nb, K)
    elif mode == MODE_SOFT:
        for k in range(K):
            w = 0.0                 # the chunk's count, in a register, then added once
            for i in range(nb):
                w += lpT[k * B + i]
            nk[k] += w
        for i in range(nb):
            for k in range(K):
                lpR[i * K + k] = lpT[k * B + i]
        for i in range(nb):
            fv_scatter_rows(st, lpR + i * K, idx + i * Am, val + i * Am, <long>nav[i], K)
    else:
        for i in range(nb):
            w = 1.0 if sw == NULL else sw[r0 + i]
            z = lab[i]
            if labels_out != NULL:
                labels_out[r0 + i] = z
            nk[z] += w
            for a in range(<Py_ssize_t>nav[i]):
                st[idx[i * Am + a] * K + z] += w * val[i * Am + a]
    acc[K * S + K] += obj
    acc[K * S + K + 1] += ent
    acc[K * S + K + 2] += slh


cdef features_fn _table(int kind, uintptr_t address) noexcept:
    """The dense features function: only a given address (every built-in family
    has the sparse form, `_active`)."""
    return <features_fn>address if kind == F_ADDRESS else NULL


# ------------------------------------------------------------------ one chunk
cdef void _log_dens(const double *T, const double *logh, const double *W, const double *c,
                    const double *logw, Py_ssize_t nb, Py_ssize_t S, Py_ssize_t K,
                    double *lp) noexcept nogil:
    """lp (nb x K, row-major) = T W^T + c + logw + logh: column-major, lp^T (K x nb) =
    W^T' ... one dgemm: C(K x nb) = W(S x K col-major)^T T(S x nb col-major)."""
    cdef int m = <int>K, n = <int>nb, kk = <int>S, lda = <int>S, ldb = <int>S, ldc = <int>K
    cdef double one = 1.0, zero = 0.0
    cdef Py_ssize_t i, k
    if S > 0:
        dgemm("T", "N", &m, &n, &kk, &one, <double *>W, &lda, <double *>T, &ldb, &zero,
              lp, &ldc)
    else:
        memset(lp, 0, nb * K * sizeof(double))
    for i in range(nb):
        for k in range(K):
            lp[i * K + k] += c[k] + logw[k] + logh[i]


cdef void _chunk(features_fn feat, const void *data, const void *aux, Py_ssize_t r0,
                 Py_ssize_t nb, Py_ssize_t D, Py_ssize_t S, Py_ssize_t K,
                 const double *W, const double *c, const double *logw, const double *sw,
                 int mode, unsigned long long seed, const int64_t *given, int64_t *labels_out,
                 double *T, double *logh, double *lp, double *acc) noexcept nogil:
    """One chunk into a partition's slot acc = [stats (K x S), nk (K), objective,
    entropy, sum w log h]."""
    cdef Py_ssize_t i, k, s, z
    cdef double mx, tot, w, u, cum, v, ent = 0.0, obj = 0.0, lh = 0.0
    cdef double *st = acc
    cdef double *nk = acc + K * S
    cdef int m, n, kk, lda, ldb, ldc
    cdef double one = 1.0
    feat(data, aux, r0, nb, D, S, T, logh)
    if mode != MODE_GIVEN:
        _log_dens(T, logh, W, c, logw, nb, S, K, lp)
    for i in range(nb):
        w = 1.0 if sw == NULL else sw[r0 + i]
        lh += w * logh[i]
        if mode == MODE_GIVEN:
            z = given[r0 + i]
            nk[z] += w
            for s in range(S):
                st[z * S + s] += w * T[i * S + s]
            continue
        mx = lp[i * K]
        z = 0
        for k in range(1, K):
            if lp[i * K + k] > mx:
                mx = lp[i * K + k]
                z = k
        if mode == MODE_HARD:
            obj += w * mx
        else:
            tot = 0.0
            for k in range(K):
                v = fv_exp(lp[i * K + k] - mx)
                lp[i * K + k] = v
                tot += v
            if mode == MODE_SOFT:
                obj += w * (mx + fv_log(tot))
                for k in range(K):
                    v = lp[i * K + k] / tot
                    if v > 0.0:
                        ent -= w * v * fv_log(v)
                    lp[i * K + k] = w * v
                    nk[k] += w * v
            else:
                # a draw from the softmax, keyed by (seed, global row)
                u = uniform01(<unsigned long long>seed, <unsigned long long>(r0 + i)) * tot
                cum = 0.0
                z = K - 1
                for k in range(K):
                    cum += lp[i * K + k]
                    if u < cum:
                        z = k
                        break
                # log joint at the drawn label: lp was exponentiated relative to mx
                obj += w * (mx + fv_log(lp[i * K + z]))
        if mode != MODE_SOFT:
            if labels_out != NULL:
                labels_out[r0 + i] = z
            nk[z] += w
            for s in range(S):
                st[z * S + s] += w * T[i * S + s]
    if mode == MODE_SOFT and S > 0:
        # stats (K x S row-major = S x K col-major) += T^T (S x nb) R (nb x K)
        m = <int>S
        n = <int>K
        kk = <int>nb
        lda = <int>S
        ldb = <int>K
        ldc = <int>S
        dgemm("N", "T", &m, &n, &kk, &one, T, &lda, lp, &ldb, &one, st, &ldc)
    acc[K * S + K] += obj
    acc[K * S + K + 1] += ent
    acc[K * S + K + 2] += lh




def _check_data(str fn, data, Py_ssize_t N, Py_ssize_t D, int kind):
    """The data buffer must be C-contiguous N x D of the dtype its features read."""
    want = {F_BERNOULLI_U8: np.uint8, F_COUNTS_F64: np.float64, F_COUNTS_F32: np.float32,
            F_CATEGORICAL_I32: np.int32, F_BITS: np.uint8, F_CSR: np.int64,
            F_GAUSS_F64: np.float64, F_GAUSS_F32: np.float32,
            F_GAUSS_FULL_F64: np.float64, F_GAUSS_FULL_F32: np.float32}.get(kind)
    if not isinstance(data, np.ndarray) or data.ndim != 2 or not data.flags.c_contiguous:
        raise ValueError(f"{fn}: data must be a C-contiguous 2-D array")
    if data.shape[0] != N or data.shape[1] != D:
        raise ValueError(f"{fn}: data has shape {data.shape}, expected ({N}, {D})")
    if want is not None and data.dtype != want:
        raise ValueError(f"{fn}: data has dtype {data.dtype}, the features read {np.dtype(want)}")


def _check_csr(str fn, data, aux, Py_ssize_t S):
    """Sparse rows: data (N x 2) spans in rising order within aux (nnz x 2 float64), each
    column an integer in [0, S) and each value finite (every entry is read)."""
    if data.shape[1] != 2:
        raise ValueError(f"{fn}: sparse rows need data of shape (N, 2), got {data.shape}")
    if (not isinstance(aux, np.ndarray) or aux.dtype != np.float64 or aux.ndim != 2
            or aux.shape[1] != 2 or not aux.flags.c_contiguous):
        raise ValueError(f"{fn}: aux must be the (nnz, 2) float64 columns and values")
    nnz = aux.shape[0]
    if data.shape[0] and (np.any(data[:, 0] > data[:, 1]) or data.min() < 0
                          or data.max() > nnz):
        raise ValueError(f"{fn}: the row spans must lie within the {nnz} non-zeros")
    cols = aux[:, 0]
    if nnz and (not np.all(np.isfinite(aux)) or cols.min() < 0 or cols.max() >= S
                or np.any(cols != np.floor(cols))):
        raise ValueError(f"{fn}: the columns must be integers in [0, {S}) and the values "
                         "finite")


def _max_active(data, int kind, Py_ssize_t D):
    """The most non-zero statistics one row can have (the buffers' width)."""
    if kind == F_BITS:
        return 2 * D
    if kind == F_CSR:
        return int(np.max(data[:, 1] - data[:, 0])) if data.shape[0] else 1
    if kind == F_GAUSS_F64 or kind == F_GAUSS_F32:
        return 2 * D
    if kind == F_GAUSS_FULL_F64 or kind == F_GAUSS_FULL_F32:
        return D + D * (D + 1) // 2
    if kind == F_PRODUCT:
        return sum(_max_active(pd, pk, pd.shape[1]) for pk, pd, _, _ in data)
    return D


def _aligned(Py_ssize_t rows, Py_ssize_t cols):
    """A zeroed rows x cols float64 array whose first entry lies on a 64-byte boundary
    (NumPy aligns to 16): with cols a multiple of 8, every row starts a cache line,
    so that the vector loads and stores of a row of K values never straddle two."""
    buf = np.zeros(rows * cols + 8)
    cdef Py_ssize_t skip = (64 - <Py_ssize_t>(buf.ctypes.data % 64)) % 64 // 8
    return buf[skip:skip + rows * cols].reshape(rows, cols)


def _transposed(const double[:, ::1] W, int kind, Py_ssize_t D):
    """W for the sparse form: S x K (a statistic's K values contiguous), or for packed
    bits the lookup table of 2 D half bytes x 16 values x K."""
    cdef double[:, ::1] tab
    if kind == F_BITS:
        tab = _aligned(D * 32, W.shape[0])
        with nogil:
            _bits_table(W, D, tab)
        return tab
    return np.ascontiguousarray(np.asarray(W).T)


_CHECKED = (F_CATEGORICAL_I32, F_COUNTS_F64, F_COUNTS_F32)
_BAD_VALUE = ("the rows hold a value their family does not take: a category code outside its "
              "feature's categories (codes must be in [0, aux[j + 1] - aux[j])), or a negative "
              "or non-finite count")


def _has_codes(int kind, data):
    """Whether the rows hold category codes or counts (a family or a product part),
    whose values the kernel checks as it reads them: a code outside its feature's
    categories, or a negative or non-finite count, gives its row a NaN log h, which
    the entries turn into a ValueError."""
    if kind in _CHECKED:
        return True
    return kind == F_PRODUCT and any(p[0] in _CHECKED for p in data)


def _validate_data(str fn, data, aux, int kind, uintptr_t address, Py_ssize_t S):
    """The data for its features kind and S statistics, with the features' aux
    array; a product's parts each so.  Returns (N, D, aux): D is the number of
    parts for a product."""
    if kind < 0 or kind > F_GAUSS_FULL_F32 or (kind == F_ADDRESS and address == 0):
        raise ValueError(f"{fn}: unknown features kind {kind} (or a NULL address)")
    cdef Py_ssize_t N, D, total = 0
    if kind == F_PRODUCT:
        if aux is not None:
            raise ValueError(f"{fn}: a product keeps each part's aux in its part; aux must be None")
        if not isinstance(data, (list, tuple)) or len(data) == 0:
            raise ValueError(f"{fn}: a product's data must be a non-empty list of parts "
                             "(kind, data, aux, S)")
        n_rows = None
        for part in data:
            if not isinstance(part, tuple) or len(part) != 4:
                raise ValueError(f"{fn}: each part of a product must be (kind, data, aux, S)")
            pk, pdata, paux, ps = part
            if pk in (F_ADDRESS, F_BITS, F_PRODUCT):
                raise ValueError(f"{fn}: a product's parts must be sparse-form features "
                                 "(not an address, packed bits or another product)")
            if ps < 0:
                raise ValueError(f"{fn}: a part's S must be >= 0, got {ps}")
            n, _, _ = _validate_data(fn, pdata, paux, pk, 0, ps)
            if n_rows is not None and n != n_rows:
                raise ValueError(f"{fn}: the parts of a product have {n_rows} and {n} rows")
            n_rows = n
            total += ps
        if total != S:
            raise ValueError(f"{fn}: the parts have {total} statistics in all, S = {S}")
        return n_rows, len(data), None
    if not isinstance(data, np.ndarray) or data.ndim != 2:
        raise ValueError(f"{fn}: data must be a 2-D array")
    N = data.shape[0]
    D = data.shape[1]
    _check_data(fn, data, N, D, kind)
    if kind == F_CSR:
        _check_csr(fn, data, aux, S)
    if kind == F_BERNOULLI_U8 or kind == F_COUNTS_F64 or kind == F_COUNTS_F32:
        if S != D:
            raise ValueError(f"{fn}: S = {S} statistics, the features write D = {D}")
    if kind == F_BITS and D != (S + 7) // 8:
        raise ValueError(f"{fn}: {S} packed features need {(S + 7) // 8} bytes a row, got {D}")
    cdef bint full = kind == F_GAUSS_FULL_F64 or kind == F_GAUSS_FULL_F32
    if kind == F_GAUSS_F64 or kind == F_GAUSS_F32 or full:
        if S != (D + D * (D + 1) // 2 if full else 2 * D):
            raise ValueError(f"{fn}: S = {S} statistics, the Gaussian features write "
                             f"{D + D * (D + 1) // 2 if full else 2 * D}")
        if (not isinstance(aux, np.ndarray) or aux.dtype != np.float64 or aux.ndim != 1
                or aux.shape[0] != D or not aux.flags.c_contiguous
                or not np.all(np.isfinite(aux))):
            raise ValueError(f"{fn}: aux must be the finite float64 reference point ({D},)")
    elif kind == F_CATEGORICAL_I32:
        if (not isinstance(aux, np.ndarray) or aux.dtype != np.int64 or aux.ndim != 1
                or aux.shape[0] != D + 1 or not aux.flags.c_contiguous):
            raise ValueError(f"{fn}: aux must be the int64 category offsets ({D + 1},)")
        if aux[0] != 0 or aux[D] != S or np.any(np.diff(aux) < 1):
            raise ValueError(f"{fn}: aux must rise from 0 to S = {S}")
    elif kind != F_CSR and aux is not None and (not isinstance(aux, np.ndarray)
                                                  or not aux.flags.c_contiguous):
        raise ValueError(f"{fn}: aux must be a C-contiguous array or None")
    return N, D, aux


def _validate(str fn, data, aux, int kind, uintptr_t address, Py_ssize_t S,
              const double[:, ::1] W, const double[::1] c, const double[::1] logw):
    """The checks both entries share: the data for its features kind (and its aux
    array), W (K x S), c and logw (K).  Returns (N, D, K, aux array or None)."""
    cdef Py_ssize_t N, D, K = W.shape[0]
    N, D, aux = _validate_data(fn, data, aux, kind, address, S)
    if K < 1:
        raise ValueError(f"{fn}: W has {K} rows; it needs K >= 1 components")
    check_shape(fn, "W", W.shape[0], W.shape[1], K, S, "K x S")
    check_len(fn, "c", c.shape[0], K, "K components (rows of W)")
    check_len(fn, "logw", logw.shape[0], K, "K components (rows of W)")
    return N, D, K, aux


cdef object _data_pointer(data, int kind, const void **dp):
    """The address the features read: the data's, or for a product a table of its
    parts (returned: the caller keeps it alive while the kernel runs)."""
    cdef cnp.ndarray arr
    if kind != F_PRODUCT:
        arr = data
        dp[0] = <const void *>arr.data
        return None
    cdef cnp.ndarray table = np.zeros(len(data) * sizeof(part_t), dtype=np.uint8)
    cdef part_t *parts = <part_t *>table.data
    cdef Py_ssize_t p, offset = 0
    for p, (pk, pdata, paux, ps) in enumerate(data):
        parts[p].act = _active(pk)
        arr = pdata
        parts[p].data = <const void *>arr.data
        if paux is None:
            parts[p].aux = NULL
        else:
            arr = paux
            parts[p].aux = <const void *>arr.data
        parts[p].D = pdata.shape[1]
        parts[p].offset = offset
        offset += ps
    dp[0] = <const void *>table.data
    return table


cdef struct FamilyTable:
    # what both entries hand a family's rows to: its sparse form (act) or dense
    # features (feat) with its data (dp, off: the data and aux arrays), the rows'
    # features D, the most non-zero statistics of a row Am, S, K, the effective
    # parameters (Wt: S x K for the sparse form, W: K x S for the dense), c, logw,
    # and each thread's scratch (ws, wi rows of the given strides)
    active_fn act
    features_fn feat
    const void *dp
    const void *off
    Py_ssize_t D, Am, S, K
    const double *Wt
    const double *W
    const double *c
    const double *logw
    double *ws
    Py_ssize_t ws_stride
    int32_t *wi
    Py_ssize_t wi_stride


cdef void _fill_table(FamilyTable *f, active_fn act, features_fn feat, const void *dp,
                      const void *off, Py_ssize_t D, Py_ssize_t Am, Py_ssize_t S,
                      Py_ssize_t K, const double *Wt, const double *W, const double *c,
                      const double *logw, double[:, ::1] ws, int32_t[:, ::1] wi):
    f.act = act
    f.feat = feat
    f.dp = dp
    f.off = off
    f.D = D
    f.Am = Am
    f.S = S
    f.K = K
    f.Wt = Wt
    f.W = W
    f.c = c
    f.logw = logw
    f.ws = &ws[0, 0]
    f.ws_stride = ws.shape[1]
    f.wi = &wi[0, 0]
    f.wi_stride = wi.shape[1]


# the driver's context and callbacks for row_pass
cdef struct RowPass:
    FamilyTable f
    bint bits              # packed bits by fv_bits_gather / fv_bits_scatter
    int kind
    Py_ssize_t Sv, A
    const double *sw
    int mode
    unsigned long long seed
    const int64_t *given
    int64_t *labels
    Py_ssize_t *wl
    Py_ssize_t wl_stride
    double *stats
    double *nk
    double *totals
    double *stT


cdef void _pass_partition(void *vc, Py_ssize_t p, Py_ssize_t r, Py_ssize_t r1, int tid,
                          double *slot) noexcept nogil:
    """Rows [r, r1) chunk by chunk into the slot, by the sparse or the dense form."""
    cdef RowPass *x = <RowPass *>vc
    cdef double *wsp = x.f.ws + tid * x.f.ws_stride
    memset(slot, 0, x.A * sizeof(double))
    if x.f.act != NULL:
        while r < r1:
            _chunk_active(x.f.act, x.bits, x.f.dp, x.f.off, r, min(<Py_ssize_t>B, r1 - r), x.f.D,
                          x.f.Am, x.Sv, x.f.K, x.f.Wt, x.f.c, x.f.logw, x.sw, x.mode, x.seed, x.given,
                          x.labels, x.f.wi + tid * x.f.wi_stride, wsp, wsp + B * x.f.Am,
                          x.wl + tid * x.wl_stride, slot)
            r = r + B
        return
    while r < r1:
        _chunk(x.f.feat, x.f.dp, x.f.off, r, min(<Py_ssize_t>B, r1 - r), x.f.D, x.f.S, x.f.K, x.f.W, x.f.c,
               x.f.logw, x.sw, x.mode, x.seed, x.given, x.labels, wsp + B, wsp,
               wsp + B + B * x.f.S, slot)
        r = r + B


cdef void _pass_fold(void *vc, const double *slot) noexcept nogil:
    """One slot into stats, nk and totals: packed bits' lookup-space statistics
    folded back to the features, the sparse form's S x K transposed, the dense
    form's K x S as it is."""
    cdef RowPass *x = <RowPass *>vc
    cdef Py_ssize_t j, k, K = x.f.K, S = x.f.S, Sv = x.Sv
    if x.kind == F_BITS:
        _bits_fold(slot, x.f.D, S, K, x.stT)
    elif x.f.act != NULL:
        for j in range(S):
            for k in range(K):
                x.stats[k * S + j] += slot[j * K + k]
    else:
        for j in range(K * S):
            x.stats[j] += slot[j]
    for k in range(K):
        x.nk[k] += slot[K * Sv + k]
    for j in range(3):
        x.totals[j] += slot[K * Sv + K + j]


def row_pass(data, aux, int kind, uintptr_t address, Py_ssize_t S,
             const double[:, ::1] W, const double[::1] c, const double[::1] logw,
             sample_weight, const cnp.int64_t[::1] given,
             cnp.int64_t[::1] labels, double[:, ::1] stats, double[::1] nk,
             double[::1] totals, int mode, unsigned long long seed, int n_threads):
    """One pass of the local step over the rows of a mixture.

    IN    data (N x D, the dtype of `kind`; for 'product' the list of its parts,
          each (kind, data, aux, S)), aux (the features' extra array or None),
          kind (FEATURES), address (of a features function when kind is 'address'),
          S (statistics per component), W (K x S) and c (K): effective parameters,
          logw (K): (expected) log weights, sample_weight (N, float64) or None,
          given (N int64 labels for mode 3, else length 0)
    OUT   labels (N int64, argmax / drawn label; length 0: not written)
    INOUT stats (K x S) += weighted statistics, nk (K) += weighted counts,
          totals (3) += [sum w * objective, sum w * entropy of r, sum w * log h(x)]
          objective per row: log sum_k exp lp (soft), max_k lp (argmax), lp at the
          drawn label (sample); entropy only in soft mode
    mode  0 softmax, 1 argmax, 2 sample, 3 given labels
    """
    cdef str fn = "row_pass"
    cdef Py_ssize_t N, D, K
    N, D, K, aux = _validate(fn, data, aux, kind, address, S, W, c, logw)
    if mode < 0 or mode > MODE_GIVEN:
        raise ValueError(f"{fn}: mode must be 0..3, got {mode}")
    check_shape(fn, "stats", stats.shape[0], stats.shape[1], K, S, "K x S")
    check_len(fn, "nk", nk.shape[0], K, "K components (rows of W)")
    check_len(fn, "totals", totals.shape[0], 3, "3")
    cdef const int64_t *off = NULL
    cdef cnp.ndarray aux_arr
    if aux is not None:
        aux_arr = aux
        off = <const int64_t *>aux_arr.data
    cdef const double[::1] sw
    cdef const double *swp = NULL
    if sample_weight is not None:
        sw = sample_weight
        check_len(fn, "sample_weight", sw.shape[0], N, "N rows of data")
        if N > 0:
            swp = &sw[0]
    if mode == MODE_GIVEN:
        check_len(fn, "given", given.shape[0], N, "N rows of data (mode 3)")
        if N > 0 and (np.min(given) < 0 or np.max(given) >= K):
            raise ValueError(f"{fn}: given labels must lie in [0, {K})")
    if labels.shape[0] != 0:
        check_len(fn, "labels", labels.shape[0], N, "N rows of data, or 0")
    if N == 0:
        return
    cdef int T = clamp_threads(fn, n_threads, (N + PART - 1) // PART)
    cdef features_fn feat = _table(kind, address)
    cdef const void *dp = NULL
    table = _data_pointer(data, kind, &dp)
    cdef Py_ssize_t n_parts = (N + PART - 1) // PART
    cdef active_fn act = _active(kind)
    # the sparse form (built-in families): W transposed (S x K); for packed bits the
    # lookup space of Sv = 32 per byte, where the slots keep their statistics too
    cdef Py_ssize_t Sv = D * 32 if kind == F_BITS else S
    cdef double[:, ::1] Wt = _transposed(W, kind, D) if act != NULL else np.empty((1, 1))
    cdef Py_ssize_t A = K * Sv + K + 3
    cdef Py_ssize_t slots = max(1, min(n_parts, <Py_ssize_t>T * ROUND,
                                       max(<Py_ssize_t>T, (256 << 20) // (8 * A))))
    cdef Py_ssize_t A8 = (A + 7) // 8 * 8      # slots a whole number of cache lines apart
    cdef double[:, ::1] acc = _aligned(slots, A8)
    cdef double[:, ::1] stT = np.zeros((S if kind == F_BITS else 1, K))
    # per thread: the chunk's sparse rows (B x D values, then B (6 + 2 K) scratch), or
    # the dense features; each thread's rows padded to whole cache lines apart
    cdef Py_ssize_t Am = max(1, _max_active(data, kind, D))  # non-zero statistics a row
    cdef Py_ssize_t wlen = (B * Am + B * (6 + 2 * K)) if act != NULL else B * (S + K + 1) + 1
    cdef double[:, ::1] ws = _aligned(T, (wlen + 7) // 8 * 8 + 8)
    cdef int32_t[:, ::1] wi = np.empty((T, (B * max(Am, 1) + 15) // 16 * 16 + 16),
                                       dtype=np.int32)
    cdef Py_ssize_t[:, ::1] wl = np.empty((T, B + 8), dtype=np.intp)
    cdef RowPass ctx
    _fill_table(&ctx.f, act, feat, dp, off, D, Am, S, K, &Wt[0, 0], &W[0, 0], &c[0],
                &logw[0], ws, wi)
    ctx.bits = kind == F_BITS and fv_bits_fast(K)
    ctx.kind = kind
    ctx.Sv = Sv
    ctx.sw = swp
    ctx.mode = mode
    ctx.seed = seed
    ctx.given = &given[0] if given.shape[0] > 0 else NULL
    ctx.labels = &labels[0] if labels.shape[0] > 0 else NULL
    ctx.wl = &wl[0, 0]
    ctx.wl_stride = wl.shape[1]
    ctx.A = A
    ctx.stats = &stats[0, 0]
    ctx.nk = &nk[0]
    ctx.totals = &totals[0]
    ctx.stT = &stT[0, 0]
    cdef Py_ssize_t j, k
    cdef double before = totals[2]
    with nogil:
        run_partitions(&ctx, _pass_partition, _pass_fold, N, PART, &acc[0, 0], slots, A8, T)
    if isnan(totals[2]) and not isnan(before) and _has_codes(kind, data):
        raise ValueError(f"{fn}: {_BAD_VALUE}; the accumulators hold partial sums")
    with nogil:
        if kind == F_BITS:
            for j in range(S):
                for k in range(K):
                    stats[k, j] += stT[j, k]


# the driver's context and callback for log_joint_rows
cdef struct JointRows:
    FamilyTable f
    double *out


cdef void _joint_chunk(void *vc, Py_ssize_t r0, Py_ssize_t r1, int tid) noexcept nogil:
    """The log-joint rows [r0, r1) into out (each row its own, no reduction)."""
    cdef JointRows *x = <JointRows *>vc
    cdef double *ws = x.f.ws + tid * x.f.ws_stride
    cdef int32_t *wi = x.f.wi + tid * x.f.wi_stride
    cdef Py_ssize_t i, na, K = x.f.K
    cdef double *row
    if x.f.act != NULL:
        for i in range(r0, r1):
            # log h into this thread's buffer (a variable only written through its
            # address would be shared by the threads)
            na = x.f.act(x.f.dp, x.f.off, i, x.f.D, wi, ws, ws + x.f.Am)
            row = x.out + i * K
            fv_init_row(row, x.f.c, x.f.logw, ws[x.f.Am], K)
            fv_gather_rows(row, x.f.Wt, wi, ws, na, K)
        return
    x.f.feat(x.f.dp, x.f.off, r0, r1 - r0, x.f.D, x.f.S, ws + B, ws)
    _log_dens(ws + B, ws, x.f.W, x.f.c, x.f.logw, r1 - r0, x.f.S, K, x.out + r0 * K)


def log_joint_rows(data, aux, int kind, uintptr_t address, Py_ssize_t S,
                   const double[:, ::1] W, const double[::1] c, const double[::1] logw,
                   double[:, ::1] out, int n_threads):
    """OUT out (N x K) = log w_k + log p(x_n | theta_k) (or its expectation), the rows
    of the E-step without the local step (predict_proba, score_samples)."""
    cdef str fn = "log_joint_rows"
    cdef Py_ssize_t N, D, K
    N, D, K, aux = _validate(fn, data, aux, kind, address, S, W, c, logw)
    check_shape(fn, "out", out.shape[0], out.shape[1], N, K, "N x K")
    cdef const int64_t *off = NULL
    cdef cnp.ndarray aux_arr
    if aux is not None:
        aux_arr = aux
        off = <const int64_t *>aux_arr.data
    if N == 0 or K == 0:
        return
    cdef int T = clamp_threads(fn, n_threads, (N + B - 1) // B)
    cdef features_fn feat = _table(kind, address)
    cdef const void *dp = NULL
    table = _data_pointer(data, kind, &dp)
    cdef active_fn act = _active(kind)
    cdef double[:, ::1] Wt = _transposed(W, kind, D) if act != NULL else np.empty((1, 1))
    cdef Py_ssize_t Am = max(1, _max_active(data, kind, D))
    cdef double[:, ::1] ws = np.empty((T, (B * (S + 1) + 1 + Am + 7) // 8 * 8 + 8))
    cdef int32_t[:, ::1] wi = np.empty((T, (Am + 15) // 16 * 16 + 16), dtype=np.int32)
    cdef JointRows ctx
    _fill_table(&ctx.f, act, feat, dp, off, D, Am, S, K, &Wt[0, 0], &W[0, 0], &c[0],
                &logw[0], ws, wi)
    ctx.out = &out[0, 0]
    with nogil:
        run_chunks(&ctx, _joint_chunk, N, B, T)
    if (_has_codes(kind, data) and np.all(np.isfinite(W)) and np.all(np.isfinite(c))
            and not np.any(np.isnan(logw)) and np.any(np.isnan(out))):
        raise ValueError(f"{fn}: {_BAD_VALUE}")
