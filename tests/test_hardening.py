"""Estimators never predict with a configuration they were not fitted with,
partial_fit continues a fitted or loaded model, a failed fit leaves no half model."""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError

import fastvem
from fastvem.datasets import make_gaussian_mixture
from fastvem.engine import default_n_threads
from fastvem.families.gaussian import GaussianFamily
from fastvem.methods import PRESETS

from conftest import COVARIANCE_TYPES

warnings.simplefilter("ignore")


@pytest.fixture(scope="module")
def data():
    X, _, _ = make_gaussian_mixture(600, 3, 3, "full", separation=3.0, random_state=0)
    return X


@pytest.mark.parametrize("old, new", [("spherical", "tied"), ("diag", "tied"), ("tied", "full"),
                                      ("full", "diag")])
def test_changed_covariance_type_is_refused_after_fit(data, old, new):
    g = fastvem.GaussianMixture(3, covariance_type=old, random_state=0).fit(data)
    g.set_params(covariance_type=new)
    for call in (g.predict, g.predict_proba, g.score_samples, g.score, g.bic, g.aic):
        with pytest.raises(ValueError, match="covariance_type .* refit required"):
            call(data)
    with pytest.raises(ValueError, match="refit required"):
        g.sample(3)
    g.set_params(covariance_type=old)          # back as fitted: predicts again
    assert np.all(np.isfinite(g.predict_proba(data)))


@pytest.mark.parametrize("param, value", [("n_components", 5), ("method", "meanfield"),
                                          ("weight_concentration_prior_type",
                                           "dirichlet_distribution")])
def test_changed_shape_parameters_are_refused(data, param, value):
    g = fastvem.GaussianMixture(3, random_state=0).fit(data)
    g.set_params(**{param: value})
    with pytest.raises(ValueError, match=f"{param} .* refit required"):
        g.predict(data)


def test_lda_changed_n_components_is_refused_not_corrupting():
    X = sp.random(60, 40, density=0.2, random_state=0, format="csr")
    X.data = np.ceil(X.data * 4)
    lda = fastvem.LatentDirichletAllocation(3, max_iter=3, random_state=0).fit(X)
    lda.set_params(n_components=60)
    for call in (lda.transform, lda.score, lda.perplexity):
        with pytest.raises(ValueError, match="n_components was 3 .* refit required"):
            call(X)
    with pytest.raises(ValueError, match="refit required before partial_fit"):
        lda.partial_fit(X)
    lda.set_params(n_components=3, method="vem")
    with pytest.raises(ValueError, match="method was 'meanfield'"):
        lda.transform(X)


@pytest.mark.parametrize("method", ["em", "crisp", "meanfield"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_partial_fit_state_of_a_fitted_model_reproduces_it(data, method, covariance_type):
    """The statistics partial_fit starts from after fit are those of the fitted
    parameters: the method's own update maps them back to the fitted model."""
    g = fastvem.GaussianMixture(3, covariance_type=covariance_type, method=method,
                                random_state=0, max_iter=20).fit(data)
    family = GaussianFamily(covariance_type, g.reg_covar)
    state = g._stream_from_fit(family, PRESETS[method], default_n_threads(1))
    if state["scatter"] is not None:
        family.scatter = state["scatter"]
    back, _ = state["engine"].update(state["stats"])
    np.testing.assert_allclose(back["means"], g.means_, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(back["covariances"], g.covariances_, rtol=1e-9, atol=1e-12)
    if method != "meanfield":
        np.testing.assert_allclose(back["weights"], g.weights_, rtol=1e-9)
    else:
        np.testing.assert_allclose(back["mean_precision"], g.mean_precision_, rtol=1e-9)
        np.testing.assert_allclose(back["degrees_of_freedom"], g.degrees_of_freedom_,
                                   rtol=1e-9)


@pytest.mark.parametrize("method", ["em", "meanfield"])
def test_partial_fit_continues_a_fitted_and_a_loaded_model(data, method, tmp_path):
    g = fastvem.GaussianMixture(3, method=method, random_state=0).fit(data)
    fitted, n_iter = g.means_.copy(), g.n_iter_
    g.partial_fit(data[:200])
    assert g.n_iter_ == n_iter + 1
    # one stepwise step from the fitted model on its own data barely moves it; a
    # restart from the chunk would not be near the fitted model in general
    np.testing.assert_allclose(g.means_, fitted, atol=0.3)
    path = str(tmp_path / "g.npz")
    f = fastvem.GaussianMixture(3, method=method, random_state=0).fit(data)
    f.save(path)
    back = fastvem.load(path)
    back.partial_fit(data[:200])
    np.testing.assert_array_equal(back.means_, g.means_)


def test_partial_fit_refuses_a_changed_configuration(data):
    g = fastvem.GaussianMixture(3, random_state=0).partial_fit(data[:300])
    g.set_params(n_components=4)
    with pytest.raises(ValueError, match="n_components was 3 .* refit required before "
                                         "partial_fit"):
        g.partial_fit(data[300:])
    g.set_params(n_components=3, method="meanfield")
    with pytest.raises(ValueError, match="method was 'em'"):
        g.partial_fit(data[300:])


def test_failed_fit_leaves_the_estimator_unfitted(data):
    g = fastvem.GaussianMixture(3, random_state=0).fit(data)
    bad = data.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        g.fit(bad)
    with pytest.raises(NotFittedError):
        g.predict(data)
    g2 = fastvem.GaussianMixture(3, method="gibbs", n_samples=3, burn_in=1)
    with pytest.raises(ValueError):
        g2.fit(data[:2])              # fewer rows than components
    with pytest.raises(NotFittedError):
        g2.predict(data)
