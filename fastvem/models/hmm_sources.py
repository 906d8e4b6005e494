"""Sequences that are not one in-memory array, for the HMMs' fit: a re-iterable
of whole sequences, or a Dask array of whole sequences with ``lengths``.

A source is read once per iteration, batch by batch; a batch is a run of whole
sequences (rows, offsets) that the sequence driver takes in one call (its
sequences in parallel, as for an in-memory X).  A batch's statistics are the
driver's additive sums, and the batches' are added in batch order by a fixed
pairwise tree (sources.tree_sum / tree_sum_iter), so a fit reads the same
statistics whatever the number of Dask workers and whichever worker ran a block.

- An iterable: a list / tuple (or any object whose ``__iter__`` starts over; a
  one-shot iterator is refused) whose items are either one sequence (a 2-D array,
  its rows the steps) or a pair (rows, lengths) holding several whole sequences.
  Consecutive items are grouped into batches of about ``BATCH_ROWS`` rows (a
  memmap item is read, not copied, when it is a batch of its own).
- A Dask array (2-D) with ``lengths``: each row block is a batch and must hold
  whole sequences -- its boundaries must fall between sequences -- and runs
  where it lives (a dask.distributed Client's workers when one is active).
"""
import numpy as np

from ..sources import DaskRowBlocks, is_dask_array, tree_sum, tree_sum_iter

__all__ = ["sequence_source", "SequenceBatches", "DaskSequenceBlocks", "BATCH_ROWS",
           "refuse_sequence_source"]

BATCH_ROWS = 1 << 18       # rows an iterable's consecutive items are grouped into


def _lengths_offsets(lengths, n_rows, name):
    """int64 offsets of lengths (positive integers summing to n_rows)."""
    from .hmm import _offsets
    try:
        return _offsets(lengths, n_rows)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def _is_item(item):
    return (getattr(item, "ndim", None) == 2
            or (isinstance(item, tuple) and len(item) == 2
                and getattr(item[0], "ndim", None) == 2))


def is_sequence_iterable(X):
    """A list / tuple of 2-D arrays or (rows, lengths) pairs, or a re-iterable
    object that is not an array."""
    if isinstance(X, (list, tuple)):
        return len(X) > 0 and all(_is_item(item) for item in X)
    return (hasattr(X, "__iter__") and not hasattr(X, "shape") and not isinstance(X, (str, bytes))
            and not isinstance(X, dict))


class SequenceBatches:
    """Whole sequences from a re-iterable, batched (see the module's docstring).
    ``map(fn, *args)`` yields fn(rows, offsets, first row, *args) batch by batch;
    ``sum(fn, *args)`` tree-sums them in batch order."""

    what = "batch"

    def __init__(self, items, name="X"):
        if iter(items) is items:
            raise ValueError(f"{name} is a one-shot iterator; the fit reads the sequences once "
                             "per iteration: pass a list, or an object whose __iter__ starts "
                             "over")
        self.items = items
        self.name = name

    def _items(self):
        width = None
        for i, item in enumerate(self.items):
            if isinstance(item, tuple) and len(item) == 2:
                rows, lengths = item
            else:
                rows, lengths = item, None
            if not hasattr(rows, "shape"):
                rows = np.asarray(rows)
            if len(rows.shape) != 2:
                raise ValueError(f"{self.name}: item {i} must be one sequence (a 2-D array) or "
                                 f"a pair (rows, lengths), got shape {tuple(rows.shape)}")
            if rows.shape[0] == 0:
                raise ValueError(f"{self.name}: item {i} holds no rows (a sequence has at least "
                                 "one)")
            if width is None:
                width = rows.shape[1]
            elif rows.shape[1] != width:
                raise ValueError(f"{self.name}: item {i} has {rows.shape[1]} columns, the first "
                                 f"has {width}")
            yield rows, _lengths_offsets(lengths, rows.shape[0], f"{self.name}: item {i}")

    def batches(self):
        """(rows, offsets, first row) of consecutive items, about BATCH_ROWS rows
        each."""
        parts, offs, n, start = [], [], 0, 0
        for rows, off in self._items():
            parts.append(rows)
            offs.append(off[1:] + n)
            n += rows.shape[0]
            if n >= BATCH_ROWS:
                yield (*_joined(parts, offs), start)
                parts, offs, start, n = [], [], start + n, 0
        if parts:
            yield (*_joined(parts, offs), start)

    def map(self, fn, *args):
        for rows, off, start in self.batches():
            yield fn(rows, off, start, *args)

    def sum(self, fn, *args):
        return tree_sum_iter(self.map(fn, *args))

    def head(self, n_rows):
        """(rows, offsets) of the first whole sequences holding at least n_rows rows
        (all of them if there are fewer)."""
        parts, offs, n = [], [], 0
        for rows, off in self._items():
            parts.append(rows)
            offs.append(off[1:] + n)
            n += rows.shape[0]
            if n >= n_rows:
                break
        return _joined(parts, offs)


def _joined(parts, offs):
    rows = parts[0] if len(parts) == 1 else np.concatenate([np.asarray(p) for p in parts])
    return rows, np.concatenate(([0], *offs)).astype(np.int64)


class DaskSequenceBlocks:
    """The row blocks of a Dask array of whole sequences (``lengths`` given, every
    block boundary between two sequences); ``map(fn, *args)`` runs fn(rows,
    offsets, first row, *args) where each block lives and returns the results in block order;
    ``sum`` tree-sums them."""

    what = "block"

    def __init__(self, X, lengths, name="X"):
        self.blocks = DaskRowBlocks(X, name)
        self.name = name
        N = self.blocks.shape[0]
        if lengths is None:
            if len(self.blocks.blocks) > 1:
                raise ValueError(f"{name} is a dask array of {len(self.blocks.blocks)} row "
                                 "blocks: pass lengths (the sequences' lengths; each block "
                                 "must hold whole sequences)")
        offsets = _lengths_offsets(lengths, N, "lengths")
        self.offsets = []
        for i, start, _ in self.blocks.blocks:
            stop = start + int(X.chunks[0][i])
            a, b = np.searchsorted(offsets, [start, stop])
            if a >= len(offsets) or offsets[a] != start or b >= len(offsets) \
                    or offsets[b] != stop:
                raise ValueError(f"{name}: block {i} (rows {start} to {stop}) cuts a sequence; "
                                 "rechunk X so that every block holds whole sequences (its "
                                 "boundaries at cumsum(lengths))")
            self.offsets.append(offsets[a:b + 1] - start)
        self.n_rows = N

    def map(self, fn, *args):
        return self.blocks.map(_block_call, fn, self.offsets, *args)

    def sum(self, fn, *args):
        return tree_sum(self.map(fn, *args))

    def head(self, n_rows):
        """(rows, offsets) of the first blocks holding at least n_rows rows."""
        offs, n = [], 0
        for off in self.offsets:
            offs.append(off[1:] + n)
            n += int(off[-1])
            if n >= n_rows:
                break
        out = self.blocks.X[:n].compute()
        return np.asarray(out), np.concatenate(([0], *offs)).astype(np.int64)


def _block_call(block, index, start, fn, offsets, *args):
    return fn(np.asarray(block), offsets[index], start, *args)


def sequence_source(X, lengths, name="X"):
    """X as a SequenceBatches / DaskSequenceBlocks when it is not one in-memory
    array (lengths must then be None for an iterable), else None."""
    if isinstance(X, (SequenceBatches, DaskSequenceBlocks)):
        return X
    if is_dask_array(X):
        return DaskSequenceBlocks(X, lengths, name)
    if isinstance(X, np.ndarray) or hasattr(X, "__array__") or not is_sequence_iterable(X):
        return None
    if isinstance(X, (list, tuple)) and not all(_is_item(item) for item in X):
        return None
    if lengths is not None:
        raise ValueError("lengths must be None when X is an iterable of sequences (each item is "
                         "one sequence, or a pair (rows, lengths))")
    return SequenceBatches(X, name)


def refuse_sequence_source(X, what):
    """TypeError when a prediction is handed a source (they take arrays)."""
    if is_dask_array(X) or (not hasattr(X, "__array__") and not isinstance(X, np.ndarray)
                            and is_sequence_iterable(X)
                            and (not isinstance(X, (list, tuple))
                                 or all(_is_item(item) for item in X))):
        raise TypeError(f"{what} takes sequences in memory (an array and lengths); an iterable "
                        "of sequences or a dask array is read by fit only: call it batch by "
                        "batch")


# ------------------------------------------------------------ a fit's passes
class Survey:
    """What one pass over a source pools for a fit's set-up: the rows' summary
    (discrete_mixture._Summary: rows, column maxima, sums, centred squares), the
    number of sequences and the rows' constant log h the kernel leaves out
    (MultinomialHMM's coefficients)."""

    def __init__(self, summary, n_seq, log_h):
        self.summary, self.n_seq, self.log_h = summary, n_seq, log_h

    def __add__(self, other):
        return Survey(self.summary + other.summary, self.n_seq + other.n_seq,
                      self.log_h + other.log_h)


def survey_batch(rows, offsets, start, est):
    """One batch of the set-up pass: validated as fit validates an array (a fit of
    this batch alone; an error names the batch's first row), then summarised."""
    from ..families.normal import GaussianFull
    from .discrete_mixture import _Summary
    from .hmm import _row_constants
    try:
        fam, _ = est._prepare_fit(rows)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"the sequences from row {start} on ({rows.shape[0]} rows; row "
                        f"numbers below count from there): {exc}") from exc
    return Survey(_Summary.of(rows, scatter=isinstance(fam, GaussianFull)),
                  len(offsets) - 1, float(np.sum(_row_constants(fam))))


def _batch_pass(rows, offsets, start, est, fam, W, c, ls, lt, mode, seed, n_threads, tol, max_iter):
    """One batch of an iteration: prepared with (a copy of) the fit's family, then
    the sequence driver's statistics (HMMStats).  A draw would key on the batch's
    own rows; only the deterministic modes read sources."""
    import copy
    from .hmm import HMMStats, hmm_pass
    fam = copy.copy(fam)
    data = est._prepare_batch(fam, rows)
    out = hmm_pass(fam, data, offsets, None, W, c, ls, lt, mode, seed, n_threads, tol=tol,
                   max_iter=max_iter)
    return HMMStats(*out, data.shape[0])


class SequenceStream:
    """A source as an HMM fit's data: ``statistics`` runs every batch through the
    sequence driver with the iteration's parameters and tree-sums the batches'
    statistics in order."""

    def __init__(self, source, est, fam, n_rows, n_threads):
        self.source, self.est, self.family = source, est, fam
        self.shape = (n_rows, None)
        self.n_threads = n_threads

    def statistics(self, W, c, ls, lt, mode, seed, tol, max_iter):
        args = (np.ascontiguousarray(W, dtype=np.float64),
                np.ascontiguousarray(c, dtype=np.float64), ls, lt)
        return self.source.sum(_batch_pass, self.est, self.family, *args, int(mode), seed,
                               self.n_threads, tol, max_iter)
