"""Side-by-side peer comparison of the discrete mixtures against StepMix, in one
process: the same data, the same initial parameters (StepMix's own random start,
read back with get_parameters and given to fastvem as weights_init /
probabilities_init), the same number of em iterations (no early stop on either
side).  Per-iteration cost = (t(n_hi) - t(n_lo)) / (n_hi - n_lo), median of
--repeat, so fixed costs cancel; beside it the whole fit of --whole iterations
from a fresh estimator, every cost included.  fastvem: default threads (all
CPUs), BLAS at one thread inside its kernels; StepMix: NumPy with its default
OpenBLAS threads.

    pip install stepmix
    PYTHONPATH=. python asv_bench/peer_compare_discrete.py [--quick] [--repeat 3]
"""
import argparse
import os
import statistics
import time
import warnings

import numpy as np

import fastvem


def _data(kind, N, rng):
    if kind == "binary":
        K, D = 16, 64
        p = rng.uniform(0.05, 0.95, (K, D))
        z = rng.integers(K, size=N)
        return (rng.random((N, D)) < p[z]).astype(np.float64), K
    K, F, L = 8, 10, 5
    probs = rng.dirichlet(np.full(L, 0.5), size=(K, F))
    z = rng.integers(K, size=N)
    cum = probs[z].cumsum(-1)
    X = (rng.random((N, F, 1)) > cum).sum(-1)
    return np.minimum(X, L - 1).astype(np.float64), K


def _stepmix(kind, K, n, init=None):
    from stepmix import StepMix
    sm = StepMix(K, measurement=kind, max_iter=n, abs_tol=0.0, rel_tol=0.0,
                 n_init=1, random_state=0, verbose=0, progress_bar=0)
    return sm


def _start(kind, K, X):
    """StepMix's random start, as fastvem's initial parameters."""
    sm = _stepmix(kind, K, 1)
    sm.fit(X)
    params = sm.get_parameters()
    w = np.asarray(params["weights"], dtype=np.float64)
    m = params["measurement"]
    if kind == "binary":
        return dict(weights_init=w / w.sum(), probabilities_init=np.asarray(m["pis"]))
    pis = np.asarray(m["pis"])                 # K x (F * L), feature-major blocks of L
    F = X.shape[1]
    L = pis.shape[1] // F
    blocks = [pis[:, j * L:(j + 1) * L] for j in range(F)]
    return dict(weights_init=w / w.sum(), probabilities_init=[b / b.sum(1, keepdims=True)
                                                             for b in blocks],
                n_categories=[L] * F)


def _ours(kind, K, n, init):
    cls = fastvem.BernoulliMixture if kind == "binary" else fastvem.CategoricalMixture
    return cls(K, method="em", max_iter=n, tol=0.0, alpha=0.0, **init)


def _timed(make, X, n):
    est = make(n)
    t0 = time.perf_counter()
    est.fit(X)
    return time.perf_counter() - t0


def main():
    warnings.simplefilter("ignore")
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--whole", type=int, default=10)
    ap.add_argument("--only", default="binary,categorical")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n_lo, n_hi = 2, 7
    print(f"threads: fastvem {fastvem.engine.default_n_threads()} (BLAS 1 inside kernels); "
          f"StepMix NumPy default; {os.cpu_count()} CPUs", flush=True)
    for kind in args.only.split(","):
        N = {"binary": 200_000, "categorical": 100_000}[kind] // (10 if args.quick else 1)
        X, K = _data(kind, N, rng)
        init = _start(kind, K, X)
        Xo = X.astype(np.uint8) if kind == "binary" else X.astype(np.int32)

        def ours(n):
            return _ours(kind, K, n, init)

        def theirs(n):
            return _stepmix(kind, K, n)
        per = {}
        for name, make, data in (("fastvem", ours, Xo), ("stepmix", theirs, X)):
            vals = [(_timed(make, data, n_hi) - _timed(make, data, n_lo)) / (n_hi - n_lo)
                    for _ in range(args.repeat)]
            whole = statistics.median(_timed(make, data, args.whole) for _ in range(args.repeat))
            per[name] = (statistics.median(vals), whole)
        (a, wa), (b, wb) = per["fastvem"], per["stepmix"]
        print(f"{kind:12s} N={N:,} D={X.shape[1]} K={K} em: fastvem {a * 1e3:7.1f} ms/it, "
              f"StepMix {b * 1e3:7.1f} ms/it -> ratio x{b / a:.1f}; whole fit of {args.whole} "
              f"iterations {wa:.3f} s vs {wb:.3f} s -> ratio x{wb / wa:.1f}", flush=True)


if __name__ == "__main__":
    main()
