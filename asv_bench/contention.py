"""Speed under contention: a GaussianMixture full fit (200,000 x 16, K=16, 10 em
iterations from given parameters) and an LDA vem fit (5,000 documents, V=2,000,
K=20, 10 passes), quiet and with busy processes that this script starts itself
(pure-Python loops, bounded in time, ended at exit).  fastvem runs with its
default threads (all CPUs).  With b busy processes on C cores and T threads the
fair share predicts a slowdown of (b + T) / C; the script prints the measured
slowdown, that prediction and their ratio.

    PYTHONPATH=. python asv_bench/contention.py [--busy-per-core 2] [--repeat 3]
"""
import argparse
import multiprocessing as mp
import os
import time
import warnings

import numpy as np


def _busy(deadline):
    x = 0
    while time.time() < deadline:
        x += 1


def _gmm_case():
    import fastvem
    from fastvem.datasets import make_gaussian_mixture
    X, _, truth = make_gaussian_mixture(200_000, 16, 16, "full", separation=2.0, random_state=0)
    prec = np.linalg.inv(truth["covariances"])

    def run():
        fastvem.GaussianMixture(16, covariance_type="full", max_iter=10, tol=0.0,
                                weights_init=truth["weights"], means_init=truth["means"],
                                precisions_init=prec).fit(X)
    return run


def _lda_case():
    import fastvem
    from fastvem.datasets import make_lda_corpus
    C, _ = make_lda_corpus(5000, 2000, 20, doc_length=150, random_state=0)

    def run():
        fastvem.LatentDirichletAllocation(20, method="vem", max_iter=10, random_state=0).fit(C)
    return run


def _time(run, repeat):
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        out.append(time.perf_counter() - t0)
    return float(np.median(out)), out


def main():
    warnings.simplefilter("ignore")
    ap = argparse.ArgumentParser()
    ap.add_argument("--busy-per-core", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="gmm,lda")
    args = ap.parse_args()
    from fastvem.engine import default_n_threads
    cores = len(os.sched_getaffinity(0))
    T = default_n_threads(None)
    n_busy = args.busy_per_core * cores
    cases = {"gmm": _gmm_case, "lda": _lda_case}
    for name in args.only.split(","):
        run = cases[name]()
        run()                                        # warm up
        quiet, q_runs = _time(run, args.repeat)
        deadline = time.time() + 600
        procs = [mp.Process(target=_busy, args=(deadline,), daemon=True) for _ in range(n_busy)]
        for p in procs:
            p.start()
        try:
            time.sleep(0.5)
            busy, b_runs = _time(run, args.repeat)
        finally:
            for p in procs:
                p.terminate()
                p.join()
        fair = (n_busy + T) / cores
        print(f"{name}: quiet {quiet:.3f} s {np.round(q_runs, 3)}, with {n_busy} busy processes "
              f"{busy:.3f} s {np.round(b_runs, 3)}: slowdown {busy / quiet:.2f}x, fair share "
              f"{fair:.2f}x, ratio {busy / quiet / fair:.2f} ({T} threads, {cores} cores)",
              flush=True)


if __name__ == "__main__":
    main()
