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

#endif
