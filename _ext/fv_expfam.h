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

/* ---------------------------------------------------------------------------
 * Packed bits (F_BITS), the E-step's hot path (the gather in every mode, the
 * scatter in the soft one): the statistics of a row are its 2 G half bytes, each
 * one entry of a 16-value lookup table, value 1.  The rows are read straight
 * from their bytes (no index / value arrays), 4 rows at a time so that 4
 * independent chains of additions run side by side (one row
 * alone waits on the latency of its own 2 G additions), and turned between the
 * row layout (a row's K values in NV vectors of L lanes) and the local step's
 * transposed layout (lpT: K columns of B rows) with 4 x 4 transposes in
 * registers.  The sums are the generic path's (fv_gather_rows, fv_scatter_rows
 * with val = 1), term for term in the same order: a row's lookups in the order
 * of its half bytes; an entry of the statistics receives its rows in row order
 * (the 2 G entries of one row are distinct); 1 * x is x, so nothing is
 * multiplied.  K a multiple of 8 runs on 8-lane vectors (one AVX-512 register;
 * half the loads and stores of 4 lanes), other multiples of 4 on 4 lanes, up to
 * K = 32; other K take the generic path.  Measured (N = 200,000, D = 64, K = 16,
 * one thread, with the 64-byte aligned buffers of row_pass): a soft pass 26 ->
 * 11 ms, of which 4 rows at a time and no per-row index arrays ~1.7x, 8 lanes
 * ~1.1x, aligned tables and slots ~1.2x.
 * ------------------------------------------------------------------------- */
typedef double fv_v8 __attribute__((vector_size(64), aligned(8)));

#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define FV_SHUF4(a, b, i, j, k, l) __builtin_shufflevector(a, b, i, j, k, l)
#endif
#endif
#ifndef FV_SHUF4
typedef long long fv_i4 __attribute__((vector_size(32)));
#define FV_SHUF4(a, b, i, j, k, l) __builtin_shuffle(a, b, (fv_i4){i, j, k, l})
#endif

/* (a0 a1 a2 a3) 4 x 4 -> its transpose, in place (exact: moves only) */
#define FV_TRANSPOSE4(a0, a1, a2, a3)                                                \
    do {                                                                             \
        const fv_v4 t0_ = FV_SHUF4(a0, a1, 0, 4, 2, 6), t1_ = FV_SHUF4(a0, a1, 1, 5, 3, 7); \
        const fv_v4 t2_ = FV_SHUF4(a2, a3, 0, 4, 2, 6), t3_ = FV_SHUF4(a2, a3, 1, 5, 3, 7); \
        a0 = FV_SHUF4(t0_, t2_, 0, 1, 4, 5);                                         \
        a1 = FV_SHUF4(t1_, t3_, 0, 1, 4, 5);                                         \
        a2 = FV_SHUF4(t0_, t2_, 2, 3, 6, 7);                                         \
        a3 = FV_SHUF4(t1_, t3_, 2, 3, 6, 7);                                         \
    } while (0)

/* quarter p (lanes 4 p .. 4 p + 3) of a vector, read or written (an extract /
 * insert: the compiler sees through the copies) */
#define FV_GETQ(v, p, q) memcpy(&(q), (const char *)&(v) + 32 * (p), 32)
#define FV_SETQ(v, p, q) memcpy((char *)&(v) + 32 * (p), &(q), 32)

/* the entries of byte b of a row in its block tg (the 32 entries of the byte's two
 * half bytes, 16 values each): the low half byte's, then the high one's */
#define FV_LO(tg, b, K) ((tg) + ((b) & 15) * (K))
#define FV_HI(tg, b, K) ((tg) + (16 + ((b) >> 4)) * (K))

/* lpT[k * B + i] = base[k] + sum of the row's lookups, rows i = 0..nb-1 of x
 * (G bytes a row); base = c + logw + log h (log h = 0 for bits).  VT: vectors
 * of L lanes, K = L NV. */
#define FV_BITS_GATHER(NAME, VT, L, NV)                                               \
static inline void NAME(double *restrict lpT, long B, const double *restrict tab,    \
                        const unsigned char *restrict x, long G, long nb,             \
                        const double *restrict base)                                  \
{                                                                                     \
    const long K = L * NV;                                                            \
    long i = 0;                                                                       \
    for (; i + 4 <= nb; i += 4) {                                                     \
        const unsigned char *x0 = x + i * G, *x1 = x0 + G, *x2 = x1 + G, *x3 = x2 + G; \
        VT a0[NV], a1[NV], a2[NV], a3[NV];                                            \
        for (int j = 0; j < NV; j++)                                                  \
            a0[j] = a1[j] = a2[j] = a3[j] = *(const VT *)(base + L * j);             \
        for (long g = 0; g < G; g++) {                                                \
            const double *tg = tab + 32 * K * g;                                      \
            const double *restrict w0 = FV_LO(tg, x0[g], K);                          \
            const double *restrict w1 = FV_LO(tg, x1[g], K);                          \
            const double *restrict w2 = FV_LO(tg, x2[g], K);                          \
            const double *restrict w3 = FV_LO(tg, x3[g], K);                          \
            const double *restrict v0 = FV_HI(tg, x0[g], K);                          \
            const double *restrict v1 = FV_HI(tg, x1[g], K);                          \
            const double *restrict v2 = FV_HI(tg, x2[g], K);                          \
            const double *restrict v3 = FV_HI(tg, x3[g], K);                          \
            for (int j = 0; j < NV; j++) {                                            \
                a0[j] += *(const VT *)(w0 + L * j);                                   \
                a1[j] += *(const VT *)(w1 + L * j);                                   \
                a2[j] += *(const VT *)(w2 + L * j);                                   \
                a3[j] += *(const VT *)(w3 + L * j);                                   \
                a0[j] += *(const VT *)(v0 + L * j);                                   \
                a1[j] += *(const VT *)(v1 + L * j);                                   \
                a2[j] += *(const VT *)(v2 + L * j);                                   \
                a3[j] += *(const VT *)(v3 + L * j);                                   \
            }                                                                         \
        }                                                                             \
        for (int j = 0; j < NV; j++)                                                  \
            for (int p = 0; p < L / 4; p++) {                                         \
                fv_v4 q0, q1, q2, q3;                                                 \
                FV_GETQ(a0[j], p, q0);                                                \
                FV_GETQ(a1[j], p, q1);                                                \
                FV_GETQ(a2[j], p, q2);                                                \
                FV_GETQ(a3[j], p, q3);                                                \
                FV_TRANSPOSE4(q0, q1, q2, q3);                                        \
                double *col = lpT + (L * j + 4 * p) * B + i;                          \
                *(fv_v4 *)col = q0;                                                   \
                *(fv_v4 *)(col + B) = q1;                                             \
                *(fv_v4 *)(col + 2 * B) = q2;                                         \
                *(fv_v4 *)(col + 3 * B) = q3;                                         \
            }                                                                         \
    }                                                                                 \
    for (; i < nb; i++) {                 /* the last nb % 4 rows, one at a time */  \
        const unsigned char *x0 = x + i * G;                                          \
        VT a0[NV];                                                                    \
        for (int j = 0; j < NV; j++)                                                  \
            a0[j] = *(const VT *)(base + L * j);                                      \
        for (long g = 0; g < G; g++) {                                                \
            const double *tg = tab + 32 * K * g;                                      \
            const double *restrict w0 = FV_LO(tg, x0[g], K);                          \
            const double *restrict v0 = FV_HI(tg, x0[g], K);                          \
            for (int j = 0; j < NV; j++) {                                            \
                a0[j] += *(const VT *)(w0 + L * j);                                   \
                a0[j] += *(const VT *)(v0 + L * j);                                   \
            }                                                                         \
        }                                                                             \
        for (int j = 0; j < NV; j++)                                                  \
            for (int q = 0; q < L; q++)                                               \
                lpT[(L * j + q) * B + i] = a0[j][q];                                  \
    }                                                                                 \
}

/* one row's responsibilities rr (NV vectors) into the 2 G entries its bytes xq pick */
#define FV_BITS_ADD_ROW(VT, L, NV, xq, rr)                                            \
    for (long g = 0; g < G; g++) {                                                    \
        double *sg = st + 32 * K * g;                                                 \
        double *w = FV_LO(sg, (xq)[g], K), *v = FV_HI(sg, (xq)[g], K);                \
        for (int j = 0; j < (NV); j++) {                                              \
            *(VT *)(w + (L) * j) += (rr)[j];                                          \
            *(VT *)(v + (L) * j) += (rr)[j];                                          \
        }                                                                             \
    }

/* st[entry] += r for each of the 2 G entries of every row i = 0..nb-1, r the row's
 * responsibilities (lpT[k * B + i] after the local step), rows in order; and
 * nk[k] += the chunk's sum of r[k] (from 0, in row order, then added once) */
#define FV_BITS_SCATTER(NAME, VT, L, NV)                                              \
static inline void NAME(double *restrict st, double *restrict nk,                     \
                        const double *restrict lpT, long B,                          \
                        const unsigned char *restrict x, long G, long nb)             \
{                                                                                     \
    const long K = L * NV;                                                            \
    VT cnt[NV];                                                                       \
    for (int j = 0; j < NV; j++)                                                      \
        cnt[j] = (VT){0.0};                                                           \
    long i = 0;                                                                       \
    for (; i + 4 <= nb; i += 4) {                                                     \
        VT r[4][NV];                                                                  \
        for (int j = 0; j < NV; j++)                                                  \
            for (int p = 0; p < L / 4; p++) {                                         \
                const double *col = lpT + (L * j + 4 * p) * B + i;                    \
                fv_v4 q0 = *(const fv_v4 *)col, q1 = *(const fv_v4 *)(col + B);      \
                fv_v4 q2 = *(const fv_v4 *)(col + 2 * B), q3 = *(const fv_v4 *)(col + 3 * B); \
                FV_TRANSPOSE4(q0, q1, q2, q3);                                        \
                FV_SETQ(r[0][j], p, q0);                                              \
                FV_SETQ(r[1][j], p, q1);                                              \
                FV_SETQ(r[2][j], p, q2);                                              \
                FV_SETQ(r[3][j], p, q3);                                              \
            }                                                                         \
        for (int q = 0; q < 4; q++) {                                                 \
            const unsigned char *xq = x + (i + q) * G;                                \
            for (int j = 0; j < NV; j++)                                              \
                cnt[j] += r[q][j];                                                    \
            FV_BITS_ADD_ROW(VT, L, NV, xq, r[q])                                      \
        }                                                                             \
    }                                                                                 \
    for (; i < nb; i++) {                 /* the last nb % 4 rows, one at a time */  \
        const unsigned char *xq = x + i * G;                                          \
        VT r0[NV];                                                                    \
        for (int j = 0; j < NV; j++) {                                                \
            double t[L];                                                              \
            for (int q = 0; q < L; q++)                                               \
                t[q] = lpT[(L * j + q) * B + i];                                      \
            memcpy(&r0[j], t, sizeof t);                                              \
            cnt[j] += r0[j];                                                          \
        }                                                                             \
        FV_BITS_ADD_ROW(VT, L, NV, xq, r0)                                            \
    }                                                                                 \
    for (int j = 0; j < NV; j++)                                                      \
        *(VT *)(nk + L * j) += cnt[j];                                                \
}
/* K = 8, 16, 24, 32 on 8 lanes; K = 4, 12, 20, 28 on 4 */
FV_BITS_GATHER(fv_bits_gather_8x1, fv_v8, 8, 1)
FV_BITS_GATHER(fv_bits_gather_8x2, fv_v8, 8, 2)
FV_BITS_GATHER(fv_bits_gather_8x3, fv_v8, 8, 3)
FV_BITS_GATHER(fv_bits_gather_8x4, fv_v8, 8, 4)
FV_BITS_GATHER(fv_bits_gather_4x1, fv_v4, 4, 1)
FV_BITS_GATHER(fv_bits_gather_4x3, fv_v4, 4, 3)
FV_BITS_GATHER(fv_bits_gather_4x5, fv_v4, 4, 5)
FV_BITS_GATHER(fv_bits_gather_4x7, fv_v4, 4, 7)
FV_BITS_SCATTER(fv_bits_scatter_8x1, fv_v8, 8, 1)
FV_BITS_SCATTER(fv_bits_scatter_8x2, fv_v8, 8, 2)
FV_BITS_SCATTER(fv_bits_scatter_8x3, fv_v8, 8, 3)
FV_BITS_SCATTER(fv_bits_scatter_8x4, fv_v8, 8, 4)
FV_BITS_SCATTER(fv_bits_scatter_4x1, fv_v4, 4, 1)
FV_BITS_SCATTER(fv_bits_scatter_4x3, fv_v4, 4, 3)
FV_BITS_SCATTER(fv_bits_scatter_4x5, fv_v4, 4, 5)
FV_BITS_SCATTER(fv_bits_scatter_4x7, fv_v4, 4, 7)

/* whether the packed-bits path above serves K components */
static inline int fv_bits_fast(long K) { return K % 4 == 0 && K >= 4 && K <= 32; }

static inline void fv_bits_gather(double *restrict lpT, long B, const double *restrict tab,
                                  const unsigned char *restrict x, long G, long nb,
                                  const double *restrict base, long K)
{
    switch (K) {
    case 4: fv_bits_gather_4x1(lpT, B, tab, x, G, nb, base); return;
    case 8: fv_bits_gather_8x1(lpT, B, tab, x, G, nb, base); return;
    case 12: fv_bits_gather_4x3(lpT, B, tab, x, G, nb, base); return;
    case 16: fv_bits_gather_8x2(lpT, B, tab, x, G, nb, base); return;
    case 20: fv_bits_gather_4x5(lpT, B, tab, x, G, nb, base); return;
    case 24: fv_bits_gather_8x3(lpT, B, tab, x, G, nb, base); return;
    case 28: fv_bits_gather_4x7(lpT, B, tab, x, G, nb, base); return;
    case 32: fv_bits_gather_8x4(lpT, B, tab, x, G, nb, base); return;
    }
}

static inline void fv_bits_scatter(double *restrict st, double *restrict nk,
                                   const double *restrict lpT, long B,
                                   const unsigned char *restrict x, long G, long nb, long K)
{
    switch (K) {
    case 4: fv_bits_scatter_4x1(st, nk, lpT, B, x, G, nb); return;
    case 8: fv_bits_scatter_8x1(st, nk, lpT, B, x, G, nb); return;
    case 12: fv_bits_scatter_4x3(st, nk, lpT, B, x, G, nb); return;
    case 16: fv_bits_scatter_8x2(st, nk, lpT, B, x, G, nb); return;
    case 20: fv_bits_scatter_4x5(st, nk, lpT, B, x, G, nb); return;
    case 24: fv_bits_scatter_8x3(st, nk, lpT, B, x, G, nb); return;
    case 28: fv_bits_scatter_4x7(st, nk, lpT, B, x, G, nb); return;
    case 32: fv_bits_scatter_8x4(st, nk, lpT, B, x, G, nb); return;
    }
}

/* Everything compiled after this header -- the Cython code of _expfam.pyx, with
 * the local step inlined from _common.pxd -- may vectorise its loops on 8-lane
 * (AVX-512) vectors where -march has them (gcc prefers 4 lanes by default): the
 * local step's loops run down the rows, element by element, so only the number
 * of rows a vector holds changes, never a result.  Measured 15% faster per pass
 * of packed bits (N = 200,000, D = 64, K = 16), most of it in the softmax's exp. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__AVX512F__)
#pragma GCC target("prefer-vector-width=512")
#endif
#endif
