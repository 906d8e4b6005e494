/* Branch-free exp for double and float, written so that gcc vectorises the
 * loops that call it (no libm call, no errno).  Accuracy: a few ulp over the
 * whole range; arguments below the underflow limit return exactly 0, which is
 * what a softmax needs (exp(x - max) with x - max <= 0).  The same code runs
 * for every chunk, so results do not depend on the number of threads. */
#ifndef FV_MATH_H
#define FV_MATH_H
#include <stdint.h>
#include <string.h>

static inline __attribute__((always_inline)) double fv_exp(double x)
{
    const double log2e = 1.4426950408889634074;
    const double ln2_hi = 6.93147180369123816490e-01;
    const double ln2_lo = 1.90821492927058770002e-10;
    const double shifter = 6755399441055744.0; /* 1.5 * 2^52 */
    double xc = x < -708.0 ? -708.0 : (x > 709.0 ? 709.0 : x);
    double t = xc * log2e + shifter;
    double n = t - shifter;                      /* round(xc / ln 2) */
    double r = (xc - n * ln2_hi) - n * ln2_lo;   /* |r| <= ln2 / 2 */
    double p = 1.0 / 6227020800.0;               /* Taylor to r^13 */
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    int64_t ti;
    memcpy(&ti, &t, sizeof ti);
    /* low bits of t hold n; build 2^n in the exponent field */
    int64_t bits = (ti - (int64_t)0x4338000000000000LL + 1023) << 52;
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    double y = p * scale;
    return x < -708.0 ? 0.0 : y;
}

static inline __attribute__((always_inline)) float fv_expf(float x)
{
    const float log2e = 1.44269504088896341f;
    const float ln2_hi = 0.693145751953125f;
    const float ln2_lo = 1.428606765330187045e-06f;
    const float shifter = 12582912.0f; /* 1.5 * 2^23 */
    float xc = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    float t = xc * log2e + shifter;
    float n = t - shifter;
    float r = (xc - n * ln2_hi) - n * ln2_lo;
    float p = 1.0f / 5040.0f;                   /* Taylor to r^7 */
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t ti;
    memcpy(&ti, &t, sizeof ti);
    int32_t bits = (ti - (int32_t)0x4B400000 + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    float y = p * scale;
    return x < -87.0f ? 0.0f : y;
}

/* Squared distance sum (y - b)^2 over n entries.  The OpenMP simd reduction
 * lets the compiler vectorise the sum (a fixed order for a given n, so the
 * result is the same whatever thread calls it); without OpenMP it is a plain loop. */
static inline __attribute__((always_inline)) double fv_sqdist_d(const double *y, const double *b, long n)
{
    double acc = 0.0;
#pragma omp simd reduction(+:acc)
    for (long i = 0; i < n; i++) {
        double t = y[i] - b[i];
        acc += t * t;
    }
    return acc;
}

static inline __attribute__((always_inline)) float fv_sqdist_f(const float *y, const float *b, long n)
{
    float acc = 0.0f;
#pragma omp simd reduction(+:acc)
    for (long i = 0; i < n; i++) {
        float t = y[i] - b[i];
        acc += t * t;
    }
    return acc;
}

/* Max and sum of a row, vectorised through OpenMP simd reductions (a fixed
 * order for a given n, independent of the calling thread). */
static inline __attribute__((always_inline)) double fv_max_d(const double *x, long n)
{
    double m = x[0];
#pragma omp simd reduction(max:m)
    for (long i = 1; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

static inline __attribute__((always_inline)) float fv_max_f(const float *x, long n)
{
    float m = x[0];
#pragma omp simd reduction(max:m)
    for (long i = 1; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

static inline __attribute__((always_inline)) double fv_sum_d(const double *x, long n)
{
    double s = 0.0;
#pragma omp simd reduction(+:s)
    for (long i = 0; i < n; i++)
        s += x[i];
    return s;
}

static inline __attribute__((always_inline)) float fv_sum_f(const float *x, long n)
{
    float s = 0.0f;
#pragma omp simd reduction(+:s)
    for (long i = 0; i < n; i++)
        s += x[i];
    return s;
}

#endif
