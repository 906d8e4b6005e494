"""Large data: a float32 memmap of 100,000,000 x 8 (3.2 GB) fitted by em (diag, K=16),
against the same fit in memory; and a Dask LocalCluster (2 workers x 1 thread) on
N=10,000,000, D=16, K=16 (diag) against the in-process fit with 2 threads.

Memory: the growth of the process's private anonymous memory (RssAnon, sampled every
20 ms in a thread) over the fit.  Time: median seconds per iteration from trace_.
Both fits of a pair start from the same parameters and run the same iterations.

    PYTHONPATH=. python asv_bench/large_data.py [--rows 100000000] [--dask-rows 10000000]
        [--only memmap,dask] [--path /tmp/fastvem_big.npy]
"""
import argparse
import os
import threading
import time

import numpy as np

import fastvem


def rss_anon_mb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


class PeakAnon:
    def __enter__(self):
        self.base = rss_anon_mb()
        self.peak = self.base
        self.stop = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()
        return self

    def _run(self):
        while not self.stop:
            self.peak = max(self.peak, rss_anon_mb())
            time.sleep(0.02)

    def __exit__(self, *exc):
        self.stop = True
        self.t.join()
        self.peak = max(self.peak, rss_anon_mb())

    @property
    def growth(self):
        return self.peak - self.base


def start_params(head, K, iters):
    """Constructor arguments of a diag em fit of `iters` iterations from parameters
    fitted (one iteration) on the first rows: both fits of a pair start from them."""
    start = fastvem.GaussianMixture(K, covariance_type="diag", max_iter=1, random_state=0,
                                    init_params="random_from_data").fit(head)
    return dict(n_components=K, covariance_type="diag", max_iter=iters, tol=0,
                weights_init=start.weights_, means_init=start.means_,
                precisions_init=1.0 / start.covariances_)


def make_file(path, n, d, k, seed=0):
    if os.path.exists(path) and np.load(path, mmap_mode="r").shape == (n, d):
        return
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=3.0, size=(k, d))
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    step = 1 << 22
    for s in range(0, n, step):
        m = min(step, n - s)
        lab = rng.integers(0, k, m)
        out[s:s + m] = means[lab] + rng.standard_normal((m, d), dtype=np.float32)
    out.flush()
    del out


def memmap_case(args):
    K, D = 16, 8
    make_file(args.path, args.rows, D, K)
    Xm = np.load(args.path, mmap_mode="r")
    _ = float(np.asarray(Xm[::1000]).sum())       # touch the file: page cache warm
    for s in range(0, Xm.shape[0], 1 << 24):
        _ = float(np.asarray(Xm[s:s + (1 << 24)]).sum())
    kw = dict(start_params(Xm[:1_000_000], K, args.iters), n_threads=2)
    with PeakAnon() as mem_m:
        fm = fastvem.GaussianMixture(**kw).fit(Xm)
    t_m = float(np.median(fm.trace_["seconds"]))
    X = np.load(args.path)                       # in memory
    with PeakAnon() as mem_i:
        fi = fastvem.GaussianMixture(**kw).fit(X)
    t_i = float(np.median(fi.trace_["seconds"]))
    print(f"memmap {Xm.shape[0]}x{D} float32, em diag K={K}, {args.iters} iterations:")
    print(f"  memmap:    {t_m:7.3f} s/iteration, private memory growth {mem_m.growth:8.1f} MB")
    print(f"  in memory: {t_i:7.3f} s/iteration, private memory growth {mem_i.growth:8.1f} MB")
    print(f"  ratio memmap / in memory: {t_m / t_i:.3f}; same result: "
          f"{np.allclose(fm.means_, fi.means_, rtol=1e-6)}", flush=True)


def dask_case(args):
    import dask.array as da
    from dask.distributed import Client, LocalCluster
    K, D, N = 16, 16, args.dask_rows
    rng = np.random.default_rng(1)
    means = rng.normal(scale=3.0, size=(K, D))
    X = np.empty((N, D))
    step = 1 << 20
    for s in range(0, N, step):
        m = min(step, N - s)
        X[s:s + m] = means[rng.integers(0, K, m)] + rng.standard_normal((m, D))
    kw = start_params(X[:500_000], K, args.iters)
    fi = fastvem.GaussianMixture(n_threads=2, **kw).fit(X)
    t_i = float(np.median(fi.trace_["seconds"]))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=40) as cluster, \
            Client(cluster) as client:
        Xd = client.persist(da.from_array(X, chunks=(N // 8, D)))
        del X
        fd = fastvem.GaussianMixture(**kw).fit(Xd)
    t_d = float(np.median(fd.trace_["seconds"]))
    print(f"dask LocalCluster 2x1, N={N} D={D} K={K} diag, {args.iters} iterations:")
    print(f"  in process (2 threads): {t_i:7.3f} s/iteration")
    print(f"  dask (8 blocks):        {t_d:7.3f} s/iteration")
    print(f"  ratio dask / in process: {t_d / t_i:.3f}; same result: "
          f"{np.allclose(fd.means_, fi.means_, rtol=1e-9)}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000_000)
    ap.add_argument("--dask-rows", type=int, default=10_000_000)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--only", default="memmap,dask")
    ap.add_argument("--path", default="/tmp/fastvem_big.npy")
    args = ap.parse_args()
    only = set(args.only.split(","))
    if "memmap" in only:
        memmap_case(args)
    if "dask" in only:
        dask_case(args)


if __name__ == "__main__":
    main()
