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
    (lambda s: s["init"].update({"n_features": "three"}), "refused its arguments"),
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
