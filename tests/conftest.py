import numpy as np
import pytest
from sklearn.datasets import load_digits, load_iris, load_wine

from fastvem.datasets import load_old_faithful, make_gaussian_mixture

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]


def _datasets():
    X_syn, _, _ = make_gaussian_mixture(3000, 4, 3, "full", separation=3.0, random_state=7)
    return {
        "faithful": load_old_faithful()[0],
        "iris": load_iris().data,
        "wine": load_wine().data,
        "digits": load_digits().data[:600],
        "synthetic": X_syn,
    }


@pytest.fixture(scope="session")
def datasets():
    return _datasets()


def sklearn_init(X, K, covariance_type, seed=0, reg_covar=1e-6):
    """Initial parameters (weights, means, precisions) from one sklearn k-means init."""
    from sklearn.mixture import GaussianMixture
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = GaussianMixture(K, covariance_type=covariance_type, max_iter=1, random_state=seed,
                            reg_covar=reg_covar).fit(X)
    return dict(weights_init=g.weights_, means_init=g.means_, precisions_init=g.precisions_)


def max_rel(a, b):
    """Largest absolute difference relative to the largest entry of the reference."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))
