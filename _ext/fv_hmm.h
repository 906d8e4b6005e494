/* Inner loops of the HMM sequence driver (_hmm.pyx): the vector-matrix product and
 * the outer-product sum below, the forward and backward rows and the lanes (their
 * section's header), the Gaussian and categorical emissions (theirs).
 *
 * fv_vecmat: y[0:K] = sum_j x[j] M[j, 0:K] (M row-major K x K), the K sums held in
 * vector registers for K a multiple of 4 up to 32 -- the forward step's predicted
 * state alpha_{t-1} A and the backward step's A u_{t+1} (through A^T).  The even
 * and the odd j are summed apart, then added: two dependency chains of FMAs
 * instead of one (an axpy per j into y in memory, before, chained each term's load
 * behind the previous term's store).  A fixed order, whatever the thread. */
#ifndef FV_HMM_H
#define FV_HMM_H
#include <string.h>
#include <math.h>
#include "fv_expfam.h"

#define FV_VECMAT_NV(NV)                                                                  \
static inline __attribute__((always_inline))                                               \
void fv_vecmat_##NV(double *restrict y, const double *restrict x,                         \
                    const double *restrict M, long K)                                     \
{                                                                                         \
    fv_v4 acc[2][NV];                                                                     \
    for (int u = 0; u < (NV); u++)                                                        \
        acc[0][u] = acc[1][u] = (fv_v4){0.0, 0.0, 0.0, 0.0};                              \
    long j = 0;                                                                           \
    for (; j + 2 <= K; j += 2) {                                                          \
        for (int h = 0; h < 2; h++) {                                                     \
            const double *row = M + (j + h) * K;                                          \
            const double xj = x[j + h];                                                   \
            const fv_v4 xv = {xj, xj, xj, xj};                                            \
            for (int u = 0; u < (NV); u++) {                                              \
                fv_v4 m;                                                                  \
                memcpy(&m, row + 4 * u, sizeof m);                                        \
                acc[h][u] += xv * m;                                                      \
            }                                                                             \
        }                                                                                 \
    }                                                                                     \
    for (; j < K; j++) {                                                                  \
        const double *row = M + j * K;                                                    \
        const fv_v4 xv = {x[j], x[j], x[j], x[j]};                                        \
        for (int u = 0; u < (NV); u++) {                                                  \
            fv_v4 m;                                                                      \
            memcpy(&m, row + 4 * u, sizeof m);                                            \
            acc[0][u] += xv * m;                                                          \
        }                                                                                 \
    }                                                                                     \
    for (int u = 0; u < (NV); u++) {                                                      \
        fv_v4 v = acc[0][u] + acc[1][u];                                                  \
        memcpy(y + 4 * u, &v, sizeof v);                                                  \
    }                                                                                     \
}
FV_VECMAT_NV(1)
FV_VECMAT_NV(2)
FV_VECMAT_NV(3)
FV_VECMAT_NV(4)
FV_VECMAT_NV(5)
FV_VECMAT_NV(6)
FV_VECMAT_NV(7)
FV_VECMAT_NV(8)

static inline __attribute__((always_inline)) void fv_vecmat(double *restrict y, const double *restrict x,
                             const double *restrict M, long K)
{
    switch (K % 4 == 0 ? K / 4 : 0) {
    case 1: fv_vecmat_1(y, x, M, K); return;
    case 2: fv_vecmat_2(y, x, M, K); return;
    case 3: fv_vecmat_3(y, x, M, K); return;
    case 4: fv_vecmat_4(y, x, M, K); return;
    case 5: fv_vecmat_5(y, x, M, K); return;
    case 6: fv_vecmat_6(y, x, M, K); return;
    case 7: fv_vecmat_7(y, x, M, K); return;
    case 8: fv_vecmat_8(y, x, M, K); return;
    default:
        for (long k = 0; k < K; k++)
            y[k] = x[0] * M[k];
        for (long j = 1; j < K; j++)
            fv_axpy(y, M + j * K, x[j], K);
    }
}

/* fv_outer_sum: M[j, 0:K] += sum_t U[t, j] Q[t, 0:K] (U, Q row-major n x K), t from
 * n - 1 down to 0 -- the backward pass's sum_t alpha_t (x) u_{t+1}, in the
 * order the pass meets its terms.  Four rows of M are held in registers over the
 * whole of t (K a multiple of 4 up to 16), where an outer-product update per step
 * would load and store all of M at every step.  M is added to, each entry one chain
 * of additions from its value on entry: a sequence's blocks, taken from the last to
 * the first, each add their terms to the same M, and give every entry the same
 * chain as one call over the whole sequence from M = 0. */
#define FV_OUTER_NV(NV)                                                                   \
static inline void fv_outer_sum_##NV(double *restrict M, const double *restrict U,        \
                                     const double *restrict Q, long n, long K)            \
{                                                                                         \
    for (long j0 = 0; j0 < K; j0 += 4) {                                                  \
        fv_v4 acc[4][NV];                                                                 \
        for (int r = 0; r < 4; r++)                                                       \
            for (int u = 0; u < (NV); u++)                                                \
                memcpy(&acc[r][u], M + (j0 + r) * K + 4 * u, sizeof acc[r][u]);          \
        for (long t = n - 1; t >= 0; t--) {                                               \
            fv_v4 q[NV];                                                                  \
            for (int u = 0; u < (NV); u++)                                                \
                memcpy(&q[u], Q + t * K + 4 * u, sizeof q[u]);                            \
            for (int r = 0; r < 4; r++) {                                                 \
                const double ur = U[t * K + j0 + r];                                      \
                const fv_v4 uv = {ur, ur, ur, ur};                                        \
                for (int u = 0; u < (NV); u++)                                            \
                    acc[r][u] += uv * q[u];                                               \
            }                                                                             \
        }                                                                                 \
        for (int r = 0; r < 4; r++)                                                       \
            for (int u = 0; u < (NV); u++)                                                \
                memcpy(M + (j0 + r) * K + 4 * u, &acc[r][u], sizeof acc[r][u]);          \
    }                                                                                     \
}
FV_OUTER_NV(1)
FV_OUTER_NV(2)
FV_OUTER_NV(3)
FV_OUTER_NV(4)

static inline void fv_outer_sum(double *restrict M, const double *restrict U,
                                const double *restrict Q, long n, long K)
{
    switch (K % 4 == 0 ? K / 4 : 0) {
    case 1: fv_outer_sum_1(M, U, Q, n, K); return;
    case 2: fv_outer_sum_2(M, U, Q, n, K); return;
    case 3: fv_outer_sum_3(M, U, Q, n, K); return;
    case 4: fv_outer_sum_4(M, U, Q, n, K); return;
    default:
        for (long t = n - 1; t >= 0; t--)
            for (long j = 0; j < K; j++)
                fv_axpy(M + j * K, Q + t * K, U[t * K + j], K);
    }
}

/* ---------------------------------------------------------------------------
 * The scaled forward and backward steps (_hmm.pyx's header), one row at a time,
 * and sequences in lanes.
 *
 * At small K a row of the forward recursion is one chain of dependent operations
 * (alpha_{t-1} A, the products with the row's exps, their sum in the order of k,
 * its reciprocal, the scaling; the backward step's is shorter: A u_{t+1}, then
 * u_t = w_t beta_t), so that one sequence keeps the core waiting on latencies.  The lanes run several
 * independent sequences' rows in turn (row t of lane 0, of lane 1, ..., then row
 * t + 1), so that the out-of-order core overlaps their chains.  Every path -- a
 * sequence alone, its checkpointed blocks (fv_forward_block, fv_backward_block),
 * a lane -- computes a row by the same functions (fv_fwd_row, fv_bwd_row), so
 * that its values do not depend on the path: the lanes change the schedule, not
 * one bit of any result.  Lanes of different lengths: the forward rows are
 * aligned at the sequences' starts, the backward rows at their ends; a lane past
 * its rows is skipped.
 *
 * Rounding, spelled out.  The sums of products below say which products are
 * rounded before their addition (FV_OPAQUE hides a product from the compiler's
 * contraction into a fused multiply-add) and which are fused (FV_FMA): the
 * first 4 floor(K / 4) terms of a row's sum rounded, the rest fused, as the
 * Cython loops these functions replace were compiled (gcc -O3 -march=native,
 * AVX-512: a vector body of unfused products added in order, a scalar remainder
 * contracted), so that the results are bitwise those of the earlier code on
 * such a build.  Without hardware FMA (a portable build) nothing is fused.
 * ------------------------------------------------------------------------- */
#if defined(__AVX512F__)
#define FV_OPAQUE(x) __asm__("" : "+v"(x))
#elif defined(__x86_64__) || defined(__i386__)
#define FV_OPAQUE(x) __asm__("" : "+x"(x))
#elif defined(__aarch64__)
#define FV_OPAQUE(x) __asm__("" : "+w"(x))
#else
#define FV_OPAQUE(x) do { volatile double fv_v_ = (x); (x) = fv_v_; } while (0)
#endif
/* the same for a vector of 4 or 8 doubles: in a register with AVX-512 (every such
 * vector fits one), else through memory (a vector may span several registers) */
#if defined(__AVX512F__)
#define FV_OPAQUE_V(x) __asm__("" : "+v"(x))
#else
#define FV_OPAQUE_V(x) __asm__("" : "+m"(x))
#endif

#if defined(__FMA__)
#define FV_FMA(a, b, c) __builtin_fma((a), (b), (c))
#else
static inline __attribute__((always_inline)) double fv_mul_add_(double a, double b, double c)
{
    double p = a * b;
    FV_OPAQUE(p);
    return p + c;
}
#define FV_FMA(a, b, c) fv_mul_add_((a), (b), (c))
#endif

/* s + a b, the product rounded first */
static inline __attribute__((always_inline)) double fv_add_prod(double s, double a, double b)
{
    double p = a * b;
    FV_OPAQUE(p);
    return s + p;
}

typedef struct {
    double *lp;      /* n x K log-densities (the backward pass: alpha_t after) */
    double *al;      /* n x K alpha, gamma after the backward pass */
    double *pr;      /* n x K w_t = alpha_t / pred_t (the backward pass: u_t = w_t beta_t
                        after) */
    double *M;       /* K x K: sum_t alpha_t (x) u_t+1 (added to) */
    double *beta;    /* K scratch */
    double *mx;      /* n: the rows' maxima (the stepped forward rows) */
    const int32_t *sym; /* n codes of a single categorical feature (their exps in a
                          table, fv_exp_table), or NULL */
    long n;          /* rows */
    double ll, prod; /* log p(x_1..t) = ll + log(prod) (see fv_fwd_row) */
    double el;       /* sum_t sum_k gamma_t(k) lp_t(k) (added to) */
} fv_lane;

/* the forward row in log space, for a row whose reachable states (p > 0) all lie
 * far below its best one: a = p exp(l) normalised, the maximum taken over the
 * reachable states; ll += the log of the row's scale; p (pred) becomes the row's
 * w = a / p (0 where p = 0), as the other rows' (fv_fwd_row) */
static void fv_fwd_logspace(long K, double *restrict p, double *restrict a,
                            const double *restrict l, double *restrict ll)
{
    double m = -INFINITY, s = 0.0;
    for (long k = 0; k < K; k++) {
        const double v = p[k] > 0.0 ? log(p[k]) + l[k] : -INFINITY;
        a[k] = v;
        if (v > m)
            m = v;
    }
    for (long k = 0; k < K; k++) {
        a[k] = a[k] > -INFINITY ? fv_exp(a[k] - m) : 0.0;
        s += a[k];
    }
    *ll += m + log(s);
    const double v = 1.0 / s;
    for (long k = 0; k < K; k++)
        a[k] = a[k] * v;
    for (long k = 0; k < K; k++)       /* p becomes w = alpha / pred */
        p[k] = p[k] > 0.0 ? a[k] / p[k] : 0.0;
}

/* one forward row: pred = alpha_{t-1} A (aprev; pi where aprev is NULL, the
 * sequence's first row), a = pred exp(l - max l) / s with s the sum of the
 * unnormalised a in the order of k; log p(x_1..t) = ll + log(prod): s is
 * multiplied into prod, whose log is taken only when it nears the ends of the
 * double range.  p is left holding the row's w = exp(l - max l) / s = a / pred
 * (0 where pred = 0): the backward pass's beta_{t-1} = A (w_t beta_t).  A row
 * whose reachable states all lie far below its best one (s <= 1e-280) is taken
 * in log space. */
static inline __attribute__((always_inline))
void fv_fwd_row(const long K, double *restrict p, double *restrict a, const double *restrict l,
                const double *restrict aprev, const double *restrict pi,
                const double *restrict A, double *restrict ll, double *restrict prod)
{
    if (aprev != 0)
        fv_vecmat(p, aprev, A, K);
    else
        memcpy(p, pi, K * sizeof(double));
    double m = l[0];
    for (long k = 1; k < K; k++)
        if (l[k] > m)
            m = l[k];
    for (long k = 0; k < K; k++) {
        const double e = fv_exp(l[k] - m);
        a[k] = p[k] * e;
        p[k] = p[k] > 0.0 ? e : 0.0;        /* the exps of the reachable states */
    }
    double s = 0.0;
    for (long k = 0; k < K; k++) {
        double v = a[k];
        FV_OPAQUE(v);
        s += v;
    }
    if (s > 1e-280) {
        *ll += m;
        *prod *= s;
        if (*prod < 1e-250 || *prod > 1e250) {
            *ll += log(*prod);
            *prod = 1.0;
        }
        const double v = 1.0 / s;
        for (long k = 0; k < K; k++) {
            a[k] = a[k] * v;
            p[k] = p[k] * v;                /* w = exp(l - m) / s */
        }
    } else {                                /* pred again, for the log-space row */
        if (aprev != 0)
            fv_vecmat(p, aprev, A, K);
        else
            memcpy(p, pi, K * sizeof(double));
        fv_fwd_logspace(K, p, a, l, ll);
    }
}

/* el + sum_k a[k] l[k] over a[k] > 0 (the rounding of the header's sums) */
static inline __attribute__((always_inline))
double fv_pos_dot(const long K, const double *restrict a, const double *restrict l, double el)
{
    const long K4 = K & ~3L;
    for (long k = 0; k < K4; k++)
        if (a[k] > 0.0)
            el = fv_add_prod(el, a[k], l[k]);
    for (long k = K4; k < K; k++)
        if (a[k] > 0.0)
            el = FV_FMA(a[k], l[k], el);
    return el;
}

/* one backward row t below the last: u1 = w_t+1 beta_t+1 (row t + 1's), a alpha_t
 * (becomes gamma_t = alpha_t beta_t, beta_t = A u1), l lp_t (becomes alpha_t), wu
 * w_t (becomes u_t = w_t beta_t); returns el + sum_k gamma_t(k) lp_t(k).  The
 * scaled recursion: sum_k gamma_t(k) = 1 up to round-off, no division. */
static inline __attribute__((always_inline))
double fv_bwd_row(const long K, const double *restrict u1, const double *restrict AT,
                  double *restrict a, double *restrict l, double *restrict wu,
                  double *restrict beta, double el)
{
    const long K4 = K & ~3L;
    fv_vecmat(beta, u1, AT, K);                  /* beta = A u */
    for (long j = 0; j < K; j++) {
        const double g = a[j] * beta[j];
        if (g > 0.0)
            el = j < K4 ? fv_add_prod(el, g, l[j]) : FV_FMA(g, l[j], el);
        l[j] = a[j];
        a[j] = g;
        wu[j] = wu[j] * beta[j];
    }
    return el;
}


/* The rows again for K = L NV (K = 4, 8, 12, 16), on NV vectors of L lanes held in
 * registers: element for element the operations of fv_fwd_row and fv_bwd_row in
 * the same order (the same values, bit for bit), fewer instructions -- vector
 * divisions, selections and products where the scalar rows' conditionals kept
 * the compiler to one element at a time.  Only the in-order sums run element by
 * element.  (K = L NV is a multiple of 4: every product of the sums is rounded
 * before its addition, as the scalar rows' first 4 floor(K / 4) terms.) */
typedef long long fv_m4 __attribute__((vector_size(32)));
typedef long long fv_m8 __attribute__((vector_size(64)));


/* The zero of a sum of nonnegative terms (or NaN) is +0, so that s = 0 + a_0 is a_0:
 * the sums below start from their first term.  The row maximum: the scalar rows
 * take m = l_0, then l_k where l_k > m; over a row without NaN that is its maximum
 * (of a +0 and a -0 either: l - m and log p(x) come out the same), so a tree of
 * vector maxima gives it, and a row with a NaN takes the scalar loop. */
static inline __attribute__((always_inline)) double fv_rowmax_scalar(const double *l, long K)
{
    double m = l[0];
    for (long k = 1; k < K; k++)
        if (l[k] > m)
            m = l[k];
    return m;
}
#define FV_EXPV_GEN(SUF) fv_expv_##SUF
#define FV_MAXV_GEN(lv, l, K) fv_rowmax_scalar(l, K)

#if defined(__AVX512F__)
#include <immintrin.h>
/* fv_exp on 8 lanes with AVX-512 masks (the clamps and the underflow to 0 as
 * selections), operation for operation the scalar code's (its contractions
 * spelled as fused multiply-adds) */
static inline __attribute__((always_inline)) fv_v8 fv_exp8(fv_v8 xv)
{
    const __m512d x = (__m512d)xv;
    const __m512d lo = _mm512_set1_pd(-708.0), hi = _mm512_set1_pd(709.0);
    const __m512d shifter = _mm512_set1_pd(6755399441055744.0);
    const __mmask8 klo = _mm512_cmp_pd_mask(x, lo, _CMP_LT_OQ);
    const __mmask8 khi = _mm512_cmp_pd_mask(x, hi, _CMP_GT_OQ);
    const __m512d xc = _mm512_mask_mov_pd(_mm512_mask_mov_pd(x, khi, hi), klo, lo);
    const __m512d t = _mm512_fmadd_pd(xc, _mm512_set1_pd(1.4426950408889634074), shifter);
    const __m512d n = _mm512_sub_pd(t, shifter);
    __m512d r = _mm512_fnmadd_pd(n, _mm512_set1_pd(6.93147180369123816490e-01), xc);
    r = _mm512_fnmadd_pd(n, _mm512_set1_pd(1.90821492927058770002e-10), r);
    __m512d p = _mm512_set1_pd(1.0 / 6227020800.0);
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 479001600.0));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 39916800.0));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 3628800.0));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 362880.0));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 40320.0));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 5040.0));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 720.0));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 120.0));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 24.0));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 6.0));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(0.5));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0));
    const __m512i bits = _mm512_slli_epi64(
        _mm512_add_epi64(_mm512_sub_epi64(_mm512_castpd_si512(t),
                                          _mm512_set1_epi64(0x4338000000000000LL)),
                         _mm512_set1_epi64(1023)), 52);
    return (fv_v8)_mm512_maskz_mul_pd((__mmask8)~klo, p, _mm512_castsi512_pd(bits));
}

/* the maximum of a row of NV x 8 values (l: the same row in memory, for a NaN) */
static inline __attribute__((always_inline)) double fv_rowmax8(const fv_v8 *lv, int NV,
                                                               const double *l, long K)
{
    __m512d mx = (__m512d)lv[0];
    __mmask8 nan = _mm512_cmp_pd_mask(mx, mx, _CMP_UNORD_Q);
    for (int u = 1; u < NV; u++) {
        mx = _mm512_max_pd(mx, (__m512d)lv[u]);
        nan |= _mm512_cmp_pd_mask((__m512d)lv[u], (__m512d)lv[u], _CMP_UNORD_Q);
    }
    if (__builtin_expect(nan != 0, 0))
        return fv_rowmax_scalar(l, K);
    return _mm512_reduce_max_pd(mx);
}
#define FV_EXPV_8(SUF) fv_exp8
#define FV_MAXV_8(lv, l, K) fv_rowmax8(lv, sizeof(lv) / sizeof(lv[0]), l, K)
#else
#define FV_EXPV_8(SUF) fv_expv_##SUF
#define FV_MAXV_8(lv, l, K) fv_rowmax_scalar(l, K)
#endif

#define FV_ROWS_VEC(SUF, VT, MT, L, NV, BC, EXPV, MAXV)                                         \
static inline __attribute__((always_inline)) VT fv_sel_##SUF(MT m, VT a, VT b)            \
{                                                                                         \
    return (VT)(((MT)a & m) | ((MT)b & ~m));                                              \
}                                                                                         \
/* the sum of a forward row's K products: the NV vectors added in order, then the    \
 * lanes by halves (a tree: a short chain where an in-order sum is K long); the    \
 * rows and the lanes' steps both take it, so their scales agree bit for bit */     \
static inline __attribute__((always_inline)) double fv_rowsum_##SUF(const VT *av)         \
{                                                                                         \
    VT t = av[0];                                                                         \
    for (int u = 1; u < (NV); u++)                                                        \
        t = t + av[u];                                                                    \
    double h[L];                                                                          \
    memcpy(h, &t, sizeof t);                                                              \
    for (int w = (L) / 2; w >= 1; w /= 2)                                                 \
        for (int i = 0; i < w; i++)                                                       \
            h[i] = h[i] + h[i + w];                                                       \
    return h[0];                                                                          \
}                                                                                         \
/* fv_exp (fv_math.h) on a vector, operation for operation */                             \
static inline __attribute__((always_inline)) VT fv_expv_##SUF(VT x)                       \
{                                                                                         \
    const VT lo = BC(-708.0), hi = BC(709.0);                                             \
    const VT xc = fv_sel_##SUF(x < lo, lo, fv_sel_##SUF(x > hi, hi, x));                  \
    const VT shifter = BC(6755399441055744.0);                                            \
    const VT t = xc * 1.4426950408889634074 + shifter;                                    \
    const VT n = t - shifter;                                                             \
    const VT r = (xc - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10;  \
    VT p = BC(1.0 / 6227020800.0);                                                        \
    p = p * r + 1.0 / 479001600.0;                                                        \
    p = p * r + 1.0 / 39916800.0;                                                         \
    p = p * r + 1.0 / 3628800.0;                                                          \
    p = p * r + 1.0 / 362880.0;                                                           \
    p = p * r + 1.0 / 40320.0;                                                            \
    p = p * r + 1.0 / 5040.0;                                                             \
    p = p * r + 1.0 / 720.0;                                                              \
    p = p * r + 1.0 / 120.0;                                                              \
    p = p * r + 1.0 / 24.0;                                                               \
    p = p * r + 1.0 / 6.0;                                                                \
    p = p * r + 0.5;                                                                      \
    p = p * r + 1.0;                                                                      \
    p = p * r + 1.0;                                                                      \
    const MT bits = ((MT)t - 0x4338000000000000LL + 1023) << 52;                           \
    const VT y = p * (VT)bits;                                                            \
    return fv_sel_##SUF(x < lo, (VT){0}, y);                                              \
}                                                                                         \
/* y = x M, as fv_vecmat (the even and the odd j summed apart), into registers */     \
static inline __attribute__((always_inline))                                              \
void fv_vecmatv_##SUF(VT *restrict y, const double *restrict x, const double *restrict M) \
{                                                                                         \
    const long K = (L) * (NV);                                                            \
    VT acc0[NV], acc1[NV];                                                                \
    for (int u = 0; u < (NV); u++)                                                        \
        acc0[u] = acc1[u] = (VT){0};                                                      \
    for (long j = 0; j < K; j += 2) {                                                     \
        const VT x0 = BC(x[j]), x1 = BC(x[j + 1]);                                        \
        for (int u = 0; u < (NV); u++) {                                                  \
            acc0[u] += x0 * *(const VT *)(M + j * K + (L) * u);                           \
            acc1[u] += x1 * *(const VT *)(M + (j + 1) * K + (L) * u);                     \
        }                                                                                 \
    }                                                                                     \
    for (int u = 0; u < (NV); u++)                                                        \
        y[u] = acc0[u] + acc1[u];                                                         \
}                                                                                         \
static inline __attribute__((always_inline))                                              \
void fv_fwd_row_##SUF(const long Kc, double *restrict p, double *restrict a,              \
                      const double *restrict l, const double *restrict aprev,             \
                      const double *restrict pi, const double *restrict A,                \
                      double *restrict ll, double *restrict prod)                         \
{                                                                                         \
    const long K = (L) * (NV);                                                            \
    VT pv[NV], av[NV], lv[NV];                                                            \
    if (aprev != 0) {                                                                     \
        fv_vecmatv_##SUF(pv, aprev, A);                                                   \
    } else {                                                                              \
        for (int u = 0; u < (NV); u++)                                                    \
            pv[u] = *(const VT *)(pi + (L) * u);                                          \
    }                                                                                     \
    for (int u = 0; u < (NV); u++) {                                                      \
        *(VT *)(p + (L) * u) = pv[u];                                                     \
        lv[u] = *(const VT *)(l + (L) * u);                                               \
    }                                                                                     \
    const double m = MAXV(lv, l, K);                                                      \
    double s = 0.0;                                                                       \
    VT ev[NV];                                                                            \
    for (int u = 0; u < (NV); u++) {                                                      \
        ev[u] = EXPV(lv[u] - m);                                                          \
        av[u] = pv[u] * ev[u];                                                            \
        FV_OPAQUE_V(av[u]);                                                                 \
    }                                                                                     \
    s = fv_rowsum_##SUF(av);                                                              \
    if (__builtin_expect(!(s > 1e-280), 0)) {                                             \
        fv_fwd_logspace(K, p, a, l, ll);      /* far below the row's best: log space */  \
        return;                                                                           \
    }                                                                                     \
    *ll += m;                                                                             \
    *prod *= s;                                                                           \
    if (*prod < 1e-250 || *prod > 1e250) {                                                \
        *ll += log(*prod);                                                                \
        *prod = 1.0;                                                                      \
    }                                                                                     \
    const double v = 1.0 / s;                                                             \
    for (int u = 0; u < (NV); u++) {                                                      \
        *(VT *)(a + (L) * u) = av[u] * v;                                                 \
        *(VT *)(p + (L) * u) = fv_sel_##SUF(pv[u] > 0.0, ev[u] * v, (VT){0});  /* w */    \
    }                                                                                     \
}                                                                                         \
static inline __attribute__((always_inline))                                              \
double fv_bwd_row_##SUF(const long Kc, const double *restrict u1,                         \
                        const double *restrict AT, double *restrict a,                    \
                        double *restrict l, double *restrict wu, double *restrict beta,   \
                        double el)                                                        \
{                                                                                         \
    VT bv[NV];                                                                            \
    fv_vecmatv_##SUF(bv, u1, AT);                 /* beta = A u */                        \
    for (int u = 0; u < (NV); u++) {                                                      \
        const VT av = *(const VT *)(a + (L) * u);                                         \
        const VT g = av * bv[u];                                                          \
        VT pr = g * *(const VT *)(l + (L) * u);                                           \
        FV_OPAQUE_V(pr);                                                                    \
        pr = fv_sel_##SUF(g > 0.0, pr, (VT){0});                                          \
        for (int i = 0; i < (L); i++)                                                     \
            el += pr[i];                                                                  \
        *(VT *)(a + (L) * u) = g;                                                         \
        *(VT *)(l + (L) * u) = av;                                                        \
        *(VT *)(wu + (L) * u) = *(const VT *)(wu + (L) * u) * bv[u];                      \
    }                                                                                     \
    (void)beta;                                                                           \
    return el;                                                                            \
}                                                                                         \
/* the exps of rows 0 .. n - 1 as fv_fwd_row_SUF computes them, apart from the       \
 * recursion: e_t = exp(l_t - m_t), m_t the row's maximum */                              \
static void fv_exp_rows_##SUF(const double *restrict l, double *restrict e,               \
                              double *restrict mx, long n)                                \
{                                                                                         \
    const long K = (L) * (NV);                                                            \
    for (long t = 0; t < n; t++) {                                                        \
        VT lv[NV];                                                                        \
        for (int u = 0; u < (NV); u++)                                                    \
            lv[u] = *(const VT *)(l + t * K + (L) * u);                                   \
        const double m = MAXV(lv, l + t * K, K);                                          \
        mx[t] = m;                                                                        \
        for (int u = 0; u < (NV); u++)                                                    \
            *(VT *)(e + t * K + (L) * u) = EXPV(lv[u] - m);                               \
    }                                                                                     \
}                                                                                         \
/* Row t (>= 1) of G lanes at once, stage by stage (the products alpha_{t-1} A of  \
 * every lane, then the maxima, the exps, the sums with the lanes' chains side by   \
 * side, ...), so that the independent chains sit next to each other in the         \
 * instruction stream and overlap within the core's window; each lane's values are  \
 * those of fv_fwd_row_SUF, operation for operation.  ll, prod: the lanes' (G). */   \
static inline __attribute__((always_inline))                                              \
void fv_fwd_step_##SUF(const fv_lane *restrict ln, const int G, const long t,             \
                       const double *restrict A, double *restrict ll, double *restrict prod)\
{                                                                                         \
    const long K = (L) * (NV);                                                            \
    VT acc0[4][NV], acc1[4][NV], av[4][NV], ev[4][NV];                                    \
    double m[4], s[4];                                                                    \
    int far[4];                                                                           \
    for (int g = 0; g < G; g++)                                                           \
        for (int u = 0; u < (NV); u++)                                                    \
            acc0[g][u] = acc1[g][u] = (VT){0};                                            \
    for (long j = 0; j < K; j += 2)                                                       \
        for (int g = 0; g < G; g++) {                                                     \
            const double *x = ln[g].al + (t - 1) * K;                                     \
            const VT x0 = BC(x[j]), x1 = BC(x[j + 1]);                                    \
            for (int u = 0; u < (NV); u++) {                                              \
                acc0[g][u] += x0 * *(const VT *)(A + j * K + (L) * u);                    \
                acc1[g][u] += x1 * *(const VT *)(A + (j + 1) * K + (L) * u);              \
            }                                                                             \
        }                                                                                 \
    for (int g = 0; g < G; g++)                                                           \
        for (int u = 0; u < (NV); u++) {                                                  \
            /* the row's exps (fv_exp_rows_SUF, or a table), then its pred in their place */\
            /* (read by a log-space row), then its w (below) */                           \
            ev[g][u] = *(const VT *)(ln[g].pr + t * K + (L) * u);                         \
            acc0[g][u] = acc0[g][u] + acc1[g][u];          /* pred */                     \
            *(VT *)(ln[g].pr + t * K + (L) * u) = acc0[g][u];                             \
            av[g][u] = acc0[g][u] * ev[g][u];                                             \
            FV_OPAQUE_V(av[g][u]);                                                        \
        }                                                                                 \
    for (int g = 0; g < G; g++)                                                           \
        m[g] = ln[g].mx[t];                                                               \
    for (int g = 0; g < G; g++)                                                           \
        s[g] = fv_rowsum_##SUF(av[g]);                                                    \
    for (int g = 0; g < G; g++) {                                                         \
        far[g] = !(s[g] > 1e-280);                                                        \
        if (__builtin_expect(far[g], 0)) {                                                \
            fv_fwd_logspace(K, ln[g].pr + t * K, ln[g].al + t * K, ln[g].lp + t * K,       \
                            ll + g);                                                      \
            continue;                                                                     \
        }                                                                                 \
        ll[g] += m[g];                                                                    \
        prod[g] *= s[g];                                                                  \
        if (prod[g] < 1e-250 || prod[g] > 1e250) {                                        \
            ll[g] += log(prod[g]);                                                        \
            prod[g] = 1.0;                                                                \
        }                                                                                 \
        s[g] = 1.0 / s[g];                                                                \
    }                                                                                     \
    for (int g = 0; g < G; g++)                                                           \
        if (!far[g])                                                                      \
            for (int u = 0; u < (NV); u++) {                                              \
                *(VT *)(ln[g].al + t * K + (L) * u) = av[g][u] * s[g];                    \
                *(VT *)(ln[g].pr + t * K + (L) * u) =                                     \
                    fv_sel_##SUF(acc0[g][u] > 0.0, ev[g][u] * s[g], (VT){0});  /* w */    \
            }                                                                             \
}                                                                                         \
/* Step i of the backward pass of G lanes at once (row n - 2 - i of each), stage by  \
 * stage as fv_fwd_step_SUF; each lane's values those of fv_bwd_row_SUF: the chain  \
 * from step to step is u_t+1 -> beta_t = A u_t+1 -> u_t = w_t beta_t. */             \
static inline __attribute__((always_inline))                                              \
void fv_bwd_step_##SUF(const fv_lane *restrict ln, const int G, const long i0,            \
                       const double *restrict AT, double *restrict el)                    \
{                                                                                         \
    const long K = (L) * (NV);                                                            \
    VT acc0[4][NV], acc1[4][NV], av[4][NV];                                               \
    long o[4];                                                                            \
    for (int g = 0; g < G; g++) {                                                         \
        o[g] = (ln[g].n - 2 - i0) * K;                                                    \
        for (int u = 0; u < (NV); u++)                                                    \
            acc0[g][u] = acc1[g][u] = (VT){0};                                            \
    }                                                                                     \
    for (long j = 0; j < K; j += 2)                                                       \
        for (int g = 0; g < G; g++) {                                                     \
            const double *x = ln[g].pr + o[g] + K;        /* u_t+1 */                     \
            const VT x0 = BC(x[j]), x1 = BC(x[j + 1]);                                    \
            for (int u = 0; u < (NV); u++) {                                              \
                acc0[g][u] += x0 * *(const VT *)(AT + j * K + (L) * u);                   \
                acc1[g][u] += x1 * *(const VT *)(AT + (j + 1) * K + (L) * u);             \
            }                                                                             \
        }                                                                                 \
    for (int g = 0; g < G; g++)                                                           \
        for (int u = 0; u < (NV); u++) {                                                  \
            const VT bt = acc0[g][u] + acc1[g][u];          /* beta_t */                  \
            *(VT *)(ln[g].pr + o[g] + (L) * u) =                                          \
                *(const VT *)(ln[g].pr + o[g] + (L) * u) * bt;       /* u_t */            \
            const VT at = *(const VT *)(ln[g].al + o[g] + (L) * u);                       \
            const VT gm = at * bt;                                                        \
            VT pr = gm * *(const VT *)(ln[g].lp + o[g] + (L) * u);                        \
            FV_OPAQUE_V(pr);                                                                \
            av[g][u] = fv_sel_##SUF(gm > 0.0, pr, (VT){0});                               \
            *(VT *)(ln[g].al + o[g] + (L) * u) = gm;                                      \
            *(VT *)(ln[g].lp + o[g] + (L) * u) = at;                                      \
        }                                                                                 \
    for (int u = 0; u < (NV); u++)                                                        \
        for (int i = 0; i < (L); i++)                                                     \
            for (int g = 0; g < G; g++)                                                   \
                el[g] += av[g][u][i];                                                     \
}
#define FV_BC4(x) ((fv_v4){(x), (x), (x), (x)})
#define FV_BC8(x) ((fv_v8){(x), (x), (x), (x), (x), (x), (x), (x)})
FV_ROWS_VEC(4x1, fv_v4, fv_m4, 4, 1, FV_BC4, fv_expv_4x1, FV_MAXV_GEN)
FV_ROWS_VEC(8x1, fv_v8, fv_m8, 8, 1, FV_BC8, FV_EXPV_8(8x1), FV_MAXV_8)
FV_ROWS_VEC(4x3, fv_v4, fv_m4, 4, 3, FV_BC4, fv_expv_4x3, FV_MAXV_GEN)
FV_ROWS_VEC(8x2, fv_v8, fv_m8, 8, 2, FV_BC8, FV_EXPV_8(8x2), FV_MAXV_8)

#define FV_ROWS_K(NAME, KEXPR, FWD, BWD, STEPS, FSTEP, BSTEP, EXPROWS)                                \
static void fv_forward_block_##NAME(const double *restrict lp, long n, long Kr,            \
                                    const double *restrict prev, const double *restrict pi,\
                                    const double *restrict A, double *restrict al,         \
                                    double *restrict pr, double *restrict run)             \
{                                                                                         \
    const long K = (KEXPR);                                                               \
    double ll = run[0], prod = run[1];                                                    \
    for (long t = 0; t < n; t++)                                                          \
        FWD(K, pr + t * K, al + t * K, lp + t * K, t > 0 ? al + (t - 1) * K : prev,\
                   pi, A, &ll, &prod);                                                    \
    run[0] = ll;                                                                          \
    run[1] = prod;                                                                        \
}                                                                                         \
static double fv_backward_block_##NAME(double *restrict lp, long n, long Kr,               \
                                       const double *restrict AT, double *restrict al,     \
                                       double *restrict pr, int last, double *restrict M,  \
                                       double *restrict beta, double el)                   \
{                                                                                         \
    const long K = (KEXPR);                                                               \
    long t = n - 1;                                                                       \
    if (last) {                                                                           \
        el = fv_pos_dot(K, al + (n - 1) * K, lp + (n - 1) * K, el);                       \
        t = n - 2;                                                                        \
    }                                                                                     \
    for (; t >= 0; t--)                                                                   \
        el = BWD(K, pr + (t + 1) * K, AT, al + t * K, lp + t * K, pr + t * K, beta, el);  \
    fv_outer_sum(M, lp, pr + K, last ? n - 1 : n, K);                                     \
    return el;                                                                            \
}                                                                                         \
static void fv_forward_lanes_##NAME(fv_lane *restrict ln, int G, const double *restrict pi,\
                                    const double *restrict A, const double *restrict etab,\
                                    const double *restrict mtab, long nsym, long Kr)      \
{                                                                                         \
    const long K = (KEXPR);                                                               \
    double ll[FV_LANES_MAX], prod[FV_LANES_MAX];                                          \
    long nmin = ln[0].n, nmax = ln[0].n, t = 1;                                           \
    for (int g = 0; g < G; g++) {                                                         \
        if (ln[g].n < nmin) nmin = ln[g].n;                                               \
        if (ln[g].n > nmax) nmax = ln[g].n;                                               \
        ll[g] = ln[g].ll;                                                                 \
        prod[g] = ln[g].prod;                                                             \
        FWD(K, ln[g].pr, ln[g].al, ln[g].lp, 0, pi, A, ll + g, prod + g);                 \
    }                                                                                     \
    if (STEPS && G >= 2 && G <= 4)        /* the rows every lane has, side by side */     \
        while (t < nmin) {                                                                \
            /* FV_EB rows: their exps first (no recursion in them), then the recursion */ \
            const long e = nmin - t < FV_EB ? nmin : t + FV_EB;                           \
            for (int g = 0; g < G; g++) {                                                 \
                double *ep = ln[g].pr, *mp = ln[g].mx;                                    \
                if (ln[g].sym == 0 || etab == 0) {                                        \
                    EXPROWS(ln[g].lp + t * K, ep + t * K, mp + t, e - t);                 \
                    continue;                                                             \
                }                                                                         \
                for (long r = t; r < e; r++) {   /* a code's row: its exps in the table */\
                    const int32_t c = ln[g].sym[r];                                       \
                    if (c >= 0 && c < nsym) {                                             \
                        memcpy(ep + r * K, etab + (long)c * K, K * sizeof(double));       \
                        mp[r] = mtab[c];                                                  \
                    } else {                                                              \
                        EXPROWS(ln[g].lp + r * K, ep + r * K, mp + r, 1);                 \
                    }                                                                     \
                }                                                                         \
            }                                                                             \
            switch (G) {                                                                  \
            case 2: for (; t < e; t++) FSTEP(ln, 2, t, A, ll, prod); break;               \
            case 3: for (; t < e; t++) FSTEP(ln, 3, t, A, ll, prod); break;               \
            default: for (; t < e; t++) FSTEP(ln, 4, t, A, ll, prod); break;              \
            }                                                                             \
        }                                                                                 \
    for (; t < nmax; t++)                                                                 \
        for (int g = 0; g < G; g++) {                                                     \
            if (t >= ln[g].n)                                                             \
                continue;                                                                 \
            const long o = t * K;                                                         \
            FWD(K, ln[g].pr + o, ln[g].al + o, ln[g].lp + o, ln[g].al + o - K, pi, A,     \
                ll + g, prod + g);                                                        \
        }                                                                                 \
    for (int g = 0; g < G; g++) {                                                         \
        ln[g].ll = ll[g];                                                                 \
        ln[g].prod = prod[g];                                                             \
    }                                                                                     \
}                                                                                         \
/* the forward recursion of one lane's n rows from exps computed apart (its pr rows   \
 * and mx, fv_exp_rows; the pipelined long sequence): first, the rows start the       \
 * sequence (row 0 from pi, its exps its own); else al row -1 holds alpha of the row   \
 * before the first (a checkpoint).  ll, prod carried in the lane. */                   \
static __attribute__((unused))                                                            \
void fv_forward_pre_##NAME(fv_lane *restrict ln, int first,                                \
                                  const double *restrict pi, const double *restrict A,     \
                                  long Kr)                                                 \
{                                                                                         \
    const long K = (KEXPR);                                                               \
    double ll = ln->ll, prod = ln->prod;                                                  \
    long t = 0;                                                                           \
    if (first) {                                                                          \
        FWD(K, ln->pr, ln->al, ln->lp, 0, pi, A, &ll, &prod);                             \
        t = 1;                                                                            \
    }                                                                                     \
    for (; t < ln->n; t++)                                                                \
        FSTEP(ln, 1, t, A, &ll, &prod);                                                   \
    ln->ll = ll;                                                                          \
    ln->prod = prod;                                                                      \
}                                                                                         \
static void fv_backward_lanes_##NAME(fv_lane *restrict ln, int G, const double *restrict AT,\
                                     long Kr)                                             \
{                                                                                         \
    const long K = (KEXPR);                                                               \
    double el[FV_LANES_MAX];                                                              \
    long nmin = ln[0].n, nmax = ln[0].n, i = 0;                                           \
    for (int g = 0; g < G; g++) {                                                         \
        if (ln[g].n < nmin) nmin = ln[g].n;                                               \
        if (ln[g].n > nmax) nmax = ln[g].n;                                               \
        const long o = (ln[g].n - 1) * K;                                                 \
        el[g] = fv_pos_dot(K, ln[g].al + o, ln[g].lp + o, ln[g].el);                      \
    }                                                                                     \
    /* step i: row n - 2 - i of each lane */                                              \
    if (STEPS) {                                                                          \
        switch (G) {                                                                      \
        case 2: for (; i + 1 < nmin; i++) BSTEP(ln, 2, i, AT, el); break;                 \
        case 3: for (; i + 1 < nmin; i++) BSTEP(ln, 3, i, AT, el); break;                 \
        case 4: for (; i + 1 < nmin; i++) BSTEP(ln, 4, i, AT, el); break;                 \
        default: break;                                                                   \
        }                                                                                 \
    }                                                                                     \
    for (; i + 1 < nmax; i++)                                                             \
        for (int g = 0; g < G; g++) {                                                     \
            if (i + 1 >= ln[g].n)                                                         \
                continue;                                                                 \
            const long o = (ln[g].n - 2 - i) * K;                                         \
            el[g] = BWD(K, ln[g].pr + o + K, AT, ln[g].al + o, ln[g].lp + o, ln[g].pr + o,  \
                        ln[g].beta, el[g]);                                               \
        }                                                                                 \
    for (int g = 0; g < G; g++) {                                                         \
        ln[g].el = el[g];                                                                 \
        fv_outer_sum(ln[g].M, ln[g].lp, ln[g].pr + K, ln[g].n - 1, K);                    \
    }                                                                                     \
}
#define FV_LANES_MAX 8
#define fv_fwd_step_none(ln, G, t, A, ll, prod) ((void)0)
#define fv_bwd_step_none(ln, G, i, AT, el) ((void)0)
#define fv_exp_rows_none(l, e, mx, n) ((void)0)
#define FV_EB 32
FV_ROWS_K(4, 4, fv_fwd_row_4x1, fv_bwd_row_4x1, 1, fv_fwd_step_4x1, fv_bwd_step_4x1,
          fv_exp_rows_4x1)
FV_ROWS_K(8, 8, fv_fwd_row_8x1, fv_bwd_row_8x1, 1, fv_fwd_step_8x1, fv_bwd_step_8x1,
          fv_exp_rows_8x1)
FV_ROWS_K(12, 12, fv_fwd_row_4x3, fv_bwd_row_4x3, 1, fv_fwd_step_4x3, fv_bwd_step_4x3,
          fv_exp_rows_4x3)
FV_ROWS_K(16, 16, fv_fwd_row_8x2, fv_bwd_row_8x2, 1, fv_fwd_step_8x2, fv_bwd_step_8x2,
          fv_exp_rows_8x2)
FV_ROWS_K(any, Kr, fv_fwd_row, fv_bwd_row, 0, fv_fwd_step_none, fv_bwd_step_none,
          fv_exp_rows_none)

#define FV_ROWS_SWITCH(FN, ...)                                                           \
    switch (K) {                                                                          \
    case 4: return FN##_4(__VA_ARGS__);                                                   \
    case 8: return FN##_8(__VA_ARGS__);                                                   \
    case 12: return FN##_12(__VA_ARGS__);                                                 \
    case 16: return FN##_16(__VA_ARGS__);                                                 \
    default: return FN##_any(__VA_ARGS__);                                                \
    }

/* the scaled forward pass over n consecutive rows of a sequence: al (n x K) =
 * p(z_t | x_1..t) and pr (n x K) = w_t = alpha_t / p(z_t | x_1..t-1) (0 where that
 * is 0); prev is alpha of the row before the first (a checkpoint), or NULL at the
 * sequence's start (pred = pi);
 * run = [ll, prod] carries log p(x_1..t) = ll + log(prod) from block to block */
static inline void fv_forward_block(const double *lp, long n, long K, const double *prev,
                                    const double *pi, const double *A, double *al, double *pr,
                                    double *run)
{
    FV_ROWS_SWITCH(fv_forward_block, lp, n, K, prev, pi, A, al, pr, run)
}

/* the backward pass over the n rows of a block, from its last row to its first:
 * al becomes gamma and pr's w becomes u = w beta in place.  last: the block ends
 * the sequence (gamma = alpha and u = w on its last row); else row n of pr holds u
 * of the row after the block (the carry).  M (K x K) += the block's terms of
 * sum_t alpha_t (x) u_t+1; returns el + the block's terms of sum_t sum_k
 * gamma_t(k) lp_t(k).  lp holds alpha afterwards, pr's first row the next carry */
static inline double fv_backward_block(double *lp, long n, long K, const double *AT, double *al,
                                       double *pr, int last, double *M, double *beta, double el)
{
    FV_ROWS_SWITCH(fv_backward_block, lp, n, K, AT, al, pr, last, M, beta, el)
}

/* fv_forward_pre_K for K = 4, 8, 12, 16 (the stepped rows; the callers check) */
static inline void fv_forward_pre(fv_lane *ln, int first, const double *pi, const double *A,
                                  long K)
{
    switch (K) {
    case 4: fv_forward_pre_4(ln, first, pi, A, K); return;
    case 8: fv_forward_pre_8(ln, first, pi, A, K); return;
    case 12: fv_forward_pre_12(ln, first, pi, A, K); return;
    default: fv_forward_pre_16(ln, first, pi, A, K); return;
    }
}

/* A team of two threads for the pipelined long sequence (_hmm.pyx): fn(ctx, tid, nt)
 * on each, nt the threads the runtime gave (1 without OpenMP: fn runs alone and
 * takes the sequential path); fv_post and fv_wait_ge between its stages. */
typedef void (*fv_role_fn)(void *ctx, int tid, int nt);
#ifdef _OPENMP
#include <omp.h>
static void fv_team2(fv_role_fn fn, void *ctx)
{
#pragma omp parallel num_threads(2)
    fn(ctx, omp_get_thread_num(), omp_get_num_threads());
}
#else
static void fv_team2(fv_role_fn fn, void *ctx) { fn(ctx, 0, 1); }
#endif

/* The team's hand-offs: a counter written by one thread (release), waited on by the
 * other (acquire) -- spinning briefly, then yielding the core, so that a thread
 * waiting for its partner does not take the partner's core on a busy machine. */
#if defined(_WIN32)
#include <windows.h>
#define FV_YIELD() SwitchToThread()
#else
#include <sched.h>
#define FV_YIELD() sched_yield()
#endif
static inline void fv_post(long *c, long v) { __atomic_store_n(c, v, __ATOMIC_RELEASE); }
static inline void fv_wait_ge(long *c, long v)
{
    for (long n = 0; __atomic_load_n(c, __ATOMIC_ACQUIRE) < v; n++) {
        if (n < 4096) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        } else {
            FV_YIELD();
        }
    }
}

/* the forward recursion of G whole sequences (lanes), each from its first row */
static inline void fv_forward_lanes(fv_lane *ln, int G, const double *pi, const double *A,
                                    const double *etab, const double *mtab, long nsym, long K)
{
    FV_ROWS_SWITCH(fv_forward_lanes, ln, G, pi, A, etab, mtab, nsym, K)
}

/* the table of a single categorical feature's rows: lp of code c (as fv_lp_cat
 * computes it) into lp (nsym x K), then its exps and maximum as the lanes' forward
 * rows take them (etab: nsym x K, mtab: nsym); 0 where K has no stepped rows */
static inline int fv_exp_table(long K, double *lp, double *etab, double *mtab, long nsym)
{
    switch (K) {
    case 4: fv_exp_rows_4x1(lp, etab, mtab, nsym); return 1;
    case 8: fv_exp_rows_8x1(lp, etab, mtab, nsym); return 1;
    case 12: fv_exp_rows_4x3(lp, etab, mtab, nsym); return 1;
    case 16: fv_exp_rows_8x2(lp, etab, mtab, nsym); return 1;
    default: return 0;
    }
}

/* the backward pass of G whole sequences (lanes) after fv_forward_lanes, as
 * fv_backward_block(last = 1) for each: M and el added to */
static inline void fv_backward_lanes(fv_lane *ln, int G, const double *AT, long K)
{
    FV_ROWS_SWITCH(fv_backward_lanes, ln, G, AT, K)
}

/* E log p(x, z) of a sequence's posterior from el = sum_t sum_k gamma_t(k) lp_t(k),
 * gamma_1 (g1) and M = sum_t alpha_t (x) u_t+1, which becomes sum_t xi_t =
 * A o M in place: el + sum_k gamma_1(k) ls[k] + sum_jk xi(j, k) lt[j, k], the
 * zero-probability terms 0 (every product fused, as the Cython loop compiled) */
static inline double fv_expected_log_joint(long K, const double *restrict g1,
                                           const double *restrict ls, double *restrict M,
                                           const double *restrict At,
                                           const double *restrict lt, double el)
{
    for (long k = 0; k < K; k++)
        if (g1[k] > 0.0)
            el = FV_FMA(g1[k], ls[k], el);
    for (long j = 0; j < K * K; j++) {
        M[j] = M[j] * At[j];
        if (M[j] > 0.0)
            el = FV_FMA(M[j], lt[j], el);
    }
    return el;
}

/* ---------------------------------------------------------------------------
 * The emissions of the built-in Gaussian and categorical forms, without the
 * features table's per-row calls: a row's log-densities lp_t = c + log h +
 * sum_a T_a(x_t) W[:, a] and a sequence's statistics St[a] += sum_t T_a(x_t) w
 * gamma_t, the same operations in the same order as the generic path
 * (_expfam_features.pxi's sparse forms, fv_init_row + fv_gather_rows,
 * fv_scatter_rows): each entry of lp its chain of fused multiply-adds over the
 * statistics a in order, each entry of St its chain over the rows from the last
 * to the first.  What changes: no call through the table per row, and the
 * Gaussians' statistics held in registers (blocks of FV_SB rows of St) over the
 * whole sequence, where the scatter loaded and stored them at every row.  K a
 * multiple of 4 (vectors of 8 lanes where K is a multiple of 8); other K take
 * the generic path (the functions return 0).
 * ------------------------------------------------------------------------- */
#define FV_SB 8
#define FV_TB 64

/* T(x) of a Gaussian row about ref (_gauss_act, _gauss_full_act): x - ref, then
 * its squares (diag) or the upper triangle of its products row by row (full);
 * unrolled for D up to 8 (a switch on D per row) */
#define FV_GAUSS_T(TYPE)                                                                  \
static inline __attribute__((always_inline))                                              \
void fv_gauss_T_##TYPE##_d(const TYPE *restrict x, const double *restrict ref,            \
                           const long D, const int full, double *restrict v)              \
{                                                                                         \
    double u[8];               /* D <= 8, a constant: in registers (else v itself) */    \
    double *restrict w = D <= 8 ? u : v;                                                  \
    for (long d = 0; d < D; d++) {                                                        \
        double xd = x[d] - ref[d];                                                        \
        FV_OPAQUE(xd);           /* scalars: gcc's packing of them stalled the stores */  \
        w[d] = xd;                                                                        \
        v[d] = xd;                                                                        \
    }                                                                                     \
    if (!full) {                                                                          \
        for (long d = 0; d < D; d++)                                                      \
        {                                                                                 \
            double p = w[d] * w[d];                                                       \
            FV_OPAQUE(p);                                                                 \
            v[D + d] = p;                                                                 \
        }                                                                                 \
        return;                                                                           \
    }                                                                                     \
    long p = D;                                                                           \
    for (long d = 0; d < D; d++)                                                          \
        for (long e = d; e < D; e++)                                                      \
        {                                                                                 \
            double q = w[d] * w[e];                                                       \
            FV_OPAQUE(q);                                                                 \
            v[p++] = q;                                                                   \
        }                                                                                 \
}                                                                                         \
static inline __attribute__((always_inline))                                              \
void fv_gauss_T_##TYPE(const TYPE *restrict x, const double *restrict ref, long D,        \
                       int full, double *restrict v)                                      \
{                                                                                         \
    if (full) {                                                                           \
        switch (D) {                                                                      \
        case 1: fv_gauss_T_##TYPE##_d(x, ref, 1, 1, v); return;                           \
        case 2: fv_gauss_T_##TYPE##_d(x, ref, 2, 1, v); return;                           \
        case 3: fv_gauss_T_##TYPE##_d(x, ref, 3, 1, v); return;                           \
        case 4: fv_gauss_T_##TYPE##_d(x, ref, 4, 1, v); return;                           \
        case 5: fv_gauss_T_##TYPE##_d(x, ref, 5, 1, v); return;                           \
        case 6: fv_gauss_T_##TYPE##_d(x, ref, 6, 1, v); return;                           \
        case 7: fv_gauss_T_##TYPE##_d(x, ref, 7, 1, v); return;                           \
        case 8: fv_gauss_T_##TYPE##_d(x, ref, 8, 1, v); return;                           \
        default: fv_gauss_T_##TYPE##_d(x, ref, D, 1, v); return;                          \
        }                                                                                 \
    }                                                                                     \
    switch (D) {                                                                          \
    case 1: fv_gauss_T_##TYPE##_d(x, ref, 1, 0, v); return;                               \
    case 2: fv_gauss_T_##TYPE##_d(x, ref, 2, 0, v); return;                               \
    case 3: fv_gauss_T_##TYPE##_d(x, ref, 3, 0, v); return;                               \
    case 4: fv_gauss_T_##TYPE##_d(x, ref, 4, 0, v); return;                               \
    case 5: fv_gauss_T_##TYPE##_d(x, ref, 5, 0, v); return;                               \
    case 6: fv_gauss_T_##TYPE##_d(x, ref, 6, 0, v); return;                               \
    case 7: fv_gauss_T_##TYPE##_d(x, ref, 7, 0, v); return;                               \
    case 8: fv_gauss_T_##TYPE##_d(x, ref, 8, 0, v); return;                               \
    default: fv_gauss_T_##TYPE##_d(x, ref, D, 0, v); return;                              \
    }                                                                                     \
}
FV_GAUSS_T(double)
FV_GAUSS_T(float)

#define FV_EMIT_VEC(SUF, VT, L, BC)                                                       \
/* lp rows r0 .. r0 + n - 1 (base = c + logw + log h, the same for every row), four  \
 * rows at a time: their chains side by side */                                           \
static void fv_lp_gauss_##SUF(const void *data, int f32, const double *restrict ref,       \
                              long D, int full, long r0, long n, long S,                  \
                              const double *restrict Wt, const double *restrict base,     \
                              long K, double *restrict lp)                                \
{                                                                                         \
    double v[4 * S];                                                                      \
    long t = 0;                                                                           \
    for (; t < n; t += 4) {                                                               \
        const int nr = n - t < 4 ? (int)(n - t) : 4;                                      \
        for (int i = 0; i < nr; i++) {                                                    \
            if (f32)                                                                      \
                fv_gauss_T_float((const float *)data + (r0 + t + i) * D, ref, D, full,    \
                                 v + i * S);                                              \
            else                                                                          \
                fv_gauss_T_double((const double *)data + (r0 + t + i) * D, ref, D, full,  \
                                  v + i * S);                                             \
        }                                                                                 \
        for (long k = 0; k < K; k += (L)) {                                               \
            const VT b = *(const VT *)(base + k);                                         \
            if (nr == 4) {                                                                \
                VT a0 = b, a1 = b, a2 = b, a3 = b;                                        \
                for (long a = 0; a < S; a++) {                                            \
                    const VT wa = *(const VT *)(Wt + a * K + k);                          \
                    a0 += BC(v[a]) * wa;                                                  \
                    a1 += BC(v[S + a]) * wa;                                              \
                    a2 += BC(v[2 * S + a]) * wa;                                          \
                    a3 += BC(v[3 * S + a]) * wa;                                          \
                }                                                                         \
                *(VT *)(lp + t * K + k) = a0;                                             \
                *(VT *)(lp + (t + 1) * K + k) = a1;                                       \
                *(VT *)(lp + (t + 2) * K + k) = a2;                                       \
                *(VT *)(lp + (t + 3) * K + k) = a3;                                       \
                continue;                                                                 \
            }                                                                             \
            for (int i = 0; i < nr; i++) {                                                \
                VT acc = b;                                                               \
                for (long a = 0; a < S; a++)                                              \
                    acc += BC(v[i * S + a]) * *(const VT *)(Wt + a * K + k);              \
                *(VT *)(lp + (t + i) * K + k) = acc;                                      \
            }                                                                             \
        }                                                                                 \
    }                                                                                     \
}                                                                                         \
/* St (S x K) += sum_t T(x_t) (w gamma_t), t from n - 1 down to 0: T of FV_TB rows  \
 * at a time into a buffer, then their terms with FV_SB rows of St in registers */       \
static void fv_stats_gauss_##SUF(const void *data, int f32, const double *restrict ref,    \
                                 long D, int full, long r0, long n, long S,               \
                                 const double *restrict g, double w, long K,              \
                                 double *restrict St)                                     \
{                                                                                         \
    double v[FV_TB * S];                                                                  \
    for (long e = n; e > 0; e -= FV_TB) {                                                 \
        const long t0 = e > FV_TB ? e - FV_TB : 0;                                        \
        for (long t = t0; t < e; t++) {                                                   \
            if (f32)                                                                      \
                fv_gauss_T_float((const float *)data + (r0 + t) * D, ref, D, full,        \
                                 v + (t - t0) * S);                                       \
            else                                                                          \
                fv_gauss_T_double((const double *)data + (r0 + t) * D, ref, D, full,      \
                                  v + (t - t0) * S);                                      \
        }                                                                                 \
        for (long k = 0; k < K; k += (L))                                                 \
            for (long a0 = 0; a0 < S; a0 += FV_SB) {                                      \
                const long nb = S - a0 < FV_SB ? S - a0 : FV_SB;                          \
                VT acc[FV_SB];               /* a constant count: held in registers */   \
                for (int b = 0; b < FV_SB; b++)                                           \
                    acc[b] = b < nb ? *(const VT *)(St + (a0 + b) * K + k) : (VT){0};     \
                for (long t = e - 1; t >= t0; t--) {                                      \
                    const VT r = BC(w) * *(const VT *)(g + t * K + k);                    \
                    const double *vt = v + (t - t0) * S + a0;                             \
                    for (int b = 0; b < FV_SB; b++)                                       \
                        if (b < nb)                                                       \
                            acc[b] += BC(vt[b]) * r;                                      \
                }                                                                         \
                for (int b = 0; b < FV_SB; b++)                                           \
                    if (b < nb)                                                           \
                        *(VT *)(St + (a0 + b) * K + k) = acc[b];                          \
            }                                                                             \
    }                                                                                     \
}                                                                                         \
/* categorical codes (_categorical_i32_act): lp rows, with tot += log h (0, or NaN     \
 * for a code outside its feature's categories: the row c + logw + NaN, no terms) */     \
static double fv_lp_cat_##SUF(const int32_t *restrict x, const int64_t *restrict off,        \
                              long D, long r0, long n, const double *restrict Wt,         \
                              const double *restrict c, const double *restrict logw,      \
                              long K, double *restrict lp, double tot)                    \
{                                                                                         \
    for (long t = 0; t < n; t++) {                                                        \
        const int32_t *xr = x + (r0 + t) * D;                                                 \
        double lh = 0.0;                                                                  \
        for (long j = 0; j < D; j++)                                                      \
            if (xr[j] < 0 || xr[j] >= off[j + 1] - off[j])                                \
                lh = NAN;                                                                 \
        double *row = lp + t * K;                                                         \
        for (long k = 0; k < K; k++)                                                      \
            row[k] = c[k] + logw[k] + lh;                                                 \
        if (lh == 0.0)                                                                    \
            for (long k = 0; k < K; k += (L)) {                                           \
                VT acc = *(const VT *)(row + k);                                          \
                for (long j = 0; j < D; j++)                                              \
                    acc += BC(1.0) * *(const VT *)(Wt + (off[j] + xr[j]) * K + k);        \
                *(VT *)(row + k) = acc;                                                   \
            }                                                                             \
        tot += lh;                                                                        \
    }                                                                                     \
    return tot;                                                                           \
}                                                                                         \
/* St (S x K) += the one-hot statistics times w gamma_t, t from n - 1 down to 0 */        \
static void fv_stats_cat_##SUF(const int32_t *restrict x, const int64_t *restrict off,       \
                               long D, long r0, long n, const double *restrict g,         \
                               double w, long K, double *restrict St)                     \
{                                                                                         \
    if (D == 1) {                                                                         \
        /* a run of rows with one code: its entries' chain held in a register */         \
        const long ns = off[1] - off[0];                                                  \
        for (long k = 0; k < K; k += (L)) {                                               \
            long t = n - 1;                                                               \
            while (t >= 0) {                                                              \
                const int32_t code = x[r0 + t];                                           \
                if (code < 0 || code >= ns) {                                             \
                    t--;                                                                  \
                    continue;                                                             \
                }                                                                         \
                VT *y = (VT *)(St + (off[0] + code) * K + k);                             \
                VT acc = *y;                                                              \
                do {                                                                      \
                    const VT r = BC(w) * *(const VT *)(g + t * K + k);                    \
                    acc += BC(1.0) * r;                                                   \
                    t--;                                                                  \
                } while (t >= 0 && x[r0 + t] == code);                                    \
                *y = acc;                                                                 \
            }                                                                             \
        }                                                                                 \
        return;                                                                           \
    }                                                                                     \
    for (long t = n - 1; t >= 0; t--) {                                                   \
        const int32_t *xr = x + (r0 + t) * D;                                                 \
        int bad = 0;                                                                      \
        for (long j = 0; j < D; j++)                                                      \
            bad |= xr[j] < 0 || xr[j] >= off[j + 1] - off[j];                             \
        if (bad)                                                                          \
            continue;                                                                     \
        for (long k = 0; k < K; k += (L)) {                                               \
            const VT r = BC(w) * *(const VT *)(g + t * K + k);                            \
            for (long j = 0; j < D; j++) {                                                \
                VT *y = (VT *)(St + (off[j] + xr[j]) * K + k);                            \
                *y += BC(1.0) * r;                                                        \
            }                                                                             \
        }                                                                                 \
    }                                                                                     \
}
FV_EMIT_VEC(v4, fv_v4, 4, FV_BC4)
FV_EMIT_VEC(v8, fv_v8, 8, FV_BC8)

/* the dispatch: 1 where K is a multiple of 4 (done), else 0 (the generic path) */
static inline int fv_lp_gauss(const void *data, int f32, const double *ref, long D, int full,
                              long r0, long n, long S, const double *Wt, const double *base,
                              long K, double *lp)
{
    if (K % 8 == 0)
        fv_lp_gauss_v8(data, f32, ref, D, full, r0, n, S, Wt, base, K, lp);
    else if (K % 4 == 0)
        fv_lp_gauss_v4(data, f32, ref, D, full, r0, n, S, Wt, base, K, lp);
    else
        return 0;
    return 1;
}

static inline int fv_stats_gauss(const void *data, int f32, const double *ref, long D,
                                 int full, long r0, long n, long S, const double *g, double w,
                                 long K, double *St)
{
    if (K % 8 == 0)
        fv_stats_gauss_v8(data, f32, ref, D, full, r0, n, S, g, w, K, St);
    else if (K % 4 == 0)
        fv_stats_gauss_v4(data, f32, ref, D, full, r0, n, S, g, w, K, St);
    else
        return 0;
    return 1;
}

/* K a multiple of 4 (the callers check) */
static inline double fv_lp_cat(const int32_t *x, const int64_t *off, long D, long r0, long n,
                               const double *Wt, const double *c, const double *logw, long K,
                               double *lp, double tot)
{
    if (K % 8 == 0)
        return fv_lp_cat_v8(x, off, D, r0, n, Wt, c, logw, K, lp, tot);
    return fv_lp_cat_v4(x, off, D, r0, n, Wt, c, logw, K, lp, tot);
}

/* fv_lp_cat for a single feature (D = 1) from the table of each code's row (tab:
 * nsym x K, computed by fv_lp_cat itself on the codes 0 .. nsym - 1): the same
 * values bit for bit, a copy per row; a code outside the categories takes
 * fv_lp_cat (its NaN row) */
static inline double fv_lp_cat_tab(const int32_t *x, const int64_t *off, long r0, long n,
                                   const double *restrict tab, long nsym, const double *Wt,
                                   const double *c, const double *logw, long K,
                                   double *restrict lp, double tot)
{
    for (long t = 0; t < n; t++) {
        const int32_t code = x[r0 + t];
        if (code >= 0 && code < nsym) {
            memcpy(lp + t * K, tab + (long)code * K, K * sizeof(double));
            tot += 0.0;
        } else {
            tot = fv_lp_cat(x, off, 1, r0 + t, 1, Wt, c, logw, K, lp + t * K, tot);
        }
    }
    return tot;
}

static inline void fv_stats_cat(const int32_t *x, const int64_t *off, long D, long r0, long n,
                                const double *g, double w, long K, double *St)
{
    if (K % 8 == 0)
        fv_stats_cat_v8(x, off, D, r0, n, g, w, K, St);
    else
        fv_stats_cat_v4(x, off, D, r0, n, g, w, K, St);
}


/* nk[0:K] += sum_t w g[t, 0:K], t from n - 1 down to 0 (the occupancies of a block's
 * posteriors): each entry the chain of fv_axpy's multiply-adds, held in registers
 * where K is a multiple of 8 (fv_axpy stored and reloaded nk at every row) */
static inline void fv_nk_sum(double *restrict nk, const double *restrict g, long n, double w,
                             long K)
{
    if (K % 8 == 0 && K <= 32) {
        fv_v8 acc[4];
        const fv_v8 wv = FV_BC8(w);
        for (long u = 0; u < K / 8; u++)
            acc[u] = *(const fv_v8 *)(nk + 8 * u);
        for (long t = n - 1; t >= 0; t--)
            for (long u = 0; u < K / 8; u++)
                acc[u] += wv * *(const fv_v8 *)(g + t * K + 8 * u);
        for (long u = 0; u < K / 8; u++)
            *(fv_v8 *)(nk + 8 * u) = acc[u];
        return;
    }
    for (long t = n - 1; t >= 0; t--)
        fv_axpy(nk, g + t * K, w, K);
}

#endif
