/* Inner loops of the LDA fixed point, written so that gcc vectorises them:
 * dot products as OpenMP simd reductions (reassociation allowed there and nowhere
 * else), and a branch-free digamma (a fixed shift by 6, then the asymptotic series to
 * x^-14; absolute error below 2e-13 for x > 0).  The same code runs for every document,
 * so results do not depend on the number of threads. */
#ifndef FV_LDA_H
#define FV_LDA_H
#include "fv_math.h"

static inline __attribute__((always_inline)) double fv_digamma(double x)
{
    /* psi(x) = psi(x + 6) - sum_{i<6} 1/(x+i), and that sum is Q'(x)/Q(x) with
     * Q(x) = x(x+1)...(x+5): one division instead of six. */
    double a = x * (x + 5.0), b = (x + 1.0) * (x + 4.0), c = (x + 2.0) * (x + 3.0);
    double da = 2.0 * x + 5.0;                 /* a' = b' = c' */
    double q = a * b * c;
    double dq = da * (b * c + a * c + a * b);
    double y = x + 6.0;
    double f = 1.0 / y, f2 = f * f;
    double p = 1.0 / 12.0;                     /* B14 / 14 */
    p = 691.0 / 32760.0 - f2 * p;
    p = 1.0 / 132.0 - f2 * p;
    p = 1.0 / 240.0 - f2 * p;
    p = 1.0 / 252.0 - f2 * p;
    p = 1.0 / 120.0 - f2 * p;
    p = 1.0 / 12.0 - f2 * p;
    return fv_log(y) - 0.5 * f - f2 * p - dq / q;
}

static inline double fv_dot_d(const double *a, const double *b, long n)
{
    double s = 0.0;
#pragma omp simd reduction(+:s)
    for (long k = 0; k < n; k++) s += a[k] * b[k];
    return s;
}

static inline float fv_dot_f(const float *a, const float *b, long n)
{
    float s = 0.0f;
#pragma omp simd reduction(+:s)
    for (long k = 0; k < n; k++) s += a[k] * b[k];
    return s;
}

/* elog[k] = psi(gamma_k) - psi(sum gamma); e[k] = exp(elog[k]).  Returns sum gamma. */
static inline double fv_expect_log_d(const double *gamma, double *e, double *elog, long K)
{
    double s = 0.0;
    for (long k = 0; k < K; k++) s += gamma[k];
    double ps = fv_digamma(s);
#pragma omp simd
    for (long k = 0; k < K; k++) elog[k] = fv_digamma(gamma[k]) - ps;
#pragma omp simd
    for (long k = 0; k < K; k++) e[k] = fv_exp(elog[k]);
    return s;
}

static inline double fv_expect_log_f(const float *gamma, float *e, double *elog, long K)
{
    double s = 0.0;
    for (long k = 0; k < K; k++) s += gamma[k];
    double ps = fv_digamma(s);
#pragma omp simd
    for (long k = 0; k < K; k++) elog[k] = fv_digamma((double)gamma[k]) - ps;
#pragma omp simd
    for (long k = 0; k < K; k++) e[k] = (float)fv_exp(elog[k]);
    return s;
}

/* One sweep of the soft fixed point over a document whose topic rows are gathered twice:
 * G (n x K, row j = word j's topics) and GT (K x n).  r_j = c_j / (e . G_j + eps) runs
 * over blocks of W tokens with the W partial sums in registers (GT: contiguous in j);
 * t = sum_j r_j G_j runs over blocks of W topics, t's block in registers (G: contiguous
 * in k).  No horizontal reductions, no store-to-load chains; every sum is taken in one
 * fixed order (k, then j), whatever the thread. */
#define FV_NORM_BLOCK(T, FW)                                                              \
    for (; jb + (FW) <= n; jb += (FW)) {                                                  \
        T a[FW];                                                                          \
        for (long i = 0; i < (FW); i++) a[i] = 0;                                         \
        for (long k = 0; k < K; k++) {                                                    \
            T ek = e[k];                                                                  \
            const T *g = GT + k * n + jb;                                                 \
            _Pragma("omp simd")                                                           \
            for (long i = 0; i < (FW); i++) a[i] += ek * g[i];                            \
        }                                                                                 \
        _Pragma("omp simd")                                                               \
        for (long i = 0; i < (FW); i++) r[jb + i] = c[jb + i] / (a[i] + eps);             \
    }
#define FV_T_BLOCK(T, FW)                                                                 \
    for (; kb + (FW) <= K; kb += (FW)) {                                                  \
        T a[FW];                                                                          \
        for (long i = 0; i < (FW); i++) a[i] = 0;                                         \
        for (long j = 0; j < n; j++) {                                                    \
            T rj = r[j];                                                                  \
            const T *g = G + j * K + kb;                                                  \
            _Pragma("omp simd")                                                           \
            for (long i = 0; i < (FW); i++) a[i] += rj * g[i];                            \
        }                                                                                 \
        for (long i = 0; i < (FW); i++) t[kb + i] = a[i];                                 \
    }
#define FV_LDA_PASS(NAME, T, W, V)                                                        \
static inline void NAME(const T *__restrict G, const T *__restrict GT,                    \
                        const T *__restrict c, const T *__restrict e, T *__restrict t,    \
                        T *__restrict r, long n, long K, T eps)                           \
{                                                                                         \
    long jb = 0, kb = 0;                                                                  \
    FV_NORM_BLOCK(T, W)                                                                   \
    FV_NORM_BLOCK(T, V)                                                                   \
    FV_NORM_BLOCK(T, 1)                                                                   \
    FV_T_BLOCK(T, W)                                                                      \
    FV_T_BLOCK(T, V)                                                                      \
    FV_T_BLOCK(T, 1)                                                                      \
}
FV_LDA_PASS(fv_lda_pass_d, double, 32, 8)
FV_LDA_PASS(fv_lda_pass_f, float, 64, 16)

/* G (n x K) and GT (K x n): the document's topic rows, gathered from eb (V x K). */
#define FV_LDA_GATHER(NAME, T)                                                            \
static inline void NAME(const T *__restrict eb, const int *__restrict idx, long n, long K,\
                        T *__restrict G, T *__restrict GT)                                \
{                                                                                         \
    for (long j = 0; j < n; j++) {                                                        \
        const T *row = eb + (long)idx[j] * K;                                             \
        for (long k = 0; k < K; k++) { G[j * K + k] = row[k]; GT[k * n + j] = row[k]; }   \
    }                                                                                     \
}
FV_LDA_GATHER(fv_lda_gather_d, double)
FV_LDA_GATHER(fv_lda_gather_f, float)
#endif
