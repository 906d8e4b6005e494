"""Small real data sets shipped with fastvem, and seeded synthetic generators."""
import os

import numpy as np

__all__ = ["load_old_faithful", "make_gaussian_mixture"]

_HERE = os.path.dirname(os.path.abspath(__file__))


def load_old_faithful():
    """Old Faithful geyser eruptions (272 x 2): eruption time and waiting time
    in minutes (Haerdle 1991, as in R's `datasets::faithful`).

    Returns (X, feature_names)."""
    path = os.path.join(_HERE, "old_faithful.csv")
    with open(path) as fh:
        names = fh.readline().strip().split(",")
    X = np.loadtxt(path, delimiter=",", skiprows=1)
    return X, names


def make_gaussian_mixture(n_samples, n_features, n_components, covariance_type="full",
                          separation=4.0, random_state=0, dtype=np.float64):
    """Seeded synthetic data from a Gaussian mixture with known parameters.

    Returns (X, labels, truth) where truth has 'weights', 'means', 'covariances'
    in scikit-learn's layout for `covariance_type`."""
    rng = np.random.default_rng(random_state)
    K, D = n_components, n_features
    weights = rng.dirichlet(np.full(K, 5.0))
    means = rng.normal(scale=separation, size=(K, D))
    if covariance_type == "full":
        A = rng.normal(size=(K, D, D)) / np.sqrt(D)
        covs = A @ A.transpose(0, 2, 1) + 0.5 * np.eye(D)
        chol = np.linalg.cholesky(covs)
    elif covariance_type == "tied":
        A = rng.normal(size=(D, D)) / np.sqrt(D)
        covs = A @ A.T + 0.5 * np.eye(D)
        chol = np.broadcast_to(np.linalg.cholesky(covs), (K, D, D))
    elif covariance_type == "diag":
        covs = rng.uniform(0.5, 2.0, size=(K, D))
        chol = np.sqrt(covs)[:, None, :] * np.eye(D)
    elif covariance_type == "spherical":
        covs = rng.uniform(0.5, 2.0, size=K)
        chol = np.sqrt(covs)[:, None, None] * np.eye(D)
    else:
        raise ValueError(f"unknown covariance_type {covariance_type!r}")
    labels = rng.choice(K, size=n_samples, p=weights)
    X = np.empty((n_samples, D), dtype=dtype)
    step = 1 << 18
    for s in range(0, n_samples, step):
        lab = labels[s:s + step]
        z = rng.standard_normal(size=(len(lab), D))
        X[s:s + step] = means[lab] + np.einsum("nij,nj->ni", chol[lab], z)
    return X, labels, {"weights": weights, "means": means, "covariances": covs}
