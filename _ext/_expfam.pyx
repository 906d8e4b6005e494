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
# The features table itself (the families' sparse forms, the dense form's
# address, products, packed bits, the checks of a family's data) lives in
# _expfam_features.pxi, included here and by the HMM's sequence driver (_hmm.pyx).
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

cdef enum:
    PART = 4096        # rows per partition (fixed: the sums do not depend on threads)
    B = 256            # rows per chunk inside a partition
    ROUND = 8          # partitions per thread in a round of dynamic scheduling
    MODE_GIVEN = 3     # one-hot from given labels (initialisation)


PARTITION_ROWS = PART

include "_expfam_features.pxi"


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
