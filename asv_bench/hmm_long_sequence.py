"""One long sequence: the checkpointed forward-backward against the plain one.

Usage: python asv_bench/hmm_long_sequence.py [--rows 10000000] [--iters 3]
       [--K 8] [--D 4] [--configs checkpointed,plain,hmmlearn] [--peer-rows 200000]

A single float32 sequence of --rows steps (a sticky K-state chain, D-dimensional
Gaussian rows; the HMM issue's workload is K=8, D=4, 10^7 rows),
GaussianHMM(covariance_type='diag', method='em', n_threads=2: the checkpointed
sequence runs pipelined on a team of two threads, the plain one on one thread) from
a fixed start (init_params='', tol=-inf) for --iters iterations.
Each configuration runs in a subprocess of its own, so that its peak resident
memory (getrusage's ru_maxrss: it sees the kernels' C and NumPy allocations, which
tracemalloc does not) is its own:

    checkpointed  the default threshold (10^6 rows; rows - 1 for a shorter
                  sequence): the sequence runs in blocks of ceil(sqrt(L)) rows,
                  O(sqrt(L) K) scratch
    plain         the threshold set above the sequence's length
                  (_hmm.set_checkpoint_rows): one block, 3 L K doubles of scratch
    hmmlearn      hmmlearn's GaussianHMM (implementation='scaling', its faster one)
                  from the same start on the first --peer-rows rows of the same
                  sequence (one sequence): its seconds per iteration, (t(iters) -
                  t(1)) / (iters - 1), scaled to --rows per step; the ratio is
                  per step, one iteration each

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
K, D, peer_rows = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])


def maxrss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0     # KiB on Linux


def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2 ** 20


rng = np.random.default_rng(0)
centres = np.random.default_rng(1).normal(scale=3.0, size=(K, D))
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


def start(est):
    est.startprob_ = np.full(K, 1.0 / K)
    est.transmat_ = np.full((K, K), 0.1 / (K - 1)) + np.eye(K) * (0.9 - 0.1 / (K - 1))
    est.means_ = centres + 0.5
    est.covars_ = np.ones((K, D)) * 1.5
    return est


if config == "hmmlearn":
    from hmmlearn import hmm
    Xp = np.asarray(X[:peer_rows], dtype=np.float64)
    times = {}
    for n in (1, iters):
        m = start(hmm.GaussianHMM(K, covariance_type="diag", init_params="", n_iter=n,
                                  tol=-np.inf, implementation="scaling"))
        t0 = time.perf_counter()
        m.fit(Xp)
        times[n] = time.perf_counter() - t0
    per_iter = (times[iters] - times[1]) / (iters - 1)
    print(json.dumps(dict(config=config, rows=peer_rows, iters=iters, threshold=0,
                          sec_per_iter=per_iter * rows / peer_rows, fit_wall=times[iters],
                          rss_before_mib=0.0, rss_now_mib=0.0, rss_peak_mib=maxrss_mib(),
                          fit_increment_mib=0.0, scratch_mib=0.0)))
    sys.exit(0)
if config == "plain":
    _hmm.set_checkpoint_rows(rows + 1)
else:
    _hmm.set_checkpoint_rows(max(1, min(_hmm.CHECKPOINT_ROWS, rows - 1)))
est = start(fastvem.GaussianHMM(K, covariance_type="diag", method="em", init_params="",
                                n_iter=iters, tol=-np.inf, n_threads=2))
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
    ap.add_argument("--configs", default="checkpointed,plain,hmmlearn")
    ap.add_argument("--K", type=int, default=8)
    ap.add_argument("--D", type=int, default=4)
    ap.add_argument("--peer-rows", type=int, default=200_000)
    a = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    results = []
    for config in a.configs.split(","):
        o = subprocess.run([sys.executable, "-c", CHILD, root, config, str(a.rows),
                            str(a.iters), str(a.K), str(a.D), str(a.peer_rows)],
                           capture_output=True, text=True)
        if o.returncode:
            print(f"{config}: failed (rc {o.returncode})\n{o.stderr[-2000:]}")
            continue
        results.append(json.loads(o.stdout.strip().splitlines()[-1]))
    print(f"GaussianHMM diag, D={a.D}, K={a.K}, em, one float32 sequence of {a.rows:,} rows, "
          f"{a.iters} iterations, n_threads=2 (hmmlearn: its first {a.peer_rows:,} rows, "
          "scaled per step)")
    print(f"{'config':13s} {'threshold':>11s} {'s/iter':>8s} {'RSS data':>9s} "
          f"{'RSS peak':>9s} {'fit +':>8s} {'scratch':>9s}  (MiB)")
    for r in results:
        print(f"{r['config']:13s} {r['threshold']:>11,d} {r['sec_per_iter']:8.2f} "
              f"{r['rss_before_mib']:9.0f} {r['rss_peak_mib']:9.0f} "
              f"{r['fit_increment_mib']:8.0f} {r['scratch_mib']:9.2f}")
    ours = [r for r in results if r["config"] != "hmmlearn"]
    peer = [r for r in results if r["config"] == "hmmlearn"]
    if len(ours) == 2:
        same = all(ours[0][k] == ours[1][k] for k in ("loglik", "means", "transmat", "covars"))
        print("fitted parameters and log-likelihood bitwise equal:", same)
    for r in ours:
        if peer:
            print(f"per step, {r['config']} against hmmlearn 'scaling': "
                  f"{peer[0]['sec_per_iter'] / r['sec_per_iter']:.1f}x")


if __name__ == "__main__":
    main()
