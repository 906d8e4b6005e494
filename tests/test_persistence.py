"""Persistence: pickle, and the pickle-free ``est.save(path)`` / ``fastvem.load(path)``."""
import json
import pickle
import warnings
import zipfile

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

import fastvem
from fastvem import GaussianMixture
from fastvem.datasets import load_old_faithful
from fastvem.io import FORMAT_VERSION

COV_TYPES = ("full", "tied", "diag", "spherical")
ARRAYS = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")


@pytest.fixture(scope="module")
def X():
    return load_old_faithful()[0]


@pytest.fixture(scope="module")
def models(X):
    """One fitted model per covariance type, with non-default parameters."""
    out = {}
    for ct in COV_TYPES:
        out[ct] = GaussianMixture(3, covariance_type=ct, n_init=2, tol=1e-4, reg_covar=1e-5,
                                  random_state=0, method="em", n_threads=1).fit(X)
    return out


def _fitted_attrs(est):
    return {k: v for k, v in vars(est).items() if k.endswith("_") and not k.startswith("_")}


def _assert_same_model(a, b, X):
    assert type(b) is type(a)
    pa, pb = a.get_params(), b.get_params()
    assert sorted(pb) == sorted(pa)
    for key, value in pa.items():
        if isinstance(value, (list, tuple, np.ndarray)):
            np.testing.assert_array_equal(pb[key], value, err_msg=key)
        else:
            assert type(pb[key]) is type(value) and pb[key] == value, key
    fa, fb = _fitted_attrs(a), _fitted_attrs(b)
    assert sorted(fb) == sorted(fa)
    for name, va in fa.items():
        vb = fb[name]
        if name == "trace_":
            assert sorted(vb) == sorted(va)
            np.testing.assert_array_equal(vb["objective"], va["objective"])
            np.testing.assert_array_equal(vb["seconds"], va["seconds"])
            assert list(vb["events"]) == list(va["events"])
        elif isinstance(va, np.ndarray):
            assert isinstance(vb, np.ndarray), name
            assert vb.dtype == va.dtype and vb.shape == va.shape, name
            np.testing.assert_array_equal(vb, va, err_msg=name)
        else:
            assert type(vb) is type(va), (name, type(va), type(vb))
            assert vb == va, name
    np.testing.assert_array_equal(b.predict(X), a.predict(X))
    np.testing.assert_array_equal(b.predict_proba(X), a.predict_proba(X))
    np.testing.assert_array_equal(b.score_samples(X), a.score_samples(X))


# ------------------------------------------------------------------ pickle
@pytest.mark.parametrize("ct", COV_TYPES)
def test_pickle_round_trip(X, models, ct):
    est = models[ct]
    again = pickle.loads(pickle.dumps(est))
    _assert_same_model(est, again, X)


def test_pickle_unfitted_then_fit(X):
    est = pickle.loads(pickle.dumps(GaussianMixture(2, random_state=0)))
    ref = GaussianMixture(2, random_state=0).fit(X)
    np.testing.assert_array_equal(est.fit(X).means_, ref.means_)


# --------------------------------------------------------------- save/load
@pytest.mark.parametrize("ct", COV_TYPES)
def test_save_load_round_trip(X, models, ct, tmp_path):
    est = models[ct]
    path = tmp_path / f"gm_{ct}.npz"
    est.save(path)
    loaded = fastvem.load(path)
    _assert_same_model(est, loaded, X)
    # trace kept, with one entry per iteration
    assert len(loaded.trace_["objective"]) == loaded.n_iter_ > 0
    assert loaded.lower_bounds_ == est.lower_bounds_
    np.testing.assert_array_equal(loaded.lower_bounds_, loaded.trace_["objective"])
    assert isinstance(loaded.lower_bounds_, list)
    # the file is readable without pickle
    with np.load(path, allow_pickle=False) as data:
        assert "__meta__" in data.files


def test_save_load_accepts_str_path(X, models, tmp_path):
    path = str(tmp_path / "model.npz")
    models["full"].save(path)
    np.testing.assert_array_equal(fastvem.load(path).predict(X), models["full"].predict(X))


def test_save_load_float32_and_init_arrays(X, tmp_path):
    X32 = X.astype(np.float32)
    est = GaussianMixture(2, covariance_type="diag", weights_init=[0.4, 0.6],
                          means_init=[[2.0, 55.0], [4.5, 80.0]],
                          precisions_init=np.full((2, 2), 0.1), random_state=0).fit(X32)
    path = tmp_path / "f32.npz"
    est.save(path)
    loaded = fastvem.load(path)
    _assert_same_model(est, loaded, X32)
    assert loaded.means_.dtype == np.float32
    np.testing.assert_array_equal(loaded.means_init, est.means_init)
    np.testing.assert_array_equal(loaded.weights_init, est.weights_init)
    # the loaded estimator can be refitted and gives the same fit
    np.testing.assert_array_equal(loaded.fit(X32).means_, est.means_)


@pytest.mark.parametrize("method", ["crisp", "vem"])
def test_save_load_keeps_trace_events(tmp_path, method):
    rng = np.random.default_rng(0)
    Xe = np.r_[rng.normal(0.0, 0.01, (100, 2)), rng.normal(10.0, 0.01, (100, 2))]
    est = GaussianMixture(5, method=method, random_state=0,
                          means_init=[[0, 0], [10, 10], [100, 100], [-100, 50], [50, -100]]
                          ).fit(Xe)
    assert len(est.trace_["events"]) > 0          # the scenario really re-seeds
    path = tmp_path / "events.npz"
    est.save(path)
    loaded = fastvem.load(path)
    _assert_same_model(est, loaded, Xe)
    it, text = loaded.trace_["events"][0]
    assert isinstance(it, int) and "re-seeded" in text


def test_loaded_model_warm_start(X, tmp_path):
    est = GaussianMixture(2, warm_start=True, random_state=0, max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X)
        path = tmp_path / "warm.npz"
        est.save(path)
        loaded = fastvem.load(path)
        cont_a = est.fit(X).means_.copy()
        cont_b = loaded.fit(X).means_
    np.testing.assert_array_equal(cont_b, cont_a)


def test_save_before_fit(tmp_path):
    path = tmp_path / "unfitted.npz"
    with pytest.raises(NotFittedError):
        GaussianMixture(2).save(path)
    assert not path.exists()


# --------------------------------------------------------- foreign files
@pytest.fixture
def saved(models, tmp_path):
    path = tmp_path / "good.npz"
    models["full"].save(path)
    return path


@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.9, 0.99])
def test_truncated_file(saved, tmp_path, keep):
    raw = saved.read_bytes()
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(raw[:int(len(raw) * keep)])
    with pytest.raises(ValueError, match="truncated.npz"):
        fastvem.load(bad)


@pytest.mark.parametrize("where", [0.25, 0.5, 0.75])
def test_corrupted_file(saved, tmp_path, where):
    raw = bytearray(saved.read_bytes())
    pos = int(len(raw) * where)
    raw[pos:pos + 32] = bytes((b ^ 0xFF) for b in raw[pos:pos + 32])
    bad = tmp_path / "corrupted.npz"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="corrupted.npz"):
        fastvem.load(bad)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_bytes_file(tmp_path, seed):
    bad = tmp_path / "random.npz"
    bad.write_bytes(np.random.default_rng(seed).bytes(4096))
    with pytest.raises(ValueError, match="random.npz"):
        fastvem.load(bad)


def test_text_file(tmp_path):
    bad = tmp_path / "model.npz"
    bad.write_text("weights_ = [0.5, 0.5]\n")
    with pytest.raises(ValueError):
        fastvem.load(bad)


def test_npy_file(tmp_path):
    """A valid NumPy file that is not an .npz archive is a foreign file."""
    bad = tmp_path / "array.npy"
    np.save(bad, np.arange(3.0))
    with pytest.raises(ValueError, match="array.npy"):
        fastvem.load(bad)


def test_npz_without_metadata(tmp_path):
    bad = tmp_path / "plain.npz"
    np.savez(bad, weights_=np.ones(2) / 2)
    with pytest.raises(ValueError, match="metadata"):
        fastvem.load(bad)


def test_object_array_is_not_unpickled(tmp_path):
    bad = tmp_path / "pickled.npz"
    np.savez(bad, __meta__=np.array([{"format": "fastvem-model"}], dtype=object))
    with pytest.raises(ValueError):
        fastvem.load(bad)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        fastvem.load(tmp_path / "nope.npz")


def _read_archive(path):
    with np.load(path, allow_pickle=False) as data:
        files = {k: data[k] for k in data.files}
    return json.loads(str(files["__meta__"])), files


def _write_archive(path, meta, files):
    files = dict(files)
    files["__meta__"] = np.array(json.dumps(meta))
    np.savez(path, **files)


def test_newer_format_version_minimal(tmp_path):
    path = tmp_path / "future.npz"
    meta = {"format": "fastvem-model", "version": 999, "class": "GaussianMixture",
            "params": {"n_components": 2}}
    np.savez(path, __meta__=np.array(json.dumps(meta)), attr__weights_=np.ones(2) / 2)
    with pytest.raises(ValueError, match="999"):
        fastvem.load(path)


def test_newer_format_version_of_a_real_model(saved, tmp_path):
    meta, files = _read_archive(saved)
    assert meta["version"] == FORMAT_VERSION
    meta["version"] = 999
    path = tmp_path / "future.npz"
    _write_archive(path, meta, files)
    with pytest.raises(ValueError, match=r"version 999"):
        fastvem.load(path)
    # control: the same archive with the current version loads
    meta["version"] = FORMAT_VERSION
    _write_archive(path, meta, files)
    assert isinstance(fastvem.load(path), GaussianMixture)


@pytest.mark.parametrize("change,match", [
    ({"version": 0}, "version"),
    ({"version": "1"}, "version"),
    ({"format": "other-model"}, "format"),
    ({"class": "KMeans"}, "KMeans"),
    ({"params": {"n_components": 2, "no_such_param": 1}}, "no_such_param"),
    ({"params": [1, 2]}, "metadata|params"),
])
def test_bad_metadata(saved, tmp_path, change, match):
    meta, files = _read_archive(saved)
    meta.update(change)
    path = tmp_path / "badmeta.npz"
    _write_archive(path, meta, files)
    with pytest.raises(ValueError, match=match):
        fastvem.load(path)


@pytest.mark.parametrize("meta_text", ["{not json", "5", "[1, 2]", "null", "{}"])
def test_unreadable_metadata(saved, tmp_path, meta_text):
    _, files = _read_archive(saved)
    files["__meta__"] = np.array(meta_text)
    path = tmp_path / "badjson.npz"
    np.savez(path, **files)
    with pytest.raises(ValueError, match="metadata"):
        fastvem.load(path)


@pytest.mark.parametrize("attr", ARRAYS)
def test_inconsistent_arrays(saved, tmp_path, attr):
    meta, files = _read_archive(saved)
    files["attr__" + attr] = np.concatenate([files["attr__" + attr]] * 2)
    path = tmp_path / "inconsistent.npz"
    _write_archive(path, meta, files)
    with pytest.raises(ValueError, match=attr):
        fastvem.load(path)


@pytest.mark.parametrize("attr", ARRAYS)
def test_missing_arrays(saved, tmp_path, attr):
    meta, files = _read_archive(saved)
    del files["attr__" + attr]
    path = tmp_path / "missing.npz"
    _write_archive(path, meta, files)
    with pytest.raises(ValueError, match=attr):
        fastvem.load(path)


def test_archive_members_are_what_save_wrote(saved):
    """Guard for the tests above: they edit the real member names."""
    with zipfile.ZipFile(saved) as zf:
        names = set(zf.namelist())
    for attr in ARRAYS:
        assert f"attr__{attr}.npy" in names
    assert "__meta__.npy" in names
