"""fastvem.BayesianGaussianMixture: scikit-learn's BayesianGaussianMixture API,
fitted by mean field (q(z) q(pi) q(mu, Lambda)) on fastvem's engine.

The E-step is the em kernel fed the expected-log parameters of q(theta), so it
costs what an em iteration costs."""
import numbers

import numpy as np

from ..engine import MixtureEngine, default_n_threads
from ..families.gaussian import (GaussianFamily, GaussianWishartPrior, data_scatter,
                                 precisions_from_cholesky)
from ..methods import PRESETS
from ..structures.mixture import DirichletWeights, Mixture
from ._validation import check_array_param
from .gaussian_mixture import GaussianMixture

__all__ = ["BayesianGaussianMixture"]

_FITTED = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_",
           "converged_", "n_iter_", "lower_bound_", "lower_bounds_", "n_features_in_",
           "feature_names_in_", "weight_concentration_prior_", "weight_concentration_",
           "mean_precision_prior_", "mean_precision_", "mean_prior_",
           "degrees_of_freedom_prior_", "degrees_of_freedom_", "covariance_prior_")


class BayesianGaussianMixture(GaussianMixture):
    """Variational Bayesian Gaussian mixture (method 'meanfield').

    Accepts every constructor parameter of
    :class:`sklearn.mixture.BayesianGaussianMixture` (plus ``n_threads``) and
    exposes the same fitted attributes; ``lower_bound_`` and ``lower_bounds_``
    are scikit-learn's total variational lower bound, ``trace_['objective']``
    the same per unit of sample weight.
    """

    _fitted_attributes = _FITTED

    def __init__(self, *, n_components=1, covariance_type="full", tol=1e-3, reg_covar=1e-6,
                 max_iter=100, n_init=1, init_params="kmeans",
                 weight_concentration_prior_type="dirichlet_process",
                 weight_concentration_prior=None, mean_precision_prior=None, mean_prior=None,
                 degrees_of_freedom_prior=None, covariance_prior=None, random_state=None,
                 warm_start=False, verbose=0, verbose_interval=10, n_threads=None):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.n_threads = n_threads

    method = "meanfield"      # read-only: the method this estimator runs

    def _method(self):
        return PRESETS["meanfield"]

    def _check_inits(self, n_features):
        return None, None, None

    def _objective_scale(self, total_weight):
        return total_weight

    # ----------------------------------------------------------------- priors
    def _priors(self, X, sw):
        """Validated priors, scikit-learn's defaults from the data where None."""
        K, D, ct = self.n_components, X.shape[1], self.covariance_type

        def positive(name, default):
            v = getattr(self, name)
            if v is None:
                return float(default)
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
                raise TypeError(f"{name} must be a positive number or None, got {v!r}")
            if not np.isfinite(v) or v <= 0:
                raise ValueError(f"{name} must be positive and finite, got {v}")
            return float(v)

        weights = DirichletWeights(self.weight_concentration_prior_type,
                                   positive("weight_concentration_prior", 1.0 / K))
        beta0 = positive("mean_precision_prior", 1.0)
        total, centre, scatter = data_scatter(X, sw)
        m0 = centre if self.mean_prior is None else check_array_param(
            self.mean_prior, "mean_prior", (D,))
        if self.degrees_of_freedom_prior is None:
            nu0 = float(D)
        else:
            nu0 = positive("degrees_of_freedom_prior", D)
            if nu0 <= D - 1:
                raise ValueError(f"degrees_of_freedom_prior must be greater than {D - 1}, "
                                 f"got {nu0}")
        if self.covariance_prior is None:
            cov = scatter / max(total - 1.0, np.finfo(np.float64).tiny)
            c0 = {"full": cov, "tied": cov, "diag": np.diag(cov).copy(),
                  "spherical": np.diag(cov).mean()}[ct]
        else:
            shape = {"full": (D, D), "tied": (D, D), "diag": (D,), "spherical": ()}[ct]
            c0 = check_array_param(self.covariance_prior, "covariance_prior", shape)
            if ct in ("full", "tied"):
                if not np.allclose(c0, c0.T) or np.linalg.eigvalsh(c0).min() <= 0:
                    raise ValueError("covariance_prior must be symmetric positive definite")
            elif np.any(c0 <= 0):
                raise ValueError("covariance_prior must be positive")
            c0 = c0 if ct != "spherical" else float(c0)
        return weights, GaussianWishartPrior(m0, beta0, nu0, c0)

    def _make_engine(self, family, method, n_threads, seed, X, sw):
        weights, prior = self._priors(X, sw)
        self.weight_concentration_prior_ = weights.alpha0
        self.mean_precision_prior_ = prior.mean_precision_prior
        self.mean_prior_ = prior.mean_prior
        self.degrees_of_freedom_prior_ = prior.degrees_of_freedom_prior
        self.covariance_prior_ = prior.covariance_prior
        return MixtureEngine(family, Mixture(self.n_components), method, n_threads, seed,
                             prior=prior, weight_prior=weights)

    def _initial_params(self, X, sw, family, inits, random_state, n_threads, engine):
        """q(theta) from the initial responsibilities (scikit-learn's _initialize)."""
        stats = self._initial_statistics(X, sw, family, random_state, n_threads)
        q, _ = engine.update(stats)
        return q

    # ------------------------------------------------------------- parameters
    def _weight_prior(self):
        return DirichletWeights(self.weight_concentration_prior_type,
                                self.weight_concentration_prior_)

    def _get_params(self):
        conc = self.weight_concentration_
        if self.weight_concentration_prior_type == "dirichlet_process":
            conc = (np.asarray(conc[0], dtype=np.float64), np.asarray(conc[1], dtype=np.float64))
        else:
            conc = np.asarray(conc, dtype=np.float64)
        return {"weight_concentration": conc,
                "means": np.asarray(self.means_, dtype=np.float64),
                "mean_precision": np.asarray(self.mean_precision_, dtype=np.float64),
                "degrees_of_freedom": np.asarray(self.degrees_of_freedom_, dtype=np.float64),
                "covariances": np.asarray(self.covariances_, dtype=np.float64),
                "precisions_cholesky": np.asarray(self.precisions_cholesky_, dtype=np.float64)}

    def _set_params(self, params, dtype):
        ct = self.covariance_type
        conc = params["weight_concentration"]
        self.weight_concentration_ = conc
        self.weights_ = self._weight_prior().mean_weights(conc).astype(dtype)
        self.mean_precision_ = params["mean_precision"]
        self.degrees_of_freedom_ = params["degrees_of_freedom"]
        self.means_ = params["means"].astype(dtype)
        self.covariances_ = params["covariances"].astype(dtype)
        self.precisions_cholesky_ = params["precisions_cholesky"].astype(dtype)
        self.precisions_ = precisions_from_cholesky(params["precisions_cholesky"], ct).astype(dtype)

    def _engine(self):
        """For predict / score: the E-step under q(theta) (expected-log parameters),
        as scikit-learn's BayesianGaussianMixture."""
        return MixtureEngine(GaussianFamily(self.covariance_type, self.reg_covar),
                             Mixture(self.n_components), PRESETS["meanfield"],
                             default_n_threads(self.n_threads), weight_prior=self._weight_prior())

    def _check_loaded(self):
        super()._check_loaded()
        if self.weight_concentration_prior_type == "dirichlet_process":
            self.weight_concentration_ = tuple(np.asarray(self.weight_concentration_))

    def bic(self, X):
        raise AttributeError("BayesianGaussianMixture has no bic (as in scikit-learn)")

    def aic(self, X):
        raise AttributeError("BayesianGaussianMixture has no aic (as in scikit-learn)")
