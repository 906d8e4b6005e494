"""E-steps to convergence (tol=1e-6) of plain EM and EM with SQUAREM, on heavily
overlapping mixtures (separation 1.0: component means about one standard deviation
apart), from the same k-means initialisation.

    PYTHONPATH=. python asv_bench/squarem_compare.py
"""
import numpy as np

import fastvem
from fastvem.datasets import make_gaussian_mixture


def main():
    print(f"{'covariance':10s} {'seed':>4s} {'plain':>6s} {'squarem':>8s} {'fewer':>6s} "
          f"{'objective plain':>16s} {'objective squarem':>18s}")
    fewer = []
    for ct in ("full", "tied", "diag", "spherical"):
        for seed in range(3):
            X, _, _ = make_gaussian_mixture(20000, 4, 6, ct, separation=1.0, random_state=seed)
            kw = dict(n_components=6, covariance_type=ct, tol=1e-6, max_iter=100000,
                      random_state=seed)
            a = fastvem.GaussianMixture(**kw).fit(X)
            b = fastvem.GaussianMixture(accelerate="squarem", **kw).fit(X)
            f = 1 - b.n_e_steps_ / a.n_e_steps_
            fewer.append(f)
            print(f"{ct:10s} {seed:4d} {a.n_e_steps_:6d} {b.n_e_steps_:8d} {f:6.0%} "
                  f"{a.lower_bound_:16.8f} {b.lower_bound_:18.8f}")
    print(f"median: {np.median(fewer):.0%} fewer E-steps")


if __name__ == "__main__":
    main()
