"""HMMs side by side with hmmlearn, in one process: the same data, the same initial
parameters (set on both, init_params=''), the same number of em iterations (tol
-inf: no early stop on either side).

Data (the HMM issue's workload): 50 sequences x 2,000 steps from a sticky K=8
chain (0.95 on the diagonal); GaussianHMM D=4 (full and diag), CategoricalHMM
with 20 symbols.  Per-iteration cost = (t(n_hi) - t(n_lo)) / (n_hi - n_lo), so
fixed costs cancel; beside it the whole fit of --whole iterations from a fresh
estimator, every cost included.  fastvem and hmmlearn alternate --repeat times
(medians; every run printed).  hmmlearn runs implementation='scaling' (its faster
one) and 'log'.  Threads: fastvem n_threads=2 (the kernels' threads, BLAS at one
thread inside them); hmmlearn single-threaded (its forward-backward is compiled
C++ on one thread).  Run with OPENBLAS_NUM_THREADS=1 so that idle BLAS threads of
either side do not steal the second core.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python asv_bench/peer_compare_hmm.py \
        [--repeat 5] [--only gauss-full,gauss-diag,categorical]
"""
import argparse
import statistics
import time
import warnings

import numpy as np

import fastvem

K, N_SEQ, T, D, SYMBOLS = 8, 50, 2000, 4, 20


def chain(rng):
    A = np.full((K, K), 0.05 / (K - 1))
    np.fill_diagonal(A, 0.95)
    z = np.empty(N_SEQ * T, dtype=np.int64)
    for s in range(N_SEQ):
        z[s * T] = rng.integers(K)
        u = rng.random(T)
        for t in range(1, T):
            prev = z[s * T + t - 1]
            z[s * T + t] = np.searchsorted(np.cumsum(A[prev]), u[t])
    return np.minimum(z, K - 1), [T] * N_SEQ


def gaussian_data(rng):
    z, lengths = chain(rng)
    centres = rng.normal(scale=3.0, size=(K, D))
    return centres[z] + rng.normal(size=(z.size, D)), lengths


def categorical_data(rng):
    z, lengths = chain(rng)
    emit = rng.dirichlet(np.full(SYMBOLS, 0.3), size=K)
    u = rng.random(z.size)
    X = (u[:, None] > emit[z].cumsum(1)).sum(1)
    return np.minimum(X, SYMBOLS - 1)[:, None], lengths


def start(model, X, kind, seed=1):
    """One start for both sides: a random chain and emissions from the data."""
    r = np.random.RandomState(seed)
    model.startprob_ = r.dirichlet(np.ones(K))
    model.transmat_ = r.dirichlet(np.ones(K) * 5, size=K)
    if kind == "categorical":
        model.emissionprob_ = r.dirichlet(np.ones(SYMBOLS), size=K)
        return
    model.means_ = X[r.choice(X.shape[0], K, replace=False)]
    if kind == "full":
        model.covars_ = np.tile(np.cov(X.T), (K, 1, 1))
    else:
        model.covars_ = np.tile(X.var(0), (K, 1))


def make(side, kind, n_iter, X, impl="scaling"):
    from hmmlearn import hmm
    kw = dict(init_params="", n_iter=n_iter, tol=-np.inf)
    if kind == "categorical":
        cls = hmm.CategoricalHMM if side == "hmmlearn" else fastvem.CategoricalHMM
        kw["n_features"] = SYMBOLS
    else:
        cls = hmm.GaussianHMM if side == "hmmlearn" else fastvem.GaussianHMM
        kw["covariance_type"] = kind
    if side == "hmmlearn":
        kw["implementation"] = impl
    else:
        kw["n_threads"] = 2
    m = cls(K, **kw)
    start(m, X, kind)
    return m


def fit_time(side, kind, n_iter, X, lengths, **kw):
    m = make(side, kind, n_iter, X, **kw)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(X, lengths)
    return time.perf_counter() - t, m


def per_iteration(side, kind, X, lengths, lo, hi, **kw):
    t_lo, _ = fit_time(side, kind, lo, X, lengths, **kw)
    t_hi, m = fit_time(side, kind, hi, X, lengths, **kw)
    return (t_hi - t_lo) / (hi - lo), m


def compare(kind, X, lengths, repeat, lo, hi, whole, impls=("scaling", "log")):
    rows = []
    for impl in impls:
        fv, hl, fv_whole, hl_whole = [], [], [], []
        for _ in range(repeat):
            f, mf = per_iteration("fastvem", kind, X, lengths, lo, hi)
            h, mh = per_iteration("hmmlearn", kind, X, lengths, lo, hi, impl=impl)
            fv.append(f)
            hl.append(h)
            fv_whole.append(fit_time("fastvem", kind, whole, X, lengths)[0])
            hl_whole.append(fit_time("hmmlearn", kind, whole, X, lengths, impl=impl)[0])
        gap = abs(mf.monitor_.history[-1] - mh.monitor_.history[-1])
        print(f"  {kind} vs {impl}: s/iteration run by run: fastvem "
              + " ".join(f"{v:.4f}" for v in fv) + " | hmmlearn "
              + " ".join(f"{v:.4f}" for v in hl)
              + f"; |log-likelihood gap| after {hi} iterations {gap:.2e}", flush=True)
        f, h = statistics.median(fv), statistics.median(hl)
        fw, hw = statistics.median(fv_whole), statistics.median(hl_whole)
        rows.append((f"{kind} em vs {impl}", f, h, fw, hw))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--lo", type=int, default=2)
    ap.add_argument("--hi", type=int, default=10)
    ap.add_argument("--whole", type=int, default=10)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    rng = np.random.default_rng(0)
    Xg, lengths = gaussian_data(rng)
    Xc, lengths_c = categorical_data(rng)
    print(f"data: {N_SEQ} sequences x {T} steps, K={K}; Gaussian D={D}; categorical "
          f"{SYMBOLS} symbols; per iteration = (t({args.hi}) - t({args.lo})) / "
          f"{args.hi - args.lo}, whole fit = {args.whole} iterations from a fresh model; "
          f"medians of {args.repeat}")
    rows = []
    for name, kind, X, ln in (("gauss-full", "full", Xg, lengths),
                              ("gauss-diag", "diag", Xg, lengths),
                              ("categorical", "categorical", Xc, lengths_c)):
        if not only or name in only:
            rows += compare(kind, X, ln, args.repeat, args.lo, args.hi, args.whole)
    print(f"\n{'workload':28s} {'fastvem s/it':>13s} {'hmmlearn s/it':>14s} {'ratio':>7s}"
          f" {'fastvem whole':>14s} {'hmmlearn whole':>15s} {'ratio':>7s}")
    for name, f, h, fw, hw in rows:
        print(f"{name:28s} {f:13.4f} {h:14.4f} {h / f:7.1f} {fw:14.3f} {hw:15.3f} {hw / fw:7.1f}")


if __name__ == "__main__":
    main()
