"""fastvem.BayesianGaussianMixture: scikit-learn's BayesianGaussianMixture API,
fitted by mean field (q(z) q(pi) q(mu, Lambda)) on fastvem's engine.

The E-step is the em kernel fed the expected-log parameters of q(theta), so it
costs what an em iteration costs."""
from sklearn.utils._available_if import available_if

from ..io import register
from ..methods import PRESETS
from .gaussian_mixture import GaussianMixture

__all__ = ["BayesianGaussianMixture"]


@register
class BayesianGaussianMixture(GaussianMixture):
    """Variational Bayesian Gaussian mixture (method 'meanfield').

    Accepts every constructor parameter of
    :class:`sklearn.mixture.BayesianGaussianMixture` (plus ``n_threads`` and
    ``n_batches``: memoized passes, see GaussianMixture) and exposes the same fitted
    attributes; ``lower_bound_`` and ``lower_bounds_``
    are scikit-learn's total variational lower bound, ``trace_['objective']``
    the same per unit of sample weight.
    """

    def __init__(self, *, n_components=1, covariance_type="full", tol=1e-3, reg_covar=1e-6,
                 max_iter=100, n_init=1, init_params="kmeans",
                 weight_concentration_prior_type="dirichlet_process",
                 weight_concentration_prior=None, mean_precision_prior=None, mean_prior=None,
                 degrees_of_freedom_prior=None, covariance_prior=None, random_state=None,
                 warm_start=False, verbose=0, verbose_interval=10, n_batches=None,
                 n_threads=None):
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
        self.n_batches = n_batches
        self.n_threads = n_threads

    method = "meanfield"      # read-only: the method this estimator runs
    _predictive_t = False     # score_samples as scikit-learn: the expected-log density

    def _method(self):
        return PRESETS["meanfield"]

    def _check_inits(self, n_features):
        return None, None, None

    def _objective_scale(self, total_weight):
        return total_weight

    # no bic / aic, as in scikit-learn: hasattr(est, "bic") is False
    @available_if(lambda self: False)
    def bic(self, X):
        raise AttributeError("BayesianGaussianMixture has no bic (as in scikit-learn)")

    @available_if(lambda self: False)
    def aic(self, X):
        raise AttributeError("BayesianGaussianMixture has no aic (as in scikit-learn)")
