"""Elementwise NumPy / SciPy ufuncs over blocks of rows in threads.

The ufunc loops release the GIL, so n threads each computing a block of rows take
about 1/n of the time; every element is computed by the same loop as in one call,
so the result is bitwise the same for any n.  What this is for: the per-pass
elementwise work on K x V arrays in LDA's mean field (digamma, gammaln, exp), which
at a large vocabulary is a sizeable part of a pass run otherwise on one core."""
import threading

import numpy as np

__all__ = ["map_rows"]

# below this many elements a call is cheaper than starting threads
_MIN_SIZE = 1 << 15


def map_rows(ufunc, a, n_threads):
    """ufunc(a) for a 2-D float array a, cut into n_threads blocks of its outer
    axis in memory (one thread each, the caller's thread taking the first).  The
    result has a's layout, as ufunc(a)'s has: a sum over it then adds in the same
    order."""
    a = np.asarray(a)
    if a.ndim == 2 and a.flags.f_contiguous and not a.flags.c_contiguous:
        return map_rows(ufunc, a.T, n_threads).T
    T = min(int(n_threads or 1), a.shape[0] if a.ndim == 2 else 1)
    if T <= 1 or a.ndim != 2 or not a.flags.c_contiguous or a.size < _MIN_SIZE:
        return ufunc(a)
    out = np.empty_like(a)
    edges = np.linspace(0, a.shape[0], T + 1).round().astype(np.int64)
    errors = []

    def run(i):
        try:
            ufunc(a[edges[i]:edges[i + 1]], out=out[edges[i]:edges[i + 1]])
        except BaseException as exc:      # re-raised in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(1, T)]
    for t in threads:
        t.start()
    run(0)
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return out
