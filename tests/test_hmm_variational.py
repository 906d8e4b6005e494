"""fastvem.VariationalGaussianHMM / VariationalCategoricalHMM (mean field under
hmmlearn's names) against hmmlearn 0.3's: the lower bound (monitor_.history)
iterate for iterate from the same start, the posteriors, predictions, hmmlearn's
own default start, monotonicity of the bound, and save / load."""
import logging
import warnings

import numpy as np
import pytest

import fastvem

vhmm = pytest.importorskip("hmmlearn.vhmm")
logging.getLogger("hmmlearn").setLevel(logging.ERROR)

K = 3
LENGTHS = [30, 1, 50, 7, 12, 2]
N = sum(LENGTHS)
_rng = np.random.default_rng(0)
_z = np.repeat(np.arange(K), N // K + 1)[:N]
X = _rng.normal(size=(N, 2)) + 3.0 * _z[:, None] + 10.0
C = np.where(_z == 0, _rng.integers(0, 2, N), _rng.integers(1, 5, N))[:, None]


def close(a, b, rtol=1e-9, what=""):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (what, a.shape, b.shape)
    assert np.max(np.abs(a - b)) <= rtol * max(np.max(np.abs(b)), 1.0), (
        what, np.max(np.abs(a - b)))


def _gaussian_start(ct, seed=1):
    """Initial posteriors (hmmlearn's attribute names and shapes) and priors."""
    r = np.random.RandomState(seed)
    post = dict(startprob_posterior_=r.dirichlet(np.ones(K)) * 6,
                transmat_posterior_=r.dirichlet(np.ones(K), size=K) * 30,
                means_posterior_=X[r.choice(N, K, replace=False)],
                beta_posterior_=r.uniform(5, 20, K))
    nu = r.uniform(5, 20, K)
    cv = np.cov(X.T)
    if ct == "tied":
        post.update(dof_posterior_=float(nu.sum()), scale_posterior_=cv * nu.sum())
    else:
        post.update(dof_posterior_=nu, scale_posterior_={
            "full": cv[None] * nu[:, None, None], "diag": np.diag(cv)[None] * nu[:, None],
            "spherical": cv.mean() * nu}[ct])
    return post


# the priors other than hmmlearn's defaults, shared by every state
PRIORS = dict(startprob_prior=0.7, transmat_prior=2.0, means_prior=[10.0, 12.0],
              beta_prior=0.5, dof_prior=4.0)
SCALE = {"full": np.array([[0.5, 0.1], [0.1, 0.4]]), "tied": np.array([[0.5, 0.1], [0.1, 0.4]]),
         "diag": np.array([0.5, 0.4]), "spherical": 0.3}


def _hmmlearn_priors(ct, priors):
    D = X.shape[1]
    p = dict(startprob_prior_=np.full(K, priors.get("startprob_prior", 1 / K)),
             transmat_prior_=np.full((K, K), priors.get("transmat_prior", 1 / K)),
             means_prior_=np.tile(priors.get("means_prior", X.mean(0)), (K, 1)),
             beta_prior_=np.full(K, priors.get("beta_prior", 1.0)))
    dof = priors.get("dof_prior", float(D))
    p["dof_prior_"] = float(dof) if ct == "tied" else np.full(K, float(dof))
    sc = priors.get("scale_prior")
    if sc is None:
        sc = {"full": np.eye(D) * 1e-3, "tied": np.eye(D) * 1e-3, "diag": np.full(D, 1e-3),
              "spherical": 1e-3}[ct]
    p["scale_prior_"] = sc if ct == "tied" else np.array([sc] * K)
    return p


def _set(m, attrs):
    for k, v in attrs.items():
        setattr(m, k, v if isinstance(v, float) else np.array(v, dtype=np.float64))


@pytest.mark.parametrize("ct", ["full", "diag", "spherical", "tied"])
@pytest.mark.parametrize("priors", [0, 1])
def test_gaussian_bound_equals_hmmlearn(ct, priors):
    kw = {} if priors == 0 else dict(PRIORS, scale_prior=SCALE[ct])
    post = _gaussian_start(ct)
    a = vhmm.VariationalGaussianHMM(K, covariance_type=ct, init_params="", n_iter=15, tol=1e-8)
    _set(a, {**post, **_hmmlearn_priors(ct, kw)})
    b = fastvem.VariationalGaussianHMM(K, covariance_type=ct, init_params="", n_iter=15,
                                       tol=1e-8, **kw)
    _set(b, post)
    a.fit(X, LENGTHS)
    b.fit(X, LENGTHS)
    ha, hb = np.array(a.monitor_.history), np.array(b.monitor_.history)
    assert len(ha) == len(hb) and b.monitor_.converged == a.monitor_.converged
    close(hb, ha, what="lower bound")
    assert np.all(np.diff(hb) >= -1e-9 * np.abs(hb[:-1])), "the bound decreased"
    for name in ("startprob_posterior_", "transmat_posterior_", "means_posterior_",
                 "beta_posterior_", "dof_posterior_", "scale_posterior_", "startprob_prior_",
                 "transmat_prior_", "means_prior_", "beta_prior_", "dof_prior_", "scale_prior_",
                 "startprob_", "transmat_", "means_"):
        close(getattr(b, name), getattr(a, name), what=name)
    close(b._covars_, a._covars_ if ct != "spherical" else a._covars_, what="_covars_")
    close(b.covars_, a.covars_, what="covars_")
    close(b.score(X, LENGTHS), a.score(X, LENGTHS), what="score")
    close(b.predict_proba(X, LENGTHS), a.predict_proba(X, LENGTHS), what="predict_proba")
    assert np.array_equal(b.predict(X, LENGTHS), a.predict(X, LENGTHS))


@pytest.mark.parametrize("priors", [{}, dict(startprob_prior=0.5, transmat_prior=3.0,
                                             emissionprob_prior=0.8)])
def test_categorical_bound_equals_hmmlearn(priors):
    r = np.random.RandomState(2)
    post = dict(startprob_posterior_=r.dirichlet(np.ones(K)) * 6,
                transmat_posterior_=r.dirichlet(np.ones(K), size=K) * 30,
                emissionprob_posterior_=r.dirichlet(np.ones(5), size=K) * 30)
    pri = dict(startprob_prior_=np.full(K, priors.get("startprob_prior", 1 / K)),
               transmat_prior_=np.full((K, K), priors.get("transmat_prior", 1 / K)),
               emissionprob_prior_=np.full((K, 5), priors.get("emissionprob_prior", 1 / 5)))
    a = vhmm.VariationalCategoricalHMM(K, init_params="", n_iter=20, tol=1e-8, n_features=5)
    b = fastvem.VariationalCategoricalHMM(K, init_params="", n_iter=20, tol=1e-8, n_features=5,
                                          **priors)
    _set(a, {**post, **pri})
    _set(b, post)
    a.fit(C, LENGTHS)
    b.fit(C, LENGTHS)
    ha, hb = np.array(a.monitor_.history), np.array(b.monitor_.history)
    assert len(ha) == len(hb)
    close(hb, ha, what="lower bound")
    assert np.all(np.diff(hb) >= -1e-9 * np.abs(hb[:-1]))
    for name in ("startprob_posterior_", "transmat_posterior_", "emissionprob_posterior_",
                 "emissionprob_prior_", "startprob_", "transmat_", "emissionprob_"):
        close(getattr(b, name), getattr(a, name), what=name)
    close(b.score(C, LENGTHS), a.score(C, LENGTHS), what="score")
    close(b.predict_proba(C, LENGTHS), a.predict_proba(C, LENGTHS))


@pytest.mark.parametrize("model", ["full", "diag", "categorical"])
def test_default_start_equals_hmmlearn(model):
    """hmmlearn's own start (its random streams, k-means) for the same random_state."""
    if model == "categorical":
        a = vhmm.VariationalCategoricalHMM(K, random_state=3, n_iter=10).fit(C, LENGTHS)
        b = fastvem.VariationalCategoricalHMM(K, random_state=3, n_iter=10).fit(C, LENGTHS)
    else:
        a = vhmm.VariationalGaussianHMM(K, covariance_type=model, random_state=3,
                                        n_iter=10).fit(X, LENGTHS)
        b = fastvem.VariationalGaussianHMM(K, covariance_type=model, random_state=3,
                                           n_iter=10).fit(X, LENGTHS)
    close(list(b.monitor_.history), list(a.monitor_.history), rtol=1e-8)


def test_refused_options():
    with pytest.raises(NotImplementedError, match="params"):
        fastvem.VariationalGaussianHMM(2, params="stm").fit(X)
    with pytest.raises(NotImplementedError, match="differs between states"):
        fastvem.VariationalGaussianHMM(2, beta_prior=[1.0, 2.0]).fit(X)
    with pytest.raises(ValueError, match="dof_prior"):
        fastvem.VariationalGaussianHMM(2, dof_prior=0.5).fit(X)
    with pytest.raises(ValueError, match="covariance_type"):
        fastvem.VariationalGaussianHMM(2, covariance_type="banana").fit(X)
    assert fastvem.VariationalGaussianHMM().get_params()["n_iter"] == 100
    assert not hasattr(fastvem.VariationalCategoricalHMM(), "startprob_")


@pytest.mark.parametrize("ct", ["full", "diag", "spherical", "tied", "categorical"])
def test_save_load_round_trip(ct, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if ct == "categorical":
            est, data = fastvem.VariationalCategoricalHMM(K, random_state=0, n_iter=5), C
        else:
            est, data = fastvem.VariationalGaussianHMM(K, covariance_type=ct, random_state=0,
                                                       n_iter=5), X
        est.fit(data, LENGTHS)
    est.save(tmp_path / "m.npz")
    back = fastvem.load(tmp_path / "m.npz")
    assert type(back) is type(est)
    np.testing.assert_array_equal(back.predict_proba(data, LENGTHS),
                                  est.predict_proba(data, LENGTHS))
    assert back.score(data, LENGTHS) == est.score(data, LENGTHS)
    assert list(back.monitor_.history) == list(est.monitor_.history)
    names = sorted(k for k in vars(est) if k.endswith("_") and not k.startswith("_"))
    assert names == sorted(k for k in vars(back) if k.endswith("_") and not k.startswith("_"))
    for name in names:
        if name != "trace_":
            np.testing.assert_array_equal(getattr(back, name), getattr(est, name))
    # a corrupted posterior is refused by name
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:
        files = {k: f[k] for k in f.files}
    files["attr__transmat_posterior_"] = -files["attr__transmat_posterior_"]
    np.savez(tmp_path / "bad.npz", **files)
    with pytest.raises(ValueError, match="transmat_posterior_"):
        fastvem.load(tmp_path / "bad.npz")
