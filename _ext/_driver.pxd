# The row driver: the chunked, threaded, deterministic pass over the rows that
# every structure-and-family kernel runs on (DESIGN.md: the compiled family
# interface), written once.  A kernel gives it a context and two nogil
# callbacks:
#
#   partition(ctx, p, r0, r1, tid, slot)   rows [r0, r1) of partition p, by
#                                          thread tid, into its own slot (the
#                                          callback clears the slot first)
#   fold(ctx, slot)                        one slot into the kernel's results
#
# Rows are cut into fixed partitions of part_rows rows (the partition
# boundaries alone fix the sums, never the thread count).  The threads take
# partitions dynamically in rounds of n_slots (a few per thread), each into its
# own slot; after a round the slots are folded in partition order.  So the
# results are bitwise the same for any number of threads and whichever thread
# ran what, and a preempted thread delays only its own partition (no barrier
# per wave of T).  What a partition computes -- the family's features and
# log-densities, the structure's local step, the statistics -- is the kernel's:
# `_gaussian.pyx` (Cholesky-factor Gaussians, float32 or float64) and
# `_expfam.pyx` (exponential families in sparse or dense form, products) are
# the two families of callbacks on it today.
#
# The E-step-only entries (predict, score_samples) have no reduction: run_chunks
# hands out chunks of rows dynamically, each written to its own rows of the
# output.
#
# Everything here is `cdef inline ... noexcept nogil`, compiled into each
# kernel module that cimports it.
from cython.parallel cimport prange, threadid

ctypedef void (*partition_fn)(void *ctx, Py_ssize_t p, Py_ssize_t r0, Py_ssize_t r1, int tid,
                              double *slot) noexcept nogil
ctypedef void (*fold_fn)(void *ctx, const double *slot) noexcept nogil
ctypedef void (*chunk_fn)(void *ctx, Py_ssize_t r0, Py_ssize_t r1, int tid) noexcept nogil


cdef inline Py_ssize_t round_slots(Py_ssize_t N, Py_ssize_t part_rows, int T,
                                   Py_ssize_t per_thread) noexcept nogil:
    """Partition slots per round: per_thread partitions per thread (fewer when the
    data hold fewer), so that a round's end is rarely waited for."""
    cdef Py_ssize_t n_parts = (N + part_rows - 1) // part_rows
    cdef Py_ssize_t s = <Py_ssize_t>T * per_thread
    if n_parts < s:
        s = n_parts
    return s if s > 1 else 1


cdef inline void run_partitions(void *ctx, partition_fn partition, fold_fn fold,
                                Py_ssize_t N, Py_ssize_t part_rows, double *slots,
                                Py_ssize_t n_slots, Py_ssize_t width, int T) noexcept nogil:
    """Every partition of the N rows once, through `partition` into slots (n_slots x
    width doubles), folded in partition order after each round (see the header)."""
    cdef Py_ssize_t n_parts = (N + part_rows - 1) // part_rows
    cdef Py_ssize_t start = 0, nw, i, p, r1
    cdef int tid
    while start < n_parts:
        nw = n_slots if n_slots < n_parts - start else n_parts - start
        for i in prange(nw, num_threads=T, schedule='dynamic', chunksize=1):
            tid = threadid()
            p = start + i
            r1 = (p + 1) * part_rows
            if r1 > N:
                r1 = N
            partition(ctx, p, p * part_rows, r1, tid, slots + i * width)
        for i in range(nw):
            fold(ctx, slots + i * width)
        start = start + nw


cdef inline void run_chunks(void *ctx, chunk_fn chunk, Py_ssize_t N, Py_ssize_t chunk_rows,
                            int T) noexcept nogil:
    """Every chunk of chunk_rows rows once, handed out dynamically (4 at a time) to
    T threads: for entries whose rows are independent (no reduction)."""
    cdef Py_ssize_t n_chunks = (N + chunk_rows - 1) // chunk_rows, c, r1
    cdef int tid
    for c in prange(n_chunks, num_threads=T, schedule='dynamic', chunksize=4):
        tid = threadid()
        r1 = (c + 1) * chunk_rows
        if r1 > N:
            r1 = N
        chunk(ctx, c * chunk_rows, r1, tid)
