"""Usage: build the previous commit in a worktree at /tmp/old (git worktree add /tmp/old HEAD~1 && cd /tmp/old && python setup.py build_ext --inplace), then python asv_bench/ab_driver.py [rounds].

A/B of the shared row driver: the GaussianMixture em pass and the discrete row
passes, old build vs new build, alternately in subprocesses (best of 5 timed passes
in each process), median over rounds."""
import json, subprocess, sys, numpy as np
CHILD = r'''
import sys, time, json, numpy as np
sys.path.insert(0, sys.argv[1])
import fastvem, warnings
warnings.simplefilter("ignore")
from fastvem.datasets import make_gaussian_mixture
out = {}
X, _, _ = make_gaussian_mixture(200000, 16, 16, random_state=0)
for cov in ("full", "tied", "diag", "spherical"):
    gm = fastvem.GaussianMixture(16, covariance_type=cov, max_iter=1, tol=0, random_state=0, n_threads=2).fit(X)
    best = 1e9
    for _ in range(5):
        g = fastvem.GaussianMixture(16, covariance_type=cov, max_iter=10, tol=0, n_threads=2,
             weights_init=gm.weights_, means_init=gm.means_, precisions_init=gm.precisions_)
        t = time.perf_counter(); g.fit(X); best = min(best, time.perf_counter() - t)
    out["gmm_" + cov] = best / 10
rng = np.random.default_rng(0)
Xb = (rng.random((200000, 64)) < 0.3).astype(np.uint8)
Xc = rng.integers(5, size=(100000, 10))
for name, est, X in (("bernoulli", fastvem.BernoulliMixture(16, max_iter=10, tol=0, random_state=0, n_threads=2), Xb),
                     ("categorical", fastvem.CategoricalMixture(8, max_iter=10, tol=0, random_state=0, n_threads=2), Xc)):
    est.fit(X)
    best = 1e9
    for _ in range(5):
        t = time.perf_counter(); est.fit(X); best = min(best, time.perf_counter() - t)
    out[name] = best
print(json.dumps(out))
'''
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
res = {"old": [], "new": []}
for r in range(rounds):
    for tag, path in (("old", "/tmp/old"), ("new", "/work/main")):
        o = subprocess.run([sys.executable, "-c", CHILD, path], capture_output=True, text=True)
        res[tag].append(json.loads(o.stdout.strip().splitlines()[-1]))
keys = res["old"][0].keys()
print(f"{'workload':14s} {'old s':>9s} {'new s':>9s} {'new/old':>8s}")
for k in keys:
    o = np.median([d[k] for d in res["old"]]); n = np.median([d[k] for d in res["new"]])
    print(f"{k:14s} {o:9.4f} {n:9.4f} {n/o:8.3f}")
