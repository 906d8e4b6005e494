"""Side-by-side peer comparison: fastvem against scikit-learn in one process.

Same data, same initial parameters, same number of iterations, default
threads on both sides (fastvem's kernels use all CPUs with BLAS limited to one
thread inside them; scikit-learn uses its default OpenBLAS threads).  Per
iteration cost = (t(n_hi iterations) - t(n_lo iterations)) / (n_hi - n_lo), so
fixed costs (validation, the final E-step) cancel; the median of `--repeat`
runs is reported.  Beside it, the whole fit as a user times it: a fresh
estimator, `--whole` iterations from the same initial parameters, every cost
included (validation, initialisation, the final E-step), median of `--repeat`.  Peak memory is traced allocation above the data
(tracemalloc sees NumPy buffers on both sides).

    python asv_bench/peer_compare.py            # every workload of the foundation issue
    python asv_bench/peer_compare.py --quick    # smaller sizes, for a smoke run
"""
import argparse
import os
import statistics
import sys
import time
import tracemalloc
import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture as SkBGM
from sklearn.mixture import GaussianMixture as SkGM

import fastvem
from fastvem.datasets import make_gaussian_mixture

warnings.simplefilter("ignore", ConvergenceWarning)


def initial_params(X, K, covariance_type, seed=0):
    rng = np.random.default_rng(seed)
    D = X.shape[1]
    means = X[rng.choice(X.shape[0], K, replace=False)].astype(np.float64)
    var = X[:20000].astype(np.float64).var(0)
    prec = {"full": np.broadcast_to(np.diag(1 / var), (K, D, D)).copy(),
            "tied": np.diag(1 / var),
            "diag": np.broadcast_to(1 / var, (K, D)).copy(),
            "spherical": np.full(K, 1 / var.mean())}[covariance_type]
    return dict(weights_init=np.full(K, 1.0 / K), means_init=means, precisions_init=prec)


def timed(make, X, n):
    est = make(n)
    t0 = time.perf_counter()
    est.fit(X)
    return time.perf_counter() - t0


def per_iteration(make, X, n_lo, n_hi, repeat):
    vals = []
    for _ in range(repeat):
        vals.append((timed(make, X, n_hi) - timed(make, X, n_lo)) / (n_hi - n_lo))
    return statistics.median(vals)


def whole_fit(make, X, n, repeat):
    return statistics.median(timed(make, X, n) for _ in range(repeat))


def peak_mb(make, X, n):
    tracemalloc.start()
    make(n).fit(X)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2 ** 20


def _vm(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def rss_above_data(make, X, n):
    """Peak resident memory a fit adds above what the process held before it
    (Linux: the peak counter is reset through /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return float("nan")
    before = _vm("VmRSS:")
    make(n).fit(X)
    return _vm("VmHWM:") - before


def gm_pair(K, ct, X, method="em"):
    init = initial_params(X, K, ct)

    def ours(n):
        return fastvem.GaussianMixture(K, covariance_type=ct, max_iter=n, tol=0, method=method,
                                       **init)

    def theirs(n):
        return SkGM(K, covariance_type=ct, max_iter=n, tol=0, **init)
    return ours, theirs


def bgm_pair(K, ct, X):
    """Mean field: both start from the same k-means responsibilities (same
    random_state); the k-means cost cancels in the per-iteration difference."""
    def ours(n):
        return fastvem.BayesianGaussianMixture(n_components=K, covariance_type=ct, max_iter=n,
                                               tol=0, random_state=0)

    def theirs(n):
        return SkBGM(n_components=K, covariance_type=ct, max_iter=n, tol=0, random_state=0)
    return ours, theirs


def kmeans_pair(K, X):
    init = initial_params(X, K, "diag")

    def ours(n):
        return fastvem.GaussianMixture(K, covariance_type="diag", max_iter=n, tol=0,
                                       method="crisp", **init)

    def theirs(n):
        return KMeans(K, init=init["means_init"], n_init=1, max_iter=n, tol=0,
                      algorithm="lloyd")
    return ours, theirs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="", help="comma-separated workload names")
    ap.add_argument("--whole", type=int, default=10,
                    help="iterations of the whole-fit timing (10)")
    args = ap.parse_args(argv)
    scale = 10 if args.quick else 1
    n_lo, n_hi = 1, 6
    rows = []
    workloads = [
        ("full", 200_000, 16, 16, "full", "em", np.float64),
        ("tied", 200_000, 16, 16, "tied", "em", np.float64),
        ("diag", 1_000_000, 16, 32, "diag", "em", np.float64),
        ("spherical", 1_000_000, 16, 32, "spherical", "em", np.float64),
        ("crisp-vs-kmeans", 1_000_000, 16, 32, "diag", "crisp", np.float64),
        ("diag-float32", 1_000_000, 16, 32, "diag", "em", np.float32),
        ("meanfield-full", 200_000, 16, 16, "full", "meanfield", np.float64),
        ("gibbs-vs-meanfield", 200_000, 16, 16, "full", "gibbs", np.float64),
    ]
    only = set(filter(None, args.only.split(",")))
    data_cache = {}
    print(f"threads: fastvem n_threads={os.cpu_count()} (BLAS 1 thread inside kernels); "
          f"scikit-learn default OpenBLAS threads; {os.cpu_count()} CPUs", flush=True)
    for name, N, D, K, ct, method, dtype in workloads:
        if only and name not in only:
            continue
        N //= scale
        key = (N, D, K)
        if key not in data_cache:
            data_cache[key] = make_gaussian_mixture(N, D, K, "diag", separation=1.5,
                                                    random_state=0)[0]
        X = data_cache[key].astype(dtype, copy=False)
        if name == "crisp-vs-kmeans":
            ours, theirs = kmeans_pair(K, X)
            peer = "sklearn KMeans(lloyd)"
        elif method == "gibbs":
            def ours(n, K=K, ct=ct):   # one chain, n sweeps, no burn-in
                return fastvem.GaussianMixture(K, covariance_type=ct, method="gibbs",
                                               n_samples=n, burn_in=0, n_chains=1,
                                               random_state=0)
            theirs = bgm_pair(K, ct, X)[0]
            peer = "fastvem meanfield"
        elif method == "meanfield":
            ours, theirs = bgm_pair(K, ct, X)
            peer = "sklearn BayesianGaussianMixture"
        else:
            ours, theirs = gm_pair(K, ct, X, method)
            peer = "sklearn GaussianMixture"
        if name == "diag-float32":
            ours64, _ = gm_pair(K, ct, data_cache[key], method)
            t32 = per_iteration(ours, X, n_lo, n_hi, args.repeat)
            t64 = per_iteration(ours64, data_cache[key], n_lo, n_hi, args.repeat)
            line = (f"{name:16s} N={N:>9,} D={D} K={K}: fastvem float32 {t32 * 1e3:8.1f} ms/it, "
                    f"float64 {t64 * 1e3:8.1f} ms/it  -> float32 speed-up x{t64 / t32:.2f}")
        else:
            t_ours = per_iteration(ours, X, n_lo, n_hi, args.repeat)
            t_peer = per_iteration(theirs, X, n_lo, n_hi, args.repeat)
            w_ours = whole_fit(ours, X, args.whole, args.repeat)
            w_peer = whole_fit(theirs, X, args.whole, args.repeat)
            m_ours = peak_mb(ours, X, 2)
            m_peer = peak_mb(theirs, X, 2)
            r_ours = rss_above_data(ours, X, 2)
            r_peer = rss_above_data(theirs, X, 2)
            line = (f"{name:16s} N={N:>9,} D={D} K={K} {method}: fastvem {t_ours * 1e3:8.1f} ms/it,"
                    f" {peer} {t_peer * 1e3:8.1f} ms/it -> ratio x{t_peer / t_ours:.1f};"
                    f" whole fit of {args.whole} iterations {w_ours:.3f} s vs {w_peer:.3f} s"
                    f" -> ratio x{w_peer / w_ours:.1f};"
                    f" memory above data: traced {m_ours:.1f} vs {m_peer:.1f} MB,"
                    f" peak RSS {r_ours:.1f} vs {r_peer:.1f} MB")
        rows.append(line)
        print(line, flush=True)
    return rows


if __name__ == "__main__":
    main()
    sys.exit(0)
