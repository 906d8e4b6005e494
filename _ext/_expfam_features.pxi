# The features table of the exponential families, shared by the row driver
# (_expfam.pyx: mixtures) and the sequence driver (_hmm.pyx: hidden Markov
# models), `include`d by both so that each compiles the same functions: the
# sparse form of every built-in family (`_active(kind)`), the dense form at an
# address (`_table`), the product's table of parts (`_data_pointer`), packed
# bits' lookup table and fold, and the Python-side checks of a family's data
# (`_validate_data`, `_has_codes`, `_BAD_VALUE`).  See _expfam.pyx's header for
# the two forms.  The including module cimports floating, lgamma, INFINITY,
# NAN, the stdint types, numpy (cnp, np) and _common's check_len / check_shape.

cdef extern from "fv_expfam.h" nogil:
    void fv_axpy(double *y, const double *x, double a, long n)
    void fv_init_row(double *row, const double *c, const double *logw, double h, long n)
    void fv_gather_rows(double *row, const double *Wt, const int32_t *idx, const double *val,
                        long na, long K)
    void fv_scatter_rows(double *St, const double *r, const int32_t *idx, const double *val,
                         long na, long K)
    double fv_exp_row(double *row, double *d, double mx, long K)
    int fv_bits_fast(long K)
    void fv_bits_gather(double *lpT, long B, const double *tab, const uint8_t *x, long G,
                        long nb, const double *base, long K)
    void fv_bits_scatter(double *st, double *nk, const double *lpT, long B, const uint8_t *x,
                         long G, long nb, long K)

ctypedef void (*features_fn)(const void *data, const void *aux, Py_ssize_t r0, Py_ssize_t nb,
                             Py_ssize_t D, Py_ssize_t S, double *T, double *logh) noexcept nogil

# the sparse form every built-in family has: for one row, the statistics that are
# non-zero (their indices into 0..S-1 and values), and log h(x); returns their number
ctypedef Py_ssize_t (*active_fn)(const void *data, const void *aux, Py_ssize_t row,
                                 Py_ssize_t D, int32_t *idx, double *val,
                                 double *logh) noexcept nogil


# the features kinds (FEATURES below names them for Python)
cdef enum:
    F_BERNOULLI_U8 = 0     # uint8 0/1 (one byte a feature), T = x
    F_COUNTS_F64 = 1       # float64 counts (Poisson), T = x, log h = -sum lgamma(x + 1)
    F_COUNTS_F32 = 2       # float32 counts
    F_CATEGORICAL_I32 = 3  # int32 codes, aux = int64 offsets (F + 1): T = one-hot per feature
    F_ADDRESS = 4          # a dense features function at a given address
    F_BITS = 5             # packed 0/1 bits (np.packbits, little bit order), 8 per byte:
                           # each half byte is one "statistic" of 16 values (a lookup
                           # table of the sums of its bits' parameters); its E-step
                           # reads the bytes itself (fv_expfam.h: fv_bits_gather)
    F_CSR = 6              # sparse rows: data (N x 2 int64) the [start, end) of each row
                           # in aux, (nnz x 2 float64) the column (exact in float64) and
                           # the value of each non-zero
    F_GAUSS_F64 = 7        # real rows (float64), aux = the D reference point (float64):
                           # T = (x - ref, (x - ref)^2), S = 2 D, log h = -D log(2 pi) / 2
    F_GAUSS_F32 = 8        # the same, float32 rows
    F_GAUSS_FULL_F64 = 10  # real rows (float64), aux = the reference point: T = (x - ref,
                           # the upper triangle of (x - ref)(x - ref)^T row by row),
                           # S = D + D (D + 1) / 2, log h = -D log(2 pi) / 2
    F_GAUSS_FULL_F32 = 11  # the same, float32 rows
    F_PRODUCT = 9          # a product of sparse-form families over disjoint columns: data
                           # is the list of its parts (kind, data, aux, S); a row's
                           # statistics are the parts' side by side, log h their sum

FEATURES = {"bernoulli_uint8": F_BERNOULLI_U8, "counts_float64": F_COUNTS_F64,
            "counts_float32": F_COUNTS_F32, "categorical_int32": F_CATEGORICAL_I32,
            "address": F_ADDRESS, "bernoulli_bits": F_BITS, "csr_float64": F_CSR,
            "gaussian_float64": F_GAUSS_F64, "gaussian_float32": F_GAUSS_F32,
            "product": F_PRODUCT, "gaussian_full_float64": F_GAUSS_FULL_F64,
            "gaussian_full_float32": F_GAUSS_FULL_F32}


cdef Py_ssize_t _bernoulli_u8_act(const void *data, const void *aux, Py_ssize_t row,
                                  Py_ssize_t D, int32_t *idx, double *val,
                                  double *logh) noexcept nogil:
    cdef const uint8_t *x = <const uint8_t *>data + row * D
    cdef Py_ssize_t d, n = 0
    for d in range(D):              # branch-free compaction (the bits are random)
        idx[n] = <int32_t>d
        val[n] = 1.0
        n += x[d] != 0
    logh[0] = 0.0
    return n



cdef inline Py_ssize_t _counts_act(const floating *x, Py_ssize_t D, int32_t *idx, double *val,
                                   double *logh) noexcept nogil:
    """Non-zero counts of one row and log h = -sum log x!."""
    cdef Py_ssize_t d, n = 0
    cdef double h = 0.0, v
    for d in range(D):
        if x[d] != 0:
            v = x[d]
            if not (v > 0.0 and v < INFINITY):
                # a negative or non-finite count: as a code out of range (NaN log h)
                logh[0] = NAN
                return 0
            idx[n] = <int32_t>d
            val[n] = v
            h -= lgamma(v + 1.0)
            n += 1
    logh[0] = h
    return n


cdef Py_ssize_t _counts_f64_act(const void *data, const void *aux, Py_ssize_t row,
                                Py_ssize_t D, int32_t *idx, double *val,
                                double *logh) noexcept nogil:
    return _counts_act(<const double *>data + row * D, D, idx, val, logh)


cdef Py_ssize_t _counts_f32_act(const void *data, const void *aux, Py_ssize_t row,
                                Py_ssize_t D, int32_t *idx, double *val,
                                double *logh) noexcept nogil:
    return _counts_act(<const float *>data + row * D, D, idx, val, logh)


cdef Py_ssize_t _categorical_i32_act(const void *data, const void *aux, Py_ssize_t row,
                                     Py_ssize_t D, int32_t *idx, double *val,
                                     double *logh) noexcept nogil:
    cdef const int32_t *x = <const int32_t *>data + row * D
    cdef const int64_t *off = <const int64_t *>aux
    cdef Py_ssize_t j
    for j in range(D):
        if x[j] < 0 or x[j] >= off[j + 1] - off[j]:
            # a code outside its feature's categories: the row reads and writes
            # nothing, and its log h is NaN, which the entries turn into an error
            logh[0] = NAN
            return 0
        idx[j] = <int32_t>(off[j] + x[j])
        val[j] = 1.0
    logh[0] = 0.0
    return D


cdef Py_ssize_t _csr_act(const void *data, const void *aux, Py_ssize_t row,
                         Py_ssize_t D, int32_t *idx, double *val, double *logh) noexcept nogil:
    """A sparse row: its non-zeros as they are stored (columns and values)."""
    cdef const int64_t *span = <const int64_t *>data + 2 * row
    cdef const double *nz = <const double *>aux
    cdef Py_ssize_t j, n = 0
    for j in range(span[0], span[1]):
        idx[n] = <int32_t>nz[2 * j]
        val[n] = nz[2 * j + 1]
        n += 1
    logh[0] = 0.0
    return n


cdef inline Py_ssize_t _gauss_act(const floating *x, const double *ref, Py_ssize_t D,
                                  int32_t *idx, double *val, double *logh) noexcept nogil:
    """A real row about the reference point: (x - ref) then its squares."""
    cdef Py_ssize_t d
    cdef double v
    for d in range(D):
        v = x[d] - ref[d]
        idx[d] = <int32_t>d
        val[d] = v
        idx[D + d] = <int32_t>(D + d)
        val[D + d] = v * v
    logh[0] = -0.9189385332046727 * D          # -log(2 pi) / 2 a feature
    return 2 * D


cdef Py_ssize_t _gauss_f64_act(const void *data, const void *aux, Py_ssize_t row,
                               Py_ssize_t D, int32_t *idx, double *val,
                               double *logh) noexcept nogil:
    return _gauss_act(<const double *>data + row * D, <const double *>aux, D, idx, val, logh)


cdef Py_ssize_t _gauss_f32_act(const void *data, const void *aux, Py_ssize_t row,
                               Py_ssize_t D, int32_t *idx, double *val,
                               double *logh) noexcept nogil:
    return _gauss_act(<const float *>data + row * D, <const double *>aux, D, idx, val, logh)


cdef inline Py_ssize_t _gauss_full_act(const floating *x, const double *ref, Py_ssize_t D,
                                       int32_t *idx, double *val, double *logh) noexcept nogil:
    """A real row about the reference point: (x - ref), then the products of its
    entries (i <= j, row by row of the upper triangle)."""
    cdef Py_ssize_t d, e, p = D
    cdef double v
    for d in range(D):
        idx[d] = <int32_t>d
        val[d] = x[d] - ref[d]
    for d in range(D):
        v = val[d]
        for e in range(d, D):
            idx[p] = <int32_t>p
            val[p] = v * val[e]
            p += 1
    logh[0] = -0.9189385332046727 * D
    return p


cdef Py_ssize_t _gauss_full_f64_act(const void *data, const void *aux, Py_ssize_t row,
                                    Py_ssize_t D, int32_t *idx, double *val,
                                    double *logh) noexcept nogil:
    return _gauss_full_act(<const double *>data + row * D, <const double *>aux, D, idx, val,
                           logh)


cdef Py_ssize_t _gauss_full_f32_act(const void *data, const void *aux, Py_ssize_t row,
                                    Py_ssize_t D, int32_t *idx, double *val,
                                    double *logh) noexcept nogil:
    return _gauss_full_act(<const float *>data + row * D, <const double *>aux, D, idx, val,
                           logh)


# one part of a product: its sparse form, data, aux, features and first statistic
cdef struct part_t:
    active_fn act
    const void *data
    const void *aux
    Py_ssize_t D
    Py_ssize_t offset


cdef Py_ssize_t _product_act(const void *data, const void *aux, Py_ssize_t row,
                             Py_ssize_t P, int32_t *idx, double *val,
                             double *logh) noexcept nogil:
    """The parts' statistics side by side (each shifted by its first statistic) and
    the sum of their log h: data is the table of the P parts."""
    cdef const part_t *parts = <const part_t *>data
    cdef Py_ssize_t p, a, n = 0, m
    cdef double h = 0.0, hp
    for p in range(P):
        m = parts[p].act(parts[p].data, parts[p].aux, row, parts[p].D, idx + n, val + n, &hp)
        for a in range(n, n + m):
            idx[a] = <int32_t>(idx[a] + parts[p].offset)
        n += m
        h += hp
    logh[0] = h
    return n


cdef Py_ssize_t _bits_act(const void *data, const void *aux, Py_ssize_t row,
                          Py_ssize_t G, int32_t *idx, double *val, double *logh) noexcept nogil:
    """Packed bits: half byte h (4 features) of the row is statistic 16 h + its value
    in the lookup space (see _bits_table), value 1: two per byte."""
    cdef const uint8_t *x = <const uint8_t *>data + row * G
    cdef Py_ssize_t g
    for g in range(G):
        idx[2 * g] = <int32_t>(32 * g + (x[g] & 15))
        idx[2 * g + 1] = <int32_t>(32 * g + 16 + (x[g] >> 4))
        val[2 * g] = 1.0
        val[2 * g + 1] = 1.0
    logh[0] = 0.0
    return 2 * G


cdef void _bits_table(const double[:, ::1] W, Py_ssize_t G, double[:, ::1] tab) noexcept nogil:
    """tab[16 h + b, k] = sum of W[k, 4 h + j] over the bits j set in the half byte b
    (bits past the last feature add nothing), built from b without its lowest bit:
    every entry is the same sum whatever the thread count.  16 entries a half byte
    keep the table and the slots' statistics small (in cache): measured faster
    than 256 a byte, which halves the lookups but misses the cache."""
    cdef Py_ssize_t g, b, j, k, S = W.shape[1], K = W.shape[0], prev
    for g in range(2 * G):
        for k in range(K):
            tab[g * 16, k] = 0.0
        for b in range(1, 16):
            j = 0
            while not (b >> j) & 1:
                j += 1
            prev = g * 16 + (b & (b - 1))
            for k in range(K):
                tab[g * 16 + b, k] = tab[prev, k] + (W[k, g * 4 + j] if g * 4 + j < S
                                                     else 0.0)


cdef void _bits_fold(const double *h, Py_ssize_t G, Py_ssize_t S, Py_ssize_t K,
                     double *stT) noexcept nogil:
    """stT[4 g + j, :] += h[16 g + b, :] over the half bytes b with bit j set: the
    statistics of a slot kept in the lookup space, back in the features' (S x K,
    a feature's K values contiguous, so the additions vectorise)."""
    cdef Py_ssize_t g, b, j
    for g in range(2 * G):
        for b in range(1, 16):
            for j in range(4):
                if (b >> j) & 1 and g * 4 + j < S:
                    fv_axpy(stT + (g * 4 + j) * K, h + (g * 16 + b) * K, 1.0, K)


cdef active_fn _active(int kind) noexcept:
    if kind == F_BERNOULLI_U8:
        return _bernoulli_u8_act
    if kind == F_COUNTS_F64:
        return _counts_f64_act
    if kind == F_COUNTS_F32:
        return _counts_f32_act
    if kind == F_CATEGORICAL_I32:
        return _categorical_i32_act
    if kind == F_BITS:
        return _bits_act
    if kind == F_CSR:
        return _csr_act
    if kind == F_GAUSS_F64:
        return _gauss_f64_act
    if kind == F_GAUSS_F32:
        return _gauss_f32_act
    if kind == F_PRODUCT:
        return _product_act
    if kind == F_GAUSS_FULL_F64:
        return _gauss_full_f64_act
    if kind == F_GAUSS_FULL_F32:
        return _gauss_full_f32_act
    return NULL


cdef features_fn _table(int kind, uintptr_t address) noexcept:
    """The dense features function: only a given address (every built-in family
    has the sparse form, `_active`)."""
    return <features_fn>address if kind == F_ADDRESS else NULL


def _check_data(str fn, data, Py_ssize_t N, Py_ssize_t D, int kind):
    """The data buffer must be C-contiguous N x D of the dtype its features read."""
    want = {F_BERNOULLI_U8: np.uint8, F_COUNTS_F64: np.float64, F_COUNTS_F32: np.float32,
            F_CATEGORICAL_I32: np.int32, F_BITS: np.uint8, F_CSR: np.int64,
            F_GAUSS_F64: np.float64, F_GAUSS_F32: np.float32,
            F_GAUSS_FULL_F64: np.float64, F_GAUSS_FULL_F32: np.float32}.get(kind)
    if not isinstance(data, np.ndarray) or data.ndim != 2 or not data.flags.c_contiguous:
        raise ValueError(f"{fn}: data must be a C-contiguous 2-D array")
    if data.shape[0] != N or data.shape[1] != D:
        raise ValueError(f"{fn}: data has shape {data.shape}, expected ({N}, {D})")
    if want is not None and data.dtype != want:
        raise ValueError(f"{fn}: data has dtype {data.dtype}, the features read {np.dtype(want)}")


def _check_csr(str fn, data, aux, Py_ssize_t S):
    """Sparse rows: data (N x 2) spans in rising order within aux (nnz x 2 float64), each
    column an integer in [0, S) and each value finite (every entry is read)."""
    if data.shape[1] != 2:
        raise ValueError(f"{fn}: sparse rows need data of shape (N, 2), got {data.shape}")
    if (not isinstance(aux, np.ndarray) or aux.dtype != np.float64 or aux.ndim != 2
            or aux.shape[1] != 2 or not aux.flags.c_contiguous):
        raise ValueError(f"{fn}: aux must be the (nnz, 2) float64 columns and values")
    nnz = aux.shape[0]
    if data.shape[0] and (np.any(data[:, 0] > data[:, 1]) or data.min() < 0
                          or data.max() > nnz):
        raise ValueError(f"{fn}: the row spans must lie within the {nnz} non-zeros")
    cols = aux[:, 0]
    if nnz and (not np.all(np.isfinite(aux)) or cols.min() < 0 or cols.max() >= S
                or np.any(cols != np.floor(cols))):
        raise ValueError(f"{fn}: the columns must be integers in [0, {S}) and the values "
                         "finite")


def _max_active(data, int kind, Py_ssize_t D):
    """The most non-zero statistics one row can have (the buffers' width)."""
    if kind == F_BITS:
        return 2 * D
    if kind == F_CSR:
        return int(np.max(data[:, 1] - data[:, 0])) if data.shape[0] else 1
    if kind == F_GAUSS_F64 or kind == F_GAUSS_F32:
        return 2 * D
    if kind == F_GAUSS_FULL_F64 or kind == F_GAUSS_FULL_F32:
        return D + D * (D + 1) // 2
    if kind == F_PRODUCT:
        return sum(_max_active(pd, pk, pd.shape[1]) for pk, pd, _, _ in data)
    return D


def _aligned(Py_ssize_t rows, Py_ssize_t cols, bint zeroed=True):
    """A zeroed rows x cols float64 array whose first entry lies on a 64-byte boundary
    (NumPy aligns to 16): with cols a multiple of 8, every row starts a cache line,
    so that the vector loads and stores of a row of K values never straddle two.
    zeroed=False: not cleared, for scratch that every reader writes first (a large
    calloc costs its pages' faults or a memset at every call; malloc reuses them)."""
    buf = np.zeros(rows * cols + 8) if zeroed else np.empty(rows * cols + 8)
    cdef Py_ssize_t skip = (64 - <Py_ssize_t>(buf.ctypes.data % 64)) % 64 // 8
    return buf[skip:skip + rows * cols].reshape(rows, cols)


def _transposed(const double[:, ::1] W, int kind, Py_ssize_t D):
    """W for the sparse form: S x K (a statistic's K values contiguous), or for packed
    bits the lookup table of 2 D half bytes x 16 values x K."""
    cdef double[:, ::1] tab
    if kind == F_BITS:
        tab = _aligned(D * 32, W.shape[0])
        with nogil:
            _bits_table(W, D, tab)
        return tab
    return np.ascontiguousarray(np.asarray(W).T)


_CHECKED = (F_CATEGORICAL_I32, F_COUNTS_F64, F_COUNTS_F32)
_BAD_VALUE = ("the rows hold a value their family does not take: a category code outside its "
              "feature's categories (codes must be in [0, aux[j + 1] - aux[j])), or a negative "
              "or non-finite count")


def _has_codes(int kind, data):
    """Whether the rows hold category codes or counts (a family or a product part),
    whose values the kernel checks as it reads them: a code outside its feature's
    categories, or a negative or non-finite count, gives its row a NaN log h, which
    the entries turn into a ValueError."""
    if kind in _CHECKED:
        return True
    return kind == F_PRODUCT and any(p[0] in _CHECKED for p in data)


def _validate_data(str fn, data, aux, int kind, uintptr_t address, Py_ssize_t S):
    """The data for its features kind and S statistics, with the features' aux
    array; a product's parts each so.  Returns (N, D, aux): D is the number of
    parts for a product."""
    if kind < 0 or kind > F_GAUSS_FULL_F32 or (kind == F_ADDRESS and address == 0):
        raise ValueError(f"{fn}: unknown features kind {kind} (or a NULL address)")
    cdef Py_ssize_t N, D, total = 0
    if kind == F_PRODUCT:
        if aux is not None:
            raise ValueError(f"{fn}: a product keeps each part's aux in its part; aux must be None")
        if not isinstance(data, (list, tuple)) or len(data) == 0:
            raise ValueError(f"{fn}: a product's data must be a non-empty list of parts "
                             "(kind, data, aux, S)")
        n_rows = None
        for part in data:
            if not isinstance(part, tuple) or len(part) != 4:
                raise ValueError(f"{fn}: each part of a product must be (kind, data, aux, S)")
            pk, pdata, paux, ps = part
            if pk in (F_ADDRESS, F_BITS, F_PRODUCT):
                raise ValueError(f"{fn}: a product's parts must be sparse-form features "
                                 "(not an address, packed bits or another product)")
            if ps < 0:
                raise ValueError(f"{fn}: a part's S must be >= 0, got {ps}")
            n, _, _ = _validate_data(fn, pdata, paux, pk, 0, ps)
            if n_rows is not None and n != n_rows:
                raise ValueError(f"{fn}: the parts of a product have {n_rows} and {n} rows")
            n_rows = n
            total += ps
        if total != S:
            raise ValueError(f"{fn}: the parts have {total} statistics in all, S = {S}")
        return n_rows, len(data), None
    if not isinstance(data, np.ndarray) or data.ndim != 2:
        raise ValueError(f"{fn}: data must be a 2-D array")
    N = data.shape[0]
    D = data.shape[1]
    _check_data(fn, data, N, D, kind)
    if kind == F_CSR:
        _check_csr(fn, data, aux, S)
    if kind == F_BERNOULLI_U8 or kind == F_COUNTS_F64 or kind == F_COUNTS_F32:
        if S != D:
            raise ValueError(f"{fn}: S = {S} statistics, the features write D = {D}")
    if kind == F_BITS and D != (S + 7) // 8:
        raise ValueError(f"{fn}: {S} packed features need {(S + 7) // 8} bytes a row, got {D}")
    cdef bint full = kind == F_GAUSS_FULL_F64 or kind == F_GAUSS_FULL_F32
    if kind == F_GAUSS_F64 or kind == F_GAUSS_F32 or full:
        if S != (D + D * (D + 1) // 2 if full else 2 * D):
            raise ValueError(f"{fn}: S = {S} statistics, the Gaussian features write "
                             f"{D + D * (D + 1) // 2 if full else 2 * D}")
        if (not isinstance(aux, np.ndarray) or aux.dtype != np.float64 or aux.ndim != 1
                or aux.shape[0] != D or not aux.flags.c_contiguous
                or not np.all(np.isfinite(aux))):
            raise ValueError(f"{fn}: aux must be the finite float64 reference point ({D},)")
    elif kind == F_CATEGORICAL_I32:
        if (not isinstance(aux, np.ndarray) or aux.dtype != np.int64 or aux.ndim != 1
                or aux.shape[0] != D + 1 or not aux.flags.c_contiguous):
            raise ValueError(f"{fn}: aux must be the int64 category offsets ({D + 1},)")
        if aux[0] != 0 or aux[D] != S or np.any(np.diff(aux) < 1):
            raise ValueError(f"{fn}: aux must rise from 0 to S = {S}")
    elif kind != F_CSR and aux is not None and (not isinstance(aux, np.ndarray)
                                                  or not aux.flags.c_contiguous):
        raise ValueError(f"{fn}: aux must be a C-contiguous array or None")
    return N, D, aux


def _validate(str fn, data, aux, int kind, uintptr_t address, Py_ssize_t S,
              const double[:, ::1] W, const double[::1] c, const double[::1] logw):
    """The checks both entries share: the data for its features kind (and its aux
    array), W (K x S), c and logw (K).  Returns (N, D, K, aux array or None)."""
    cdef Py_ssize_t N, D, K = W.shape[0]
    N, D, aux = _validate_data(fn, data, aux, kind, address, S)
    if K < 1:
        raise ValueError(f"{fn}: W has {K} rows; it needs K >= 1 components")
    check_shape(fn, "W", W.shape[0], W.shape[1], K, S, "K x S")
    check_len(fn, "c", c.shape[0], K, "K components (rows of W)")
    check_len(fn, "logw", logw.shape[0], K, "K components (rows of W)")
    return N, D, K, aux


cdef object _data_pointer(data, int kind, const void **dp):
    """The address the features read: the data's, or for a product a table of its
    parts (returned: the caller keeps it alive while the kernel runs)."""
    cdef cnp.ndarray arr
    if kind != F_PRODUCT:
        arr = data
        dp[0] = <const void *>arr.data
        return None
    cdef cnp.ndarray table = np.zeros(len(data) * sizeof(part_t), dtype=np.uint8)
    cdef part_t *parts = <part_t *>table.data
    cdef Py_ssize_t p, offset = 0
    for p, (pk, pdata, paux, ps) in enumerate(data):
        parts[p].act = _active(pk)
        arr = pdata
        parts[p].data = <const void *>arr.data
        if paux is None:
            parts[p].aux = NULL
        else:
            arr = paux
            parts[p].aux = <const void *>arr.data
        parts[p].D = pdata.shape[1]
        parts[p].offset = offset
        offset += ps
    dp[0] = <const void *>table.data
    return table


cdef struct FamilyTable:
    # what both entries hand a family's rows to: its sparse form (act) or dense
    # features (feat) with its data (dp, off: the data and aux arrays), the rows'
    # features D, the most non-zero statistics of a row Am, S, K, the effective
    # parameters (Wt: S x K for the sparse form, W: K x S for the dense), c, logw,
    # and each thread's scratch (ws, wi rows of the given strides)
    active_fn act
    features_fn feat
    const void *dp
    const void *off
    Py_ssize_t D, Am, S, K
    const double *Wt
    const double *W
    const double *c
    const double *logw
    double *ws
    Py_ssize_t ws_stride
    int32_t *wi
    Py_ssize_t wi_stride


cdef void _fill_table(FamilyTable *f, active_fn act, features_fn feat, const void *dp,
                      const void *off, Py_ssize_t D, Py_ssize_t Am, Py_ssize_t S,
                      Py_ssize_t K, const double *Wt, const double *W, const double *c,
                      const double *logw, double[:, ::1] ws, int32_t[:, ::1] wi):
    f.act = act
    f.feat = feat
    f.dp = dp
    f.off = off
    f.D = D
    f.Am = Am
    f.S = S
    f.K = K
    f.Wt = Wt
    f.W = W
    f.c = c
    f.logw = logw
    f.ws = &ws[0, 0]
    f.ws_stride = ws.shape[1]
    f.wi = &wi[0, 0]
    f.wi_stride = wi.shape[1]
