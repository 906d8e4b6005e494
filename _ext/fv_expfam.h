/* Inner loops of the exponential-family row driver (_expfam.pyx), written in C so
 * that `restrict` tells the compiler the rows do not alias and it vectorises them
 * (the same loops in Cython run scalar: measured 4x slower at K = 16). */
#ifndef FV_EXPFAM_H
#define FV_EXPFAM_H
#include "fv_math.h"

/* 4 doubles in one vector (GCC / clang vector extensions: AVX where -march has it,
 * two SSE2 halves otherwise); aligned(8) makes unaligned loads and stores legal */
typedef double fv_v4 __attribute__((vector_size(32), aligned(8)));

/* y[0:n] += a * x[0:n], vectorised along n: an explicit vector loop, because left
 * to itself the compiler vectorised the loop *around* calls of this (across the
 * sparse statistics, with gathers), 4x slower at K = 16 */
static inline void fv_axpy(double *restrict y, const double *restrict x, double a, long n)
{
    long k = 0;
    const fv_v4 av = {a, a, a, a};
    for (; k + 4 <= n; k += 4)
        *(fv_v4 *)(y + k) += av * *(const fv_v4 *)(x + k);
    for (; k < n; k++)
        y[k] += a * x[k];
}

/* row[0:n] = c[0:n] + logw[0:n] + h */
static inline void fv_init_row(double *restrict row, const double *restrict c,
                               const double *restrict logw, double h, long n)
{
    for (long k = 0; k < n; k++)
        row[k] = c[k] + logw[k] + h;
}

/* row[0:4 NV] += sum_a val[a] * Wt[idx[a]] with the row held in NV vector
 * registers (one load and one store of the row, not one per statistic) */
#define FV_GATHER_NV(NV)                                                              \
static inline void fv_gather_##NV(double *restrict row, const double *restrict Wt,   \
                                  const int *restrict idx, const double *restrict val,\
                                  long na, long K)                                    \
{                                                                                     \
    fv_v4 acc[NV];                                                                    \
    for (int j = 0; j < NV; j++)                                                      \
        acc[j] = *(const fv_v4 *)(row + 4 * j);                                       \
    for (long a = 0; a < na; a++) {                                                   \
        const double *restrict w = Wt + (long)idx[a] * K;                             \
        const double v = val[a];                                                      \
        const fv_v4 vv = {v, v, v, v};                                               \
        for (int j = 0; j < NV; j++)                                                  \
            acc[j] += vv * *(const fv_v4 *)(w + 4 * j);                               \
    }                                                                                 \
    for (int j = 0; j < NV; j++)                                                      \
        *(fv_v4 *)(row + 4 * j) = acc[j];                                             \
}
FV_GATHER_NV(1)
FV_GATHER_NV(2)
FV_GATHER_NV(3)
FV_GATHER_NV(4)
FV_GATHER_NV(5)
FV_GATHER_NV(6)
FV_GATHER_NV(7)
FV_GATHER_NV(8)

/* the log-density row of one sparse observation: row += sum_a val[a] * Wt[idx[a]]
 * (the same sums in the same order whichever branch runs: each k adds its terms
 * in the order of a) */
static inline void fv_gather_rows(double *restrict row, const double *restrict Wt,
                                  const int *restrict idx, const double *restrict val,
                                  long na, long K)
{
    switch (K % 4 == 0 ? K / 4 : 0) {
    case 1: fv_gather_1(row, Wt, idx, val, na, K); return;
    case 2: fv_gather_2(row, Wt, idx, val, na, K); return;
    case 3: fv_gather_3(row, Wt, idx, val, na, K); return;
    case 4: fv_gather_4(row, Wt, idx, val, na, K); return;
    case 5: fv_gather_5(row, Wt, idx, val, na, K); return;
    case 6: fv_gather_6(row, Wt, idx, val, na, K); return;
    case 7: fv_gather_7(row, Wt, idx, val, na, K); return;
    case 8: fv_gather_8(row, Wt, idx, val, na, K); return;
    default:
        for (long a = 0; a < na; a++)
            fv_axpy(row, Wt + (long)idx[a] * K, val[a], K);
    }
}

/* the statistics of one sparse observation: St[idx[a]] += val[a] * r */
static inline void fv_scatter_rows(double *restrict St, const double *restrict r,
                                   const int *restrict idx, const double *restrict val,
                                   long na, long K)
{
    for (long a = 0; a < na; a++)
        fv_axpy(St + (long)idx[a] * K, r, val[a], K);
}
/* row[k] <- exp(row[k] - mx), d[k] = row[k] - mx; returns the sum of the exps
 * (added in the order of k).  The exps run vectorised (fv_exp is branch-free); a
 * loop that also summed them would run scalar, the sum being a serial chain. */
static inline double fv_exp_row(double *restrict row, double *restrict d, double mx, long K)
{
    for (long k = 0; k < K; k++) {
        d[k] = row[k] - mx;
        row[k] = fv_exp(d[k]);
    }
    double tot = 0.0;
    for (long k = 0; k < K; k++)
        tot += row[k];
    return tot;
}
#endif
