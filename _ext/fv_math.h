/* Branch-free exp and log for double and float, written so that gcc vectorises the
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

/* Natural log for positive normal arguments (the local step takes it of row
 * sums >= 1), branch-free so that loops over rows vectorise: x = 2^e m with
 * m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(s), s = (m-1)/(m+1). */
static inline __attribute__((always_inline)) double fv_log(double x)
{
    int64_t bits;
    memcpy(&bits, &x, sizeof bits);
    int64_t e = ((bits >> 52) & 0x7ff) - 1023;
    int64_t mb = (bits & 0x000fffffffffffffLL) | 0x3ff0000000000000LL;
    double m;
    memcpy(&m, &mb, sizeof m);
    int big = m > 1.4142135623730951;
    m = big ? 0.5 * m : m;
    double ed = (double)(e + big);
    double s = (m - 1.0) / (m + 1.0);
    double z = s * s;
    double p = 1.0 / 19.0;
    p = p * z + 1.0 / 17.0;
    p = p * z + 1.0 / 15.0;
    p = p * z + 1.0 / 13.0;
    p = p * z + 1.0 / 11.0;
    p = p * z + 1.0 / 9.0;
    p = p * z + 1.0 / 7.0;
    p = p * z + 1.0 / 5.0;
    p = p * z + 1.0 / 3.0;
    p = p * z + 1.0;
    return ed * 6.93147180559945286227e-01 + 2.0 * s * p;
}

static inline __attribute__((always_inline)) float fv_logf(float x)
{
    int32_t bits;
    memcpy(&bits, &x, sizeof bits);
    int32_t e = ((bits >> 23) & 0xff) - 127;
    int32_t mb = (bits & 0x007fffff) | 0x3f800000;
    float m;
    memcpy(&m, &mb, sizeof m);
    int big = m > 1.41421356f;
    m = big ? 0.5f * m : m;
    float ed = (float)(e + big);
    float s = (m - 1.0f) / (m + 1.0f);
    float z = s * s;
    float p = 1.0f / 11.0f;
    p = p * z + 1.0f / 9.0f;
    p = p * z + 1.0f / 7.0f;
    p = p * z + 1.0f / 5.0f;
    p = p * z + 1.0f / 3.0f;
    p = p * z + 1.0f;
    return ed * 0.693147180559945f + 2.0f * s * p;
}

#endif
