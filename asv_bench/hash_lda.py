"""Bitwise check of LDA fits, old build against new build (each in its own subprocess).

Small corpus (make_lda_corpus(500 docs, V=400, K=12, ~80 tokens/doc)): every method
(meanfield, vem, crisp; gibbs once) x learning_method (batch, online, memoized for
meanfield) x dtype (float64, float32) x alpha (default, 0.1 learned asymmetric, 0.002:
the active-topic sweeps drop topics there) x doc_topic_init ('ones', 'best' for batch)
x n_threads (1, 2), 4 passes; per fit a SHA-1 of components_, transform of 100
documents, the objective trace and bound_.  With --full also the benchmark corpus of
ab_lda.py (20,000 documents, V=5,000, K=50), meanfield and vem, float64 and float32,
--passes passes at n_threads=2 (components_ and the objective trace).

    python asv_bench/hash_lda.py --old /tmp/old --new . [--full] [--passes 3]

Prints the configurations that differ (none: 'IDENTICAL') and exits 1 if any does.
Both trees must be built (python setup.py build_ext --inplace).
"""
import argparse
import os
import subprocess
import sys
import tempfile

CHILD = r'''
import hashlib, os, sys
import numpy as np
path, full, passes, cache = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), sys.argv[4]
sys.path.insert(0, path)
import fastvem
assert os.path.dirname(os.path.dirname(os.path.abspath(fastvem.__file__))) == \
    os.path.abspath(path), fastvem.__file__
from fastvem.datasets import make_lda_corpus


def h(*arrs):
    m = hashlib.sha1()
    for a in arrs:
        m.update(np.ascontiguousarray(np.asarray(a, dtype=np.float64)).tobytes())
    return m.hexdigest()[:16]


X0, _ = make_lda_corpus(500, 400, 12, doc_length=80, random_state=1)
cfgs = []
for dtype in ("float64", "float32"):
    for method in ("meanfield", "vem", "crisp"):
        for lm in ("batch", "online", "memoized"):
            if lm == "memoized" and method != "meanfield":
                continue
            for alpha in (None, 0.1, 0.002):
                for init in (("ones", "best") if lm == "batch" else ("ones",)):
                    cfgs.append((dtype, method, lm, alpha, init))
cfgs.append(("float64", "gibbs", "batch", None, "ones"))
for dtype, method, lm, alpha, init in cfgs:
    X = X0.astype(dtype)
    for nt in (1, 2):
        learn = "asymmetric" if alpha == 0.1 and method != "gibbs" else None
        est = fastvem.LatentDirichletAllocation(
            12, method=method, learning_method=lm, max_iter=4, doc_topic_prior=alpha,
            random_state=0, n_threads=nt, doc_topic_init=init, batch_size=100,
            learn_doc_topic_prior=learn).fit(X)
        obj = est.trace_.get("objective", []) if hasattr(est, "trace_") else []
        print(f"{dtype} {method} {lm} alpha={alpha} init={init} nt={nt}",
              h(est.components_, est.transform(X[:100]), obj, [est.bound_]), flush=True)
if full:
    import scipy.sparse as sp
    z = np.load(cache)
    X = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))[:20000]
    for dtype in ("float64", "float32"):
        for method in ("meanfield", "vem"):
            est = fastvem.LatentDirichletAllocation(
                50, method=method, max_iter=passes, doc_topic_prior=0.1,
                topic_word_prior=0.01, random_state=0, n_threads=2).fit(X.astype(dtype))
            print(f"benchmark corpus {dtype} {method} {passes} passes",
                  h(est.components_, est.trace_["objective"]), flush=True)
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", default=".")
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(),
                                                    "fastvem_ab_lda_corpus.npz"))
    args = ap.parse_args()
    if args.full:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from ab_lda import corpus
        sys.path.insert(0, os.path.abspath(args.new))
        corpus(args.cache)
    out = {}
    for tag, path in (("old", args.old), ("new", args.new)):
        path = os.path.abspath(path)
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=path)
        p = subprocess.run([sys.executable, "-c", CHILD, path, "1" if args.full else "0",
                            str(args.passes), args.cache],
                           capture_output=True, text=True, env=env, cwd=path)
        if p.returncode:
            sys.exit(p.stderr)
        out[tag] = dict(line.rsplit(" ", 1) for line in p.stdout.strip().splitlines())
    keys = list(out["old"])
    diff = [k for k in keys if out["old"][k] != out["new"].get(k)]
    for k in diff:
        print(f"DIFFERS: {k}: old {out['old'][k]} new {out['new'].get(k)}")
    print(f"{len(keys) - len(diff)} of {len(keys)} fits bitwise identical"
          + ("" if diff else ": IDENTICAL"))
    sys.exit(1 if diff else 0)


if __name__ == "__main__":
    main()
