/* Inner loops of the LDA fixed point, written so that gcc vectorises them:
 * dot products as OpenMP simd reductions (reassociation allowed there and nowhere
 * else), and a branch-free digamma (a fixed shift by 6, then the asymptotic series to
 * x^-14; absolute error below 2e-13 for x > 0).  The same code runs for every document,
 * so results do not depend on the number of threads. */
#ifndef FV_LDA_H
#define FV_LDA_H
#include <math.h>
#include <stdlib.h>
#include "fv_math.h"
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

/* float32 fixed points run with subnormals flushed to zero (FTZ and DAZ in the calling
 * thread's MXCSR; the previous word is returned for fv_fp_restore).  After a few passes
 * exp(E log beta) of a rare word falls below FLT_MIN (1.2e-38), and every product and
 * sum with such a value takes a microcode assist: the late passes ran 3.4x slower per
 * sweep in float32 than in float64.  Only values below 1.2e-38 change, and they are
 * absorbed anyway: each norm carries + eps (1.2e-7) and each gamma_k + alpha_k. */
static inline unsigned int fv_fp_flush_subnormals(void)
{
#if defined(__SSE__)
    unsigned int old = _mm_getcsr();
    _mm_setcsr(old | 0x8040u);
    return old;
#else
    return 0u;
#endif
}

static inline void fv_fp_restore(unsigned int old)
{
#if defined(__SSE__)
    _mm_setcsr(old);
#else
    (void)old;
#endif
}

/* A buffer on a 64-byte boundary (freed with free): the sweeps load whole 64-byte
 * vectors from the document's topic rows, its counts and r, and at malloc's 16-byte
 * alignment three loads in four straddled two cache lines. */
static inline void *fv_lda_alloc64(size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) return NULL;
    return p;
}

/* sum_{i<6} 1/(x+i) = Q'(x)/Q(x) with Q(x) = x(x+1)...(x+5): one division instead of
 * six (psi(x) = psi(x + 6) minus it). */
static inline __attribute__((always_inline)) double fv_psi_shift(double x)
{
    double a = x * (x + 5.0), b = (x + 1.0) * (x + 4.0), c = (x + 2.0) * (x + 3.0);
    double da = 2.0 * x + 5.0;                 /* a' = b' = c' */
    double q = a * b * c;
    double dq = da * (b * c + a * c + a * b);
    return dq / q;
}

/* The asymptotic series of psi(y) - log y + 1/(2y) in f2 = 1/y^2, to y^-14:
 * psi(y) = log y - f/2 - f2 p(f2), f = 1/y. */
static inline __attribute__((always_inline)) double fv_psi_poly(double f2)
{
    double p = 1.0 / 12.0;                     /* B14 / 14 */
    p = 691.0 / 32760.0 - f2 * p;
    p = 1.0 / 132.0 - f2 * p;
    p = 1.0 / 240.0 - f2 * p;
    p = 1.0 / 252.0 - f2 * p;
    p = 1.0 / 120.0 - f2 * p;
    p = 1.0 / 12.0 - f2 * p;
    return p;
}

static inline __attribute__((always_inline)) double fv_digamma(double x)
{
    double qq = fv_psi_shift(x);
    double y = x + 6.0;
    double f = 1.0 / y, f2 = f * f;
    double p = fv_psi_poly(f2);
    return fv_log(y) - 0.5 * f - f2 * p - qq;
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
/* Sweeps over the active topics act[0..nA) only, from GT (K x np) alone.
 *
 * The document's tokens are padded to np, a multiple of the vector length L
 * (FV_LDA_PAD_* below): the padding tokens have count 0 and topic rows 0, so their
 * r_j is 0 / eps = 0 and they add exact zeros to every sum; no loop has a scalar tail.
 * fv_lda_norm_act: nrm_j = sum_q eA_q GT[act_q, j] + eps and r_j = c_j / nrm_j, over
 * blocks of 8 vectors of tokens, then the rest (under 8 vectors) as one block, each
 * block's partial sums in registers (nrm may be NULL); returns sum_j r_j.
 * fv_lda_pass_act: r as above (returns its sum), then tA_q = sum_j r_j GT[act_q, j],
 * eight topics at a time, then the rest (under eight) as one group, each topic's sum in
 * a vector over j (contiguous), a group's vectors reduced together by a transposing tree
 * of shuffles.  Every sum runs in one fixed order, set by (np, nA) alone, whatever the
 * thread. */
typedef double fv_vd __attribute__((vector_size(64)));
typedef float fv_vf __attribute__((vector_size(64)));
typedef long long fv_vdi __attribute__((vector_size(64)));
typedef int fv_vfi __attribute__((vector_size(64)));
#define FV_LDA_PAD_d 8L         /* doubles per 64-byte vector */
#define FV_LDA_PAD_f 16L        /* floats per 64-byte vector */
static inline long fv_lda_padded(long n, long L) { return (n + L - 1) / L * L; }

/* s[i] = the sum of a[i]'s lanes, i < 8 (lanes summed in pairs, then quads, ...). */
static inline void fv_tsum8_d(const fv_vd *a, double *s)
{
    const fv_vdi m1a = {0, 8, 2, 10, 4, 12, 6, 14}, m1b = {1, 9, 3, 11, 5, 13, 7, 15};
    const fv_vdi m2a = {0, 1, 8, 9, 4, 5, 12, 13}, m2b = {2, 3, 10, 11, 6, 7, 14, 15};
    const fv_vdi m3a = {0, 1, 2, 3, 8, 9, 10, 11}, m3b = {4, 5, 6, 7, 12, 13, 14, 15};
    fv_vd x0 = __builtin_shuffle(a[0], a[1], m1a) + __builtin_shuffle(a[0], a[1], m1b);
    fv_vd x1 = __builtin_shuffle(a[2], a[3], m1a) + __builtin_shuffle(a[2], a[3], m1b);
    fv_vd x2 = __builtin_shuffle(a[4], a[5], m1a) + __builtin_shuffle(a[4], a[5], m1b);
    fv_vd x3 = __builtin_shuffle(a[6], a[7], m1a) + __builtin_shuffle(a[6], a[7], m1b);
    fv_vd y0 = __builtin_shuffle(x0, x1, m2a) + __builtin_shuffle(x0, x1, m2b);
    fv_vd y1 = __builtin_shuffle(x2, x3, m2a) + __builtin_shuffle(x2, x3, m2b);
    fv_vd z = __builtin_shuffle(y0, y1, m3a) + __builtin_shuffle(y0, y1, m3b);
    memcpy(s, &z, sizeof z);
}

static inline void fv_tsum8_f(const fv_vf *a, float *s)
{
    const fv_vfi m1a = {0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30};
    const fv_vfi m1b = {1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31};
    const fv_vfi m2a = {0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29};
    const fv_vfi m2b = {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31};
    const fv_vfi m3a = {0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27};
    const fv_vfi m3b = {4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31};
    const fv_vfi m4a = {0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7};
    const fv_vfi m4b = {8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15};
    fv_vf x0 = __builtin_shuffle(a[0], a[1], m1a) + __builtin_shuffle(a[0], a[1], m1b);
    fv_vf x1 = __builtin_shuffle(a[2], a[3], m1a) + __builtin_shuffle(a[2], a[3], m1b);
    fv_vf x2 = __builtin_shuffle(a[4], a[5], m1a) + __builtin_shuffle(a[4], a[5], m1b);
    fv_vf x3 = __builtin_shuffle(a[6], a[7], m1a) + __builtin_shuffle(a[6], a[7], m1b);
    fv_vf y0 = __builtin_shuffle(x0, x1, m2a) + __builtin_shuffle(x0, x1, m2b);
    fv_vf y1 = __builtin_shuffle(x2, x3, m2a) + __builtin_shuffle(x2, x3, m2b);
    fv_vf z = __builtin_shuffle(y0, y1, m3a) + __builtin_shuffle(y0, y1, m3b);
    fv_vf w = __builtin_shuffle(z, m4a) + __builtin_shuffle(z, m4b);
    memcpy(s, &w, 8 * sizeof(float));
}

/* Written with GCC vector types: left to itself gcc vectorises the loop over q with
 * gathers (act[q] is an indirection) and spills the block's sums. */
#define FV_ACT_NORM_VEC(VT, T, NV)                                                        \
    for (; jb + (NV) * L <= n; jb += (NV) * L) {                                          \
        VT a[NV];                                                                         \
        for (int u = 0; u < (NV); u++) a[u] = zero;                                       \
        for (long q = 0; q < nA; q++) {                                                   \
            const T *g = GT + (long)act[q] * n + jb;                                      \
            T ek = eA[q];               /* broadcast by the vector product */             \
            for (int u = 0; u < (NV); u++) {                                              \
                VT gv;                                                                    \
                memcpy(&gv, g + u * L, sizeof gv);                                        \
                a[u] += ek * gv;                                                          \
            }                                                                             \
        }                                                                                 \
        for (int u = 0; u < (NV); u++) {                                                  \
            VT cv, d = a[u] + eps;                                                        \
            memcpy(&cv, c + jb + u * L, sizeof cv);                                       \
            cv = cv / d;                                                                  \
            rs += cv;                                                                     \
            memcpy(r + jb + u * L, &cv, sizeof cv);                                       \
            if (nrm) memcpy(nrm + jb + u * L, &d, sizeof d);                              \
        }                                                                                 \
    }
/* n: the padded length (a multiple of L); GT rows have stride n. */
#define FV_LDA_NORM_ACT(NAME, T, VT)                                                      \
static inline double NAME(const T *__restrict GT, const T *__restrict c,                  \
                          const T *__restrict eA, const int *__restrict act,              \
                          T *__restrict r, T *__restrict nrm, long n, long nA, T eps)     \
{                                                                                         \
    const long L = (long)(sizeof(VT) / sizeof(T));                                        \
    const VT zero = {0};                                                                  \
    VT rs = zero;                                                                         \
    double R = 0.0;                                                                       \
    long jb = 0;                                                                          \
    FV_ACT_NORM_VEC(VT, T, 8)                                                             \
    switch ((n - jb) / L) {     /* the rest, up to 7 vectors, as one block */             \
    case 7: FV_ACT_NORM_VEC(VT, T, 7) break;                                              \
    case 6: FV_ACT_NORM_VEC(VT, T, 6) break;                                              \
    case 5: FV_ACT_NORM_VEC(VT, T, 5) break;                                              \
    case 4: FV_ACT_NORM_VEC(VT, T, 4) break;                                              \
    case 3: FV_ACT_NORM_VEC(VT, T, 3) break;                                              \
    case 2: FV_ACT_NORM_VEC(VT, T, 2) break;                                              \
    case 1: FV_ACT_NORM_VEC(VT, T, 1) break;                                              \
    default: break;                                                                       \
    }                                                                                     \
    for (; jb < n; jb++) {      /* unpadded callers only */                               \
        T a = 0;                                                                          \
        for (long q = 0; q < nA; q++) a += eA[q] * GT[(long)act[q] * n + jb];             \
        if (nrm) nrm[jb] = a + eps;                                                       \
        r[jb] = c[jb] / (a + eps);                                                        \
        R += r[jb];                                                                       \
    }                                                                                     \
    for (long i = 0; i < L; i++) R += rs[i];                                              \
    return R;                                                                             \
}
FV_LDA_NORM_ACT(fv_lda_norm_act_d, double, fv_vd)
FV_LDA_NORM_ACT(fv_lda_norm_act_f, float, fv_vf)
/* tA_q for NT topics act[q..q+NT), each summed over j in a vector; REDUCE(a) stores
 * the NT sums at tA + q. */
#define FV_ACT_T_GROUP(VT, T, NT, REDUCE)                                                 \
    for (; q + (NT) <= nA; q += (NT)) {                                                   \
        const T *g[NT];                                                                   \
        VT a[NT];                                                                         \
        for (int u = 0; u < (NT); u++) {                                                  \
            g[u] = GT + (long)act[q + u] * n;                                             \
            a[u] = zero;                                                                  \
        }                                                                                 \
        for (long j = 0; j < n; j += L) {                                                 \
            VT rv;                                                                        \
            memcpy(&rv, r + j, sizeof rv);                                                \
            for (int u = 0; u < (NT); u++) {                                              \
                VT gv;                                                                    \
                memcpy(&gv, g[u] + j, sizeof gv);                                         \
                a[u] += rv * gv;                                                          \
            }                                                                             \
        }                                                                                 \
        REDUCE                                                                            \
    }
/* The NT < 8 sums of a last group, through the eight-way tree (zeros for the rest). */
#define FV_ACT_T_REST(VT, T, NT, TSUM8)                                                   \
    {                                                                                     \
        VT b[8];                                                                          \
        T s8[8];                                                                          \
        for (int u = 0; u < 8; u++) b[u] = u < (NT) ? a[u] : zero;                        \
        TSUM8(b, s8);                                                                     \
        for (int u = 0; u < (NT); u++) tA[q + u] = s8[u];                                 \
    }
/* n: the padded length (a multiple of L); GT rows have stride n. */
#define FV_LDA_PASS_ACT(NAME, T, VT, NORM, TSUM8)                                         \
static inline double NAME(const T *__restrict GT, const T *__restrict c,                  \
                          const T *__restrict eA, const int *__restrict act,              \
                          T *__restrict tA, T *__restrict r, long n, long nA, T eps)      \
{                                                                                         \
    const long L = (long)(sizeof(VT) / sizeof(T));                                        \
    const VT zero = {0};                                                                  \
    long q = 0;                                                                           \
    double R = NORM(GT, c, eA, act, r, (T *)0, n, nA, eps);                               \
    FV_ACT_T_GROUP(VT, T, 8, TSUM8(a, tA + q);)                                           \
    switch (nA - q) {           /* the rest, up to 7 topics, as one group */              \
    case 7: FV_ACT_T_GROUP(VT, T, 7, FV_ACT_T_REST(VT, T, 7, TSUM8)) break;               \
    case 6: FV_ACT_T_GROUP(VT, T, 6, FV_ACT_T_REST(VT, T, 6, TSUM8)) break;               \
    case 5: FV_ACT_T_GROUP(VT, T, 5, FV_ACT_T_REST(VT, T, 5, TSUM8)) break;               \
    case 4: FV_ACT_T_GROUP(VT, T, 4, FV_ACT_T_REST(VT, T, 4, TSUM8)) break;               \
    case 3: FV_ACT_T_GROUP(VT, T, 3, FV_ACT_T_REST(VT, T, 3, TSUM8)) break;               \
    case 2: FV_ACT_T_GROUP(VT, T, 2, FV_ACT_T_REST(VT, T, 2, TSUM8)) break;               \
    case 1: FV_ACT_T_GROUP(VT, T, 1, FV_ACT_T_REST(VT, T, 1, TSUM8)) break;               \
    default: break;                                                                       \
    }                                                                                     \
    return R;                                                                             \
}
FV_LDA_PASS_ACT(fv_lda_pass_act_d, double, fv_vd, fv_lda_norm_act_d, fv_tsum8_d)
FV_LDA_PASS_ACT(fv_lda_pass_act_f, float, fv_vf, fv_lda_norm_act_f, fv_tsum8_f)

/* GT (K x np): the document's topic rows, gathered from eb (V x K), each row padded
 * with zeros from n to np, cp (np): the counts padded with zeros, and
 * lmax[k] = log max_j GT[k, j].  The rows are copied whole into S (n x K scratch),
 * streaming, a few rows ahead prefetched, and then transposed in tiles of 8 x 8. */
#define FV_LDA_GATHER_T(NAME, T)                                                          \
static inline void NAME(const T *__restrict eb, const int *__restrict idx,                \
                        const T *__restrict cnt, long n, long np, long K,                 \
                        T *__restrict GT, T *__restrict S, T *__restrict mx,              \
                        double *__restrict lmax, T *__restrict cp)                        \
{                                                                                         \
    const long ahead = 4, line = 64 / (long)sizeof(T);                                    \
    for (long k = 0; k < K; k++) mx[k] = 0;                                               \
    for (long j = 0; j < n && j < ahead; j++)                                             \
        for (long k = 0; k < K; k += line) __builtin_prefetch(eb + (long)idx[j] * K + k); \
    for (long j = 0; j < n; j++) {                                                        \
        if (j + ahead < n)                                                                \
            for (long k = 0; k < K; k += line)                                            \
                __builtin_prefetch(eb + (long)idx[j + ahead] * K + k);                    \
        const T *row = eb + (long)idx[j] * K;                                             \
        T *dst = S + j * K;                                                               \
        _Pragma("omp simd")                                                               \
        for (long k = 0; k < K; k++) {                                                    \
            T v = row[k];                                                                 \
            dst[k] = v;                                                                   \
            mx[k] = v > mx[k] ? v : mx[k];                                                \
        }                                                                                 \
    }                                                                                     \
    for (long j0 = 0; j0 < n; j0 += 8)                                                    \
        for (long k0 = 0; k0 < K; k0 += 8) {                                              \
            long j1 = j0 + 8 < n ? j0 + 8 : n, k1 = k0 + 8 < K ? k0 + 8 : K;              \
            for (long k = k0; k < k1; k++)                                                \
                for (long j = j0; j < j1; j++) GT[k * np + j] = S[j * K + k];             \
        }                                                                                 \
    if (np > n)                                                                           \
        for (long k = 0; k < K; k++)                                                      \
            for (long j = n; j < np; j++) GT[k * np + j] = 0;                             \
    for (long j = 0; j < n; j++) cp[j] = cnt[j];                                          \
    for (long j = n; j < np; j++) cp[j] = 0;                                              \
    for (long k = 0; k < K; k++) lmax[k] = log((double)mx[k]);                            \
}
#if defined(__AVX512F__)
/* The double gather with AVX-512: eight tokens' rows at a time, eight topics of them
 * loaded as eight vectors (masked past K; zero vectors for the padding tokens), their
 * maxima taken, transposed in registers and stored as eight pieces of GT's rows: one
 * pass over the rows, no scratch copy (S is not used).  The same values land in GT,
 * cp, mx and lmax as in the generic gather (copies and maxima only). */
static inline void fv_lda_gather_t_d(const double *__restrict eb, const int *__restrict idx,
                                     const double *__restrict cnt, long n, long np, long K,
                                     double *__restrict GT, double *__restrict S,
                                     double *__restrict mx, double *__restrict lmax,
                                     double *__restrict cp)
{
    const long nkb = (K + 7) / 8, line = 8;
    const __mmask8 lastm = (K % 8) ? (__mmask8)((1u << (K % 8)) - 1) : (__mmask8)0xff;
    const __m512i ia = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0);
    const __m512i ib = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
    const __m512i ic = _mm512_set_epi64(11, 10, 9, 8, 3, 2, 1, 0);
    const __m512i id = _mm512_set_epi64(15, 14, 13, 12, 7, 6, 5, 4);
    const __m512d zero = _mm512_setzero_pd();
    (void)S;
    for (long k = 0; k < K; k++) mx[k] = 0;
    for (long j = 0; j < n && j < 8; j++)
        for (long k = 0; k < K; k += line) __builtin_prefetch(eb + (long)idx[j] * K + k);
    for (long j0 = 0; j0 < np; j0 += 8) {
        const double *row[8];
        for (int i = 0; i < 8; i++)
            row[i] = j0 + i < n ? eb + (long)idx[j0 + i] * K : (const double *)0;
        for (long j = j0 + 8; j < n && j < j0 + 16; j++)     /* the next eight rows */
            for (long k = 0; k < K; k += line) __builtin_prefetch(eb + (long)idx[j] * K + k);
        for (long kb = 0; kb < nkb; kb++) {
            const __mmask8 m = kb == nkb - 1 ? lastm : (__mmask8)0xff;
            __m512d v[8], t[8], u[8], w[8];
            __m512d mv = _mm512_maskz_loadu_pd(m, mx + kb * 8);
            for (int i = 0; i < 8; i++) {
                v[i] = row[i] ? _mm512_maskz_loadu_pd(m, row[i] + kb * 8) : zero;
                mv = _mm512_max_pd(mv, v[i]);
            }
            _mm512_mask_storeu_pd(mx + kb * 8, m, mv);
            for (int i = 0; i < 8; i += 2) {
                t[i] = _mm512_unpacklo_pd(v[i], v[i + 1]);
                t[i + 1] = _mm512_unpackhi_pd(v[i], v[i + 1]);
            }
            for (int h = 0; h < 8; h += 4) {
                u[h] = _mm512_permutex2var_pd(t[h], ia, t[h + 2]);
                u[h + 1] = _mm512_permutex2var_pd(t[h + 1], ia, t[h + 3]);
                u[h + 2] = _mm512_permutex2var_pd(t[h], ib, t[h + 2]);
                u[h + 3] = _mm512_permutex2var_pd(t[h + 1], ib, t[h + 3]);
            }
            for (int i = 0; i < 4; i++) {
                w[i] = _mm512_permutex2var_pd(u[i], ic, u[i + 4]);
                w[i + 4] = _mm512_permutex2var_pd(u[i], id, u[i + 4]);
            }
            for (int i = 0; i < 8 && kb * 8 + i < K; i++)
                _mm512_storeu_pd(GT + (kb * 8 + i) * np + j0, w[i]);
        }
    }
    for (long j = 0; j < n; j++) cp[j] = cnt[j];
    for (long j = n; j < np; j++) cp[j] = 0;
    for (long k = 0; k < K; k++) lmax[k] = log(mx[k]);
}
#else
FV_LDA_GATHER_T(fv_lda_gather_t_d, double)
#endif
FV_LDA_GATHER_T(fv_lda_gather_t_f, float)

/* b[k] += a[k], k < K: a partition's statistics of a word added to the total. */
static inline void fv_lda_add(double *__restrict b, const double *__restrict a, long K)
{
    _Pragma("omp simd")
    for (long k = 0; k < K; k++) b[k] += a[k];
}

/* b[k] += r e[k], k < K: a document's statistics when every topic is active. */
#define FV_LDA_AXPY(NAME, T)                                                              \
static inline void NAME(double *__restrict b, double r, const T *__restrict e, long K)    \
{                                                                                         \
    _Pragma("omp simd")                                                                   \
    for (long k = 0; k < K; k++) b[k] += r * e[k];                                        \
}
FV_LDA_AXPY(fv_lda_axpy_d, double)
FV_LDA_AXPY(fv_lda_axpy_f, float)

/* elogA[i] = psi(gA[i]) - ps and eA[i] = exp(elogA[i]), i < nA: the sweep's
 * expectations at the updated gamma.  Elementwise, so the vector width is free: a
 * function of its own built for 64-byte vectors (the sweep's reductions keep theirs),
 * the same values as the loops it replaces, in fewer instructions. */
#if defined(__AVX512F__) && defined(__GNUC__) && !defined(__clang__)
#define FV_LDA_WIDE __attribute__((noinline, target("prefer-vector-width=512")))
#else
#define FV_LDA_WIDE
#endif
#define FV_LDA_ELOG_EXP(NAME, T)                                                          \
static FV_LDA_WIDE void NAME(const double *__restrict gA, double ps,                      \
                             double *__restrict elogA, T *__restrict eA, long nA)         \
{                                                                                         \
    _Pragma("omp simd")                                                                   \
    for (long i = 0; i < nA; i++) elogA[i] = fv_digamma(gA[i]) - ps;                     \
    _Pragma("omp simd")                                                                   \
    for (long i = 0; i < nA; i++) eA[i] = (T)fv_exp(elogA[i]);                           \
}
FV_LDA_ELOG_EXP(fv_lda_elog_exp_d, double)

/* eA[i] = exp(psi(gA[i]) - ps), i < nA, without the log of psi: with y = x + 6,
 * psi(x) = log y - h(1/y) - Q'(x)/Q(x) (h the asymptotic series of fv_digamma, Q(x) =
 * x(x+1)...(x+5)), so exp(psi(x) - ps) = y exp(-(h + Q'/Q + ps)): one exp and two
 * divisions per element instead of fv_digamma's three divisions and log, then an exp.
 * The sweep needs only e (its drop test compares e R with exp of the threshold); the
 * log-domain values are computed once at exit (fv_expect_log_*).  Q(x) would overflow
 * past x ~ 1e51, so Q'/Q takes x capped at 1e40 (Q'/Q < 1e-39 there; the corpus checks
 * bound every gamma by 1e40 anyway).  Accuracy: the rounding of the argument of exp,
 * as exp(fv_digamma(x) - ps) (tests/test_lda.py, against scipy up to x = 1e300). */
#define FV_LDA_EEXP(NAME, T)                                                              \
static FV_LDA_WIDE void NAME(const double *__restrict gA, double ps, T *__restrict eA,    \
                             long nA)                                                     \
{                                                                                         \
    _Pragma("omp simd")                                                                   \
    for (long i = 0; i < nA; i++) {                                                       \
        double x = gA[i], y = x + 6.0;                                                    \
        double xq = x < 1e40 ? x : 1e40;        /* Q'/Q < 1e-39 past it */                \
        double f = 1.0 / y, qq = fv_psi_shift(xq);                                        \
        double f2 = f * f, p = fv_psi_poly(f2);                                           \
        eA[i] = (T)(y * fv_exp(-((0.5 * f + f2 * p) + qq + ps)));                         \
    }                                                                                     \
}
FV_LDA_EEXP(fv_lda_eexp_d, double)
FV_LDA_EEXP(fv_lda_eexp_f, float)

/* elog[k] = psi(gamma_k) - psi(sum gamma); e[k] = exp(elog[k]).  Returns sum gamma. */
static inline double fv_expect_log_d(const double *gamma, double *e, double *elog, long K)
{
    double s = 0.0;
    for (long k = 0; k < K; k++) s += gamma[k];
    fv_lda_elog_exp_d(gamma, fv_digamma(s), elog, e, K);
    return s;
}

/* The soft fixed point of one document over its active topics only.
 *
 * A topic k whose whole contribution to gamma_k in a sweep, e_k sum_j r_j G_jk, is
 * below half an ulp of alpha_k leaves gamma_k at alpha_k bitwise, exactly as the dense
 * sweep would; its share of every norm_j is then below 2^-ULP relative as well.  With
 * M_k = max_j G_jk and R = sum_j r_j (r_j = c_j / (norm_j + eps) from the active
 * topics: an upper bound on the dense r_j) that contribution is at most e_k M_k R,
 * so topic k may be skipped while
 *     log e_k + log M_k + log R < log tau_k,  tau_k = 2^-ULP min(alpha_k, c_min / K).
 * Active topics are dropped once they satisfy this with a margin of 2^-4, tested as
 * e_k R < exp(log tau_k - margin - log M_k) (the sweep keeps e, not its log; state 2:
 * gamma_k is set to alpha_k in the next sweep, state 0 after).  Skipped topics are
 * checked against the bound after every sweep with that sweep's R, in O(1) through
 * H >= max over them of log e_k + ps + log M_k - log tau_k, and put back (the sweep
 * redone) when it fails.  So every sweep costs O(n nA + nA), and the result equals
 * the dense fixed point up to round-off (sums of gamma and |change| are taken in
 * another order).
 *
 * GT (K x n, n the padded token count: see fv_lda_norm_act) and lmax (K): from the
 * gather; c: n counts (0 for the padding); vA: 2K; r: n; dw: 6K doubles; act, on,
 * dl: K ints each; psa[k] = psi(alpha_k), lal[k] = log alpha_k.  gamma (K) is the
 * start and is overwritten;
 * act[0..*n_active) are the active topics at exit.  Returns the number of sweeps.
 *
 * Per active slot i (topic act[i]) the sweep reads contiguous copies: gA (its gamma),
 * alA (its alpha) and ethA = exp(log tau - margin - log M) (its drop threshold), so that the
 * update and the drop test run as vector loops; gamma[act[i]] is written back when a
 * topic is dropped and at exit. */
#define FV_LDA_SPARSE(NAME, T, PASS, EEXP, ULP)                                           \
static inline long NAME(const T *__restrict GT, const T *__restrict c, long n, long K,    \
                        const double *__restrict alpha, const double *__restrict psa,     \
                        const double *__restrict lal, const double *__restrict lmax,      \
                        T *__restrict gamma, long max_iter, double tol, T eps,            \
                        T *__restrict vA, T *__restrict r, double *__restrict dw,         \
                        int *__restrict act, int *__restrict on, int *__restrict dl,      \
                        long *n_active)                                                   \
{                                                                                         \
    T *eA = vA, *tA = vA + K;                                                             \
    double *pin = dw + K, *ltau = dw + 2 * K, *gA = dw + 3 * K;     /* dw[0, K): free */ \
    double *alA = dw + 4 * K, *ethA = dw + 5 * K;                                         \
    const double margin = 2.772588722239781;   /* log 16 */                               \
    double cmin = HUGE_VAL, s, ps, change, R, logR, soff = 0.0, H = -HUGE_VAL;            \
    long nA = K, nd = 0, it = 0, i, j, k, m, added;                                       \
    int drop;                                                                             \
    for (j = 0; j < n; j++) if (c[j] > 0 && c[j] < cmin) cmin = c[j];                     \
    /* log min(alpha_k, cmin / K) = min(log alpha_k, log(cmin / K)): log is monotone */   \
    const double lc = log(cmin / (double)K);                                              \
    for (k = 0; k < K; k++) {                                                             \
        ltau[k] = (lal[k] < lc ? lal[k] : lc) - (ULP) * 0.6931471805599453;               \
        act[k] = (int)k;                                                                  \
        on[k] = 1;                                                                        \
        gA[k] = gamma[k];                                                                 \
        alA[k] = alpha[k];                                                                \
    }                                                                                     \
    _Pragma("omp simd")                                                                   \
    for (k = 0; k < K; k++) ethA[k] = fv_exp(ltau[k] - margin - lmax[k]);                 \
    s = 0.0;                                                                              \
    for (k = 0; k < K; k++) s += gamma[k];                                                \
    ps = fv_digamma(s);                                                                   \
    EEXP(gA, ps, eA, nA);                                                                 \
    while (it < max_iter) {                                                               \
        it++;                                                                             \
        for (;;) {                                                                        \
            R = PASS(GT, c, eA, act, tA, r, n, nA, eps);                                  \
            logR = log(R);                                                                \
            if (nA == K || H - ps + logR < 0) break;                                      \
            added = 0;                                                                    \
            H = -HUGE_VAL;                                                                \
            for (k = 0; k < K; k++) {                                                     \
                if (on[k] == 1) continue;                                                 \
                double h = pin[k] + lmax[k] - ltau[k];                                    \
                if (h - ps + logR < 0) {                                                  \
                    H = h > H ? h : H;                                                    \
                    continue;                                                             \
                }                                                                         \
                on[k] = 1;                                                                \
                act[nA] = (int)k;                                                         \
                gA[nA] = gamma[k];                                                        \
                alA[nA] = alpha[k];                                                       \
                ethA[nA] = fv_exp(ltau[k] - margin - lmax[k]);                            \
                eA[nA] = (T)fv_exp(pin[k] - ps);                                          \
                nA++;                                                                     \
                added++;                                                                  \
            }                                                                             \
            if (!added) break;                                                            \
            soff = 0.0;                                                                   \
            for (k = 0; k < K; k++) if (on[k] == 0) soff += alpha[k];                     \
        }                                                                                 \
        change = 0.0;                                                                     \
        for (i = 0; i < nd; i++) {                                                        \
            k = dl[i];                                                                    \
            if (on[k] != 2) continue;                                                     \
            change += fabs(alpha[k] - (double)gamma[k]);                                  \
            gamma[k] = (T)alpha[k];                                                       \
            pin[k] = psa[k];                                                              \
            on[k] = 0;                                                                    \
            soff += alpha[k];                                                             \
        }                                                                                 \
        nd = 0;                                                                           \
        s = 0.0;                                                                          \
        _Pragma("omp simd reduction(+:change, s)")                                        \
        for (i = 0; i < nA; i++) {                                                        \
            double gi = alA[i] + eA[i] * tA[i];                                           \
            double gt = (double)(T)gi;                                                    \
            change += fabs(gi - gA[i]);                                                   \
            gA[i] = gt;                                                                   \
            s += gt;                                                                      \
        }                                                                                 \
        s += soff;                                                                        \
        ps = fv_digamma(s);                                                               \
        EEXP(gA, ps, eA, nA);                                                             \
        if (change / K < tol) break;                                                      \
        drop = 0;                                                                         \
        _Pragma("omp simd reduction(|:drop)")                                             \
        for (i = 0; i < nA; i++) drop |= (double)eA[i] * R < ethA[i];                     \
        if (!drop) continue;                                                              \
        m = 0;                                                                            \
        for (i = 0; i < nA; i++) {                                                        \
            k = act[i];                                                                   \
            if ((double)eA[i] * R < ethA[i]) {                                            \
                on[k] = 2;                                                                \
                dl[nd++] = (int)k;                                                        \
                gamma[k] = (T)gA[i];                                                      \
                pin[k] = fv_digamma(gA[i]);                                               \
                double h = pin[k] + lmax[k] - ltau[k];                                    \
                H = h > H ? h : H;                                                        \
            } else {                                                                      \
                act[m] = (int)k;                                                          \
                eA[m] = eA[i];                                                            \
                gA[m] = gA[i];                                                            \
                alA[m] = alA[i];                                                          \
                ethA[m] = ethA[i];                                                        \
                m++;                                                                      \
            }                                                                             \
        }                                                                                 \
        nA = m;                                                                           \
    }                                                                                     \
    for (i = 0; i < nA; i++) gamma[act[i]] = (T)gA[i];                                    \
    /* topics dropped by the last sweep (its tolerance test failed, max_iter reached)     \
       stay active for the caller's final terms */                                        \
    for (i = 0; i < nd; i++) if (on[dl[i]] == 2) { on[dl[i]] = 1; act[nA++] = dl[i]; }   \
    *n_active = nA;                                                                       \
    return it;                                                                            \
}
FV_LDA_SPARSE(fv_lda_sparse_d, double, fv_lda_pass_act_d, fv_lda_eexp_d, 54)
FV_LDA_SPARSE(fv_lda_sparse_f, float, fv_lda_pass_act_f, fv_lda_eexp_f, 25)

/* A topic row of the online mini-batch: out_k = exp(psi(a S_k + b) - ps_k) (posterior)
 * or (a S_k + b) ps_k with ps_k = 1 / total_k. */
#define FV_LDA_EFFECTIVE_ROW(NAME, T)                                                     \
static inline void NAME(const double *__restrict S, double a, double b,                   \
                        const double *__restrict ps, T *__restrict out, long K,           \
                        int posterior)                                                    \
{                                                                                         \
    if (posterior) {                                                                      \
        _Pragma("omp simd")                                                               \
        for (long k = 0; k < K; k++) out[k] = (T)fv_exp(fv_digamma(a * S[k] + b) - ps[k]);\
    } else {                                                                              \
        _Pragma("omp simd")                                                               \
        for (long k = 0; k < K; k++) out[k] = (T)((a * S[k] + b) * ps[k]);                \
    }                                                                                     \
}
FV_LDA_EFFECTIVE_ROW(fv_lda_effective_row_d, double)
FV_LDA_EFFECTIVE_ROW(fv_lda_effective_row_f, float)
#endif
