# Shared inline helpers for the compiled kernels: vectorisable exp and log,
# the assignment modes of the local step, and the counter-based random stream.  Everything here is `cdef inline ... noexcept nogil` and is
# compiled into each kernel module that cimports it.
from cython cimport floating
from libc.stdint cimport uint64_t

cdef extern from "fv_math.h" nogil:
    double fv_exp(double x)
    float fv_expf(float x)
    double fv_log(double x)
    float fv_logf(float x)

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


cdef inline floating flog(floating x) noexcept nogil:
    if floating is float:
        return fv_logf(x)
    else:
        return fv_log(x)


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
