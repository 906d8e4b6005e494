"""Gibbs against mean field on scikit-learn's real data sets, default settings.

For each data set (K = number of classes) and seeds 0-4: the ARI of each method's
partition against the classes, the collapsed log joint log p(X, z) of that
partition under the model's own priors (weights and Normal-Wishart parameters
integrated out; tests/oracle.py), and for gibbs the largest covariance trace over
the data's total variance and R-hat.  Then a 200,000-row synthetic mixture with
the default sampler settings: seconds, converged_, worst R-hat, least ESS.

    PYTHONPATH=. python asv_bench/gibbs_real_data.py [--no-large]
"""
import os
import sys
import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.metrics import adjusted_rand_score

import fastvem
from fastvem.datasets import make_gaussian_mixture

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from oracle import collapsed_log_joint  # noqa: E402


def main():
    warnings.simplefilter("ignore")
    for name, loader in [("iris", load_iris), ("wine", load_wine),
                         ("breast_cancer", load_breast_cancer)]:
        X, y = loader(return_X_y=True)
        K = len(np.unique(y))
        total = np.trace(np.cov(X.T))
        for method in ("meanfield", "gibbs"):
            ari, lj, wide, rhat = [], [], [], []
            t0 = time.perf_counter()
            for seed in range(5):
                g = fastvem.GaussianMixture(K, method=method, random_state=seed).fit(X)
                z = g.predict(X)
                ari.append(adjusted_rand_score(y, z))
                lj.append(collapsed_log_joint(
                    X, z, K, g.mean_prior_, g.mean_precision_prior_,
                    g.degrees_of_freedom_prior_, g.covariance_prior_,
                    g.weight_concentration_prior_type, g.weight_concentration_prior_))
                wide.append(np.trace(g.covariances_, axis1=1, axis2=2).max() / total)
                rhat.append(getattr(g, "rhat_", np.nan))
            print(f"{name:14s} {method:9s} ARI {np.round(ari, 3)} log p(X,z) {np.round(lj, 1)} "
                  f"max trace/total {max(wide):.2f} R-hat {np.round(rhat, 3)} "
                  f"{(time.perf_counter() - t0) / 5:.2f} s/fit", flush=True)
    if "--no-large" in sys.argv:
        return
    X, _, _ = make_gaussian_mixture(200_000, 8, 8, "full", separation=3.0, random_state=0)
    t0 = time.perf_counter()
    g = fastvem.GaussianMixture(8, method="gibbs", random_state=0).fit(X)
    print(f"200,000 x 8, K=8 full: {time.perf_counter() - t0:.1f} s, converged_ {g.converged_}, "
          f"worst R-hat {g.rhat_:.4f}, least ESS {g.ess_:.0f}, log joint per chain "
          f"{np.round(g.log_joint_[:, -1], 4)}")


if __name__ == "__main__":
    main()
