# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# The sequence driver for hidden Markov models (DESIGN.md: the latent structure
# 'chain' on the compiled family interface).  A family reaches it through the
# same features table as the mixtures' row driver (_expfam_features.pxi, included
# by both: every built-in sparse form, packed bits, products, or a dense features
# function at an address); the chain's local step replaces the mixture's softmax:
#
#   mode 0  softmax   scaled forward-backward: the posteriors gamma_t(k) and the
#                     expected transition counts sum_t xi_t(j, k); objective log p(x)
#   mode 1  argmax    Viterbi: the MAP path, one-hot; objective its log joint
#   mode 2  sample    forward filtering, backward sampling; objective the drawn
#                     path's log joint.  One uniform per row, keyed by (seed, global
#                     row index) with _common.pxd's generator (uniform01), as the
#                     mixtures' draws: a draw depends on neither threads nor
#                     partitions
#   mode 3  vem       the factorised q(z_1)...q(z_T) (mean-field fixed point), each
#                     q(z_t) updated from its neighbours' expectations, swept forwards
#                     until a sweep gains less than tol; objective its ELBO
#
# For each sequence: its rows' log-densities lp (L x K) = W T(x) + c + log h(x),
# the local step, then the statistics with those weights: stats[k] += w r_tk T(x_t),
# nk[k] += w r_tk, start[k] += w r_1k, trans[j, k] += w xi(j, k) (w the sequence's
# weight).
#
# The scaled forward-backward never forms exp(lp) of a whole row nor a T x K x K
# array: alpha_t (each row normalised) and w_t = alpha_t / pred_t (pred_t = alpha_{t-1}
# A, the predicted state; w_t = exp(lp_t - max lp_t) / s_t, the row's exps over its
# scale, 0 where pred_t = 0) are kept per row; the backward pass is the scaled
# recursion on u_t = w_t beta_t:
#     beta_t = A u_{t+1},   gamma_t = alpha_t beta_t,   xi_t = alpha_t A u_{t+1}
# (sum_j gamma_t(j) = 1 up to rounding; u_{t+1} = gamma_{t+1} / pred_{t+1}, the ratio
# of two probabilities, so nothing overflows where a state is reachable and an
# unreachable one's u is 0), with no division and no sum along its chain, and
# sum_t xi_t = A o sum_t alpha_t (x) u_{t+1} is one outer product a step.  The
# forward step falls back to log space for a row whose reachable states all lie
# more than ~660 nats below its best one (its w = alpha / pred, divided out).
#
# Blocks, and the checkpointed passes of long sequences.  A sequence of L rows is
# run in nb blocks of B consecutive rows (the last one may be shorter): B = L, one
# block, up to checkpoint_rows() rows (10^6 unless set_checkpoint_rows says
# otherwise) and always under vem; beyond it, modes 0-2 take B = ceil(sqrt(L)), so
# that a thread keeps O(sqrt(L) K) doubles for the sequence instead of O(L K):
#
#   forward sweep   blocks 0, 1, ..., nb - 1: the block's log-densities from the
#                   features, the forward recursion (alpha and w; Viterbi's
#                   delta) from the previous block's last row, whose state is the
#                   block's checkpoint (nb x K doubles in all: the last row of each
#                   block); log p(x) / the path's score and sum log h run on
#                   across the blocks
#   backward sweep  blocks nb - 1, ..., 0: the block's log-densities and forward
#                   quantities recomputed from its checkpoint (the last block's are
#                   still in the scratch), the backward step over its rows from the
#                   carry -- u of the row after the block (softmax),
#                   that row's state (argmax, sample) --, then the block's outputs
#                   and statistics; its first row becomes the next carry
#
# One block is the plain pass, nothing recomputed.  A row's values are computed by
# the same operations in either case, and every running sum (log p(x), the
# expectation of the log joint, sum_t xi_t, a path's log joint, the statistics and
# occupancies, which each sequence adds from its last row to its first) meets its
# terms in the same order, so the checkpointed passes give bitwise the plain ones'
# results: the outputs do not depend on the threshold.  Their cost is a second
# computation of every block's log-densities and forward recursion but the last's.
# A dense features function is called on chunks that start at a block's first row:
# its values must not depend on the chunk (the built-in sparse forms read one row).
# vem keeps one block whatever the length: its factorised q(z_1)..q(z_L) is itself
# L x K of state, swept to a fixed point.  Under softmax (K = 4, 8, 12, 16), with two
# threads or more, such a sequence (a partition of its own) runs these passes
# pipelined on a team of two threads, the same results bitwise (see 'one long
# sequence on two threads' below): the log-densities and exps of the forward sweep,
# and the whole recomputation of the backward sweep, on the second thread.
#
# Lanes (softmax: hmm_pass mode 0 and hmm_posteriors).  At small K a row of the
# forward or backward recursion is one chain of dependent operations, so a
# sequence alone leaves the core waiting on latencies.  Consecutive sequences of a
# partition that each fit one block run in groups of up to LANES (K <= LANE_K, at
# most LANE_ROWS rows in all; _group, fixed by the offsets): their log-densities,
# then the forward recursion of every lane and the backward pass of every lane
# side by side (fv_hmm.h: fv_forward_lanes, fv_backward_lanes; row t of each lane
# stage by stage), then each sequence's outputs and statistics, in sequence order.
# Every path -- a sequence alone, its checkpointed blocks, a lane -- computes a
# row by the same functions of fv_hmm.h, which spell out the rounding of each sum
# (which products are rounded before their addition, which fused): the lanes
# change the instruction schedule, not a bit of any result, and every sum of a
# slot meets its sequences' terms in their order.  The built-in Gaussian and
# categorical forms (K a multiple of 4) compute their rows' log-densities and
# statistics in fv_hmm.h (fv_lp_gauss, fv_stats_gauss, fv_lp_cat, fv_stats_cat),
# the same operations as the features table's sparse forms, without a call per
# row; with a single categorical feature the lanes take a row's exps from a table
# of each code's (computed once per call by the same functions).
#
# Determinism: sequences are grouped, consecutively, into partitions of at most
# SEQ_PART rows (a sequence longer than that is a partition of its own) -- fixed
# by the offsets alone; SEQ_PART = LANE_ROWS, so that a partition of short
# sequences is one group of lanes (up to LANES of them); threads take partitions
# dynamically in rounds, each into its own slot, and the slots are added in
# partition order (as _driver.pxd's run_partitions does for rows), so every output
# is bitwise the same for any n_threads, and (above) for any checkpoint threshold.
#
# Memory: per thread, for a sequence cut into nb blocks of B rows, 3 (B + 1) K + nb K
# doubles (lp, alpha, pred -- each with one carry row -- and the checkpoints) and
# B + 1 int32 states (Viterbi also (B + 1) x K int32 back-pointers), sized by the
# sequence that needs the most: about 3 K min(longest, threshold) doubles, and
# 4 K ceil(sqrt(L)) for a sequence of L > threshold rows (vem: 3 L K whatever L);
# plus the features' scratch and the statistics' slots; no N x K array
# (hmm_posteriors' output excepted).  Under softmax the blocks' scratch is at least
# the largest group of lanes the partitions form: (3 K + 1) doubles a row of its
# sequences (lp, alpha, pred, the rows' maxima), LANE_ROWS rows at most.
#
# Conventions (DESIGN.md): inputs, outputs (overwritten), accumulators (added
# to), scalars, n_threads.  Every entry validates its arguments in Python before
# any loop runs (ValueError naming the argument).
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.math cimport log, lgamma, sqrt, INFINITY, NAN, isnan
from libc.stdint cimport uint8_t, int32_t, int64_t, uint64_t, uintptr_t
from libc.string cimport memset, memcpy

cimport numpy as cnp
import numpy as np

from _common cimport fv_exp, uniform01, clamp_threads, check_len, check_shape

cnp.import_array()

cdef enum:
    SEQ_PART = 8192    # rows per partition at most (whole sequences; a longer one alone)
    DB = 256           # rows per chunk of a dense features function
    ROUND = 8          # partitions per thread in a round of dynamic scheduling
    H_SOFT = 0
    H_ARGMAX = 1
    H_SAMPLE = 2
    H_VEM = 3
    LANES = 4          # sequences run side by side in the forward-backward (see fv_hmm.h)
    LANE_K = 16        # ... up to this many states (wider rows keep a core busy alone)
    LANE_ROWS = 8192   # the rows of a group of lanes (a thread's scratch holds them all)
    PIPE_SETS = 4      # the ring of block sets of a pipelined long sequence
    PIPE_CHUNK = 16    # ... and the rows of its backward pass between statistics' chunks

include "_expfam_features.pxi"

cdef extern from "fv_hmm.h" nogil:
    void fv_vecmat(double *y, const double *x, const double *M, long K)
    void fv_outer_sum(double *M, const double *U, const double *Q, long n, long K)
    ctypedef struct fv_lane:
        double *lp
        double *al
        double *pr
        double *M
        double *beta
        double *mx
        const int32_t *sym
        long n
        double ll, prod, el
    void fv_forward_lanes(fv_lane *ln, int G, const double *pi, const double *A,
                          const double *etab, const double *mtab, long nsym, long K)
    int fv_exp_table(long K, double *lp, double *etab, double *mtab, long nsym)
    void fv_backward_lanes(fv_lane *ln, int G, const double *AT, long K)
    void fv_forward_pre(fv_lane *ln, int first, const double *pi, const double *A, long K)
    ctypedef void (*fv_role_fn)(void *ctx, int tid, int nt) noexcept nogil
    void fv_team2(fv_role_fn fn, void *ctx)
    void fv_post(long *c, long v)
    void fv_wait_ge(long *c, long v)
    void fv_forward_block(const double *lp, long n, long K, const double *prev, const double *pi,
                          const double *A, double *al, double *pr, double *run)
    double fv_backward_block(double *lp, long n, long K, const double *AT, double *al, double *pr,
                             int last, double *M, double *beta, double el)
    double FV_FMA(double a, double b, double c)
    int fv_lp_gauss(const void *data, int f32, const double *ref, long D, int full, long r0,
                    long n, long S, const double *Wt, const double *base, long K, double *lp)
    int fv_stats_gauss(const void *data, int f32, const double *ref, long D, int full, long r0,
                       long n, long S, const double *g, double w, long K, double *St)
    double fv_lp_cat(const int32_t *x, const int64_t *off, long D, long r0, long n,
                     const double *Wt, const double *c, const double *logw, long K, double *lp,
                     double tot)
    double fv_lp_cat_tab(const int32_t *x, const int64_t *off, long r0, long n,
                         const double *tab, long nsym, const double *Wt, const double *c,
                         const double *logw, long K, double *lp, double tot)
    void fv_stats_cat(const int32_t *x, const int64_t *off, long D, long r0, long n,
                      const double *g, double w, long K, double *St)
    void fv_nk_sum(double *nk, const double *g, long n, double w, long K)
    double fv_expected_log_joint(long K, const double *g1, const double *ls, double *M,
                                 const double *At, const double *lt, double el)

PARTITION_ROWS = SEQ_PART
MODES = {"softmax": H_SOFT, "argmax": H_ARGMAX, "sample": H_SAMPLE, "vem": H_VEM}
CHECKPOINT_ROWS = 1000000   # the default threshold of the checkpointed passes

# a sequence of more rows than this runs the checkpointed passes (modes 0-2; see the
# header); read by each entry as it starts
cdef Py_ssize_t _ckpt_rows = CHECKPOINT_ROWS


# --------------------------------------------------------------------- context
cdef struct Hmm:
    FamilyTable f             # the family's features table (act or feat), W, c
    int kind
    Py_ssize_t Sv             # the slots' statistics space: S, or 32 D for packed bits
    Py_ssize_t A              # slot width: K Sv + K + K + K K + 3
    Py_ssize_t ckpt           # the checkpoint threshold (rows) this call runs with
    Py_ssize_t fixd           # doubles of a thread's scratch before its blocks' (M, 3 K, fv)
    Py_ssize_t fixi           # int32 of a thread's scratch before its blocks' (fi)
    int lanes                 # the most sequences a group of lanes runs (1: no lanes)
    double *pipe              # a partition of one checkpointed sequence runs pipelined on
                              # two threads (_pipelined) with these sets; or NULL
    int emit                  # 1 Gaussian (diag or full), 2 categorical: fv_hmm.h's
                              # emissions (K a multiple of 4); 0 the features table's
    int f32                   # the Gaussian rows are float32
    int full                  # ... and full (the products' upper triangle)
    const double *gbase       # Gaussian: c + logw + log h, the same for every row
    const double *lptab       # one categorical feature: each code's log-densities (nsym x
                              # K, as fv_lp_cat computes them: the rows copied from it), or NULL
    const double *etab        # one categorical feature: each code's exps (nsym x K) and
    const double *mtab        # maximum (nsym), as the lanes' forward rows take them; or NULL
    Py_ssize_t nsym
    double glh                # Gaussian: log h of a row
    const int64_t *off        # sequence s = rows [off[s], off[s + 1])
    const int64_t *bounds     # partition p = sequences [bounds[p], bounds[p + 1])
    const double *sw          # a weight per sequence, or NULL
    const double *ls          # log_start (K)
    const double *lt          # log_trans (K x K)
    const double *ltT         # log_trans transposed
    const double *pi          # exp(log_start)
    const double *At          # exp(log_trans)
    const double *AtT         # exp(log_trans) transposed
    int mode
    uint64_t seed
    double tol
    int max_iter
    double *buf               # per thread scratch, buf_stride doubles apart
    Py_ssize_t buf_stride
    int32_t *ibuf             # per thread int32 scratch
    Py_ssize_t ibuf_stride
    # E-step-only outputs (NULL in hmm_pass): no statistics then
    double *gamma_out         # N x K
    double *seq_out           # n_seq
    int64_t *path_out         # N (hmm_pass: the labels of modes 1 and 2, or NULL)
    bint no_stats
    # the results the slots fold into
    double *stats
    double *nk
    double *start
    double *trans
    double *totals
    double *stT


# ------------------------------------------------------- the rows' log-densities
cdef double _seq_lp(Hmm *h, Py_ssize_t r0, Py_ssize_t L, double *lp, double *fv,
                    int32_t *fi, double tot) noexcept nogil:
    """lp (L x K) = c + log h(x_t) + W . T(x_t) for the rows r0 .. r0 + L - 1;
    returns tot + sum_t log h(x_t), added row by row, so that a sequence's blocks
    continue one sum (NaN where the features met a value their family does not
    take).  fv, fi: the features' scratch (Am + 1 values, Am indices; or for a
    dense form DB (S + 1) values)."""
    cdef Py_ssize_t t, k, s, na, nb, K = h.f.K, S = h.f.S
    cdef double lh, acc
    cdef double *row
    cdef const double *Tr
    if h.emit == 1:
        fv_lp_gauss(h.f.dp, h.f32, <const double *>h.f.off, h.f.D, h.full, r0, L, S, h.f.Wt,
                    h.gbase, K, lp)
        for t in range(L):
            tot += h.glh
        return tot
    if h.emit == 2 and h.lptab != NULL:
        return fv_lp_cat_tab(<const int32_t *>h.f.dp, <const int64_t *>h.f.off, r0, L, h.lptab,
                             h.nsym, h.f.Wt, h.f.c, h.f.logw, K, lp, tot)
    if h.emit == 2:
        return fv_lp_cat(<const int32_t *>h.f.dp, <const int64_t *>h.f.off, h.f.D, r0, L,
                         h.f.Wt, h.f.c, h.f.logw, K, lp, tot)
    if h.f.act != NULL:
        for t in range(L):
            na = h.f.act(h.f.dp, h.f.off, r0 + t, h.f.D, fi, fv, fv + h.f.Am)
            lh = fv[h.f.Am]
            row = lp + t * K
            fv_init_row(row, h.f.c, h.f.logw, lh, K)
            fv_gather_rows(row, h.f.Wt, fi, fv, na, K)
            tot += lh
        return tot
    t = 0
    while t < L:
        nb = DB if L - t > DB else L - t
        h.f.feat(h.f.dp, h.f.off, r0 + t, nb, h.f.D, S, fv + DB, fv)
        for s in range(nb):
            Tr = fv + DB + s * S
            row = lp + (t + s) * K
            for k in range(K):
                acc = 0.0
                for na in range(S):
                    acc += Tr[na] * h.f.W[k * S + na]
                row[k] = h.f.c[k] + fv[s] + acc
            tot += fv[s]
        t += nb
    return tot


cdef void _seq_stats(Hmm *h, Py_ssize_t r0, Py_ssize_t L, const double *g, const int32_t *z,
                     double w, double *st, double *fv, int32_t *fi, double *row) noexcept nogil:
    """The statistics of the rows r0 .. r0 + L - 1 into st (the slot's: Sv x K for a
    sparse form, K x S for a dense one), each row weighted by w g[t] (soft; g is
    L x K) or, where g is NULL, by w at its label z[t].  The rows are added from the
    last to the first: the order the backward sweep meets them, block by block."""
    cdef Py_ssize_t t, k, s, a, na, nb, e, K = h.f.K, S = h.f.S
    cdef double v
    cdef const double *Tr
    if g != NULL and h.emit == 1:
        fv_stats_gauss(h.f.dp, h.f32, <const double *>h.f.off, h.f.D, h.full, r0, L, S, g, w,
                       K, st)
        return
    if g != NULL and h.emit == 2:
        fv_stats_cat(<const int32_t *>h.f.dp, <const int64_t *>h.f.off, h.f.D, r0, L, g, w, K,
                     st)
        return
    if h.f.act != NULL:
        t = L - 1
        while t >= 0:
            na = h.f.act(h.f.dp, h.f.off, r0 + t, h.f.D, fi, fv, fv + h.f.Am)
            if g == NULL:
                for a in range(na):
                    st[fi[a] * K + z[t]] += w * fv[a]
            else:
                for k in range(K):
                    row[k] = w * g[t * K + k]
                fv_scatter_rows(st, row, fi, fv, na, K)
            t -= 1
        return
    e = L
    while e > 0:
        nb = DB if e > DB else e
        t = e - nb
        h.f.feat(h.f.dp, h.f.off, r0 + t, nb, h.f.D, S, fv + DB, fv)
        a = nb - 1
        while a >= 0:
            Tr = fv + DB + a * S
            for k in range(K):
                if g == NULL:
                    if k != z[t + a]:
                        continue
                    v = w
                else:
                    v = w * g[(t + a) * K + k]
                if v != 0.0:
                    for s in range(S):
                        st[k * S + s] += v * Tr[s]
            a -= 1
        e = t


# ------------------------------------------------------------- forward-backward
cdef inline void _forward(const double *lp, Py_ssize_t n, Py_ssize_t K, const double *prev,
                          const double *pi, const double *A, double *al, double *pr,
                          double *run) noexcept nogil:
    """The scaled forward pass over n consecutive rows of a sequence: al (n x K) =
    p(z_t | x_1..t) and pr (n x K) = w_t = alpha_t / p(z_t | x_1..t-1) (0 where the
    denominator is); prev is alpha of the row
    before the first (a checkpoint), or NULL at the sequence's start (pr_1 = pi).
    run = [ll, prod] carries log p(x_1..t) = ll + log(prod) from block to block: the
    scales s_t are multiplied into prod, whose log is taken only when it nears the
    ends of the double range -- one log per ~1,000 rows, not one per row.  The rows
    are fv_hmm.h's (fv_fwd_row), as the lanes compute them."""
    fv_forward_block(lp, n, K, prev, pi, A, al, pr, run)


cdef inline double _backward(double *lp, Py_ssize_t n, Py_ssize_t K, const double *AT,
                             double *al, double *pr, bint last, double *M, double *beta,
                             double el) noexcept nogil:
    """The backward pass over the n rows of a block, from its last row to its first:
    al (the forward pass's alpha) becomes gamma in place, pr's w_t becomes u_t =
    w_t beta_t.  last: the block ends the sequence (gamma = alpha, u = w on its last
    row); else row n of pr holds u of the row after the block (the carry).  M (K x
    K) += the block's terms of sum_t alpha_t (x) u_{t+1}, so that sum_t xi_t = A o M
    (see the header); returns el + the block's terms of sum_t sum_k gamma_t(k)
    lp_t(k).  lp holds alpha_t afterwards (read by M's sum), and M is the outer-
    product sum, taken at the end with M in registers (fv_hmm.h: fv_backward_block,
    fv_bwd_row, fv_outer_sum)."""
    return fv_backward_block(lp, n, K, AT, al, pr, last, M, beta, el)


cdef void _viterbi(const double *lp, Py_ssize_t n, Py_ssize_t K, const double *ls,
                   const double *lt, bint first, double *d, double *d2,
                   int32_t *bp) noexcept nogil:
    """The Viterbi recursion over n consecutive rows of a sequence: delta_t(k) =
    max_j delta_{t-1}(j) + lt[j, k] + lp_t(k), bp row t (n x K) its maximiser (the
    first on ties).  first: the rows start the sequence (delta_1 = ls + lp_1; bp row
    0 is not written); else d holds on entry delta of the row before the first (a
    checkpoint).  On return d holds delta of the last row; d2: K scratch."""
    cdef Py_ssize_t t, j, k, t0 = 0
    cdef double v
    cdef double *cur = d
    cdef double *nxt = d2
    cdef double *tmp
    cdef int32_t *b
    if first:
        for k in range(K):
            d[k] = ls[k] + lp[k]
        t0 = 1
    for t in range(t0, n):
        b = bp + t * K
        for k in range(K):
            nxt[k] = cur[0] + lt[k]
            b[k] = 0
        for j in range(1, K):
            for k in range(K):
                v = cur[j] + lt[j * K + k]
                if v > nxt[k]:
                    nxt[k] = v
                    b[k] = <int32_t>j
        for k in range(K):
            nxt[k] = nxt[k] + lp[t * K + k]
        tmp = cur
        cur = nxt
        nxt = tmp
    if cur != d:
        memcpy(d, cur, K * sizeof(double))


cdef inline int32_t _draw(const double *p, Py_ssize_t K, double u) noexcept nogil:
    """The inverse-cdf draw of one of K states from the unnormalised p (>= 0) with
    the uniform u in [0, 1): never a state of zero mass."""
    cdef Py_ssize_t k
    cdef double tot = 0.0, cum = 0.0
    cdef int32_t last = 0
    for k in range(K):
        tot += p[k]
    u = u * tot
    for k in range(K):
        if p[k] > 0.0:
            cum += p[k]
            last = <int32_t>k
            if u < cum:
                return last
    return last


cdef double _ffbs(const double *lp, Py_ssize_t n, Py_ssize_t K, const double *lt,
                  const double *A, const double *al, int32_t znext, uint64_t seed,
                  uint64_t row0, double *e, int32_t *z, double lj) noexcept nogil:
    """Backward sampling over the n rows of a block (al: their filtered alpha, rows
    row0 .. row0 + n - 1 of the data): znext < 0, the block ends the sequence: z_L
    ~ alpha_L; else znext is the state drawn for the row after the block.  Then z_t
    ~ alpha_t(j) A[j, z_t+1], the uniform of row t keyed by (seed, row0 + t).
    Returns lj + the block's terms of the path's log joint (the start's excepted)."""
    cdef Py_ssize_t t, j
    cdef int32_t nz
    t = n - 1
    if znext < 0:
        z[n - 1] = _draw(al + (n - 1) * K, K, uniform01(seed, row0 + <uint64_t>(n - 1)))
        lj = lp[(n - 1) * K + z[n - 1]]
        t = n - 2
    while t >= 0:
        nz = z[t + 1] if t + 1 < n else znext
        for j in range(K):
            e[j] = al[t * K + j] * A[j * K + nz]
        z[t] = _draw(e, K, uniform01(seed, row0 + <uint64_t>t))
        lj += lt[z[t] * K + nz] + lp[t * K + z[t]]
        t -= 1
    return lj


# ------------------------------------------------------- the factorised fixed point
cdef void _softmax(double *e, Py_ssize_t K) noexcept nogil:
    cdef Py_ssize_t k
    cdef double m = -INFINITY, s = 0.0
    for k in range(K):
        if e[k] > m:
            m = e[k]
    for k in range(K):
        e[k] = fv_exp(e[k] - m) if e[k] > -INFINITY else 0.0
        s += e[k]
    s = 1.0 / s
    for k in range(K):
        e[k] = e[k] * s


cdef void _vem_update(const double *lp, Py_ssize_t t, Py_ssize_t L, Py_ssize_t K,
                      const double *ls, const double *lt, const double *ltT, double *qv,
                      bint nxt) noexcept nogil:
    """q_t <- softmax(lp_t + [t = 0] log_start + sum_j q_t-1(j) lt[j, :] + (if nxt)
    sum_j lt[:, j] q_t+1(j))."""
    cdef Py_ssize_t j
    cdef double *e = qv + t * K
    cdef const double *qq
    memcpy(e, lp + t * K, K * sizeof(double))
    if t == 0:
        for j in range(K):
            e[j] = e[j] + ls[j]
    else:
        qq = qv + (t - 1) * K
        for j in range(K):
            if qq[j] != 0.0:
                fv_axpy(e, lt + j * K, qq[j], K)
    if nxt and t + 1 < L:
        qq = qv + (t + 1) * K
        for j in range(K):
            if qq[j] != 0.0:
                fv_axpy(e, ltT + j * K, qq[j], K)
    _softmax(e, K)


cdef double _vem_elbo(const double *lp, Py_ssize_t L, Py_ssize_t K, const double *ls,
                      const double *lt, const double *q, double *tmp,
                      double *ent) noexcept nogil:
    """The ELBO of the factorised q (L x K): E_q log p(x, z) + sum_t H[q_t];
    ent = sum_t H[q_t].  Terms of zero q are 0 (a forbidden start has q = 0)."""
    cdef Py_ssize_t t, j, k
    cdef double v, el = 0.0, h = 0.0
    cdef const double *qt
    for t in range(L):
        qt = q + t * K
        for k in range(K):
            if qt[k] > 0.0:
                el += qt[k] * lp[t * K + k]
                h -= qt[k] * log(qt[k])
                if t == 0:
                    el += qt[k] * ls[k]
        if t > 0:
            memset(tmp, 0, K * sizeof(double))
            for j in range(K):
                if q[(t - 1) * K + j] != 0.0:
                    fv_axpy(tmp, lt + j * K, q[(t - 1) * K + j], K)
            for k in range(K):
                if qt[k] > 0.0:
                    el += qt[k] * tmp[k]
    ent[0] = h
    return el + h


cdef double _vem(const double *lp, Py_ssize_t L, Py_ssize_t K, const double *ls,
                 const double *lt, const double *ltT, double *q, double *tmp, double tol,
                 int max_iter, double *ent) noexcept nogil:
    """The factorised fixed point: q initialised by one forward pass (each q_t from
    its predecessor only), then sweeps t = 1 .. L updating q_t from both neighbours
    until a sweep gains less than tol in the ELBO (or max_iter sweeps); returns
    the ELBO, ent its entropy."""
    cdef Py_ssize_t t
    cdef int it
    cdef double elbo, new
    for t in range(L):
        _vem_update(lp, t, L, K, ls, lt, ltT, q, False)
    elbo = _vem_elbo(lp, L, K, ls, lt, q, tmp, ent)
    if L == 1:
        return elbo
    for it in range(max_iter):
        for t in range(L):
            _vem_update(lp, t, L, K, ls, lt, ltT, q, True)
        new = _vem_elbo(lp, L, K, ls, lt, q, tmp, ent)
        if not (new - elbo > tol):
            elbo = new
            break
        elbo = new
    return elbo


# ---------------------------------------------------------------- one sequence
cdef struct Scratch:
    # a thread's scratch laid out for one sequence of blocks of B rows (see the
    # header), and the slot it adds to
    double *lp                # (B + 1) x K: the block's log-densities
    double *al                # (B + 1) x K: alpha, then gamma (row B: the carry)
    double *pr                # (B + 1) x K: pred (row B: the carry)
    double *ck                # nb x K: row i, the state of block i's last row
    double *M                 # K x K
    double *v1
    double *v2
    double *v3                # K each
    double *fv                # the features' values
    int32_t *fi               # the features' indices
    int32_t *z                # B + 1 states
    int32_t *bp               # (B + 1) x K back-pointers (argmax)
    double *st                # the slot's statistics, nk, start and transition counts
    double *nk
    double *sc
    double *tc


cdef inline Py_ssize_t _block_rows(Py_ssize_t L, Py_ssize_t thr, int mode) noexcept nogil:
    """The rows per block of a sequence of L rows: L (one block) up to thr rows and
    under vem, else ceil(sqrt(L))."""
    cdef Py_ssize_t b
    if L <= thr or mode == H_VEM:
        return L
    b = <Py_ssize_t>sqrt(<double>L)
    while b * b < L:
        b += 1
    while b > 1 and (b - 1) * (b - 1) >= L:
        b -= 1
    return b


cdef void _scratch_need(const int64_t *off, Py_ssize_t n_seq, Py_ssize_t K, Py_ssize_t thr,
                        int mode, Py_ssize_t *nd, Py_ssize_t *ni) noexcept nogil:
    """The most doubles (nd) and int32 (ni) a thread's blocks take for any of the
    sequences (Scratch's layout: 3 (B + 1) K + nb K doubles, B + 1 states and for
    argmax (B + 1) K back-pointers)."""
    cdef Py_ssize_t s, L, B, nb, d, i
    nd[0] = 0
    ni[0] = 0
    for s in range(n_seq):
        L = off[s + 1] - off[s]
        B = _block_rows(L, thr, mode)
        nb = (L + B - 1) // B
        d = (3 * (B + 1) + nb) * K
        i = (B + 1) * (1 + K if mode == H_ARGMAX else 1)
        if d > nd[0]:
            nd[0] = d
        if i > ni[0]:
            ni[0] = i


cdef void _emit_soft(Hmm *h, Scratch *x, Py_ssize_t r, Py_ssize_t n, double w) noexcept nogil:
    """A block's posteriors (x.al rows 0 .. n - 1: the data's rows r .. r + n - 1)
    into hmm_posteriors' output and, unless no_stats, the statistics and
    occupancies, from the last row to the first."""
    cdef Py_ssize_t t, K = h.f.K
    if h.gamma_out != NULL:
        memcpy(h.gamma_out + r * K, x.al, n * K * sizeof(double))
    if h.no_stats:
        return
    _seq_stats(h, r, n, x.al, NULL, w, x.st, x.fv, x.fi, x.v3)
    fv_nk_sum(x.nk, x.al, n, w, K)


cdef void _emit_hard(Hmm *h, Scratch *x, Py_ssize_t r, Py_ssize_t n, int32_t znext,
                     double w) noexcept nogil:
    """A block's states (x.z 0 .. n - 1: the data's rows r .. r + n - 1; znext the
    state of the row after the block, < 0 at the sequence's end) into the path
    output and, unless no_stats, the statistics, occupancies and transition
    counts, from the last row to the first."""
    cdef Py_ssize_t t, K = h.f.K
    cdef int32_t nz
    cdef const int32_t *z = x.z
    if h.path_out != NULL:
        for t in range(n):
            h.path_out[r + t] = z[t]
    if h.no_stats:
        return
    _seq_stats(h, r, n, NULL, z, w, x.st, x.fv, x.fi, x.v3)
    t = n - 1
    while t >= 0:
        x.nk[z[t]] += w
        nz = z[t + 1] if t + 1 < n else znext
        if nz >= 0:
            x.tc[z[t] * K + nz] += w
        t -= 1


cdef inline Py_ssize_t _rows_of(Py_ssize_t i, Py_ssize_t B, Py_ssize_t L) noexcept nogil:
    """The rows of block i (all B but the last's)."""
    return B if L - i * B > B else L - i * B


cdef double _forward_sweep(Hmm *h, Scratch *x, Py_ssize_t r0, Py_ssize_t L, Py_ssize_t B,
                           Py_ssize_t nb, double *lh) noexcept nogil:
    """The forward sweep of modes 0 and 2: block by block, the log-densities and the
    forward recursion, each block's last alpha kept as the next one's checkpoint;
    returns log p(x), lh = sum_t log h(x_t).  The last block's lp, alpha and pred
    are left in the scratch."""
    cdef Py_ssize_t i, n, K = h.f.K
    cdef double run[2]
    run[0] = 0.0
    run[1] = 1.0
    lh[0] = 0.0
    for i in range(nb):
        n = _rows_of(i, B, L)
        lh[0] = _seq_lp(h, r0 + i * B, n, x.lp, x.fv, x.fi, lh[0])
        _forward(x.lp, n, K, x.ck + (i - 1) * K if i > 0 else NULL, h.pi, h.At, x.al, x.pr,
                 run)
        if i + 1 < nb:
            memcpy(x.ck + i * K, x.al + (n - 1) * K, K * sizeof(double))
    return run[0] + log(run[1])


cdef void _forward_again(Hmm *h, Scratch *x, Py_ssize_t r0, Py_ssize_t i, Py_ssize_t B) noexcept nogil:
    """Block i (a full one: not the last) of the backward sweep: its log-densities,
    alpha and pred recomputed from its checkpoint, as the forward sweep had them."""
    cdef Py_ssize_t K = h.f.K
    cdef double run[2]
    run[0] = 0.0
    run[1] = 1.0
    _seq_lp(h, r0 + i * B, B, x.lp, x.fv, x.fi, 0.0)
    _forward(x.lp, B, K, x.ck + (i - 1) * K if i > 0 else NULL, h.pi, h.At, x.al, x.pr, run)


cdef double _seq_softmax(Hmm *h, Scratch *x, Py_ssize_t r0, Py_ssize_t L, Py_ssize_t B,
                         Py_ssize_t nb, double w, double *lh, double *ent) noexcept nogil:
    """Forward-backward over a sequence's blocks: the blocks' gamma into the outputs
    and statistics (_emit_soft); on return x.al's row 0 is gamma_1 and x.M = sum_t
    xi_t.  Returns log p(x); ent = H[p(z | x)]."""
    cdef Py_ssize_t i, n, j, k, K = h.f.K
    cdef double obj, el = 0.0, et
    obj = _forward_sweep(h, x, r0, L, B, nb, lh)
    memset(x.M, 0, K * K * sizeof(double))
    i = nb - 1
    while i >= 0:
        n = _rows_of(i, B, L)
        if i < nb - 1:
            _forward_again(h, x, r0, i, B)
        el = _backward(x.lp, n, K, h.AtT, x.al, x.pr, i == nb - 1, x.M, x.v2, el)
        _emit_soft(h, x, r0 + i * B, n, w)
        if i > 0:
            # the carry: u of the block's first row, after block i - 1
            memcpy(x.pr + B * K, x.pr, K * sizeof(double))
        i -= 1
    # H[p(z | x)] = log p(x) - E log p(x, z), the zero-probability terms 0
    ent[0] = obj - fv_expected_log_joint(K, x.al, h.ls, x.M, h.At, h.lt, el)
    return obj


cdef double _seq_argmax(Hmm *h, Scratch *x, Py_ssize_t r0, Py_ssize_t L, Py_ssize_t B,
                        Py_ssize_t nb, double w, double *lh) noexcept nogil:
    """Viterbi over a sequence's blocks: the forward sweep keeps delta of each
    block's last row; the backtrack recomputes a block's back-pointers from its
    checkpoint and follows them from the state of its last row (the argmax at the
    end, else the back-pointer of the next block's first row).  The blocks' states
    into the outputs and statistics (_emit_hard); x.z[0] is z_1 on return.
    Returns the MAP path's log joint."""
    cdef Py_ssize_t i, n, t, j, k, K = h.f.K
    cdef int32_t zc, znext = -1
    cdef double obj
    lh[0] = 0.0
    for i in range(nb):
        n = _rows_of(i, B, L)
        lh[0] = _seq_lp(h, r0 + i * B, n, x.lp, x.fv, x.fi, lh[0])
        _viterbi(x.lp, n, K, h.ls, h.lt, i == 0, x.v1, x.v2, x.bp)
        if i + 1 < nb:
            memcpy(x.ck + i * K, x.v1, K * sizeof(double))
    j = 0
    for k in range(1, K):
        if x.v1[k] > x.v1[j]:
            j = k
    obj = x.v1[j]
    zc = <int32_t>j
    i = nb - 1
    while i >= 0:
        n = _rows_of(i, B, L)
        if i < nb - 1:
            _seq_lp(h, r0 + i * B, n, x.lp, x.fv, x.fi, 0.0)
            if i > 0:
                memcpy(x.v1, x.ck + (i - 1) * K, K * sizeof(double))
            _viterbi(x.lp, n, K, h.ls, h.lt, i == 0, x.v1, x.v2, x.bp)
        x.z[n - 1] = zc
        t = n - 1
        while t > 0:
            x.z[t - 1] = x.bp[t * K + x.z[t]]
            t -= 1
        if i > 0:
            zc = x.bp[x.z[0]]           # the state of block i - 1's last row
        _emit_hard(h, x, r0 + i * B, n, znext, w)
        znext = x.z[0]
        i -= 1
    return obj


cdef double _seq_sample(Hmm *h, Scratch *x, Py_ssize_t r0, Py_ssize_t L, Py_ssize_t B,
                        Py_ssize_t nb, double w, double *lh) noexcept nogil:
    """Forward filtering, backward sampling over a sequence's blocks (each block's
    alpha recomputed from its checkpoint); the draws keyed by the global row.  The
    blocks' states into the outputs and statistics; x.z[0] is z_1 on return.
    Returns the drawn path's log joint."""
    cdef Py_ssize_t i, n, K = h.f.K
    cdef int32_t znext = -1
    cdef double lj = 0.0
    _forward_sweep(h, x, r0, L, B, nb, lh)
    i = nb - 1
    while i >= 0:
        n = _rows_of(i, B, L)
        if i < nb - 1:
            _forward_again(h, x, r0, i, B)
        lj = _ffbs(x.lp, n, K, h.lt, h.At, x.al, znext, h.seed, <uint64_t>(r0 + i * B),
                   x.v1, x.z, lj)
        _emit_hard(h, x, r0 + i * B, n, znext, w)
        znext = x.z[0]
        i -= 1
    return lj + h.ls[x.z[0]]


cdef double _seq_vem(Hmm *h, Scratch *x, Py_ssize_t r0, Py_ssize_t L, double w, double *lh,
                     double *ent) noexcept nogil:
    """The factorised fixed point over the whole sequence (one block: x.al is q, L x
    K); q into the outputs and statistics, x.M = sum_t q_t-1 (x) q_t.  Returns the
    ELBO; ent its entropy."""
    cdef Py_ssize_t t, j, K = h.f.K
    cdef double obj
    lh[0] = _seq_lp(h, r0, L, x.lp, x.fv, x.fi, 0.0)
    obj = _vem(x.lp, L, K, h.ls, h.lt, h.ltT, x.al, x.v1, h.tol, h.max_iter, ent)
    memset(x.M, 0, K * K * sizeof(double))
    for t in range(1, L):
        for j in range(K):
            if x.al[(t - 1) * K + j] != 0.0:
                fv_axpy(x.M + j * K, x.al + t * K, x.al[(t - 1) * K + j], K)
    _emit_soft(h, x, r0, L, w)
    return obj


# ---------------------------------------------------------------- one partition
cdef inline Py_ssize_t _al8(Py_ssize_t n) noexcept nogil:
    """n rounded up to a multiple of 8 (doubles: a 64-byte line)."""
    return (n + 7) // 8 * 8


cdef inline Py_ssize_t _lane_need(Py_ssize_t L, Py_ssize_t K) noexcept nogil:
    """The doubles of one lane for a sequence of L rows: M (K x K), beta (K), the
    rows' maxima (L), and lp, alpha, pred (L x K each), each starting a cache line."""
    return _al8(K * K) + _al8(K) + _al8(L) + 3 * _al8(L * K)


cdef void _seq_tail(Hmm *h, Scratch *x, Py_ssize_t s, double obj, double lh, double ent,
                    double w, double *tot) noexcept nogil:
    """After a sequence's pass: its objective into seq_out and, unless no_stats,
    the totals, start and transition counts into the slot (x.al row 0 gamma_1 and
    x.M = sum_t xi_t for softmax and vem, x.z[0] = z_1 else)."""
    cdef Py_ssize_t K = h.f.K
    if h.seq_out != NULL:
        # a value the family does not take (NaN log h) marks its sequence NaN
        h.seq_out[s] = obj if lh == lh else NAN
    if h.no_stats:
        return
    # fused products (FV_FMA), as the earlier code's compiled additions were
    tot[0] = FV_FMA(w, obj, tot[0])
    tot[1] = FV_FMA(w, ent, tot[1])
    tot[2] = FV_FMA(w, lh, tot[2])
    if h.mode == H_SOFT or h.mode == H_VEM:
        fv_axpy(x.sc, x.al, w, K)
        fv_axpy(x.tc, x.M, w, K * K)
    else:
        x.sc[x.z[0]] += w


cdef Py_ssize_t _group(const int64_t *off, Py_ssize_t s, Py_ssize_t e, Py_ssize_t ckpt,
                       int lanes, Py_ssize_t K, Py_ssize_t *need) noexcept nogil:
    """The sequences s .. s + g - 1 (g returned, at most lanes, within the
    partition's end e) that run as one group of lanes: consecutive sequences of one
    block each (at most ckpt rows), LANE_ROWS rows in all (a longer sequence alone);
    need: the doubles of their lanes.  g = 1: s runs alone (need 0).  Fixed by the
    offsets: _setup sizes the scratch by the groups _partition will form."""
    cdef Py_ssize_t g = 0, rows = 0, used = 0, L
    while g < lanes and s + g < e:
        L = off[s + g + 1] - off[s + g]
        if L > ckpt or (g > 0 and rows + L > LANE_ROWS):
            break
        rows += L
        used += _lane_need(L, K)
        g += 1
    need[0] = used if g > 1 else 0
    return g if g > 1 else 1


cdef Py_ssize_t _lanes_pool(const int64_t *off, const int64_t *bounds, Py_ssize_t n_parts,
                            Py_ssize_t ckpt, int lanes, Py_ssize_t K) noexcept nogil:
    """The most doubles any group of lanes of these partitions needs (0: none)."""
    cdef Py_ssize_t p, s, e, g, need, most = 0
    for p in range(n_parts):
        s = bounds[p]
        e = bounds[p + 1]
        while s < e:
            g = _group(off, s, e, ckpt, lanes, K, &need)
            if need > most:
                most = need
            s += g
    return most


cdef void _lanes_softmax(Hmm *h, Scratch *x, double *ws, Py_ssize_t s0, Py_ssize_t G,
                         double *tot) noexcept nogil:
    """Forward-backward of the G sequences s0 .. s0 + G - 1 (one block each) side by
    side in lanes (fv_hmm.h: fv_forward_lanes, fv_backward_lanes: each sequence's
    arithmetic that of _seq_softmax alone); then, sequence by sequence in order,
    their outputs and statistics, as _seq_softmax and _partition give them."""
    cdef fv_lane ln[LANES]
    cdef double lhs[LANES]
    cdef Py_ssize_t g, j, k, K = h.f.K, L, r0
    cdef double *p = ws
    cdef double obj, et, w
    for g in range(G):
        r0 = h.off[s0 + g]
        L = h.off[s0 + g + 1] - r0
        ln[g].M = p
        ln[g].beta = p + _al8(K * K)
        ln[g].mx = ln[g].beta + _al8(K)
        ln[g].sym = (<const int32_t *>h.f.dp) + r0 if h.etab != NULL else NULL
        ln[g].lp = ln[g].mx + _al8(L)
        ln[g].al = ln[g].lp + _al8(L * K)
        ln[g].pr = ln[g].al + _al8(L * K)
        p = ln[g].pr + _al8(L * K)
        ln[g].n = L
        ln[g].ll = 0.0
        ln[g].prod = 1.0
        ln[g].el = 0.0
        memset(ln[g].M, 0, K * K * sizeof(double))
        lhs[g] = _seq_lp(h, r0, L, ln[g].lp, x.fv, x.fi, 0.0)
    fv_forward_lanes(ln, <int>G, h.pi, h.At, h.etab, h.mtab, h.nsym, K)
    fv_backward_lanes(ln, <int>G, h.AtT, K)
    for g in range(G):
        r0 = h.off[s0 + g]
        w = h.sw[s0 + g] if h.sw != NULL else 1.0
        obj = ln[g].ll + log(ln[g].prod)
        x.al = ln[g].al
        x.M = ln[g].M
        _emit_soft(h, x, r0, ln[g].n, w)
        # H[p(z | x)] = log p(x) - E log p(x, z), the zero-probability terms 0
        et = fv_expected_log_joint(K, x.al, h.ls, x.M, h.At, h.lt, ln[g].el)
        _seq_tail(h, x, s0 + g, obj, lhs[g], obj - et, w, tot)


cdef inline double *_scratch_slot(Hmm *h, Scratch *x, double *ws, int32_t *iw,
                                  double *slot) noexcept nogil:
    """A thread's per-sequence scratch (the matrix and vectors at the head of ws, the
    features' indices iw) and the slot's fields laid out, the slot cleared; returns
    where the slot's totals start."""
    cdef Py_ssize_t K = h.f.K
    x.M = ws
    x.v1 = ws + K * K
    x.v2 = x.v1 + K
    x.v3 = x.v2 + K
    x.fv = x.v3 + K
    x.fi = iw
    x.st = slot
    x.nk = slot + K * h.Sv
    x.sc = x.nk + K
    x.tc = x.sc + K
    memset(slot, 0, h.A * sizeof(double))
    return x.tc + K * K


cdef void _partition(Hmm *h, Py_ssize_t p, int tid, double *slot) noexcept nogil:
    """The sequences of partition p into the slot [stats (Sv x K sparse / K x S
    dense), nk (K), start (K), trans (K x K), objective, entropy, sum log h] -- or,
    in the E-step-only entries, into their outputs.  Under softmax, consecutive
    sequences of one block each run in groups of lanes (_lanes_softmax); every
    output and every sum of the slot takes its sequences' terms in their order,
    lanes or not."""
    cdef Py_ssize_t K = h.f.K, s, e, r0, L, B, nb, G, need
    cdef double *ws = h.buf + tid * h.buf_stride
    cdef int32_t *iw = h.ibuf + tid * h.ibuf_stride
    cdef Scratch x
    cdef double *tot
    cdef double w, lh, obj, ent
    tot = _scratch_slot(h, &x, ws, iw, slot)
    s = h.bounds[p]
    e = h.bounds[p + 1]
    while s < e:
        G = _group(h.off, s, e, h.ckpt, h.lanes, K, &need) if h.lanes > 1 else 1
        if G > 1:
            _lanes_softmax(h, &x, ws + h.fixd, s, G, tot)
            x.M = ws
            s += G
            continue
        r0 = h.off[s]
        L = h.off[s + 1] - r0
        w = h.sw[s] if h.sw != NULL else 1.0
        # the blocks' scratch, after the fixed part (M, v1..v3, the features')
        B = _block_rows(L, h.ckpt, h.mode)
        nb = (L + B - 1) // B
        x.lp = ws + h.fixd
        x.al = x.lp + (B + 1) * K
        x.pr = x.al + (B + 1) * K
        x.ck = x.pr + (B + 1) * K
        x.z = iw + h.fixi
        x.bp = x.z + (B + 1)
        ent = 0.0
        if h.mode == H_SOFT:
            obj = _seq_softmax(h, &x, r0, L, B, nb, w, &lh, &ent)
        elif h.mode == H_VEM:
            obj = _seq_vem(h, &x, r0, L, w, &lh, &ent)
        elif h.mode == H_ARGMAX:
            obj = _seq_argmax(h, &x, r0, L, B, nb, w, &lh)
        else:
            obj = _seq_sample(h, &x, r0, L, B, nb, w, &lh)
        _seq_tail(h, &x, s, obj, lh, ent, w, tot)
        s += 1


# ------------------------------------------------ one long sequence on two threads
# A partition of one checkpointed sequence under softmax (K = 4, 8, 12 or 16, two
# threads or more asked for) runs pipelined on a team of two threads, through a
# ring of PIPE_SETS sets of a block's scratch (set i % PIPE_SETS for block i):
#
#   forward sweep   thread 1 the log-densities and the exps of block k (fv_exp_table,
#                   as the lanes take them), thread 0 the forward recursion of block
#                   k from them (fv_forward_pre) and its checkpoint
#   backward sweep  thread 0 the backward pass of block i and its outputs and
#                   statistics (as _seq_softmax), then the carry into block i - 1's
#                   set; thread 1, ahead of it, the log-densities, exps and forward
#                   recursion of blocks nb - 2, nb - 3, ... from their checkpoints
#
# Hand-offs are counters (fv_post, fv_wait_ge): a block's set is prepared once its
# previous occupant is done with, and taken once prepared, so that either thread
# may run up to PIPE_SETS - 1 blocks ahead of the other (no lockstep).  Each row is
# computed by the functions of the sequential path (the lanes' forward rows are
# bitwise fv_fwd_row's), and every running sum -- log p(x), sum log h (thread 1's,
# block after block), el, M, the statistics and occupancies (thread 0's, from the
# last row to the first) -- meets its terms in the same order: the results are
# bitwise those of _seq_softmax, for any number of threads.  The two recursions of
# the backward sweep are independent (a block's forward recomputation starts from
# its checkpoint), so that the second forward pass runs beside the backward one
# instead of before it.  Memory: PIPE_SETS sets of (B + 2) K + 2 (B + 1) K + B + 1
# doubles and the nb x K checkpoints: still O(sqrt(L) K).
cdef struct Pipe:
    Hmm *h
    Scratch *x                # thread 0's scratch and slot (x.M, x.v2, the features')
    double *sets              # PIPE_SETS sets (_pipe_lane), set_need doubles apart
    Py_ssize_t set_need
    double *ck                # nb x K checkpoints
    double *fv1               # thread 1's features' scratch
    int32_t *fi1
    Py_ssize_t r0, L, B, nb
    double w, lh, obj, ent
    long prep                 # forward sweep: blocks prepared (thread 1)
    long fdone                # ... and run forward (thread 0)
    long rdone                # backward sweep: blocks recomputed (thread 1: nb - 2, ...)
    long bdone                # ... and run backward (thread 0: nb - 1, ...)


cdef inline Py_ssize_t _pipe_set_need(Py_ssize_t B, Py_ssize_t K) noexcept nogil:
    """The doubles of one set of the pipeline: al (B + 2 rows: row -1 the checkpoint,
    row B the carry), lp and pr (B + 1 rows), the rows' maxima (B + 1)."""
    return _al8((B + 2) * K) + 2 * _al8((B + 1) * K) + _al8(B + 1)


cdef inline void _pipe_lane(Pipe *c, Py_ssize_t i, fv_lane *ln) noexcept nogil:
    """The lane of block i (its set: lp, al, pr, mx; n its rows)."""
    cdef Py_ssize_t K = c.h.f.K, B = c.B
    cdef double *base = c.sets + (i % PIPE_SETS) * c.set_need
    ln.al = base + K
    ln.lp = base + _al8((B + 2) * K)
    ln.pr = ln.lp + _al8((B + 1) * K)
    ln.mx = ln.pr + _al8((B + 1) * K)
    ln.n = _rows_of(i, B, c.L)
    ln.sym = NULL
    ln.M = NULL
    ln.beta = NULL
    ln.ll = 0.0
    ln.prod = 1.0
    ln.el = 0.0


cdef double _pipe_prepare(Pipe *c, Py_ssize_t i, fv_lane *ln, double lh) noexcept nogil:
    """Block i's log-densities (lh + their sum log h returned) and exps into its set."""
    cdef Hmm *h = c.h
    _pipe_lane(c, i, ln)
    lh = _seq_lp(h, c.r0 + i * c.B, ln.n, ln.lp, c.fv1, c.fi1, lh)
    fv_exp_table(h.f.K, ln.lp, ln.pr, ln.mx, ln.n)
    return lh


cdef void _pipe_forward(Pipe *c, Py_ssize_t i, fv_lane *ln) noexcept nogil:
    """Block i's forward recursion (its set prepared), from its checkpoint."""
    cdef Py_ssize_t K = c.h.f.K
    if i > 0:
        memcpy(ln.al - K, c.ck + (i - 1) * K, K * sizeof(double))
    fv_forward_pre(ln, i == 0, c.h.pi, c.h.At, K)


cdef void _pipe_role(void *ctx, int tid, int nt) noexcept nogil:
    cdef Pipe *c = <Pipe *>ctx
    cdef Hmm *h = c.h
    cdef Scratch *x = c.x
    cdef Py_ssize_t i, j, k, a, b, d, e, nc, ce, K = h.f.K, B = c.B, nb = c.nb
    cdef fv_lane ln, nx
    cdef double ll = 0.0, prod = 1.0, lh = 0.0, el = 0.0
    if nt < 2:
        if tid == 0:        # one thread: the sequential passes
            c.obj = _seq_softmax(h, x, c.r0, c.L, B, nb, c.w, &c.lh, &c.ent)
        return
    if tid == 1:
        for k in range(nb):
            fv_wait_ge(&c.fdone, k - PIPE_SETS + 1)     # the set's last block run
            lh = _pipe_prepare(c, k, &ln, lh)
            fv_post(&c.prep, k + 1)
        c.lh = lh
        fv_wait_ge(&c.fdone, nb)
        j = nb - 2
        while j >= 0:
            # the set's previous block: j + PIPE_SETS, run backward (or of the forward sweep)
            fv_wait_ge(&c.bdone, nb - j - PIPE_SETS)
            _pipe_prepare(c, j, &ln, 0.0)
            _pipe_forward(c, j, &ln)
            fv_post(&c.rdone, nb - 1 - j)
            j -= 1
        return
    for k in range(nb):
        fv_wait_ge(&c.prep, k + 1)
        _pipe_lane(c, k, &ln)
        ln.ll = ll
        ln.prod = prod
        _pipe_forward(c, k, &ln)
        ll = ln.ll
        prod = ln.prod
        if k + 1 < nb:
            memcpy(c.ck + k * K, ln.al + (ln.n - 1) * K, K * sizeof(double))
        fv_post(&c.fdone, k + 1)
    c.obj = ll + log(prod)
    memset(x.M, 0, K * K * sizeof(double))
    # block i's backward pass in chunks of PIPE_CHUNK rows (from its last row to its
    # first: the same chains of el and M), each followed by a chunk of block i + 1's
    # outputs and statistics (from its last row to its first): the statistics' work
    # fills the backward recursion's latencies; block i's follow with block i - 1
    i = nb - 1
    while i >= 0:
        fv_wait_ge(&c.rdone, nb - 1 - i)
        _pipe_lane(c, i, &ln)
        if i == nb - 1:
            el = _backward(ln.lp, ln.n, K, h.AtT, ln.al, ln.pr, True, x.M, x.v2, el)
        else:
            _pipe_lane(c, i + 1, &nx)
            nc = (ln.n + PIPE_CHUNK - 1) // PIPE_CHUNK
            ce = (nx.n + nc - 1) // nc              # rows of block i + 1 per chunk
            b = ln.n
            e = nx.n
            while b > 0:
                a = b - PIPE_CHUNK if b > PIPE_CHUNK else 0
                el = _backward(ln.lp + a * K, b - a, K, h.AtT, ln.al + a * K, ln.pr + a * K,
                               False, x.M, x.v2, el)
                b = a
                if e > 0:
                    d = e - ce if e > ce else 0
                    x.al = nx.al + d * K
                    _emit_soft(h, x, c.r0 + (i + 1) * B + d, e - d, c.w)
                    e = d
            fv_post(&c.bdone, nb - 1 - i)       # block i + 1 done with
        if i > 0:
            # the carry: u of the block's first row, after block i - 1 (row B of
            # its set, which its preparation does not write)
            _pipe_lane(c, i - 1, &nx)
            memcpy(nx.pr + B * K, ln.pr, K * sizeof(double))
        i -= 1
    _pipe_lane(c, 0, &ln)
    x.al = ln.al                                # block 0's: gamma_1 its first row
    _emit_soft(h, x, c.r0, ln.n, c.w)
    fv_post(&c.bdone, nb)
    # H[p(z | x)] = log p(x) - E log p(x, z), the zero-probability terms 0
    c.ent = c.obj - fv_expected_log_joint(K, x.al, h.ls, x.M, h.At, h.lt, el)


cdef inline bint _pipelined(Hmm *h, Py_ssize_t p) noexcept nogil:
    """Partition p runs pipelined: one sequence of more than the checkpoint rows."""
    return (h.pipe != NULL and h.bounds[p + 1] - h.bounds[p] == 1
            and h.off[h.bounds[p] + 1] - h.off[h.bounds[p]] > h.ckpt)


cdef void _partition_pipe(Hmm *h, Py_ssize_t p, double *slot) noexcept nogil:
    """Partition p (_pipelined) into its slot, as _partition would: the team of two
    runs the sequence (thread 0 with scratch row 0, thread 1 with row 1's features'
    scratch; the sets in h.pipe)."""
    cdef Py_ssize_t K = h.f.K, s = h.bounds[p]
    cdef double *ws = h.buf
    cdef double *ws1 = h.buf + h.buf_stride
    cdef Scratch x
    cdef Pipe c
    cdef double *tot
    tot = _scratch_slot(h, &x, ws, h.ibuf, slot)
    c.h = h
    c.x = &x
    c.r0 = h.off[s]
    c.L = h.off[s + 1] - c.r0
    c.w = h.sw[s] if h.sw != NULL else 1.0
    c.B = _block_rows(c.L, h.ckpt, h.mode)
    c.nb = (c.L + c.B - 1) // c.B
    # the sequential layout (a team of one), as _partition's
    x.lp = ws + h.fixd
    x.al = x.lp + (c.B + 1) * K
    x.pr = x.al + (c.B + 1) * K
    x.ck = x.pr + (c.B + 1) * K
    x.z = h.ibuf + h.fixi
    x.bp = x.z + (c.B + 1)
    c.set_need = _pipe_set_need(c.B, K)
    c.sets = h.pipe
    c.ck = h.pipe + PIPE_SETS * c.set_need
    c.fv1 = ws1 + K * K + 3 * K
    c.fi1 = h.ibuf + h.ibuf_stride
    c.lh = 0.0
    c.ent = 0.0
    c.prep = 0
    c.fdone = 0
    c.rdone = 0
    c.bdone = 0
    fv_team2(_pipe_role, &c)
    _seq_tail(h, &x, s, c.obj, c.lh, c.ent, c.w, tot)


cdef void _fold(Hmm *h, const double *slot) noexcept nogil:
    """One slot into the results: packed bits' lookup-space statistics folded back
    to the features, a sparse form's S x K transposed, a dense form's as it is."""
    cdef Py_ssize_t j, k, K = h.f.K, S = h.f.S, Sv = h.Sv
    cdef const double *r = slot + K * Sv
    if h.kind == F_BITS:
        _bits_fold(slot, h.f.D, S, K, h.stT)
    elif h.f.act != NULL:
        for j in range(S):
            for k in range(K):
                h.stats[k * S + j] += slot[j * K + k]
    else:
        for j in range(K * S):
            h.stats[j] += slot[j]
    for k in range(K):
        h.nk[k] += r[k]
        h.start[k] += r[K + k]
    for j in range(K * K):
        h.trans[j] += r[2 * K + j]
    for j in range(3):
        h.totals[j] += r[2 * K + K * K + j]


cdef void _run(Hmm *h, Py_ssize_t n_parts, double *slots, Py_ssize_t n_slots,
               Py_ssize_t width, int T) noexcept nogil:
    """Every partition once, taken dynamically by T threads in rounds of n_slots,
    each into its own slot; the slots folded in partition order after each round
    (in the E-step-only entries each partition writes its own rows, no fold)."""
    cdef Py_ssize_t start = 0, nw, i
    cdef int tid
    while start < n_parts:
        if _pipelined(h, start):
            # one long sequence: its own round, on a team of two (_partition_pipe)
            _partition_pipe(h, start, slots)
            if not h.no_stats:
                _fold(h, slots)
            start += 1
            continue
        nw = n_slots if n_slots < n_parts - start else n_parts - start
        for i in range(1, nw):
            if _pipelined(h, start + i):
                nw = i
                break
        for i in prange(nw, num_threads=T, schedule='dynamic', chunksize=1):
            tid = threadid()
            _partition(h, start + i, tid, slots + i * width)
        if not h.no_stats:
            for i in range(nw):
                _fold(h, slots + i * width)
        start = start + nw


cdef Py_ssize_t _partitions(const int64_t *off, Py_ssize_t n_seq, Py_ssize_t budget,
                            int64_t *bounds) noexcept nogil:
    """Consecutive sequences grouped while the group holds at most budget rows (a
    longer sequence alone); bounds[p] .. bounds[p + 1] the sequences of partition p;
    returns their number."""
    cdef Py_ssize_t n = 0, s = 0
    cdef int64_t first
    bounds[0] = 0
    while s < n_seq:
        first = off[s]
        s += 1
        while s < n_seq and off[s + 1] - first <= budget:
            s += 1
        n += 1
        bounds[n] = s
    return n


def partition_bounds(offsets, Py_ssize_t budget=SEQ_PART):
    """The partitions of whole sequences (int64 bounds into the sequences) that
    the kernels run, fixed by the offsets alone (for tests and callers that split
    work the same way)."""
    cdef const int64_t[::1] off = _check_offsets("partition_bounds", offsets,
                                                 int(offsets[len(offsets) - 1])
                                                 if len(offsets) else 0)
    if budget < 1:
        raise ValueError(f"partition_bounds: budget must be >= 1, got {budget}")
    cdef Py_ssize_t n_seq = off.shape[0] - 1
    cdef cnp.ndarray[cnp.int64_t, ndim=1] b = np.zeros(n_seq + 1, dtype=np.int64)
    cdef Py_ssize_t n = _partitions(&off[0], n_seq, budget, <int64_t *>b.data)
    return b[:n + 1].copy()


def set_checkpoint_rows(n):
    """Sequences of more than n rows run the checkpointed passes of modes 0-2
    (softmax, argmax, sample; see this module's header): O(sqrt(L) K) scratch per
    thread instead of O(L K), the same results bitwise, at the cost of a second
    forward computation.  n: an integer >= 1 (default CHECKPOINT_ROWS = 10^6); a
    setting of the process, which each entry reads as it starts.  Returns the
    previous value (to restore it)."""
    global _ckpt_rows
    if (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1
            or n > np.iinfo(np.int64).max):
        raise ValueError(f"set_checkpoint_rows: n must be an integer >= 1, got {n!r}")
    cdef Py_ssize_t prev = _ckpt_rows
    _ckpt_rows = int(n)
    return prev


def checkpoint_rows():
    """The threshold of the checkpointed passes: sequences of more rows take them."""
    return _ckpt_rows


def scratch_size(offsets, Py_ssize_t K, int mode=H_SOFT):
    """(doubles, int32) of the blocks' scratch one thread allocates for these
    sequences at the current threshold (the features' and the fixed K x K part
    aside): (3 (B + 1) + nb) K and (B + 1) (1 + K under argmax) for the sequence
    that needs the most (B rows per block, nb blocks)."""
    cdef const int64_t[::1] off = _check_offsets("scratch_size", offsets,
                                                 int(offsets[len(offsets) - 1])
                                                 if len(offsets) else 0)
    if K < 1:
        raise ValueError(f"scratch_size: K must be >= 1, got {K}")
    if mode < 0 or mode > H_VEM:
        raise ValueError(f"scratch_size: mode must be 0 .. 3, got {mode}")
    cdef Py_ssize_t nd = 0, ni = 0
    if off.shape[0] > 1:
        _scratch_need(&off[0], off.shape[0] - 1, K, _ckpt_rows, mode, &nd, &ni)
    return nd, ni


# ------------------------------------------------------------------ validation
def _check_offsets(str fn, offsets, Py_ssize_t N, bint longest=False):
    """offsets validated (returned), or with longest the most rows of a sequence."""
    if (not isinstance(offsets, np.ndarray) or offsets.dtype != np.int64 or offsets.ndim != 1
            or not offsets.flags.c_contiguous):
        raise ValueError(f"{fn}: offsets must be a C-contiguous 1-D int64 array (n_seq + 1), got "
                         f"{type(offsets).__name__}"
                         + (f" of dtype {offsets.dtype} and shape {offsets.shape}"
                            if isinstance(offsets, np.ndarray) else ""))
    if offsets.shape[0] < 1:
        raise ValueError(f"{fn}: offsets must hold at least one entry (0)")
    if offsets[0] != 0:
        raise ValueError(f"{fn}: offsets must start at 0, got offsets[0] = {offsets[0]}")
    cdef Py_ssize_t last = offsets.shape[0] - 1
    if offsets[last] != N:
        raise ValueError(f"{fn}: offsets must end at N = {N} (the rows of data), got "
                         f"offsets[-1] = {offsets[last]}")
    if offsets.shape[0] == 1:
        return 0 if longest else offsets
    d = np.diff(offsets)
    if d.min() <= 0:
        i = int(np.argmax(d <= 0))
        raise ValueError(f"{fn}: offsets must be strictly increasing (every sequence at least "
                         f"one row): offsets[{i}] = {offsets[i]}, offsets[{i + 1}] = "
                         f"{offsets[i + 1]}")
    return int(d.max()) if longest else offsets


def _float_array(str fn, str name, a, shape):
    if (not isinstance(a, np.ndarray) or a.dtype != np.float64 or a.shape != shape
            or not a.flags.c_contiguous):
        got = (f"dtype {a.dtype}, shape {a.shape}" if isinstance(a, np.ndarray)
               else type(a).__name__)
        raise ValueError(f"{fn}: {name} must be a C-contiguous float64 array of shape {shape}, "
                         f"got {got}")
    return a


def _validate_hmm(str fn, data, aux, int kind, uintptr_t address, Py_ssize_t S, W, c,
                  log_start, log_trans, offsets, int mode):
    """The checks every entry shares; returns (N, D, K, aux, n_seq, longest)."""
    cdef Py_ssize_t N, D, K
    N, D, aux = _validate_data(fn, data, aux, kind, address, S)
    if not isinstance(W, np.ndarray) or W.ndim != 2:
        raise ValueError(f"{fn}: W must be a 2-D float64 array (K x S)")
    K = W.shape[0]
    if K < 1:
        raise ValueError(f"{fn}: W has {K} rows; it needs K >= 1 states")
    _float_array(fn, "W", W, (K, S))
    _float_array(fn, "c", c, (K,))
    # (few NumPy calls: each pass of a fit runs these checks; x < inf is False for NaN)
    if not np.isfinite(W).all():
        raise ValueError(f"{fn}: W must be finite")
    if not np.isfinite(c).all():
        raise ValueError(f"{fn}: c must be finite")
    _float_array(fn, "log_start", log_start, (K,))
    _float_array(fn, "log_trans", log_trans, (K, K))
    if not (log_start < np.inf).all():
        raise ValueError(f"{fn}: log_start must be finite where the probability is positive "
                         "(-inf for a forbidden start; no NaN or +inf)")
    if not log_start.max() > -np.inf:
        raise ValueError(f"{fn}: log_start gives every state probability 0")
    if not (log_trans < np.inf).all():
        raise ValueError(f"{fn}: log_trans must be finite where the probability is positive "
                         "(-inf for a forbidden transition; no NaN or +inf)")
    bad = log_trans.max(axis=1) == -np.inf
    if bad.any():
        raise ValueError(f"{fn}: log_trans row {int(np.argmax(bad))} gives every transition "
                         "probability 0 (each state needs a successor)")
    if mode == H_VEM and not (log_trans > -np.inf).all():
        raise ValueError(f"{fn}: mode 3 (vem) needs every log_trans entry finite: the "
                         "factorised fixed point is not defined with forbidden transitions")
    cdef Py_ssize_t longest = _check_offsets(fn, offsets, N, True)
    return N, D, K, aux, offsets.shape[0] - 1, longest


cdef object _setup(Hmm *h, str fn, data, aux, int kind, uintptr_t address, Py_ssize_t S,
                   W, c, log_start, log_trans, offsets, int mode, int n_threads, list keep):
    """Fill the context (the features table, the parameters, each thread's scratch,
    the partitions); returns (N, K, n_seq, T, n_parts).  Every array the context
    points into is appended to keep (alive while the kernel runs)."""
    cdef Py_ssize_t N, D, K, n_seq, Lm
    N, D, K, aux, n_seq, Lm = _validate_hmm(fn, data, aux, kind, address, S, W, c, log_start,
                                            log_trans, offsets, mode)
    cdef const int64_t *offp = NULL
    cdef cnp.ndarray arr
    if aux is not None:
        arr = aux
        offp = <const int64_t *>arr.data
    cdef const void *dp = NULL
    keep.append(_data_pointer(data, kind, &dp))
    cdef active_fn act = _active(kind)
    cdef features_fn feat = _table(kind, address)
    cdef Py_ssize_t Am = max(1, _max_active(data, kind, D))
    cdef double[:, ::1] Wt = _transposed(W, kind, D) if act != NULL else np.zeros((1, 1))
    cdef double[::1] zeros = np.zeros(K)
    keep.extend([Wt, zeros])
    # partitions of whole sequences (fixed by the offsets alone)
    cdef int64_t[::1] bounds = np.zeros(n_seq + 1, dtype=np.int64)
    cdef const int64_t[::1] offv = offsets
    cdef Py_ssize_t n_parts = _partitions(&offv[0], n_seq, SEQ_PART, &bounds[0]) if n_seq else 0
    keep.append(bounds)
    cdef int T = clamp_threads(fn, n_threads, n_parts if n_parts > 0 else 1)
    # per thread: M (K x K), 3 K, the features' values, then the blocks' (see the
    # header: Memory), sized by the sequence that needs the most
    cdef Py_ssize_t fvl = (Am + 1) if act != NULL else DB * (S + 1)
    cdef Py_ssize_t thr = _ckpt_rows
    cdef Py_ssize_t nd = 0, ni = 0
    if n_seq > 0:
        _scratch_need(&offv[0], n_seq, K, thr, mode, &nd, &ni)
    cdef Py_ssize_t fixd = (K * K + 3 * K + fvl + 7) // 8 * 8
    cdef Py_ssize_t fixi = (Am + 15) // 16 * 16
    # softmax's lanes (see _lanes_softmax) share the blocks' scratch, made large
    # enough for the largest group of lanes the partitions form
    cdef int lanes = LANES if mode == H_SOFT and K <= LANE_K else 1
    cdef Py_ssize_t pool = nd
    if lanes > 1 and n_parts > 0:
        pool = max(nd, _lanes_pool(&offv[0], &bounds[0], n_parts, thr, lanes, K))
    # a checkpointed sequence under softmax runs pipelined on two threads (_pipelined):
    # two rows of scratch, each with a set of blocks (thread 0's with the checkpoints;
    # B the longest sequence's rows per block, at least any other's, and nb <= B)
    cdef Py_ssize_t Bp, rows = T
    cdef double[::1] pipebuf = None
    if (mode == H_SOFT and K in (4, 8, 12, 16) and Lm > thr
            and clamp_threads(fn, n_threads, 2) >= 2):
        Bp = _block_rows(Lm, thr, mode)
        pipebuf = _aligned(1, PIPE_SETS * _pipe_set_need(Bp, K) + Bp * K)[0]
        keep.append(pipebuf)
        rows = max(T, 2)
    # each thread's scratch: written before it is read (not cleared: see _aligned)
    cdef double[:, ::1] buf = _aligned(rows, (fixd + pool + 7) // 8 * 8 + 8, False)
    cdef int32_t[:, ::1] ibuf = np.empty((rows, (fixi + ni + 15) // 16 * 16 + 16),
                                         dtype=np.int32)
    keep.extend([buf, ibuf])
    cdef const double[:, ::1] Wv = W
    cdef const double[::1] cv = c
    _fill_table(&h.f, act, feat, dp, offp, D, Am, S, K, &Wt[0, 0], &Wv[0, 0], &cv[0],
                &zeros[0], buf, ibuf)
    ls = np.ascontiguousarray(log_start)
    lt = np.ascontiguousarray(log_trans)
    ltT = np.ascontiguousarray(lt.T)
    pi = np.exp(ls)
    At = np.exp(lt)
    AtT = np.ascontiguousarray(At.T)
    keep.extend([ls, lt, ltT, pi, At, AtT])
    cdef const double[::1] lsv = ls
    cdef const double[:, ::1] ltv = lt
    cdef const double[:, ::1] ltTv = ltT
    cdef const double[::1] piv = pi
    cdef const double[:, ::1] Av = At
    cdef const double[:, ::1] ATv = AtT
    h.kind = kind
    h.Sv = D * 32 if kind == F_BITS else S
    h.A = K * h.Sv + 2 * K + K * K + 3
    h.ckpt = thr
    h.fixd = fixd
    h.fixi = fixi
    h.lanes = lanes
    h.pipe = &pipebuf[0] if pipebuf is not None else NULL
    # the built-in Gaussian and categorical forms run fv_hmm.h's emissions (the same
    # values as the features table's, without its per-row calls)
    cdef bint gauss = kind in (F_GAUSS_F64, F_GAUSS_F32, F_GAUSS_FULL_F64, F_GAUSS_FULL_F32)
    h.emit = 0
    if K % 4 == 0 and gauss:
        h.emit = 1
    elif K % 4 == 0 and kind == F_CATEGORICAL_I32:
        h.emit = 2
    h.f32 = kind == F_GAUSS_F32 or kind == F_GAUSS_FULL_F32
    h.full = kind == F_GAUSS_FULL_F64 or kind == F_GAUSS_FULL_F32
    # log h and c + logw + log h as the sparse form and fv_init_row compute them
    h.glh = -0.9189385332046727 * D if gauss else 0.0
    gbase = (np.ascontiguousarray(c, dtype=np.float64) + np.zeros(K)) + h.glh
    keep.append(gbase)
    cdef const double[::1] gbv = gbase
    h.gbase = &gbv[0]
    # one categorical feature: a row's log-densities, and so the exps the lanes'
    # forward rows take, are those of its code; computed once per code by the
    # same functions (fv_lp_cat, fv_exp_table), so the same values bit for bit
    h.lptab = NULL
    h.etab = NULL
    h.mtab = NULL
    h.nsym = 0
    cdef double[:, ::1] lptab, etab
    cdef double[::1] mtab
    cdef int32_t[::1] codes
    cdef const int64_t *auxp
    if h.emit == 2 and D == 1:
        auxp = <const int64_t *>h.f.off
        h.nsym = auxp[1] - auxp[0]
        if lanes == 1 and h.nsym > N:
            h.nsym = 0          # a table larger than the data: fv_lp_cat row by row
    if h.nsym > 0:
        codes = np.arange(h.nsym, dtype=np.int32)
        lptab = _aligned(h.nsym, K)
        fv_lp_cat(&codes[0], auxp, 1, 0, h.nsym, h.f.Wt, h.f.c, h.f.logw, K, &lptab[0, 0], 0.0)
        keep.append(lptab)
        h.lptab = &lptab[0, 0]
    if h.nsym > 0 and lanes > 1:
        etab = _aligned(h.nsym, K)
        mtab = np.zeros(h.nsym)
        if fv_exp_table(K, &lptab[0, 0], &etab[0, 0], &mtab[0], h.nsym):
            keep.extend([etab, mtab])
            h.etab = &etab[0, 0]
            h.mtab = &mtab[0]
    h.off = &offv[0]
    h.bounds = &bounds[0]
    h.sw = NULL
    h.ls = &lsv[0]
    h.lt = &ltv[0, 0]
    h.ltT = &ltTv[0, 0]
    h.pi = &piv[0]
    h.At = &Av[0, 0]
    h.AtT = &ATv[0, 0]
    h.mode = mode
    h.seed = 0
    h.tol = 0.0
    h.max_iter = 0
    h.buf = &buf[0, 0]
    h.buf_stride = buf.shape[1]
    h.ibuf = &ibuf[0, 0]
    h.ibuf_stride = ibuf.shape[1]
    h.gamma_out = NULL
    h.seq_out = NULL
    h.path_out = NULL
    h.no_stats = False
    h.stats = NULL
    h.nk = NULL
    h.start = NULL
    h.trans = NULL
    h.totals = NULL
    h.stT = NULL
    return N, K, n_seq, T, n_parts


def _check_vem(str fn, tol, max_iter):
    if not (isinstance(tol, (int, float, np.floating, np.integer)) and np.isfinite(tol)
            and tol >= 0):
        raise ValueError(f"{fn}: tol must be a finite number >= 0, got {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 0:
        raise ValueError(f"{fn}: max_iter must be an integer >= 0, got {max_iter!r}")


# --------------------------------------------------------------------- entries
def hmm_pass(data, aux, int features, uintptr_t address, Py_ssize_t S, W, c, log_start,
             log_trans, offsets, sample_weight, stats, nk, start_counts, trans_counts, totals,
             int mode, unsigned long long seed, int n_threads, tol=1e-8, max_iter=200,
             labels=None):
    """One pass of the chain's local step over the sequences of an HMM.

    IN    data, aux, features, address, S: the family's prepared rows and features
          table, exactly as _expfam.row_pass takes them (N rows in all);
          W (K x S) and c (K): the family's effective parameters;
          log_start (K), log_trans (K x K, row j: from state j): the chain's log
          start and transition probabilities (expected logs under mean field: they
          need not be normalised); -inf where a probability is 0;
          offsets (n_seq + 1 int64): sequence s is the rows offsets[s] ..
          offsets[s + 1] - 1 (0 = offsets[0] < ... < offsets[-1] = N);
          sample_weight: n_seq float64 (one weight per sequence), or None / length 0
    OUT   labels (keyword, N int64 or None): the path of modes 1 and 2
    INOUT stats (K x S) += sum_t w r_t(k) T(x_t); nk (K) += sum_t w r_t(k);
          start_counts (K) += w r_1(k); trans_counts (K x K) += w sum_t xi_t(j, k);
          totals (3) += [sum w objective, sum w entropy of q, sum w sum_t log h(x_t)]
          objective per sequence: log p(x) (mode 0), the path's log joint (1, 2),
          the ELBO (3); entropy: H[p(z | x)] (0), sum_t H[q(z_t)] (3), 0 else
    mode  0 softmax (forward-backward), 1 argmax (Viterbi), 2 sample (forward
          filtering, backward sampling; draws keyed by (seed, global row)), 3 vem
          (the factorised fixed point, swept until the ELBO gains less than tol,
          at most max_iter sweeps)

    A sequence longer than checkpoint_rows() (10^6 rows unless
    set_checkpoint_rows says otherwise) runs modes 0-2 checkpointed, in blocks of
    ceil(sqrt(L)) rows: O(sqrt(L) K) scratch, the same results bitwise (see the
    module's header); mode 3 keeps the whole sequence's q (L x K) whatever its length.
    """
    cdef str fn = "hmm_pass"
    if mode < 0 or mode > H_VEM:
        raise ValueError(f"{fn}: mode must be 0 (softmax), 1 (argmax), 2 (sample) or 3 (vem), "
                         f"got {mode}")
    _check_vem(fn, tol, max_iter)
    cdef Hmm h
    cdef list keep = []
    cdef Py_ssize_t N, K, n_seq, n_parts
    cdef int T
    N, K, n_seq, T, n_parts = _setup(&h, fn, data, aux, features, address, S, W, c,
                                     log_start, log_trans, offsets, mode, n_threads, keep)
    _float_array(fn, "stats", stats, (K, S))
    _float_array(fn, "nk", nk, (K,))
    _float_array(fn, "start_counts", start_counts, (K,))
    _float_array(fn, "trans_counts", trans_counts, (K, K))
    _float_array(fn, "totals", totals, (3,))
    cdef const double[::1] sw
    if sample_weight is not None and not (isinstance(sample_weight, np.ndarray)
                                          and sample_weight.ndim == 1
                                          and sample_weight.shape[0] == 0):
        _float_array(fn, "sample_weight", sample_weight, (n_seq,))
        if not np.all(np.isfinite(sample_weight)) or np.any(sample_weight < 0):
            raise ValueError(f"{fn}: sample_weight must be finite and >= 0")
        sw = sample_weight
        if n_seq > 0:
            h.sw = &sw[0]
    cdef int64_t[::1] lab
    if labels is not None:
        if (not isinstance(labels, np.ndarray) or labels.dtype != np.int64
                or labels.shape != (N,) or not labels.flags.c_contiguous):
            raise ValueError(f"{fn}: labels must be a C-contiguous int64 array of shape ({N},) "
                             "or None")
        if mode == H_ARGMAX or mode == H_SAMPLE:
            lab = labels
            if N > 0:
                h.path_out = &lab[0]
    if n_seq == 0:
        return
    cdef double[:, ::1] st = stats
    cdef double[::1] nkv = nk
    cdef double[::1] scv = start_counts
    cdef double[:, ::1] tcv = trans_counts
    cdef double[::1] tov = totals
    cdef double[:, ::1] stT = np.zeros((S if features == F_BITS else 1, K))
    h.stats = &st[0, 0]
    h.nk = &nkv[0]
    h.start = &scv[0]
    h.trans = &tcv[0, 0]
    h.totals = &tov[0]
    h.stT = &stT[0, 0]
    h.seed = seed
    h.tol = tol
    h.max_iter = max_iter
    cdef Py_ssize_t A8 = (h.A + 7) // 8 * 8
    cdef Py_ssize_t n_slots = max(1, min(n_parts, <Py_ssize_t>T * ROUND,
                                         max(<Py_ssize_t>T, (256 << 20) // (8 * A8))))
    cdef double[:, ::1] slots = _aligned(n_slots, A8)
    cdef double before = totals[2]
    cdef Py_ssize_t j, k
    with nogil:
        _run(&h, n_parts, &slots[0, 0], n_slots, A8, T)
    if isnan(totals[2]) and not isnan(before) and _has_codes(features, data):
        raise ValueError(f"{fn}: {_BAD_VALUE}; the accumulators hold partial sums")
    if features == F_BITS:
        for j in range(S):
            for k in range(K):
                st[k, j] += stT[j, k]


def _estep(str fn, data, aux, int features, uintptr_t address, Py_ssize_t S, W, c, log_start,
           log_trans, offsets, int mode, gamma, seq_out, path, int n_threads, tol, max_iter):
    cdef Hmm h
    cdef list keep = []
    cdef Py_ssize_t N, K, n_seq, n_parts
    cdef int T
    N, K, n_seq, T, n_parts = _setup(&h, fn, data, aux, features, address, S, W, c,
                                     log_start, log_trans, offsets, mode, n_threads, keep)
    _float_array(fn, "loglik" if path is None else "logjoint", seq_out, (n_seq,))
    cdef double[:, ::1] g
    cdef double[::1] so
    cdef int64_t[::1] pv
    if gamma is not None:
        _float_array(fn, "gamma", gamma, (N, K))
    if path is not None and (not isinstance(path, np.ndarray) or path.dtype != np.int64
                             or path.shape != (N,) or not path.flags.c_contiguous):
        raise ValueError(f"{fn}: path must be a C-contiguous int64 array of shape ({N},)")
    if n_seq == 0:
        return
    if gamma is not None:
        g = gamma
        h.gamma_out = &g[0, 0]
    if path is not None:
        pv = path
        h.path_out = &pv[0]
    so = seq_out
    h.seq_out = &so[0]
    h.no_stats = True
    h.tol = tol
    h.max_iter = max_iter
    cdef Py_ssize_t n_slots = max(1, min(n_parts, <Py_ssize_t>T * ROUND))
    cdef double[:, ::1] slots = _aligned(n_slots, (h.A + 7) // 8 * 8)
    with nogil:
        _run(&h, n_parts, &slots[0, 0], n_slots, slots.shape[1], T)
    if np.any(np.isnan(seq_out)) and _has_codes(features, data):
        raise ValueError(f"{fn}: {_BAD_VALUE}")


def hmm_posteriors(data, aux, int features, uintptr_t address, Py_ssize_t S, W, c, log_start,
                   log_trans, offsets, gamma, loglik, int n_threads, int mode=0, tol=1e-8,
                   max_iter=200):
    """The E-step alone (predict_proba, score_samples).

    IN    as hmm_pass (data ... offsets)
    OUT   gamma (N x K float64): p(z_t = k | x of its sequence) (mode 0), or the
          factorised q(z_t = k) (mode 3); loglik (n_seq float64): each sequence's
          log p(x) (mode 0) or ELBO (mode 3)
    mode  0 exact (forward-backward) or 3 vem (tol, max_iter as hmm_pass)

    Mode 0 runs a sequence longer than checkpoint_rows() checkpointed, as hmm_pass
    does (gamma written block by block; no other L x K scratch).
    """
    cdef str fn = "hmm_posteriors"
    if mode != H_SOFT and mode != H_VEM:
        raise ValueError(f"{fn}: mode must be 0 (forward-backward) or 3 (vem), got {mode}")
    _check_vem(fn, tol, max_iter)
    if gamma is None:
        raise ValueError(f"{fn}: gamma must be an (N, K) float64 array")
    _estep(fn, data, aux, features, address, S, W, c, log_start, log_trans, offsets, mode,
           gamma, loglik, None, n_threads, tol, max_iter)


def hmm_viterbi(data, aux, int features, uintptr_t address, Py_ssize_t S, W, c, log_start,
                log_trans, offsets, path, logjoint, int n_threads):
    """The MAP path of every sequence (predict).

    IN    as hmm_pass (data ... offsets)
    OUT   path (N int64): the most probable state of each row on its sequence's
          MAP path (the first maximiser on ties); logjoint (n_seq float64): each
          sequence's log p(x, path)

    A sequence longer than checkpoint_rows() runs checkpointed, as hmm_pass does
    (delta kept at the blocks' ends; each block's back-pointers recomputed in the
    backtrack), with the same path.
    """
    cdef str fn = "hmm_viterbi"
    if path is None:
        raise ValueError(f"{fn}: path must be an (N,) int64 array")
    _estep(fn, data, aux, features, address, S, W, c, log_start, log_trans, offsets, H_ARGMAX,
           None, logjoint, path, n_threads, 0.0, 0)
