"""One long sequence: the checkpointed forward-backward against the plain one.

Usage: python asv_bench/hmm_long_sequence.py [--rows 10000000] [--iters 3]
       [--configs checkpointed,plain]

A single float32 sequence of --rows steps (a sticky K=4 chain, D=2 Gaussian rows),
GaussianHMM(covariance_type='diag', method='em') from a fixed start
(init_params='', tol=-inf) for --iters iterations.  Each configuration runs in a
subprocess of its own, so that its peak resident memory (getrusage's ru_maxrss:
it sees the kernels' C and NumPy allocations, which tracemalloc does not) is its
own:

    checkpointed  the default threshold (10^6 rows; rows - 1 for a shorter
                  sequence): the sequence runs in blocks of ceil(sqrt(L)) rows,
                  O(sqrt(L) K) scratch
    plain         the threshold set above the sequence's length
                  (_hmm.set_checkpoint_rows): one block, 3 L K doubles of scratch

Reported per configuration: seconds per iteration (the fit's trace_, median),
the peak RSS once the data are built (before the fit; the data are built in
pieces, so this is about the data's own) and at the end, the fit's increment of
the peak, and the kernel's per-thread scratch of blocks (_hmm.scratch_size).  The fitted
parameters of the two configurations are compared (bitwise equal expected).
"""
import argparse
import json
import os
import subprocess
import sys

CHILD = r'''
import json, resource, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
import fastvem
from fastvem._ext import _hmm
assert fastvem.__file__.startswith(sys.argv[1]), fastvem.__file__

config, rows, iters = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
K, D = 4, 2


def maxrss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0     # KiB on Linux


def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2 ** 20


rng = np.random.default_rng(0)
centres = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0], [3.0, 3.0]])
# a sticky chain (stay with probability 0.98): states change at the switch rows
# and are carried forward; built 10^6 rows at a time, so that the peak before the
# fit is the data's (80 MB at 10^7 rows) and not the temporaries'
X = np.empty((rows, D), dtype=np.float32)
last = 0
for a in range(0, rows, 10 ** 6):
    n = min(10 ** 6, rows - a)
    switch = rng.random(n) < 0.02
    idx = np.maximum.accumulate(np.where(switch, np.arange(n), -1))
    z = np.where(idx >= 0, rng.integers(0, K, n)[np.maximum(idx, 0)], last)
    last = z[-1]
    X[a:a + n] = centres[z] + rng.normal(size=(n, D))
if config == "plain":
    _hmm.set_checkpoint_rows(rows + 1)
else:
    _hmm.set_checkpoint_rows(max(1, min(_hmm.CHECKPOINT_ROWS, rows - 1)))
est = fastvem.GaussianHMM(K, covariance_type="diag", method="em", init_params="",
                          n_iter=iters, tol=-np.inf, n_threads=1)
est.startprob_ = np.full(K, 1.0 / K)
est.transmat_ = np.full((K, K), 0.1 / (K - 1)) + np.eye(K) * (0.9 - 0.1 / (K - 1))
est.means_ = centres + np.array([0.5, -0.5])
est.covars_ = np.ones((K, D)) * 1.5
offsets = np.array([0, rows], dtype=np.int64)
before, current = maxrss_mib(), rss_mib()
t0 = time.perf_counter()
est.fit(X)
wall = time.perf_counter() - t0
after = maxrss_mib()
nd, ni = _hmm.scratch_size(offsets, K, 0)
print(json.dumps(dict(config=config, rows=rows, iters=iters, threshold=_hmm.checkpoint_rows(),
                      sec_per_iter=float(np.median(est.trace_["seconds"])),
                      fit_wall=wall, rss_before_mib=before, rss_now_mib=current, rss_peak_mib=after,
                      fit_increment_mib=after - before,
                      scratch_mib=(8 * nd + 4 * ni) / 2 ** 20,
                      loglik=float(est.monitor_.history[-1]),
                      means=est.means_.tolist(), transmat=est.transmat_.tolist(),
                      covars=np.asarray(est._covars_).tolist())))
'''


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--configs", default="checkpointed,plain")
    a = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    results = []
    for config in a.configs.split(","):
        o = subprocess.run([sys.executable, "-c", CHILD, root, config, str(a.rows),
                            str(a.iters)], capture_output=True, text=True)
        if o.returncode:
            print(f"{config}: failed (rc {o.returncode})\n{o.stderr[-2000:]}")
            continue
        results.append(json.loads(o.stdout.strip().splitlines()[-1]))
    print(f"GaussianHMM diag, D=2, K=4, em, one float32 sequence of {a.rows:,} rows, "
          f"{a.iters} iterations, n_threads=1")
    print(f"{'config':13s} {'threshold':>11s} {'s/iter':>8s} {'RSS data':>9s} "
          f"{'RSS peak':>9s} {'fit +':>8s} {'scratch':>9s}  (MiB)")
    for r in results:
        print(f"{r['config']:13s} {r['threshold']:>11,d} {r['sec_per_iter']:8.2f} "
              f"{r['rss_before_mib']:9.0f} {r['rss_peak_mib']:9.0f} "
              f"{r['fit_increment_mib']:8.0f} {r['scratch_mib']:9.2f}")
    if len(results) == 2:
        same = all(results[0][k] == results[1][k] for k in ("loglik", "means", "transmat",
                                                             "covars"))
        print("fitted parameters and log-likelihood bitwise equal:", same)


if __name__ == "__main__":
    main()
