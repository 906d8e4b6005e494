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


# The random streams, one convention for every kernel: a fit's draws are keyed by
# (seed, sweep), the sweep's key being sweep_key(seed, sweep) (in Python,
# fastvem.engine.sweep_seed: the same wrapping arithmetic); a row's (or a
# document's, or a token's) uniform is uniform01(key, index), and a key is made
# more specific by stream_key(key, index) (LDA: the sweep's key, then the
# document's, then uniform01 per token).  So every draw is the same whatever the
# chunking, the partitions or the thread that makes it.
cdef inline uint64_t sweep_key(uint64_t seed, uint64_t sweep) noexcept nogil:
    return seed * <uint64_t>0x9E3779B97F4A7C15 + sweep


cdef inline uint64_t stream_key(uint64_t key, uint64_t index) noexcept nogil:
    return splitmix64(key ^ splitmix64(index))


cdef inline double uniform01(uint64_t seed, uint64_t row) noexcept nogil:
    """A uniform draw in [0, 1) keyed by (seed, global row index): the same
    number whatever the chunking or the thread that handles the row."""
    return (stream_key(seed, row) >> 11) * (1.0 / 9007199254740992.0)


# --------------------------------------------------------------------------
# the mixture structure's local step, in the transposed layout of a chunk
# (K columns of B rows: the loops run down the rows and vectorise), shared by
# every family's row driver
# --------------------------------------------------------------------------
cdef inline double local_step_t(int mode, floating* lpT, Py_ssize_t nb, Py_ssize_t B,
                                Py_ssize_t K, const double* w, uint64_t seed,
                                uint64_t row0, Py_ssize_t* labels, floating* mx,
                                floating* sm, floating* aux, floating* ea,
                                double* entropy) noexcept nogil:
    """q(z) for the nb rows of lpT, column by column; returns sum_n w_n obj_n.

    MODE_SOFT: lpT becomes w_n p(z=k | x_n); obj = log p(x_n); entropy[0]
    receives sum_n w_n H[p(z | x_n)].
    MODE_HARD: labels = argmax_k (first on ties); obj = max_k log p(x_n, k).
    MODE_SAMPLE: labels drawn from p(z | x_n) with uniforms keyed by (seed,
    row); obj = log p(x_n, z_n).  lpT is left exponentiated (unnormalised).
    mx, sm, aux, ea: scratch rows of length >= nb."""
    cdef Py_ssize_t n, k
    cdef floating* lk
    cdef double obj = 0
    cdef floating v
    for n in range(nb):
        mx[n] = lpT[n]
    if mode == MODE_HARD:
        for n in range(nb):
            labels[n] = 0
        for k in range(1, K):
            lk = lpT + k * B
            for n in range(nb):
                v = lk[n]
                if v > mx[n]:
                    mx[n] = v
                    labels[n] = k
        for n in range(nb):
            obj = obj + (w[n] if w != NULL else 1.0) * mx[n]
        return obj
    for k in range(1, K):
        lk = lpT + k * B
        for n in range(nb):
            v = lk[n]
            mx[n] = v if v > mx[n] else mx[n]
    cdef floating t, e
    cdef double ent = 0
    for n in range(nb):
        sm[n] = 0
        ea[n] = 0
    for k in range(K):
        lk = lpT + k * B
        for n in range(nb):
            t = lk[n] - mx[n]
            e = fexp(t)
            lk[n] = e
            sm[n] = sm[n] + e
            ea[n] = ea[n] + e * t
    if mode == MODE_SOFT:
        for n in range(nb):
            aux[n] = flog(sm[n])
        for n in range(nb):
            # H = log s - sum_k e_k t_k / s  (t = lp - max, e = exp t, s = sum e)
            ent = ent + (w[n] if w != NULL else 1.0) * (<double>aux[n] - <double>ea[n] / sm[n])
            obj = obj + (w[n] if w != NULL else 1.0) * (<double>mx[n] + aux[n])
            sm[n] = <floating>((w[n] if w != NULL else 1.0) / sm[n])
        entropy[0] = entropy[0] + ent
        for k in range(K):
            lk = lpT + k * B
            for n in range(nb):
                lk[n] = lk[n] * sm[n]
        return obj
    # MODE_SAMPLE: inverse-cdf draw down the columns (running cdf in sm)
    for n in range(nb):
        aux[n] = <floating>(uniform01(seed, row0 + n) * sm[n])
        sm[n] = 0
        labels[n] = -1
    for k in range(K):
        lk = lpT + k * B
        for n in range(nb):
            sm[n] = sm[n] + lk[n]
            if labels[n] < 0 and aux[n] < sm[n]:
                labels[n] = k
    for n in range(nb):
        if labels[n] < 0:
            labels[n] = K - 1
        obj = obj + (w[n] if w != NULL else 1.0) * (
            <double>mx[n] + <double>flog(lpT[labels[n] * B + n]))
    return obj


# --------------------------------------------------------------------------
# contracts of the Python-callable entries: sizes and thread counts, checked
# with the GIL before any allocation or nogil loop (O(1) each)
# --------------------------------------------------------------------------
cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int fv_num_procs(void) { int n = omp_get_num_procs(); return n > 0 ? n : 1; }
    #else
    static int fv_num_procs(void) { return 1; }
    #endif
    """
    int fv_num_procs() noexcept nogil


cdef inline int clamp_threads(str fn, int n_threads, Py_ssize_t n_parts) except -1:
    """The threads a kernel starts: n_threads (>= 1, else ValueError), at most the
    CPUs available (1 without OpenMP) and at most the n_parts units of work (>= 1)."""
    if n_threads < 1:
        raise ValueError(f"{fn}: n_threads must be >= 1, got {n_threads}")
    cdef int T = n_threads, P = fv_num_procs()
    if T > P:
        T = P
    if n_parts < T:
        T = <int>n_parts if n_parts > 1 else 1
    return T


cdef inline int check_len(str fn, str name, Py_ssize_t actual, Py_ssize_t expected,
                          str why) except -1:
    """ValueError unless a 1-D buffer has exactly `expected` entries."""
    if actual != expected:
        raise ValueError(f"{fn}: {name} has length {actual}, expected {expected} ({why})")
    return 0


cdef inline int check_shape(str fn, str name, Py_ssize_t rows, Py_ssize_t cols,
                            Py_ssize_t erows, Py_ssize_t ecols, str why) except -1:
    """ValueError unless a 2-D buffer is exactly (erows, ecols)."""
    if rows != erows or cols != ecols:
        raise ValueError(f"{fn}: {name} has shape ({rows}, {cols}), expected "
                         f"({erows}, {ecols}) ({why})")
    return 0
