"""Data sources: where the engine's chunks come from.

An in-memory array or a memmap is one block that the kernels stream through in
chunks of rows (a memmap is read, never copied).  A re-iterable of chunks (a list
of arrays, or an object that reads them again from files) is streamed chunk by
chunk every iteration.  A Dask array is many blocks: the
E-step kernel runs on each block where the block lives (a dask.distributed Client's
workers when one is active, Dask's local scheduler otherwise), each returns its
statistics, and the statistics are summed on the client in block order by a fixed
pairwise tree -- so the result is the same whatever the number of workers and
whichever worker ran a block, and equals the in-memory fit to round-off.  A worker
lost in the middle of an iteration only costs Dask a recomputation of its blocks.
"""
import numpy as np

__all__ = ["is_dask_array", "is_chunk_iterable", "RowChunks", "DaskRowBlocks", "ChunkSource",
           "DaskSource", "row_source", "tree_sum", "tree_sum_iter"]


def is_dask_array(X):
    return type(X).__module__.split(".")[0] == "dask" and hasattr(X, "to_delayed")


def tree_sum(parts):
    """Sum in a fixed pairwise order: ((p0 + p1) + (p2 + p3)) + ..."""
    parts = list(parts)
    if not parts:
        raise ValueError("nothing to sum")
    while len(parts) > 1:
        nxt = [parts[i] + parts[i + 1] for i in range(0, len(parts) - 1, 2)]
        if len(parts) % 2:
            nxt.append(parts[-1])
        parts = nxt
    return parts[0]


class _Pooled:
    """(weight, centre, centred scatter) that adds by exact pooling."""

    def __init__(self, triple):
        self.triple = triple

    def __add__(self, other):
        from .families.gaussian import pool_scatter
        return _Pooled(pool_scatter(self.triple, other.triple, 1.0, 1.0))


def _block_scatter(block):
    from .families.gaussian import data_scatter
    return _Pooled(data_scatter(np.asarray(block, dtype=np.float64), None))


def _block_check(block):
    block = np.asarray(block)
    return np.array([block.shape[0], float(np.all(np.isfinite(block)))])


def _check_dask(X, name):
    """A 2-D numeric dask array with known chunk sizes; ValueError / TypeError naming X."""
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D dask array, got {X.ndim} dimensions")
    if any(np.isnan(c) for c in X.chunks[0]) or any(np.isnan(c) for c in X.chunks[1]):
        raise ValueError(f"{name} has unknown chunk sizes (NaN in {name}.chunks); call "
                         f"{name}.compute_chunk_sizes() first")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {X.dtype}")


def is_chunk_iterable(X):
    """A list / tuple of arrays, or any re-iterable (not an array) of 2-D chunks."""
    if isinstance(X, (list, tuple)):       # a list of rows (1-D) is ordinary 2-D data
        return len(X) > 0 and all(getattr(c, "ndim", None) == 2 for c in X)
    return (hasattr(X, "__iter__") and not hasattr(X, "shape") and not isinstance(X, (str, bytes))
            and not isinstance(X, dict))


def tree_sum_iter(parts):
    """tree_sum of an iterable, consumed as it comes: the same pairs in the same
    order -- the same result, bit for bit -- holding O(log n) partial sums instead
    of all n parts (a source of many chunks streams its statistics through it)."""
    stack = []                       # (level, partial sum), levels strictly decreasing
    for p in parts:
        level = 0
        while stack and stack[-1][0] == level:
            p = stack.pop()[1] + p
            level += 1
        stack.append((level, p))
    if not stack:
        raise ValueError("nothing to sum")
    total = stack.pop()[1]
    while stack:                     # tree_sum carries an odd tail up to the last level
        total = stack.pop()[1] + total
    return total


class RowChunks:
    """A re-iterable of 2-D chunks of rows handed over as they are (ndarrays,
    memmaps or scipy.sparse matrices, in their own dtype), for an estimator that
    validates and prepares every chunk itself (the discrete mixtures).  A one-shot
    iterator is refused.  Every pass checks that each chunk is 2-D and as wide as
    the first; chunks without rows are skipped.  ``map(fn, *args)`` yields
    ``fn(chunk, index, start, *args)`` chunk by chunk, in order (index: the chunk's
    position in the iterable; start: its first row in the whole source)."""

    what = "chunk"

    def __init__(self, chunks, name="X"):
        if iter(chunks) is chunks:
            raise ValueError(f"{name} is a one-shot iterator; the fit reads the chunks once per "
                             "iteration: pass a list, or an object whose __iter__ starts over")
        self.chunks = chunks
        self.name = name
        self.width = None

    def _iter(self):
        start = 0
        for i, c in enumerate(self.chunks):
            shape = getattr(c, "shape", None)
            if shape is None:
                c = np.asarray(c)
                shape = c.shape
            if len(shape) != 2:
                raise ValueError(f"{self.name}: chunk {i} must be 2-D, got shape {tuple(shape)}")
            if self.width is None:
                self.width = shape[1]
            elif shape[1] != self.width:
                raise ValueError(f"{self.name}: chunk {i} has {shape[1]} columns, the first "
                                 f"chunk has {self.width} (chunks of inconsistent width)")
            if shape[0]:
                yield i, start, c
                start += shape[0]

    def map(self, fn, *args):
        for i, start, c in self._iter():
            yield fn(c, i, start, *args)

    def head(self, n_rows):
        """The first n_rows rows, as one array (one scipy.sparse CSR matrix if any
        of the chunks read is sparse)."""
        import scipy.sparse as sp
        out, got = [], 0
        for _, _, c in self._iter():
            if sp.issparse(c):
                c = sp.csr_matrix(c)          # COO and others do not slice
            out.append(c[:n_rows - got])
            got += out[-1].shape[0]
            if got >= n_rows:
                break
        if any(sp.issparse(c) for c in out):
            return sp.vstack([sp.csr_matrix(c) for c in out], format="csr")
        return np.ascontiguousarray(np.concatenate([np.asarray(c) for c in out]))


class DaskRowBlocks:
    """The row blocks of a 2-D Dask array handed over as they are (their dtype
    kept, no validation pass: the estimator validates each block in its own task);
    column chunks are merged.  ``map(fn, *args)`` runs ``fn(block, index, start,
    *args)`` where each block lives (dask.delayed over the blocks; a
    dask.distributed Client's workers when one is active) and returns the results
    in block order."""

    what = "block"

    def __init__(self, X, name="X"):
        _check_dask(X, name)
        if len(X.chunks[1]) > 1:
            X = X.rechunk({1: -1})
        if X.shape[1] == 0:
            raise ValueError(f"{name} has 0 features")
        self.X = X
        self.name = name
        self.shape = X.shape
        self.width = X.shape[1]
        starts = np.concatenate(([0], np.cumsum(X.chunks[0])[:-1])).astype(int)
        self.blocks = [(i, int(s), b) for i, (b, s, n) in
                       enumerate(zip(X.to_delayed().ravel(), starts, X.chunks[0])) if n > 0]
        if not self.blocks:
            raise ValueError(f"{name} holds no rows")

    def map(self, fn, *args):
        import dask
        f = dask.delayed(fn, pure=True)
        shared = [dask.delayed(a, pure=True) for a in args]     # one graph node each
        return list(dask.compute(*[f(b, i, s, *shared) for i, s, b in self.blocks]))

    def head(self, n_rows):
        """The first n_rows rows as an array (for initialisation)."""
        out = self.X[:n_rows].compute()
        return np.ascontiguousarray(out) if isinstance(out, np.ndarray) else out


def _positional(block, index, start, fn, *args):
    """fn(block, *args) for a map that hands over (block, index, start, ...)."""
    return fn(block, *args)


class ChunkSource(RowChunks):
    """RowChunks of float rows validated in one pass (2-D, numeric, finite, as wide
    as the first), for an estimator that reads the chunks as float32 / float64
    arrays (GaussianMixture): the chunks are streamed in one dtype (float32 when
    every chunk is, else float64), and ``map_sum`` tree-sums fn(chunk, *args) in
    chunk order."""

    def __init__(self, chunks, name="X"):
        super().__init__(chunks, name)
        rows, dtypes = 0, set()
        for i, start, c in self._iter():
            c = np.asarray(c)
            if c.dtype.kind not in "biuf":
                raise TypeError(f"{name}: chunk {i} must be numeric, got dtype {c.dtype}")
            if not np.all(np.isfinite(c)):
                raise ValueError(f"{name}: chunk {i} contains NaN or infinity")
            rows += c.shape[0]
            dtypes.add(c.dtype)
        if self.width is None or rows == 0:
            raise ValueError(f"{name} holds no rows (no chunks, or only empty ones)")
        if self.width == 0:
            raise ValueError(f"{name} has 0 features")
        self.dtype = (np.dtype(np.float32) if dtypes == {np.dtype(np.float32)}
                      else np.dtype(np.float64))
        self.shape = (rows, self.width)

    def _blocks(self):
        for _, _, c in self._iter():
            yield np.ascontiguousarray(c, dtype=self.dtype)

    def map_sum(self, fn, *args):
        return tree_sum_iter(fn(b, *args) for b in self._blocks())

    def scatter(self):
        """(weight, centre, centred scatter) of the rows, pooled exactly over chunks."""
        return self.map_sum(_block_scatter).triple

    def head(self, n_rows):
        return np.ascontiguousarray(super().head(n_rows), dtype=self.dtype)


class DaskSource(DaskRowBlocks):
    """DaskRowBlocks of float32 / float64 rows (other dtypes cast to float64),
    validated in one pass over the blocks (finite), for GaussianMixture:
    ``map_sum`` tree-sums fn(block, *args) over the blocks in block order, fn
    running where each block lives."""

    def __init__(self, X, name="X"):
        _check_dask(X, name)
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(np.float64)
        super().__init__(X, name)
        self.dtype = X.dtype
        if not all(c[1] for c in self.map(_positional, _block_check)):
            raise ValueError(f"{name} contains NaN or infinity")

    def map_sum(self, fn, *args):
        return tree_sum(self.map(_positional, fn, *args))

    def scatter(self):
        """(weight, centre, centred scatter) of the rows, pooled exactly over blocks."""
        return self.map_sum(_block_scatter).triple


def row_source(X, name="X"):
    """X as a RowChunks or a DaskRowBlocks when it is a chunked source (an
    iterable of 2-D chunks, a Dask array), else None (an in-memory X)."""
    if isinstance(X, (RowChunks, DaskRowBlocks)):
        return X
    if is_dask_array(X):
        return DaskRowBlocks(X, name)
    if is_chunk_iterable(X):
        return RowChunks(X, name)
    return None
