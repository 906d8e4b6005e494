"""A/B of whole LDA fits, old build against new build, alternating in subprocesses.

The workload of peer_compare_lda.py --only whole (fastvem side only): the synthetic
corpus make_lda_corpus(22,000 docs, V=5,000, K=50, ~100 tokens/doc, random_state=0),
20,000 documents to fit and 2,000 held out, alpha=0.1, eta=0.01, n_threads=2; a fresh
estimator fitted for 1 and for 10 passes, every cost inside fit included.  Each
measurement is its own process (the corpus is made once and cached as .npz); old and new
alternate within every round, so a busy episode on the host hits both; medians over
rounds, ratios old / new.  Besides the wall time of fit: its process CPU time, the
per-pass seconds (trace_), the time of a first read of bound_ after fit, the held-out
document-completion perplexity, and how far the new topics are from the old.

    OPENBLAS_NUM_THREADS=1 python asv_bench/ab_lda.py --old /tmp/old --new . [--rounds 5]
        [--configs meanfield:1,meanfield:10,vem:1,vem:10]

Both trees must be built (python setup.py build_ext --inplace).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

CHILD = r'''
import json, os, sys, time
import numpy as np
import scipy.sparse as sp
path, cache, method, passes, out = sys.argv[1:6]
sys.path.insert(0, path)
import fastvem
assert os.path.dirname(os.path.dirname(os.path.abspath(fastvem.__file__))) == \
    os.path.abspath(path), fastvem.__file__
from fastvem.topics import document_completion_perplexity as dcp
z = np.load(cache)
X = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
Xtr, Xte = X[:20000], X[20000:]
est = fastvem.LatentDirichletAllocation(50, method=method, max_iter=int(passes),
                                        doc_topic_prior=0.1, topic_word_prior=0.01,
                                        random_state=0, n_threads=2)
c0, t0 = time.process_time(), time.perf_counter()
est.fit(Xtr)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
t0 = time.perf_counter()
bound = est.bound_
t_bound = time.perf_counter() - t0
if out != "-":
    np.save(out, est.components_)
print(json.dumps({"wall": wall, "cpu": cpu, "passes": list(est.trace_["seconds"]),
                  "bound_read": t_bound, "bound": bound, "perplexity": dcp(est, Xte)}))
'''


def corpus(cache):
    if not os.path.exists(cache):
        from fastvem.datasets import make_lda_corpus
        X, _ = make_lda_corpus(22000, 5000, 50, doc_length=100, random_state=0)
        X = X.tocsr()
        np.savez(cache, data=X.data, indices=X.indices, indptr=X.indptr, shape=X.shape)
    return cache


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", default=".")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--configs", default="meanfield:1,meanfield:10,vem:1,vem:10")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(),
                                                    "fastvem_ab_lda_corpus.npz"))
    args = ap.parse_args()
    trees = {"old": os.path.abspath(args.old), "new": os.path.abspath(args.new)}
    cache = corpus(args.cache)
    configs = [tuple(c.split(":")) for c in args.configs.split(",")]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    res = {(c, tag): [] for c in configs for tag in trees}
    tmp = tempfile.mkdtemp()
    for r in range(args.rounds):
        for c in configs:
            for tag, path in trees.items():
                out = os.path.join(tmp, f"{tag}_{c[0]}_{c[1]}.npy") if r == 0 else "-"
                env["PYTHONPATH"] = path
                p = subprocess.run([sys.executable, "-c", CHILD, path, cache, c[0], c[1], out],
                                   capture_output=True, text=True, env=env, cwd=path)
                if p.returncode:
                    sys.exit(p.stderr)
                d = json.loads(p.stdout.strip().splitlines()[-1])
                res[c, tag].append(d)
                print(f"round {r} {c[0]:9s} {c[1]:>2s} passes {tag}: fit {d['wall']:.2f} s "
                      f"(cpu {d['cpu']:.2f}), bound_ read {d['bound_read']:.2f} s, passes "
                      + " ".join(f"{s:.2f}" for s in d["passes"]), flush=True)
    print(f"\n{'config':14s} {'':4s} {'fit s':>7s} {'cpu s':>7s} {'bound_':>7s} "
          f"{'perplexity':>11s} {'bound_ value':>14s}  per-pass s (medians)")
    for c in configs:
        for tag in trees:
            runs = res[c, tag]
            med = {k: float(np.median([d[k] for d in runs]))
                   for k in ("wall", "cpu", "bound_read")}
            passes = np.median([d["passes"] for d in runs], axis=0)
            print(f"{c[0] + ' ' + c[1]:14s} {tag:4s} {med['wall']:7.2f} {med['cpu']:7.2f} "
                  f"{med['bound_read']:7.2f} {runs[0]['perplexity']:11.3f} "
                  f"{runs[0]['bound']:14.6f}  " + " ".join(f"{s:.3f}" for s in passes))
        o, n = ([float(np.median([d["wall"] for d in res[c, t]])) for t in trees])
        oc, nc = ([float(np.median([d["cpu"] for d in res[c, t]])) for t in trees])
        a = np.load(os.path.join(tmp, f"old_{c[0]}_{c[1]}.npy"))
        b = np.load(os.path.join(tmp, f"new_{c[0]}_{c[1]}.npy"))
        print(f"{'':14s} old/new fit {o / n:.2f}x (cpu {oc / nc:.2f}x); components_ max rel "
              f"diff {np.max(np.abs(a - b) / np.abs(a)):.2e}")


if __name__ == "__main__":
    main()
