"""fastvem.load checks every fitted attribute: round trips of every estimator x
method, and corrupted archives (each stored array dropped, reshaped, NaN,
negative, a string array) refused with a ValueError naming the attribute."""
import copy
import fnmatch
import json
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import fastvem
from fastvem import BayesianGaussianMixture, GaussianMixture, LatentDirichletAllocation
from fastvem.datasets import load_old_faithful

COV_TYPES = ("full", "tied", "diag", "spherical")
X = load_old_faithful()[0]
_rng = np.random.default_rng(0)
X_EVENTS = np.r_[_rng.normal(0.0, 0.01, (100, 2)), _rng.normal(10.0, 0.01, (100, 2))]
CORPUS = sp.csr_matrix(np.random.default_rng(0).poisson(0.6, (40, 25)).astype(np.float64))


def _gm(method, ct, **kw):
    kw.setdefault("n_threads", 1)
    if method == "gibbs":
        kw = dict(n_samples=8, burn_in=4, n_chains=2, **kw)
    else:
        kw = dict(max_iter=4, **kw)
    return lambda: GaussianMixture(2, covariance_type=ct, method=method, random_state=0,
                                   **kw).fit(X)


def _lda(method, learning_method="batch", **kw):
    return lambda: LatentDirichletAllocation(3, method=method, learning_method=learning_method,
                                             max_iter=kw.pop("max_iter", 4), batch_size=16,
                                             random_state=0, n_threads=1, **kw).fit(CORPUS)


SPECS = {f"gm-{m}-{ct}": _gm(m, ct) for m in ("em", "vem", "crisp", "meanfield", "gibbs")
         for ct in COV_TYPES}
SPECS.update({
    "bgm-dirichlet_process-full": lambda: BayesianGaussianMixture(
        n_components=3, max_iter=4, random_state=0, n_threads=1).fit(X),
    "bgm-dirichlet_distribution-tied": lambda: BayesianGaussianMixture(
        n_components=3, covariance_type="tied", max_iter=4, random_state=0, n_threads=1,
        weight_concentration_prior_type="dirichlet_distribution").fit(X),
    # constructor arrays (param__ members), float32 data
    "gm-em-diag-inits-f32": lambda: GaussianMixture(
        2, covariance_type="diag", weights_init=[0.4, 0.6],
        means_init=[[2.0, 55.0], [4.5, 80.0]], precisions_init=np.full((2, 2), 0.1),
        max_iter=4, random_state=0, n_threads=1).fit(X.astype(np.float32)),
    "gm-em-full-frame": lambda: GaussianMixture(2, max_iter=4, random_state=0, n_threads=1).fit(
        pd.DataFrame(X, columns=["eruptions", "waiting"])),
    "gm-em-full-squarem": _gm("em", "full", accelerate="squarem"),
    # empty components re-seeded: trace_['events'] is not empty
    "gm-crisp-full-events": lambda: GaussianMixture(
        5, method="crisp", random_state=0, n_threads=1, max_iter=5,
        means_init=[[0, 0], [10, 10], [100, 100], [-100, 50], [50, -100]]).fit(X_EVENTS),
    "gm-meanfield-diag-memoized": _gm("meanfield", "diag", n_batches=3),
    "gm-em-full-partial_fit": lambda: GaussianMixture(2, random_state=0, n_threads=1)
    .partial_fit(X[:150]).partial_fit(X[150:]),
    "gm-meanfield-tied-fit-then-partial_fit": lambda: GaussianMixture(
        2, covariance_type="tied", method="meanfield", max_iter=4, random_state=0,
        n_threads=1).fit(X).partial_fit(X[:100]),
    "lda-meanfield-batch": _lda("meanfield"),
    "lda-vem-batch": _lda("vem"),
    "lda-gibbs-batch": _lda("gibbs", max_iter=8),
    "lda-crisp-batch": _lda("crisp"),
    "lda-meanfield-online": _lda("meanfield", "online"),
    "lda-vem-online": _lda("vem", "online"),
    "lda-crisp-online": _lda("crisp", "online"),
    "lda-meanfield-memoized": _lda("meanfield", "memoized"),
    "lda-vem-asymmetric_alpha": _lda("vem", learn_doc_topic_prior="asymmetric"),
    "lda-meanfield-partial_fit": lambda: LatentDirichletAllocation(
        3, random_state=0, batch_size=16, n_threads=1).partial_fit(CORPUS),
    # discrete mixtures
    "disc-bernoulli-meanfield": lambda: fastvem.BernoulliMixture(
        3, method="meanfield", max_iter=4, random_state=0, n_threads=1).fit(X_BINARY),
    "disc-categorical-em": lambda: fastvem.CategoricalMixture(
        3, max_iter=4, random_state=0, n_threads=1).fit(X_CODES),
    "disc-poisson-gibbs": lambda: fastvem.PoissonMixture(
        2, method="gibbs", n_samples=6, burn_in=2, random_state=0, n_threads=1).fit(X_COUNTS),
    "disc-multinomial-meanfield": lambda: fastvem.MultinomialMixture(
        2, method="meanfield", max_iter=4, random_state=0, n_threads=1).fit(X_WORDS),
    "disc-categorical-meanfield-dp": lambda: fastvem.CategoricalMixture(
        3, method="meanfield", max_iter=4, random_state=0, n_threads=1,
        weight_concentration_prior_type="dirichlet_process").fit(X_CODES),
    # the generic Mixture: a built-in family by name, and a Product (family_ and the
    # family parameter stored as their JSON state)
    "mix-gaussian-em": lambda: fastvem.Mixture(
        "gaussian", 2, max_iter=4, random_state=0, n_threads=1).fit(X),
    "mix-poisson-gibbs": lambda: fastvem.Mixture(
        "poisson", 2, method="gibbs", n_samples=6, burn_in=2, random_state=0,
        n_threads=1).fit(X_COUNTS),
    "mix-product-meanfield": lambda: fastvem.Mixture(
        fastvem.families.Product([("gaussian_diag", [0, 1]), ("categorical", [2])]), 2,
        method="meanfield", max_iter=4, random_state=0, n_threads=1).fit(X_MIXED),
})


def _hmm(name, cls, method, **kw):
    kw.setdefault("n_threads", 1)
    n_iter = 12 if method == "gibbs" else 4     # gibbs: enough draws a chain for R-hat
    return lambda: cls(n_components=2, method=method, n_iter=n_iter, random_state=0,
                       **kw).fit(_data(name))


# hidden Markov models: every estimator x method x the Gaussian's covariance types
for _m in ("em", "vem", "crisp", "meanfield", "gibbs"):
    for _ct in ("diag", "full", "spherical", "tied"):
        _n = f"hmm-gaussian-{_m}-{_ct}"
        SPECS[_n] = _hmm(_n, fastvem.GaussianHMM, _m, covariance_type=_ct)
    for _n, _cls in ((f"hmm-categorical-{_m}", fastvem.CategoricalHMM),
                     (f"hmm-poisson-{_m}", fastvem.PoissonHMM)):
        SPECS[_n] = _hmm(_n, _cls, _m)
    for _fam in ("gaussian_diag", "gaussian_full", "categorical", "bernoulli", "poisson"):
        _n = f"hmm-generic-{_fam}-{_m}"
        SPECS[_n] = _hmm(_n, fastvem.HMM, _m, family=_fam)
_FITTED = {}


def fitted(name):
    if name not in _FITTED:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")      # short fits do not converge
            _FITTED[name] = SPECS[name]()
    return _FITTED[name]


_RNG = np.random.default_rng(7)
X_BINARY = (_RNG.random((120, 10)) < 0.4).astype(np.uint8)
X_CODES = _RNG.integers(0, [3, 4, 2], (120, 3))
X_COUNTS = _RNG.poisson(3.0, (120, 4)).astype(np.float64)
X_WORDS = sp.csr_matrix(_RNG.poisson(0.3, (120, 30)).astype(np.float64))
X_SYMBOLS = _RNG.integers(0, 4, (120, 1))
X_MIXED = np.column_stack([_RNG.normal(size=(120, 2)), X_CODES[:, 0]])


def _data(name):
    if name.startswith("hmm-"):
        kind = name.split("-")[2] if name.startswith("hmm-generic-") else name.split("-")[1]
        if kind.startswith("gaussian"):
            return X
        if kind == "categorical":
            return X_CODES if name.startswith("hmm-generic-") else X_SYMBOLS
        return {"poisson": X_COUNTS, "bernoulli": X_BINARY}[kind]
    if name.startswith("lda"):
        return CORPUS
    if name.startswith("mix-"):
        return {"gaussian": X, "poisson": X_COUNTS, "product": X_MIXED}[name.split("-")[1]]
    if name.startswith("disc-"):
        return {"bernoulli": X_BINARY, "categorical": X_CODES, "poisson": X_COUNTS,
                "multinomial": X_WORDS}[name.split("-")[1]]
    if "f32" in name:
        return X.astype(np.float32)
    if "events" in name:
        return X_EVENTS
    if "frame" in name:
        return pd.DataFrame(X, columns=["eruptions", "waiting"])
    return X


def _outputs(est, data):
    """What a loaded model must reproduce bitwise."""
    if est.__class__.__name__.endswith("HMM"):
        lp, post = est.score_samples(data)
        lj, path = est.decode(data)
        return {"predict": est.predict(data), "predict_proba": est.predict_proba(data),
                "score_samples": lp, "posteriors": post, "score": est.score(data),
                "decode": lj, "path": path, "sample": est.sample(5, random_state=0),
                "bic": est.bic(data), "aic": est.aic(data)}
    if isinstance(est, LatentDirichletAllocation):
        return {"transform": est.transform(data), "perplexity": est.perplexity(data),
                "score": est.score(data)}
    out = {"predict": est.predict(data), "predict_proba": est.predict_proba(data),
           "score_samples": est.score_samples(data), "score": est.score(data),
           "sample": est.sample(5)}
    if not isinstance(est, BayesianGaussianMixture):
        out.update(bic=est.bic(data), aic=est.aic(data))
    return out


def _usable(est, data):
    """A model accepted after a harmless corruption still predicts finite values."""
    if isinstance(data, pd.DataFrame) and not hasattr(est, "feature_names_in_"):
        data = data.to_numpy()
    if isinstance(est, LatentDirichletAllocation):
        return (np.all(np.isfinite(est.transform(data)))
                and np.isfinite(est.perplexity(data)))
    if est.__class__.__name__.endswith("HMM"):
        return (np.all(np.isfinite(est.predict_proba(data)))
                and np.isfinite(est.score(data)))
    return (np.all(np.isfinite(est.predict_proba(data)))
            and np.all(np.isfinite(est.score_samples(data))))


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize("name", list(SPECS))
def test_round_trip_is_bitwise(name, tmp_path):
    est = fitted(name)
    if "events" in name:
        assert len(est.trace_["events"]) > 0
    path = tmp_path / "model.npz"
    est.save(path)
    back = fastvem.load(path)
    if "events" in name:
        assert back.trace_["events"] == est.trace_["events"]
    public = lambda e: sorted(k for k in vars(e) if k.endswith("_") and not k.startswith("_"))
    assert public(back) == public(est)
    data = _data(name)
    want, got = _outputs(est, data), _outputs(back, data)
    for key in want:
        for a, b in zip(np.atleast_1d(want[key]) if key != "sample" else want[key],
                        np.atleast_1d(got[key]) if key != "sample" else got[key]):
            np.testing.assert_array_equal(b, a, err_msg=f"{name}: {key}")


@pytest.mark.parametrize("name", ["lda-meanfield-online", "lda-meanfield-partial_fit",
                                  "lda-vem-batch"])
def test_loaded_lda_continues_partial_fit(name, tmp_path):
    est = copy.deepcopy(fitted(name))
    path = tmp_path / "model.npz"
    est.save(path)
    back = fastvem.load(path)
    np.testing.assert_array_equal(back.partial_fit(CORPUS).components_,
                                  est.partial_fit(CORPUS).components_)


# ---------------------------------------------------------------- corruptions
# The domain of these arrays allows negative values (means, log densities).
NEGATIVE_OK = ("attr__means_", "attr__mean_prior_", "attr__lower_bound_", "attr__lower_bounds_",
               "attr__log_joint_", "trace__objective", "dict__posterior_samples_.means",
               "attr__monitor_history_", "attr__reference_",
               "param__means_init", "rng__random_state_.cached_gaussian")

# (corruption, member pattern, model pattern): why the file may load
HARMLESS = {
    ("drop", "attr__feature_names_in_", "*"):
        "optional: a model fitted on an array has no feature names",
    ("drop", "attr__n_e_steps_", "*gm-*"):
        "an informational count that no method reads; partial_fit models have none",
    ("drop", "attr__n_e_steps_", "disc-*"):
        "the same count for the discrete mixtures (files saved before it load)",
    ("drop", "attr__n_e_steps_", "mix-*"):
        "the same count for the generic Mixture",
    ("drop", "attr__bound_", "lda-*"):
        "the training perplexity, which no method reads; partial_fit models have none",
    ("drop", "param__*", "*"):
        "an init array reverts to None, which only a new fit reads",
    ("shrink", "trace__events", "*"):
        "a shorter event log is still a valid log",
    ("nan", "trace__objective", "lda-*"):
        "online passes and partial_fit record NaN objectives; no method reads the trace",
    ("negative", "attr__emission_posterior_", "hmm-*gaussian*"):
        "q's first entry is a posterior mean (about the fit's reference point): any real",
}


def _harmless(kind, member, name):
    for (k, pattern, model), why in HARMLESS.items():
        if k == kind and fnmatch.fnmatch(member, pattern) and fnmatch.fnmatch(name, model):
            return why
    return None


def _attribute(member):
    """The name a refusal must mention."""
    if member == "__meta__":
        return "metadata"
    if member.startswith("trace__"):
        return "trace_"
    if member.startswith(("dict__", "list__")):
        return member.split("__", 1)[1].rsplit(".", 1)[0]
    return member.split("__", 1)[1]


def _corruptions(member, a):
    """(kind, new array or None to drop); no-op corruptions are left out."""
    out = [("drop", None)]
    if a.size:
        out.append(("shrink", a.ravel()[:-1]))
    out.append(("extra axis", a[None]))
    if a.dtype.kind == "f" and a.size and not np.isnan(a.flat[0]):
        b = a.copy()
        b.flat[0] = np.nan
        out.append(("nan", b))
    if a.dtype.kind in "fi" and a.size and member not in NEGATIVE_OK:
        b = a.copy()
        b.flat[0] = -abs(b.flat[0]) - 1
        out.append(("negative", b))
    if a.dtype.kind in "biuf":
        out.append(("string", a.astype(str)))
    else:                              # strings already: numbers are the wrong dtype
        out.append(("string", np.zeros(a.shape)))
    return out


def _read(path):
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


# Every estimator x method (and learning_method), each covariance type under the
# point, mean-field and gibbs parameterisations, init arrays, float32, feature
# names and partial_fit models (the rest of SPECS stores the same attributes).
CORRUPTED = ("disc-bernoulli-meanfield", "disc-categorical-em", "disc-poisson-gibbs",
             "disc-multinomial-meanfield", "mix-gaussian-em", "mix-poisson-gibbs",
             "mix-product-meanfield",
             "disc-categorical-meanfield-dp", "gm-em-full", "gm-vem-tied", "gm-crisp-diag", "gm-em-spherical",
             "gm-meanfield-spherical", "gm-meanfield-diag-memoized",
             "bgm-dirichlet_process-full", "bgm-dirichlet_distribution-tied",
             "gm-gibbs-tied", "gm-gibbs-diag", "gm-em-diag-inits-f32", "gm-em-full-frame",
             "gm-crisp-full-events",
             "gm-em-full-partial_fit", "gm-meanfield-tied-fit-then-partial_fit") + tuple(
    name for name in SPECS if name.startswith("lda")) + tuple(
    name for name in SPECS if name.startswith("hmm-") and (
        "generic" not in name or name.endswith(("-em", "-meanfield", "-gibbs"))))


@pytest.mark.parametrize("name", CORRUPTED)
def test_every_corruption_is_refused_or_harmless(name, tmp_path):
    good = tmp_path / "good.npz"
    fitted(name).save(good)
    files = _read(good)
    data = _data(name)
    bad = tmp_path / "bad.npz"
    problems, tried, refused, harmless = [], 0, 0, 0
    for member in sorted(files):
        for kind, new in _corruptions(member, files[member]):
            corrupt = dict(files)
            if new is None:
                del corrupt[member]
            else:
                corrupt[member] = new
            np.savez(bad, **corrupt)
            why = _harmless(kind, member, name)
            tried += 1
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error")      # no silent repairs either
                    loaded = fastvem.load(bad)
            except ValueError as exc:
                refused += 1
                if why is not None:
                    problems.append(f"{member} {kind}: refused although listed harmless ({exc})")
                elif _attribute(member) not in str(exc):
                    problems.append(f"{member} {kind}: message does not name "
                                    f"{_attribute(member)!r}: {exc}")
                continue
            except Exception as exc:                      # a crash
                problems.append(f"{member} {kind}: {type(exc).__name__}: {exc}")
                continue
            if why is None:
                problems.append(f"{member} {kind}: loaded silently")
            elif not _usable(loaded, data):
                problems.append(f"{member} {kind}: loaded, but predicts non-finite values")
            else:
                harmless += 1
    print(f"\n{name}: {tried} corruptions, {refused} refused, {harmless} harmless")
    assert not problems, "\n".join(problems)
    assert tried == refused + harmless


def test_dropping_the_whole_trace_is_harmless(tmp_path):
    est = fitted("gm-em-full")
    est.save(tmp_path / "good.npz")
    files = {k: v for k, v in _read(tmp_path / "good.npz").items()
             if not k.startswith("trace__")}
    np.savez(tmp_path / "notrace.npz", **files)
    back = fastvem.load(tmp_path / "notrace.npz")
    assert not hasattr(back, "trace_")
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))


# ------------------------------------------------------- specific refusals
def _rewrite(tmp_path, name, change):
    fitted(name).save(tmp_path / "good.npz")
    files = _read(tmp_path / "good.npz")
    change(files)
    path = tmp_path / "model.npz"
    np.savez(path, **files)
    return path


def test_short_doc_topic_prior_is_refused(tmp_path):
    def change(files):
        files["attr__doc_topic_prior_"] = np.array([0.3])
    path = _rewrite(tmp_path, "lda-meanfield-batch", change)
    with pytest.raises(ValueError, match=r"model.npz: doc_topic_prior_ has shape \(1,\), "
                                         r"expected \(3,\) or a scalar"):
        fastvem.load(path)


@pytest.mark.parametrize("change,match", [
    (lambda f: f.__setitem__("attr__precisions_cholesky_",
                             np.swapaxes(f["attr__precisions_cholesky_"], 1, 2).copy()),
     "precisions_cholesky_.* not upper-triangular"),
    (lambda f: f.__setitem__("attr__precisions_cholesky_", -f["attr__precisions_cholesky_"]),
     "precisions_cholesky_.* non-positive diagonal"),
    (lambda f: f.__setitem__("attr__precisions_", 2 * f["attr__precisions_"]),
     "precisions_ does not match precisions_cholesky_"),
    (lambda f: f.__setitem__("attr__weights_", f["attr__weights_"] * 0.5),
     "weights_ does not sum to 1"),
    (lambda f: f.__setitem__("attr__covariances_", f["attr__covariances_"]
                             * np.array([[1, -3], [-3, 1]])),
     r"covariances_\[\d\] is not positive definite"),
    (lambda f: f.__setitem__("attr__means_", f["attr__means_"].astype(np.float16)),
     "means_ has dtype float16"),
    (lambda f: f.__setitem__("attr__n_iter_", np.array(2.0)), "n_iter_ must be an int"),
    (lambda f: f.__setitem__("attr__converged_", np.array(1)), "converged_ must be a bool"),
    (lambda f: f.__setitem__("attr__unknown_", np.ones(2)), "unknown_"),
    (lambda f: f.__setitem__("junk", np.ones(2)), "junk"),
    (lambda f: f.__setitem__("trace__events", np.array(["no tab here"])), "trace_"),
])
def test_specific_refusals(tmp_path, change, match):
    with pytest.raises(ValueError, match=match):
        fastvem.load(_rewrite(tmp_path, "gm-em-full", change))


def test_invalid_constructor_parameters_are_refused(tmp_path):
    fitted("gm-em-full").save(tmp_path / "good.npz")
    files = _read(tmp_path / "good.npz")
    for key, value, match in [("n_components", 0, "n_components"),
                              ("n_components", "2", "n_components"),
                              ("covariance_type", "banana", "covariance_type"),
                              ("method", "nope", "method"),
                              ("reg_covar", -1.0, "reg_covar"),
                              ("random_state", -3, "random_state|seed")]:
        meta = json.loads(str(files["__meta__"]))
        meta["params"][key] = value
        np.savez(tmp_path / "model.npz", **{**files, "__meta__": np.array(json.dumps(meta))})
        with pytest.raises(ValueError, match=match):
            fastvem.load(tmp_path / "model.npz")


def test_attributes_of_an_earlier_method_are_dropped(tmp_path):
    """A model refitted with another method forgets the earlier fit's attributes
    (q(theta) of a meanfield fit does not outlive an em refit); it saves and loads."""
    est = GaussianMixture(2, method="meanfield", max_iter=3, random_state=0, n_threads=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X).set_params(method="em").fit(X)
    est.save(tmp_path / "model.npz")
    back = fastvem.load(tmp_path / "model.npz")
    assert not hasattr(est, "mean_precision_") and not hasattr(back, "mean_precision_")
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))


def _copy_with(src, dst, change):
    """Copy an .npz model file with some members changed (change: dict -> None)."""
    with np.load(src, allow_pickle=False) as data:
        files = {k: data[k] for k in data.files}
    change(files)
    np.savez(dst, **files)


def test_lda_random_state_is_fitted_saved_and_checked(tmp_path):
    """LatentDirichletAllocation.random_state_ as in scikit-learn: the RandomState
    the fit drew from; save / load keep its exact state; a corrupted state is refused."""
    from fastvem.datasets import make_lda_corpus
    C, _ = make_lda_corpus(80, 40, 3, random_state=0)
    a = LatentDirichletAllocation(3, max_iter=3, random_state=5).fit(C)
    b = LatentDirichletAllocation(3, max_iter=3, random_state=5).fit(C)
    assert isinstance(a.random_state_, np.random.RandomState)
    assert a.random_state_.randint(2**31) == b.random_state_.randint(2**31)
    rs = np.random.RandomState(7)
    assert LatentDirichletAllocation(3, max_iter=2, random_state=rs).fit(C).random_state_ is rs
    path = str(tmp_path / "lda.npz")
    a.save(path)
    loaded = fastvem.load(path)
    assert np.array_equal(loaded.random_state_.rand(5), a.random_state_.rand(5))
    p = LatentDirichletAllocation(3, random_state=2).partial_fit(C)
    assert isinstance(p.random_state_, np.random.RandomState)
    for member, bad, match in (("rng__random_state_.pos", np.array(625), "pos"),
                               ("rng__random_state_.keys", np.zeros(10, np.uint32), "624"),
                               ("rng__random_state_.cached_gaussian", np.array(np.nan),
                                "cached_gaussian"),
                               ("rng__random_state_.oops", np.array(1), "unexpected")):
        dst = str(tmp_path / "bad.npz")
        _copy_with(path, dst, lambda f: f.__setitem__(member, bad))
        with pytest.raises(ValueError, match=match):
            fastvem.load(dst)
    dst = str(tmp_path / "old.npz")          # a file without random_state_ still loads
    _copy_with(path, dst, lambda f: [f.pop(k) for k in list(f) if k.startswith("rng__")])
    assert not hasattr(fastvem.load(dst), "random_state_")
