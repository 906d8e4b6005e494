/* Inner loops of the HMM sequence driver (_hmm.pyx).
 *
 * fv_vecmat: y[0:K] = sum_j x[j] M[j, 0:K] (M row-major K x K), the K sums held in
 * vector registers for K a multiple of 4 up to 32 -- the forward step's predicted
 * state alpha_{t-1} A and the backward step's A q_{t+1} (through A^T).  The even
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
 * n - 1 down to 0 -- the backward pass's sum_t (alpha_t / s_t) (x) q_{t+1}, in the
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
 * its reciprocal, the scaling; the backward step's chain is alike), so that one
 * sequence keeps the core waiting on latencies.  The lanes run several
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
#if defined(__x86_64__) || defined(__i386__)
#define FV_OPAQUE(x) __asm__("" : "+v"(x))
#elif defined(__aarch64__)
#define FV_OPAQUE(x) __asm__("" : "+w"(x))
#else
#define FV_OPAQUE(x) do { volatile double fv_v_ = (x); (x) = fv_v_; } while (0)
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
    double *lp;      /* n x K log-densities (the backward pass: alpha_t / s_t after) */
    double *al;      /* n x K alpha, gamma after the backward pass */
    double *pr;      /* n x K pred (the backward pass: q_t+1 after) */
    double *M;       /* K x K: sum_t (alpha_t / s_t) (x) q_t+1 (added to) */
    double *beta;    /* K scratch */
    long n;          /* rows */
    double ll, prod; /* log p(x_1..t) = ll + log(prod) (see fv_fwd_row) */
    double el;       /* sum_t sum_k gamma_t(k) lp_t(k) (added to) */
} fv_lane;

/* one forward row: p = alpha_{t-1} A (aprev; pi where aprev is NULL, the
 * sequence's first row), a = p exp(l - max l) / s with s the sum of the
 * unnormalised a in the order of k; log p(x_1..t) = ll + log(prod): s is
 * multiplied into prod, whose log is taken only when it nears the ends of the
 * double range.  A row whose reachable states all lie far below its best one
 * (s <= 1e-280) is taken in log space. */
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
    for (long k = 0; k < K; k++)
        a[k] = p[k] * fv_exp(l[k] - m);
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
    } else {
        m = -INFINITY;
        for (long k = 0; k < K; k++) {
            const double v = p[k] > 0.0 ? log(p[k]) + l[k] : -INFINITY;
            a[k] = v;
            if (v > m)
                m = v;
        }
        s = 0.0;
        for (long k = 0; k < K; k++) {
            a[k] = a[k] > -INFINITY ? fv_exp(a[k] - m) : 0.0;
            s += a[k];
        }
        *ll += m + log(s);
    }
    const double v = 1.0 / s;
    for (long k = 0; k < K; k++)
        a[k] = a[k] * v;
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

/* one backward row t below the last: g1, p1 gamma and pred of row t + 1 (p1
 * becomes q_t+1 = g1 / p1), a alpha_t (becomes gamma_t = alpha_t beta_t / s,
 * beta_t = A q_t+1, s = sum_j alpha_t(j) beta_t(j)), l lp_t (becomes alpha_t /
 * s); returns el + sum_k gamma_t(k) lp_t(k) */
static inline __attribute__((always_inline))
double fv_bwd_row(const long K, const double *restrict g1, double *restrict p1,
                  const double *restrict AT, double *restrict a, double *restrict l,
                  double *restrict beta, double el)
{
    const long K4 = K & ~3L;
    for (long k = 0; k < K; k++)
        p1[k] = p1[k] > 0.0 ? g1[k] / p1[k] : 0.0;
    fv_vecmat(beta, p1, AT, K);                  /* beta = A q */
    double s = 0.0;
    for (long j = 0; j < K4; j++)
        s = fv_add_prod(s, a[j], beta[j]);
    for (long j = K4; j < K; j++)
        s = FV_FMA(a[j], beta[j], s);
    s = 1.0 / s;
    for (long j = 0; j < K; j++) {
        const double v = a[j] * s;
        const double g = v * beta[j];
        a[j] = g;
        if (g > 0.0)
            el = j < K4 ? fv_add_prod(el, g, l[j]) : FV_FMA(g, l[j], el);
        l[j] = v;
    }
    return el;
}

#define FV_ROWS_K(NAME, KEXPR)                                                            \
static void fv_forward_block_##NAME(const double *restrict lp, long n, long Kr,            \
                                    const double *restrict prev, const double *restrict pi,\
                                    const double *restrict A, double *restrict al,         \
                                    double *restrict pr, double *restrict run)             \
{                                                                                         \
    const long K = (KEXPR);                                                               \
    double ll = run[0], prod = run[1];                                                    \
    for (long t = 0; t < n; t++)                                                          \
        fv_fwd_row(K, pr + t * K, al + t * K, lp + t * K, t > 0 ? al + (t - 1) * K : prev,\
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
        el = fv_bwd_row(K, al + (t + 1) * K, pr + (t + 1) * K, AT, al + t * K, lp + t * K,\
                        beta, el);                                                        \
    fv_outer_sum(M, lp, pr + K, last ? n - 1 : n, K);                                     \
    return el;                                                                            \
}                                                                                         \
static void fv_forward_lanes_##NAME(fv_lane *restrict ln, int G, const double *restrict pi,\
                                    const double *restrict A, long Kr)                    \
{                                                                                         \
    const long K = (KEXPR);                                                               \
    long nmin = ln[0].n, nmax = ln[0].n;                                                  \
    for (int g = 1; g < G; g++) {                                                         \
        if (ln[g].n < nmin) nmin = ln[g].n;                                               \
        if (ln[g].n > nmax) nmax = ln[g].n;                                               \
    }                                                                                     \
    for (int g = 0; g < G; g++)                                                           \
        fv_fwd_row(K, ln[g].pr, ln[g].al, ln[g].lp, 0, pi, A, &ln[g].ll, &ln[g].prod);   \
    for (long t = 1; t < nmax; t++)                                                       \
        for (int g = 0; g < G; g++) {                                                     \
            if (t >= nmin && t >= ln[g].n)                                                \
                continue;                                                                 \
            const long o = t * K;                                                         \
            fv_fwd_row(K, ln[g].pr + o, ln[g].al + o, ln[g].lp + o, ln[g].al + o - K, pi, \
                       A, &ln[g].ll, &ln[g].prod);                                        \
        }                                                                                 \
}                                                                                         \
static void fv_backward_lanes_##NAME(fv_lane *restrict ln, int G, const double *restrict AT,\
                                     long Kr)                                             \
{                                                                                         \
    const long K = (KEXPR);                                                               \
    long nmin = ln[0].n, nmax = ln[0].n;                                                  \
    for (int g = 1; g < G; g++) {                                                         \
        if (ln[g].n < nmin) nmin = ln[g].n;                                               \
        if (ln[g].n > nmax) nmax = ln[g].n;                                               \
    }                                                                                     \
    for (int g = 0; g < G; g++) {                                                         \
        const long o = (ln[g].n - 1) * K;                                                 \
        ln[g].el = fv_pos_dot(K, ln[g].al + o, ln[g].lp + o, ln[g].el);                   \
    }                                                                                     \
    /* step i: row n - 2 - i of each lane */                                              \
    for (long i = 0; i + 1 < nmax; i++)                                                   \
        for (int g = 0; g < G; g++) {                                                     \
            if (i + 1 >= nmin && i + 1 >= ln[g].n)                                        \
                continue;                                                                 \
            const long o = (ln[g].n - 2 - i) * K;                                         \
            ln[g].el = fv_bwd_row(K, ln[g].al + o + K, ln[g].pr + o + K, AT, ln[g].al + o,\
                                  ln[g].lp + o, ln[g].beta, ln[g].el);                    \
        }                                                                                 \
    for (int g = 0; g < G; g++)                                                           \
        fv_outer_sum(ln[g].M, ln[g].lp, ln[g].pr + K, ln[g].n - 1, K);                    \
}
FV_ROWS_K(4, 4)
FV_ROWS_K(8, 8)
FV_ROWS_K(12, 12)
FV_ROWS_K(16, 16)
FV_ROWS_K(any, Kr)

#define FV_ROWS_SWITCH(FN, ...)                                                           \
    switch (K) {                                                                          \
    case 4: return FN##_4(__VA_ARGS__);                                                   \
    case 8: return FN##_8(__VA_ARGS__);                                                   \
    case 12: return FN##_12(__VA_ARGS__);                                                 \
    case 16: return FN##_16(__VA_ARGS__);                                                 \
    default: return FN##_any(__VA_ARGS__);                                                \
    }

/* the scaled forward pass over n consecutive rows of a sequence: al (n x K) =
 * p(z_t | x_1..t) and pr (n x K) = p(z_t | x_1..t-1); prev is alpha of the row
 * before the first (a checkpoint), or NULL at the sequence's start (pred = pi);
 * run = [ll, prod] carries log p(x_1..t) = ll + log(prod) from block to block */
static inline void fv_forward_block(const double *lp, long n, long K, const double *prev,
                                    const double *pi, const double *A, double *al, double *pr,
                                    double *run)
{
    FV_ROWS_SWITCH(fv_forward_block, lp, n, K, prev, pi, A, al, pr, run)
}

/* the backward pass over the n rows of a block, from its last row to its first:
 * al becomes gamma in place.  last: the block ends the sequence (gamma = alpha on
 * its last row); else row n of al and pr holds gamma and pred of the row after
 * the block (the carry).  M (K x K) += the block's terms of sum_t (alpha_t / s_t)
 * (x) q_t+1; returns el + the block's terms of sum_t sum_k gamma_t(k) lp_t(k).
 * lp and pr are scratch afterwards (pred of the first row excepted) */
static inline double fv_backward_block(double *lp, long n, long K, const double *AT, double *al,
                                       double *pr, int last, double *M, double *beta, double el)
{
    FV_ROWS_SWITCH(fv_backward_block, lp, n, K, AT, al, pr, last, M, beta, el)
}

/* the forward recursion of G whole sequences (lanes), each from its first row */
static inline void fv_forward_lanes(fv_lane *ln, int G, const double *pi, const double *A, long K)
{
    FV_ROWS_SWITCH(fv_forward_lanes, ln, G, pi, A, K)
}

/* the backward pass of G whole sequences (lanes) after fv_forward_lanes, as
 * fv_backward_block(last = 1) for each: M and el added to */
static inline void fv_backward_lanes(fv_lane *ln, int G, const double *AT, long K)
{
    FV_ROWS_SWITCH(fv_backward_lanes, ln, G, AT, K)
}

/* E log p(x, z) of a sequence's posterior from el = sum_t sum_k gamma_t(k) lp_t(k),
 * gamma_1 (g1) and M = sum_t (alpha_t / s_t) (x) q_t+1, which becomes sum_t xi_t =
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

#endif
