# Shared inline helpers for the compiled kernels: fast exp, the mixture local
# step (softmax / argmax / sample of a row of log-evidence) and the counter-based
# random stream.  Everything here is `cdef inline ... noexcept nogil` and is
# compiled into each kernel module that cimports it.
from cython cimport floating
from libc.math cimport log
from libc.stdint cimport uint64_t

cdef extern from "fv_math.h" nogil:
    double fv_exp(double x)
    float fv_expf(float x)
    double fv_sqdist_d(const double* y, const double* b, long n)
    float fv_sqdist_f(const float* y, const float* b, long n)
    double fv_max_d(const double* x, long n)
    float fv_max_f(const float* x, long n)
    double fv_sum_d(const double* x, long n)
    float fv_sum_f(const float* x, long n)

# assignment modes of the local step (DESIGN.md: how q(T) is formed)
cdef enum:
    MODE_SOFT = 0      # responsibilities (softmax)
    MODE_HARD = 1      # one-hot argmax (crisp)
    MODE_SAMPLE = 2    # one-hot draw from the softmax (gibbs)


cdef inline floating fexp(floating x) noexcept nogil:
    if floating is float:
        return fv_expf(x)
    else:
        return fv_exp(x)


cdef inline floating sqdist(const floating* y, const floating* b, long n) noexcept nogil:
    if floating is float:
        return fv_sqdist_f(y, b, n)
    else:
        return fv_sqdist_d(y, b, n)


cdef inline floating rowmax(const floating* x, long n) noexcept nogil:
    if floating is float:
        return fv_max_f(x, n)
    else:
        return fv_max_d(x, n)


cdef inline floating rowsum(const floating* x, long n) noexcept nogil:
    if floating is float:
        return fv_sum_f(x, n)
    else:
        return fv_sum_d(x, n)


cdef inline uint64_t splitmix64(uint64_t z) noexcept nogil:
    z = z + <uint64_t>0x9E3779B97F4A7C15
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EB
    return z ^ (z >> 31)


cdef inline double uniform01(uint64_t seed, uint64_t row) noexcept nogil:
    """A uniform draw in [0, 1) keyed by (seed, global row index): the same
    number whatever the chunking or the thread that handles the row."""
    cdef uint64_t h = splitmix64(seed ^ splitmix64(row))
    return (h >> 11) * (1.0 / 9007199254740992.0)


cdef inline double local_step_row(floating* lp, Py_ssize_t K, int mode,
                                  double weight, uint64_t seed,
                                  uint64_t row, Py_ssize_t* label) noexcept nogil:
    """Turn one row of log-evidence lp[0:K] into q(z) in place, multiplied by
    the row's weight, and return the row's objective term (unweighted):
    log-sum-exp for MODE_SOFT, the largest entry for MODE_HARD, the entry of
    the drawn component for MODE_SAMPLE.  label receives the one-hot index
    (MODE_HARD, MODE_SAMPLE)."""
    cdef Py_ssize_t k, best = 0
    cdef floating mx = rowmax(lp, K)
    cdef floating s = 0
    cdef double u, c, total
    if mode == MODE_HARD:
        while best < K - 1 and lp[best] != mx:       # first index of the maximum
            best = best + 1
        for k in range(K):
            lp[k] = 0
        lp[best] = <floating>weight
        label[0] = best
        return mx
    for k in range(K):          # vectorised exp
        lp[k] = fexp(lp[k] - mx)
    s = rowsum(lp, K)
    cdef floating cf
    if mode == MODE_SOFT:
        cf = <floating>(weight / s)
        for k in range(K):
            lp[k] = lp[k] * cf
        return mx + log(<double>s)
    # MODE_SAMPLE: inverse-cdf draw from the normalised row
    u = uniform01(seed, row) * s
    total = 0
    best = K - 1
    for k in range(K):
        total = total + lp[k]
        if u < total:
            best = k
            break
    # the returned term is log q-weighted joint of the drawn component
    c = mx + log(<double>lp[best])
    for k in range(K):
        lp[k] = 0
    lp[best] = <floating>weight
    label[0] = best
    return c


cdef inline double local_step_chunk(floating* lp, Py_ssize_t B, Py_ssize_t K, int mode,
                                    const double* w, uint64_t seed, uint64_t row0,
                                    Py_ssize_t* labels) noexcept nogil:
    """local_step_row over the B rows of a chunk (w: row weights or NULL);
    returns sum_n w_n * objective_n.  The mode test is hoisted out of the rows."""
    cdef Py_ssize_t n
    cdef double obj = 0, wt = 1.0
    if mode == MODE_SOFT:
        for n in range(B):
            if w != NULL:
                wt = w[n]
            obj = obj + wt * local_step_row(lp + n * K, K, MODE_SOFT, wt, seed, row0 + n,
                                            labels + n)
    elif mode == MODE_HARD:
        for n in range(B):
            if w != NULL:
                wt = w[n]
            obj = obj + wt * local_step_row(lp + n * K, K, MODE_HARD, wt, seed, row0 + n,
                                            labels + n)
    else:
        for n in range(B):
            if w != NULL:
                wt = w[n]
            obj = obj + wt * local_step_row(lp + n * K, K, MODE_SAMPLE, wt, seed, row0 + n,
                                            labels + n)
    return obj
