"""GaussianHMM against statsmodels' MarkovRegression on Hamilton's (1989) US real
GNP growth series (135 quarters, the data of statsmodels' regime-switching
examples), where the two models coincide: a regime-switching mean with one
variance (GaussianHMM 'spherical' / 'tied' in one dimension) or one variance per
regime ('diag'), the chain started from its stationary distribution (statsmodels'
default)."""
import numpy as np
import pytest
from statsmodels.tsa.regime_switching.markov_regression import MarkovRegression
from statsmodels.tsa.regime_switching.tests.test_markov_autoregression import rgnp

from fastvem import GaussianHMM

Y = np.asarray(rgnp, dtype=np.float64)


def _hmm_at(model, params, covariance_type):
    """A GaussianHMM set to a MarkovRegression's parameters."""
    names = model.param_names
    P = model.regime_transition_matrix(params)[:, :, 0]    # P[i, j] = p(s_t = i | s_t-1 = j)
    hmm = GaussianHMM(2, covariance_type=covariance_type, init_params="", params="")
    hmm.startprob_ = model.initial_probabilities(params)
    hmm.transmat_ = P.T
    hmm.means_ = np.array([[params[names.index("const[0]")]],
                           [params[names.index("const[1]")]]])
    if "sigma2" in names:
        s2 = params[names.index("sigma2")]
        hmm.covars_ = np.full(2, s2) if covariance_type == "spherical" else np.array([[s2]])
    else:
        hmm.covars_ = np.array([[params[names.index("sigma2[0]")]],
                                [params[names.index("sigma2[1]")]]])
    return hmm


@pytest.mark.parametrize("switching_variance, covariance_type",
                         [(False, "spherical"), (False, "tied"), (True, "diag")])
def test_loglikelihood_and_smoothed_probabilities_equal_statsmodels(switching_variance,
                                                                    covariance_type):
    model = MarkovRegression(Y, k_regimes=2, switching_variance=switching_variance)
    res = model.fit(disp=False)
    rs = np.random.RandomState(0)
    checks = [res.params]
    for _ in range(3):          # and at other parameters: the likelihood, not the optimum
        p = np.array(res.params, dtype=np.float64)
        p[:2] = rs.uniform(0.05, 0.95, 2)
        p[2:] += rs.normal(0, 0.3, len(p) - 2)
        p[-1] = abs(p[-1]) + 0.1
        if switching_variance:
            p[-2] = abs(p[-2]) + 0.1
        checks.append(p)
    X = Y[:, None]
    for p in checks:
        hmm = _hmm_at(model, p, covariance_type)
        ll, post = hmm.score_samples(X)
        assert ll == pytest.approx(model.loglike(p), rel=1e-10, abs=1e-10)
    # the smoothed regime probabilities (Kim's smoother, exact without lags)
    hmm = _hmm_at(model, res.params, covariance_type)
    np.testing.assert_allclose(hmm.predict_proba(X), res.smoothed_marginal_probabilities,
                               atol=1e-9)
    assert hmm.score(X) == pytest.approx(res.llf, rel=1e-10)


def test_em_from_statsmodels_optimum_does_not_lose_likelihood():
    # GaussianHMM frees the start distribution (statsmodels ties it to the stationary
    # one), so em from statsmodels' optimum can only gain
    model = MarkovRegression(Y, k_regimes=2, switching_variance=True)
    res = model.fit(disp=False)
    hmm = _hmm_at(model, res.params, "diag")
    hmm.set_params(params="stmc", n_iter=50, tol=1e-10, min_covar=1e-12, covars_prior=0,
                   covars_weight=0)
    hmm.fit(Y[:, None])
    hist = np.asarray(hmm.monitor_.history)
    assert hist[0] == pytest.approx(res.llf, rel=1e-10)
    assert np.all(np.diff(hist) >= -1e-9) and hist[-1] >= res.llf
    # the regimes stay those statsmodels found (recession: the low mean)
    assert hmm.means_[0, 0] < 0 < hmm.means_[1, 0]
