"""The Gaussian two ways, side by side in one process: GaussianMixture's Cholesky-factor
kernel (_ext/_gaussian.pyx) against the Family protocol's GaussianFull / GaussianDiag on
the exponential-family row driver (fastvem.Mixture('gaussian' / 'gaussian_diag')), em,
the same data, 10 iterations with no early stop, 2 threads; the median seconds per
iteration over iterations 2..10, median of --repeat alternating runs.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python asv_bench/gaussian_family_speed.py [--repeat 3]
"""
import argparse
import warnings

import numpy as np

import fastvem


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    for (N, D, K) in [(200_000, 8, 8), (100_000, 32, 8)]:
        X = rng.normal(size=(N, D)) + rng.integers(0, 4, size=(N, 1))
        w0 = np.full(K, 1.0 / K)
        m0 = X[rng.choice(N, K, replace=False)]
        for ct, fam in (("full", "gaussian"), ("diag", "gaussian_diag")):
            res = {"GaussianMixture": [], "Mixture": []}
            for _ in range(args.repeat):
                gm = fastvem.GaussianMixture(K, covariance_type=ct, max_iter=10, tol=0,
                                             weights_init=w0, means_init=m0, n_threads=2)
                mx = fastvem.Mixture(fam, K, max_iter=10, tol=0, n_threads=2, random_state=0)
                for name, est in (("GaussianMixture", gm), ("Mixture", mx)):
                    est.fit(X)
                    res[name].append(np.median(est.trace_["seconds"][1:]))
            a, b = np.median(res["GaussianMixture"]), np.median(res["Mixture"])
            print(f"N={N} D={D} K={K} {ct}: GaussianMixture {a * 1e3:.1f} ms/it, "
                  f"Mixture('{fam}') {b * 1e3:.1f} ms/it, ratio {b / a:.2f}")


if __name__ == "__main__":
    main()
