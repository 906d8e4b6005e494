"""save / load of the hidden Markov models (fastvem/models/hmm.py,
fastvem/_load_checks_hmm.py): round trips of every estimator x method whose
predictions are bitwise the same, and corrupted files refused with a ValueError
naming the attribute.  (The sweep of every stored array x every corruption is in
tests/test_load_validation.py, the random one in tests/fuzz_cases.py.)"""
import warnings

import numpy as np
import pytest

import fastvem

METHODS = ("em", "vem", "crisp", "meanfield", "gibbs")
LENGTHS = [40, 1, 25, 54]
_rng = np.random.default_rng(3)
_z = np.repeat([0, 1, 0, 1, 1, 0], 20)
XG = _rng.normal(size=(120, 2)) + 3.0 * _z[:, None]
XC = np.where(_z == 0, _rng.integers(0, 2, 120), _rng.integers(2, 5, 120))[:, None]
XP = _rng.poisson(np.where(_z == 0, 1.0, 6.0)[:, None], (120, 3)).astype(np.float64)
XB = (_rng.random((120, 5)) < np.where(_z == 0, 0.2, 0.8)[:, None]).astype(np.uint8)
XCODES = np.column_stack((XC[:, 0], _rng.integers(0, 3, 120)))
XM = np.array([_rng.multinomial(8, [0.6, 0.2, 0.1, 0.1] if z == 0 else [0.1, 0.1, 0.2, 0.6])
               for z in _z])


def _models():
    out = {}
    for m in METHODS:
        cts = ("diag", "full", "spherical", "tied") if m in ("em", "vem", "crisp") \
            else ("diag", "full")
        for ct in cts:
            out[f"gaussian-{ct}-{m}"] = (lambda m=m, ct=ct: fastvem.GaussianHMM(
                2, covariance_type=ct, method=m, n_iter=6, random_state=0), XG)
        out[f"categorical-{m}"] = (lambda m=m: fastvem.CategoricalHMM(
            2, method=m, n_iter=6, random_state=0), XC)
        out[f"poisson-{m}"] = (lambda m=m: fastvem.PoissonHMM(
            2, method=m, n_iter=6, random_state=0), XP)
        out[f"multinomial-{m}"] = (lambda m=m: fastvem.MultinomialHMM(
            2, n_trials=8, method=m, n_iter=6, random_state=0), XM)
        for fam, X in (("gaussian_diag", XG), ("gaussian_full", XG), ("categorical", XCODES),
                       ("bernoulli", XB), ("poisson", XP)):
            out[f"hmm_{fam}-{m}"] = (lambda m=m, fam=fam: fastvem.HMM(
                fam, 2, method=m, n_iter=6, random_state=0), X)
    return out


MODELS = _models()
_FITTED = {}


def fitted(name):
    if name not in _FITTED:
        make, X = MODELS[name]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _FITTED[name] = (make().fit(X, LENGTHS), X)
    return _FITTED[name]


def _outputs(est, X):
    lp, post = est.score_samples(X, LENGTHS)
    out = {"score_samples": lp, "posteriors": post, "score": est.score(X, LENGTHS),
           "predict_proba": est.predict_proba(X, LENGTHS), "predict": est.predict(X, LENGTHS),
           "bic": est.bic(X, LENGTHS), "aic": est.aic(X, LENGTHS)}
    for alg in ("viterbi", "map"):
        out[f"decode-{alg}"], out[f"path-{alg}"] = est.decode(X, LENGTHS, algorithm=alg)
    out["sample-X"], out["sample-states"] = est.sample(7, random_state=1)
    return out


@pytest.mark.parametrize("name", sorted(MODELS))
def test_round_trip_is_bitwise(name, tmp_path):
    est, X = fitted(name)
    est.save(tmp_path / "m.npz")
    back = fastvem.load(tmp_path / "m.npz")
    assert type(back) is type(est)
    assert back.get_params() == est.get_params()
    public = lambda e: sorted(k for k in vars(e) if k.endswith("_") and not k.startswith("_"))
    assert public(back) == public(est)
    want, got = _outputs(est, X), _outputs(back, X)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=f"{name}: {key}")
    # hmmlearn's monitor, rebuilt
    assert list(back.monitor_.history) == list(est.monitor_.history)
    assert back.monitor_.iter == est.monitor_.iter
    assert back.monitor_.converged == est.monitor_.converged
    assert back.trace_["events"] == est.trace_["events"]
    np.testing.assert_array_equal(back.trace_["objective"], est.trace_["objective"])
    assert back.lower_bound_ == est.lower_bound_ and back.n_iter_ == est.n_iter_
    for attr in ("startprob_", "transmat_", "means_", "covars_", "emissionprob_", "lambdas_",
                 "theta_", "startprob_posterior_", "transmat_posterior_",
                 "emission_posterior_"):
        if hasattr(est, attr):
            np.testing.assert_array_equal(getattr(back, attr), getattr(est, attr))
    if isinstance(est, fastvem.GaussianHMM):
        np.testing.assert_array_equal(back._covars_, est._covars_)
        assert back.n_features == est.n_features
    if isinstance(est, fastvem.HMM):
        for key, value in est.emissions_.items():
            parts = value if isinstance(value, list) else [value]
            back_parts = back.emissions_[key] if isinstance(value, list) else [
                back.emissions_[key]]
            for a, b in zip(back_parts, parts, strict=True):
                np.testing.assert_array_equal(a, b)
    if "posterior_samples_" in vars(est):
        for key, value in est.posterior_samples_.items():
            np.testing.assert_array_equal(back.posterior_samples_[key], value)


def test_loaded_model_refits_like_the_original(tmp_path):
    est, X = fitted("gaussian-full-em")
    est.save(tmp_path / "m.npz")
    back = fastvem.load(tmp_path / "m.npz")
    a = fastvem.GaussianHMM(**est.get_params()).fit(X, LENGTHS)
    b = back.fit(X, LENGTHS)
    np.testing.assert_array_equal(b.means_, a.means_)
    assert list(b.monitor_.history) == list(a.monitor_.history)


def _read(path):
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _rewrite(tmp_path, name, change):
    est, _ = fitted(name)
    est.save(tmp_path / "good.npz")
    files = _read(tmp_path / "good.npz")
    change(files)
    np.savez(tmp_path / "bad.npz", **files)
    return tmp_path / "bad.npz"


def _set(member, fn):
    return lambda f: f.__setitem__(member, fn(f[member]))


def _row_off(a):
    a = a.copy()
    a[0] *= 0.5
    return a


def _nan_at_0(a):
    a = a.astype(np.float64).copy()
    a.flat[0] = np.nan
    return a


@pytest.mark.parametrize("name,change,match", [
    ("gaussian-diag-em", _set("attr__transmat_", _row_off), "transmat_ does not sum to 1"),
    ("categorical-em", _set("attr__startprob_", _row_off), "startprob_ does not sum to 1"),
    ("categorical-vem", _set("attr__emissionprob_", _row_off),
     "emissionprob_ does not sum to 1"),
    ("gaussian-full-em", _set("attr__means_", lambda a: a[:, :1].copy()),
     r"means_ has shape \(2, 1\), expected \(2, 2\)"),
    ("gaussian-diag-crisp", _set("attr__covars_", lambda a: a[0].copy()),
     r"covars_ has shape \(2,\), expected \(2, 2\)"),
    ("gaussian-tied-em", _set("attr__covars_", lambda a: np.tile(a, (2, 1, 1))),
     "covars_ has shape"),
    ("gaussian-full-em", _set("attr__covars_", lambda a: a + np.array([[0, 1e3], [1e3, 0]])),
     r"covars_\[\d\] is not positive definite"),
    ("gaussian-spherical-vem", _set("attr__covars_", lambda a: -a), "covars_ must be positive"),
    ("categorical-meanfield", _set("attr__emissionprob_", _nan_at_0),
     "emissionprob_ is not finite"),
    ("poisson-em", _set("attr__lambdas_", _nan_at_0), "lambdas_ is not finite"),
    ("poisson-crisp", _set("attr__lambdas_", lambda a: -a), "lambdas_ must be non-negative"),
    ("gaussian-diag-em", _set("attr__monitor_history_", _nan_at_0),
     "monitor_history_ is not finite"),
    ("gaussian-diag-em", _set("attr__monitor_history_", lambda a: a[:-1]),
     "monitor_history_ has shape"),
    ("gaussian-diag-meanfield", _set("attr__transmat_posterior_", lambda a: a[::-1].copy()),
     "transmat_ is not the mean of transmat_posterior_"),
    ("categorical-meanfield", _set("attr__emission_posterior_", lambda a: -a),
     "emission_posterior_ must be positive"),
    ("gaussian-full-gibbs", _set("dict__posterior_samples_.transmat", _row_off),
     r"posterior_samples_\['transmat'\] does not sum to 1"),
    ("categorical-gibbs", _set("attr__startprob_", lambda a: a[::-1].copy()),
     r"startprob_ is not the mean of posterior_samples_\['startprob'\]"),
    ("hmm_gaussian_diag-em", _set("attr__reference_", _nan_at_0), "reference_ is not finite"),
    ("hmm_categorical-em", _set("attr__n_categories_", lambda a: a + 1), "theta_ has shape"),
    ("hmm_bernoulli-vem", _set("attr__theta_", lambda a: a + 1.0),
     "theta_ holds a probability above 1"),
    ("hmm_gaussian_full-crisp", _set("attr__theta_", lambda a: a[:, ::-1].copy()),
     "theta_"),
    ("gaussian-diag-em", lambda f: f.pop("attr__startprob_"), "startprob_ is missing"),
    ("multinomial-em", _set("attr__emissionprob_", _row_off), "emissionprob_ does not sum to 1"),
    ("gaussian-full-gibbs", _set("attr__log_joint_", _nan_at_0), "log_joint_ is not finite"),
    ("categorical-gibbs", _set("attr__log_joint_", lambda a: a[:1].copy()),
     r"log_joint_ has shape \(1, 6\), expected \(2, 6\)"),
    ("poisson-gibbs", _set("attr__log_joint_", lambda a: a + 1.0),
     "trace_\\['objective'\\] is not the mean of log_joint_"),
    ("gaussian-diag-gibbs", lambda f: f.pop("dict__mixing_.stay_0"),
     "mixing_ has the wrong quantities"),
    ("multinomial-gibbs", lambda f: f.__setitem__("dict__mixing_.log_joint", np.array([1.0])),
     r"mixing_\['log_joint'\] has shape"),
    ("multinomial-crisp", _set("attr__emissionprob_", lambda a: a[:, :3].copy()),
     r"emissionprob_ has shape \(2, 3\), expected \(2, 4\)"),
    ("multinomial-gibbs", _set("dict__posterior_samples_.theta", lambda a: -a),
     r"posterior_samples_\['theta'\]"),
    ("multinomial-em", lambda f: f.__setitem__("param__n_trials", np.array([1.5])),
     "n_trials"),
    ("gaussian-diag-em", lambda f: f.__setitem__("attr__monitor_", np.array("x")),
     "unexpected attribute 'monitor_'"),
    # what partial_fit continues from: the rows and sequences fitted, mean field's prior
    ("gaussian-diag-em", lambda f: f.pop("attr__n_rows_seen_"), "n_rows_seen_ is missing"),
    ("categorical-vem", _set("attr__n_sequences_seen_", lambda a: a * 0.0),
     "n_sequences_seen_ is 0.0, expected >= 1.0"),
    ("poisson-crisp", _set("attr__n_sequences_seen_", lambda a: a * 1e6),
     "n_sequences_seen_ .* exceeds n_rows_seen_"),
    ("gaussian-full-meanfield", lambda f: f.pop("attr__family_prior_"),
     "family_prior_ is missing"),
    ("gaussian-diag-meanfield", _set("attr__family_prior_", lambda a: np.array("[1e400]")),
     "family_prior_"),
    ("gaussian-diag-em", lambda f: f.__setitem__("attr__family_prior_", np.array("[]")),
     "family_prior_ is stored, but a GaussianHMM"),
    ("gaussian-full-meanfield", _set("attr__n_rows_seen_", lambda a: a * 1e300),
     r"n_rows_seen_ .* exceeds .* rows \(2\^53\)"),
    ("categorical-em", _set("attr__n_steps_", lambda a: a - 1), r"n_steps_ is -1"),
    ("gaussian-diag-meanfield", _set("attr__family_prior_", lambda a: np.array(
        str(a).replace("1.0,", "1e150,", 1))), "family_prior_ holds a value beyond"),
])
def test_corrupted_files_are_refused(tmp_path, name, change, match):
    path = _rewrite(tmp_path, name, change)
    with pytest.raises(ValueError, match=match):
        fastvem.load(path)


def test_every_model_is_registered_and_a_user_family_is_not_saved(tmp_path):
    """A built-in family object saves as its JSON state (tests/test_mixture_persistence.py);
    an ExponentialFamily holds the user's numba functions: refused, naming pickle."""
    from fastvem.families.normal import GaussianDiag
    est = fastvem.HMM(GaussianDiag(2), 2, n_iter=3, random_state=0).fit(XG, LENGTHS)
    est.save(tmp_path / "m.npz")
    np.testing.assert_array_equal(fastvem.load(tmp_path / "m.npz").predict(XG, LENGTHS),
                                  est.predict(XG, LENGTHS))
    pytest.importorskip("numba")
    from fastvem.families.numba_family import example_diagonal_gaussian
    est = fastvem.HMM(example_diagonal_gaussian(), 2, n_iter=3, random_state=0).fit(XG, LENGTHS)
    with pytest.raises(TypeError, match="pickle"):
        est.save(tmp_path / "m.npz")
    with pytest.raises(Exception, match="not fitted"):
        fastvem.GaussianHMM(2).save(tmp_path / "m.npz")


def test_setting_covars_then_saving(tmp_path):
    """Parameters set by hand (no fit) are what predictions read: covars_ in the
    covariance type's own shape is what save writes."""
    est, X = fitted("gaussian-diag-em")
    m = fastvem.GaussianHMM(2, covariance_type="diag", init_params="", n_iter=0)
    m.startprob_, m.transmat_ = est.startprob_, est.transmat_
    m.means_, m.covars_ = est.means_, est._covars_
    m.fit(X, LENGTHS)                   # n_iter=0: the parameters as set
    m.save(tmp_path / "m.npz")
    back = fastvem.load(tmp_path / "m.npz")
    assert back.n_iter_ == 0 and back.lower_bound_ == -np.inf
    np.testing.assert_array_equal(back.predict_proba(X, LENGTHS), m.predict_proba(X, LENGTHS))
