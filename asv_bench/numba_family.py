"""A user's Poisson family in numba (fastvem.families.ExponentialFamily) against the
built-in PoissonMixture: the same data (N=1,000,000, D=16, K=16), the same start,
the same em iterations, in one process, default threads on both.  Per-iteration
cost = (t(6) - t(1)) / 5, median of --repeat; the first call's compile cost of the
user's functions separately.

    PYTHONPATH=. python asv_bench/numba_family.py [--repeat 3] [--n 1000000]
"""
import argparse
import statistics
import time
import warnings

import numpy as np

import fastvem
from fastvem.families.numba_family import example_poisson


def main():
    warnings.simplefilter("ignore")
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--n", type=int, default=1_000_000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    K, D = 16, 16
    rates = rng.uniform(0.5, 10.0, (K, D))
    X = rng.poisson(rates[rng.integers(K, size=args.n)]).astype(np.float64)
    w0, r0 = np.full(K, 1.0 / K), rng.uniform(1.0, 8.0, (K, D))
    t0 = time.perf_counter()
    fam = example_poisson()
    fastvem.Mixture(fam, K, weights_init=w0, natural_params_init=np.log(r0), max_iter=1,
                    tol=0.0).fit(X[:1000])
    compile_s = time.perf_counter() - t0

    def user(n):
        return fastvem.Mixture(fam, K, weights_init=w0, natural_params_init=np.log(r0),
                               max_iter=n, tol=0.0)

    def builtin(n):
        return fastvem.PoissonMixture(K, weights_init=w0, rates_init=r0, max_iter=n, tol=0.0)

    def fit_time(make, n):
        est = make(n)
        t = time.perf_counter()
        est.fit(X)
        return time.perf_counter() - t

    per = {}
    for name, make in (("numba ExponentialFamily", user), ("built-in PoissonMixture", builtin)):
        per[name] = statistics.median((fit_time(make, 6) - fit_time(make, 1)) / 5
                                      for _ in range(args.repeat))
    a, b = per["numba ExponentialFamily"], per["built-in PoissonMixture"]
    print(f"Poisson em, N={args.n:,} D={D} K={K}: numba family {a * 1e3:.1f} ms/it, built-in "
          f"{b * 1e3:.1f} ms/it -> numba / built-in {a / b:.2f}; first call (compiling the "
          f"user's functions) {compile_s:.2f} s", flush=True)


if __name__ == "__main__":
    main()
