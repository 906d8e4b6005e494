"""fastvem.Mixture saves and loads without pickle: a built-in family (by name, as
an object, or a Product of them) is stored as its JSON state (the constructor's
arguments and what it learnt at fit), read back with every field checked."""
import json
import warnings

import numpy as np
import pytest

import fastvem
from fastvem.families import GaussianDiag, Product
from fastvem.families.state import dumps, family_from_state, loads

RNG = np.random.default_rng(4)
X = RNG.normal(size=(150, 3)) + np.repeat([[0, 0, 0], [4, 1, -2], [0, 5, 3]], 50, axis=0)
DATA = {
    "bernoulli": (X > 1).astype(float),
    "poisson": RNG.poisson(3.0, (150, 3)).astype(float),
    "categorical": RNG.integers(0, [3, 2, 4], (150, 3)),
    "multinomial": RNG.poisson(1.0, (150, 6)).astype(float),
    "gaussian": X, "gaussian_diag": X, "gaussian_tied": X, "gaussian_spherical": X,
}
X_MIXED = np.column_stack([X[:, :2], DATA["categorical"][:, 0], DATA["poisson"][:, 0]])


def _product():
    return Product([(GaussianDiag(2, reg_covar=1e-4), [0, 1]), ("categorical", [2]),
                    ("poisson", [3])])


def _fit(family, data, method):
    kw = dict(n_samples=8, burn_in=4) if method == "gibbs" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fastvem.Mixture(family, 3, method=method, max_iter=6, random_state=0,
                               n_threads=1, **kw).fit(data)


def _same_predictions(a, b, data):
    for what in ("predict_proba", "score_samples", "predict"):
        np.testing.assert_array_equal(getattr(b, what)(data), getattr(a, what)(data))
    assert b.bic(data) == a.bic(data)


@pytest.mark.parametrize("name", sorted(DATA))
@pytest.mark.parametrize("method", ["em", "meanfield", "gibbs"])
def test_builtin_family_round_trip_is_bitwise(name, method, tmp_path):
    est = _fit(name, DATA[name], method)
    est.save(tmp_path / "m.npz")
    back = fastvem.load(tmp_path / "m.npz")
    assert back.get_params() == est.get_params()
    assert type(back.family_) is type(est.family_)
    np.testing.assert_array_equal(back.params_, est.params_)
    _same_predictions(est, back, DATA[name])


@pytest.mark.parametrize("method", ["em", "meanfield"])
def test_product_round_trip_and_partial_fit(method, tmp_path):
    est = _fit(_product(), X_MIXED, method)
    est.save(tmp_path / "m.npz")
    back = fastvem.load(tmp_path / "m.npz")
    assert isinstance(back.family, Product) and isinstance(back.family_, Product)
    assert [type(f) for f, _ in back.family_.parts] == [type(f) for f, _ in est.family_.parts]
    assert back.family_.parts[0][0].reg_covar == 1e-4
    _same_predictions(est, back, X_MIXED)
    # a loaded model continues partial_fit as the fitted one does (em: exactly)
    if method == "em":
        np.testing.assert_array_equal(back.partial_fit(X_MIXED[:50]).params_,
                                      est.partial_fit(X_MIXED[:50]).params_)


def test_a_user_exponential_family_is_refused_with_the_reason(tmp_path):
    pytest.importorskip("numba")
    from fastvem.families.numba_family import example_poisson
    est = _fit(example_poisson(), DATA["poisson"], "em")
    with pytest.raises(TypeError, match="pickle"):
        est.save(tmp_path / "m.npz")


def _state(name="gaussian_diag"):
    return json.loads(dumps(_fit(name, DATA[name], "em").family_))


@pytest.mark.parametrize("edit, match", [
    (lambda s: s.update({"class": "ExponentialFamily"}), "unknown family class"),
    (lambda s: s.update({"class": "os.system"}), "unknown family class"),
    (lambda s: s["init"].pop("reg_covar"), "arguments must be"),
    (lambda s: s["init"].update({"reg_covar": -1.0}), "refused its arguments"),
    (lambda s: s["init"].update({"n_features": "three"}), "n_features"),
    (lambda s: s["fitted"].update({"ref": {"array": [0.0, 1.0], "dtype": "<f8"}}),
     "reference point"),
    (lambda s: s["fitted"].update({"ref": {"array": [0.0, 1.0, float("nan")],
                                           "dtype": "<f8"}}), "non-finite"),
    (lambda s: s["fitted"].update({"ref": {"array": [0.0, 1.0, 2.0], "dtype": "|O"}}),
     "dtype"),
    (lambda s: s["fitted"].pop("ref"), "reference point is missing"),
    (lambda s: s["fitted"].update({"features": "csr_float64"}), "unexpected fitted"),
    (lambda s: s.pop("fitted"), "saved state"),
])
def test_corrupted_family_states_are_refused(edit, match):
    state = _state()
    edit(state)
    with pytest.raises(ValueError, match=match):
        loads(json.dumps(state), "family_", fitted=True)


def test_corrupted_product_states_are_refused():
    good = json.loads(dumps(_fit(_product(), X_MIXED, "em").family_))
    family_from_state(good)                               # the untouched state loads
    bad = json.loads(json.dumps(good))
    bad["fitted"]["parts"][1][1] = {"array": [3], "dtype": "<i8"}
    with pytest.raises(ValueError, match="columns differ"):
        family_from_state(bad, "family_")
    bad = json.loads(json.dumps(good))
    bad["fitted"]["parts"][2][0]["family"]["class"] = "Bernoulli"
    bad["fitted"]["parts"][2][0]["family"]["init"] = {"n_features": 1, "alpha": 1.0,
                                                      "binarize": None, "packed": False}
    with pytest.raises(ValueError, match="poisson"):
        family_from_state(bad, "family_")
    bad = json.loads(json.dumps(good))
    bad["fitted"]["n_features"] = 9
    with pytest.raises(ValueError, match="columns"):
        family_from_state(bad, "family_")
    nested = {"class": "Product", "init": {"members": [[{"family": good}, [0]]]},
              "fitted": {}}
    with pytest.raises(ValueError, match="family_"):
        family_from_state(nested, "family_")
    with pytest.raises(ValueError, match="not JSON"):
        loads("{not json", "family_")


def test_a_loaded_file_with_a_corrupted_family_names_it(tmp_path):
    est = _fit("gaussian_diag", DATA["gaussian_diag"], "em")
    est.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:
        files = {k: f[k] for k in f.files}
    state = json.loads(str(files["attr__family_"]))
    state["fitted"]["ref"]["array"] = [1.0]
    files["attr__family_"] = np.array(json.dumps(state))
    np.savez(tmp_path / "bad.npz", **files)
    with pytest.raises(ValueError, match="family_"):
        fastvem.load(tmp_path / "bad.npz")


# ------------------------------------------------- HMM(family object) likewise
def _hmm_data():
    rng = np.random.default_rng(5)
    z = np.repeat(rng.integers(0, 2, 40), 10)
    X = np.column_stack([rng.normal(size=(400, 2)) + 3 * z[:, None], rng.integers(0, 3, 400),
                         rng.poisson(2 + 3 * z)]).astype(np.float64)
    return X, [100] * 4


@pytest.mark.parametrize("method", ["em", "meanfield", "gibbs"])
@pytest.mark.parametrize("kind", ["product", "gaussian_diag_object"])
def test_hmm_over_a_family_object_round_trip(kind, method, tmp_path):
    X, lengths = _hmm_data()
    family = (Product([("gaussian_diag", [0, 1]), ("categorical", [2]), ("poisson", [3])])
              if kind == "product" else GaussianDiag(4, reg_covar=1e-3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = fastvem.HMM(family, 2, method=method, n_iter=5, random_state=0).fit(X, lengths)
    est.save(tmp_path / "h.npz")
    back = fastvem.load(tmp_path / "h.npz")
    assert type(back.family) is type(family)
    np.testing.assert_array_equal(back.theta_, est.theta_)
    np.testing.assert_array_equal(back.predict_proba(X, lengths), est.predict_proba(X, lengths))
    assert back.score(X, lengths) == est.score(X, lengths)
    np.testing.assert_array_equal(back.decode(X, lengths)[1], est.decode(X, lengths)[1])


def test_hmm_family_state_corruption_is_refused(tmp_path):
    X, lengths = _hmm_data()
    est = fastvem.HMM(GaussianDiag(4), 2, n_iter=3, random_state=0).fit(X, lengths)
    est.save(tmp_path / "h.npz")
    with np.load(tmp_path / "h.npz", allow_pickle=False) as f:
        files = {k: f[k] for k in f.files}
    for edit in (lambda s: s["fitted"].pop("ref"),
                 lambda s: s["init"].update({"n_features": 3}),
                 lambda s: s.update({"class": "Poisson"})):
        state = json.loads(str(files["attr__family_state_"]))
        edit(state)
        bad = dict(files, attr__family_state_=np.array(json.dumps(state)))
        np.savez(tmp_path / "bad.npz", **bad)
        with pytest.raises(ValueError, match="family_state_"):
            fastvem.load(tmp_path / "bad.npz")
    bad = dict(files)
    del bad["attr__family_state_"]
    np.savez(tmp_path / "bad.npz", **bad)
    with pytest.raises(ValueError, match="family_state_"):
        fastvem.load(tmp_path / "bad.npz")


# ----------------------------------- hostile states (found by a review of this code)
def _saved(est, tmp_path):
    est.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _load_edited(files, key, edit, tmp_path):
    state = json.loads(str(files[key]))
    edit(state)
    np.savez(tmp_path / "bad.npz", **dict(files, **{key: np.array(json.dumps(state))}))
    return fastvem.load(tmp_path / "bad.npz")


def _nest(depth):
    v = 1.0
    for _ in range(depth):
        v = [v]
    return v


@pytest.mark.parametrize("edit, match", [
    (lambda s: s["fitted"].update({"ref": {"array": [1e300] * 3, "dtype": "<f8"}}),
     "kernels support"),
    (lambda s: s["init"].update({"reference": 5.0}), "differs from its reference"),
    (lambda s: s["init"].update({"reference": "abc"}), "reference"),
    (lambda s: s["init"].update({"reference": [1.0, 2.0]}), "reference"),
    (lambda s: s["init"].update({"mean_prior": _nest(900)}), "nested too deeply"),
    (lambda s: s["init"].update({"degrees_of_freedom_prior": [1, [2]]}),
     "degrees_of_freedom_prior"),
    (lambda s: s["init"].update({"covariance_prior": [[1.0, 0.0], [0.0, 1.0]]}),
     "covariance_prior"),
    (lambda s: s["init"].update({"n_features": 3.7}), "n_features"),
    (lambda s: s["init"].update({"n_features": True}), "n_features"),
    (lambda s: s["init"].update({"n_features": 10 ** 15}), "n_features"),
])
def test_hostile_gaussian_states_are_refused(edit, match, tmp_path):
    files = _saved(_fit("gaussian_diag", DATA["gaussian_diag"], "em"), tmp_path)
    with pytest.raises(ValueError, match=match):
        _load_edited(files, "attr__family_", edit, tmp_path)


def test_hostile_product_and_categorical_states_are_refused(tmp_path):
    files = _saved(_fit(_product(), X_MIXED, "em"), tmp_path)
    for edit, match in [
            (lambda s: s["fitted"].update({"n_features": 10 ** 15}), "n_features"),
            (lambda s: s["fitted"].update({"n_features": 9}), "n_features"),
            (lambda s: s["fitted"]["parts"][2][0]["family"].update(
                {"class": "Bernoulli", "init": {"n_features": 1, "alpha": 1.0,
                                                "binarize": None, "packed": True}}),
             "sparse form"),
            (lambda s: s["fitted"]["parts"][1][0]["family"]["init"].update(
                {"n_categories": [10 ** 30]}), "n_categories"),
            (lambda s: s["fitted"]["parts"][1][0]["family"]["init"].update(
                {"n_categories": [0]}), "n_categories")]:
        with pytest.raises(ValueError, match=match):
            _load_edited(files, "attr__family_", edit, tmp_path)
    text = str(files["attr__family_"]).replace('"n_features": 4}', '"n_features": Infinity}')
    np.savez(tmp_path / "bad.npz", **dict(files, attr__family_=np.array(text)))
    with pytest.raises(ValueError, match="n_features"):
        fastvem.load(tmp_path / "bad.npz")


@pytest.mark.parametrize("name, method", [("gaussian_tied", "em"), ("gaussian_tied", "meanfield"),
                                          ("gaussian_spherical", "em")])
def test_tied_and_spherical_structure_is_checked_on_load(name, method, tmp_path):
    """A tied model's components share one covariance, a spherical one's features one
    variance: a file where they differ is refused (a gibbs summary, an average over
    draws, is not held to it and loads)."""
    from fastvem.families.normal import GaussianDiag as Diag, GaussianFull as Full
    est = _fit(name, DATA[name], method)
    files = _saved(est, tmp_path)
    fam = est.family_
    bad = dict(files)
    if method == "meanfield":
        post = files["attr__posterior_"].copy()
        D = fam.n_features
        post[0, 1, D + 1] += 1.0                      # component 1's Wishart dof
        bad["attr__posterior_"] = post
    else:
        theta = files["attr__params_"].copy()
        mu, cov = (Full if name == "gaussian_tied" else Diag)._split(fam, theta)
        if name == "gaussian_tied":
            theta[1] = fam._theta(mu[1:2], 9.0 * cov[1:2])[0]
        else:
            theta[1, fam.n_features] += 1.0               # one feature's second moment
        bad["attr__params_"] = theta
    np.savez(tmp_path / "bad.npz", **bad)
    with pytest.raises(ValueError, match="tied|spherical"):
        fastvem.load(tmp_path / "bad.npz")
    gibbs = _fit(name, DATA[name], "gibbs")
    gibbs.save(tmp_path / "g.npz")
    np.testing.assert_array_equal(fastvem.load(tmp_path / "g.npz").predict(DATA[name]),
                                  gibbs.predict(DATA[name]))


def test_gaussian_mixture_s_own_family_is_refused_by_the_row_driver_models():
    from fastvem.families.gaussian import GaussianFamily
    X, lengths = _hmm_data()
    for make in (lambda: fastvem.Mixture(GaussianFamily("full"), 2).fit(X),
                 lambda: fastvem.HMM(GaussianFamily("full"), 2).fit(X, lengths),
                 lambda: Product([(GaussianFamily("full"), [0, 1]), ("poisson", [2, 3])])):
        with pytest.raises(ValueError, match="GaussianFamily"):
            make()


def test_the_fitted_family_must_match_the_family_parameter(tmp_path):
    files = _saved(_fit("poisson", DATA["poisson"], "em"), tmp_path)
    bernoulli = {"class": "Bernoulli", "init": {"n_features": 3, "alpha": 1.0, "binarize": None,
                                                "packed": True}, "fitted": {}}
    np.savez(tmp_path / "bad.npz", **dict(files, attr__family_=np.array(json.dumps(bernoulli))))
    with pytest.raises(ValueError, match="family_ is a Bernoulli"):
        fastvem.load(tmp_path / "bad.npz")
    X, lengths = _hmm_data()
    est = fastvem.HMM(GaussianDiag(4), 2, n_iter=3, random_state=0).fit(X, lengths)
    files = _saved(est, tmp_path)
    state = json.loads(str(files["attr__family_state_"]))
    state["class"] = "GaussianSpherical"
    np.savez(tmp_path / "bad.npz", **dict(files, attr__family_state_=np.array(json.dumps(state))))
    with pytest.raises(ValueError, match="family_state_ is a GaussianSpherical"):
        fastvem.load(tmp_path / "bad.npz")


# --------------------------------- a second review's findings (mean field, parameters)
def _meta_edit(files, **params):
    meta = json.loads(str(files["__meta__"]))
    meta["params"].update(params)
    return dict(files, __meta__=np.array(json.dumps(meta)))


@pytest.mark.parametrize("name", ["bernoulli", "categorical", "gaussian_diag"])
def test_mean_field_files_are_checked_against_what_predictions_read(name, tmp_path):
    """q's magnitudes, and the fitted weights_ / params_ as q's means: a file where
    they disagree would predict by q and score by the point parameters."""
    est = _fit(name, DATA[name], "meanfield")
    files = _saved(est, tmp_path)
    post = files["attr__posterior_"]
    edits = {
        "weights reversed": dict(attr__weights_=files["attr__weights_"][::-1].copy()),
        "huge concentration": dict(attr__weight_concentration_=np.full(3, 1e308)),
        "huge posterior": dict(attr__posterior_=np.where(post > 0, 1e300, post)),
        "params moved": dict(attr__params_=files["attr__params_"] * 0.9),
    }
    for what, edit in edits.items():
        np.savez(tmp_path / "bad.npz", **dict(files, **edit))
        with pytest.raises(ValueError):
            fastvem.load(tmp_path / "bad.npz")


@pytest.mark.parametrize("param, value", [("n_threads", "x"), ("n_threads", -5),
                                          ("random_state", "a"), ("tol", -1.0),
                                          ("init_params", "bad"), ("n_components", 2.0)])
def test_discrete_mixture_files_check_their_constructor_parameters(param, value, tmp_path):
    files = _saved(fastvem.PoissonMixture(3, random_state=0, max_iter=5).fit(DATA["poisson"]),
                   tmp_path)
    np.savez(tmp_path / "bad.npz", **_meta_edit(files, **{param: value}))
    with pytest.raises(ValueError, match="constructor parameter|random_state"):
        fastvem.load(tmp_path / "bad.npz")


def test_pickling_an_hmm_leaves_its_stream_alone():
    import pickle
    X, lengths = _hmm_data()
    m = fastvem.HMM(GaussianDiag(4), 2, random_state=0).partial_fit(X, lengths)
    assert "_stream" in vars(m)
    pickle.dumps(m)
    assert "_stream" in vars(m)


@pytest.mark.parametrize("family", ["gaussian_diag", "gaussian", "poisson", "product"])
def test_a_loaded_mean_field_mixture_continues_with_its_fitted_prior(family, tmp_path):
    """The prior mean field fitted with (from the data, for Gaussians and Poisson) is
    saved (family_prior_), so partial_fit after load continues as the fitted model."""
    fam, data = (_product(), X_MIXED) if family == "product" else (family, DATA[family])
    est = _fit(fam, data, "meanfield")
    est.save(tmp_path / "m.npz")
    back = fastvem.load(tmp_path / "m.npz")
    chunk = data[::3]
    est.partial_fit(chunk)
    back.partial_fit(chunk)
    np.testing.assert_allclose(back.params_, est.params_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(back.weights_, est.weights_, rtol=1e-9)


def test_a_corrupted_saved_prior_is_refused(tmp_path):
    files = _saved(_fit("gaussian_diag", DATA["gaussian_diag"], "meanfield"), tmp_path)
    prior = json.loads(str(files["attr__family_prior_"]))
    for bad in ([], [prior[0], prior[1]], [prior[0], -1.0, prior[2], prior[3]], "x",
                [prior[0], float("nan"), prior[2], prior[3]]):
        text = json.dumps(bad)
        np.savez(tmp_path / "bad.npz", **dict(files, attr__family_prior_=np.array(text)))
        with pytest.raises(ValueError, match="family_prior_"):
            fastvem.load(tmp_path / "bad.npz")
