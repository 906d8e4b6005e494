"""The fuzz suite's cases, run by tests/test_fuzz.py in a child process (a crash
there fails the test instead of killing the test run).

Each case draws inputs with Hypothesis and checks one contract of the public API:
whatever the input, a call either succeeds with finite results and leaves its
input untouched, or raises a ValueError / TypeError (NotFittedError where the
model is not fitted) -- never a crash, a hang, a silent NaN, a corrupted input or
another exception.  ``python tests/fuzz_cases.py CASE N`` runs N examples (``parameter_scan 0`` runs the
exhaustive scan of every parameter value after fit).
"""
import os
import sys
import tempfile
import warnings

import numpy as np
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import NotFittedError

import fastvem

warnings.simplefilter("ignore")

CLEAN = (ValueError, TypeError)
METHODS = ("em", "vem", "crisp", "meanfield", "gibbs")
COV = ("full", "tied", "diag", "spherical")


def _refused(exc):
    """Record a refusal's message (FASTVEM_FUZZ_LOG=file): what a user would read."""
    log = os.environ.get("FASTVEM_FUZZ_LOG")
    if log:
        with open(log, "a") as fh:
            fh.write(f"{type(exc).__name__}\t{str(exc)[:300]!r}\n")


def _finite_or_refused(call, *args, what=""):
    """call(*args) returns finite values or refuses cleanly."""
    try:
        out = call(*args)
    except CLEAN as exc:
        _refused(exc)
        return
    assert _finite(out), f"{what} {call.__name__} gave NaN / inf"


def _finite(x):
    if isinstance(x, tuple):
        return all(_finite(v) for v in x)
    if sp.issparse(x):
        x = x.data
    arr = np.asarray(x)
    return arr.dtype.kind not in "fc" or bool(np.all(np.isfinite(arr)))


def _same(a, b):
    if sp.issparse(a):
        return all(_same(x, y) for x, y in ((a.data, b.data), (a.indices, b.indices),
                                            (a.indptr, b.indptr)))
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind in "fc":
        return np.array_equal(a, b, equal_nan=True)
    return np.array_equal(a, b)


def _mixture(kind, method, cov, K):
    small = dict(n_samples=4, burn_in=2, n_chains=1) if method == "gibbs" else {}
    if kind == "bgm":
        return fastvem.BayesianGaussianMixture(n_components=K, covariance_type=cov,
                                               max_iter=5, random_state=0)
    return fastvem.GaussianMixture(K, covariance_type=cov, method=method, max_iter=5,
                                   random_state=0, **small)


# ------------------------------------------------------------------ data strategies
SPECIALS = [np.nan, np.inf, -np.inf, 1e300, -1e300, 1e-300, 0.0, 1e200, 5e-324]


@st.composite
def arrays(draw, max_rows=25, max_cols=4):
    rows = draw(st.integers(0, max_rows))
    cols = draw(st.integers(0, max_cols))
    dtype = draw(st.sampled_from(["float64", "float32", "float16", "int64", "bool",
                                  "complex128", "str"]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    X = rng.normal(size=(rows, cols)) * draw(st.sampled_from([1.0, 1e-150, 1e100, 1e-6]))
    if draw(st.booleans()) and X.size:
        n_special = draw(st.integers(1, 3))
        for _ in range(n_special):
            X[rng.integers(rows), rng.integers(cols)] = draw(st.sampled_from(SPECIALS))
    if draw(st.booleans()) and rows > 1:
        X[1:] = X[0]                                     # identical rows
    if draw(st.booleans()) and cols > 1:
        X[:, 0] = 3.0                                    # a constant column
    if dtype == "str":
        X = X.astype(str)
    else:
        with np.errstate(all="ignore"):
            X = X.astype(dtype)
    layout = draw(st.sampled_from(["C", "F", "strided", "readonly", "list"]))
    if layout == "F":
        X = np.asfortranarray(X)
    elif layout == "strided":
        X = np.repeat(X, 2, axis=1)[:, ::2]
    elif layout == "readonly":
        X = X.copy()
        X.setflags(write=False)
    elif layout == "list":
        X = X.tolist()
    return X


@st.composite
def corpora(draw):
    rows = draw(st.integers(0, 15))
    cols = draw(st.integers(0, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    X = rng.poisson(draw(st.sampled_from([0.0, 0.3, 2.0])), size=(rows, cols)).astype(float)
    mutate = draw(st.sampled_from(["none", "negative", "nan", "inf", "fraction", "huge",
                                   "empty_docs", "tiny"]))
    if X.size:
        i, j = rng.integers(rows), rng.integers(cols)
        X[i, j] = {"none": X[i, j], "negative": -1.0, "nan": np.nan, "inf": np.inf,
                   "fraction": 0.5, "huge": 1e300, "empty_docs": X[i, j],
                   "tiny": 1e-300}[mutate]
        if mutate == "empty_docs":
            X[::2] = 0
    form = draw(st.sampled_from(["dense", "csr", "csr_dup", "csc", "float32", "int"]))
    if form == "csr":
        return sp.csr_matrix(X)
    if form == "csc":
        return sp.csc_matrix(X)
    if form == "csr_dup" and X.size and np.isfinite(X).all():
        return _dup_csr(sp.coo_matrix(X), X.shape)
    if form == "float32":
        return X.astype(np.float32)
    if form == "int" and np.isfinite(X).all():
        return X.astype(np.int64)
    return X


def _dup_csr(C, shape):
    """A CSR matrix with duplicate entries (each split in two), not canonical."""
    order = np.argsort(np.r_[C.row, C.row], kind="stable")
    rows = np.r_[C.row, C.row][order]
    cols = np.r_[C.col, C.col][order]
    data = np.r_[C.data / 2, C.data / 2][order]
    indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=shape[0]))]
    return sp.csr_matrix((data, cols, indptr), shape=shape)


def _fit_untouched(est, X, weighted):
    """est.fit(X) (with sample weights when `weighted`): True when fitted, False when
    refused cleanly; either way X (a list, an array or a sparse matrix) unmodified."""
    sparse = sp.issparse(X)
    before = ([list(r) for r in X] if isinstance(X, list)
              else X.copy() if sparse else np.array(X, copy=True))
    n_rows = X.shape[0] if hasattr(X, "shape") else len(X)
    sw = np.linspace(0.5, 2.0, n_rows) if weighted and n_rows else None
    try:
        est.fit(X, sample_weight=sw)
    except CLEAN as exc:
        _refused(exc)
        return False
    finally:
        if isinstance(X, list):
            assert X == before, "X was modified"
        elif sparse:
            assert (X.format == before.format and X.shape == before.shape
                    and np.array_equal(X.data, before.data, equal_nan=True)
                    and all(np.array_equal(getattr(X, a), getattr(before, a))
                            for a in ("indices", "indptr"))), "X was modified"
        else:
            assert _same(X, before), "X was modified"
    return True


# ------------------------------------------------------------------ cases
def _run(test, n):
    settings(max_examples=n, deadline=None, database=None, derandomize=True,
             suppress_health_check=list(HealthCheck))(test)()


def mixture_inputs(n):
    """Generated X (shapes with 0 and 1 rows / columns, dtypes, layouts, NaN / inf /
    huge / tiny values, identical rows, constant columns) into every mixture
    estimator x method: fit either succeeds with finite parameters and finite
    predictions, or refuses cleanly; X is never modified."""
    @given(arrays(), st.sampled_from(METHODS + ("bgm",)), st.sampled_from(COV),
           st.integers(1, 3), st.booleans())
    def test(X, method, cov, K, weighted):
        est = _mixture("bgm" if method == "bgm" else "gm", method, cov, K)
        if not _fit_untouched(est, X, weighted):
            return
        for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
            assert _finite(getattr(est, name)), f"{name} is not finite"
        Xa = np.asarray(X, dtype=np.float64)
        for call in (est.predict_proba, est.score_samples, est.predict):
            _finite_or_refused(call, Xa)
    _run(test, n)


DISCRETE = ("BernoulliMixture", "CategoricalMixture", "PoissonMixture", "MultinomialMixture")


def discrete_inputs(n):
    """Generated X (the arrays above: every dtype, layout, NaN / inf / huge / tiny
    value, shapes with 0 and 1 rows or columns; and the corpora above: sparse, with
    duplicates, negative or fractional counts) into every discrete mixture x method,
    each as given and in the form the family takes (0/1, codes, counts): fit either
    succeeds with finite parameters and finite predictions, or refuses cleanly; X is
    never modified."""
    @given(st.one_of(arrays(), corpora()), st.sampled_from(DISCRETE),
           st.sampled_from(METHODS), st.integers(1, 3), st.booleans(),
           st.sampled_from(["as is", "abs", "round", "binary"]))
    def test(X, name, method, K, weighted, form):
        if form != "as is" and isinstance(X, np.ndarray) and X.dtype.kind in "biuf":
            with np.errstate(all="ignore"):
                X = {"abs": np.abs(X), "round": np.round(np.abs(X)),
                     "binary": (X > 0).astype(np.uint8)}[form]
        est = getattr(fastvem, name)(K, method=method, random_state=0, max_iter=10,
                                     n_samples=4, burn_in=2)
        if not _fit_untouched(est, X, weighted):
            return
        theta = getattr(est, "rates_", None)
        if theta is None:
            theta = est.probabilities_
        for a in (theta if isinstance(theta, list) else [theta]) + [est.weights_]:
            assert _finite(np.asarray(a)), f"{name} parameters are not finite"
        for call in (est.predict_proba, est.score_samples, est.predict):
            _finite_or_refused(call, X, what=name)
    _run(test, n)


def mixed_inputs(n):
    """Generated arrays into fastvem.Mixture over the full or diagonal Gaussian and
    over products (the first column Gaussian, the others Poisson, Bernoulli or
    categorical in the form they take), every method, with and without SQUAREM or
    memoized passes: finite parameters and predictions, or a clean refusal; X never
    modified."""
    from fastvem.families import Product

    @given(arrays(), st.sampled_from(["gaussian", "gaussian_diag"]),
           st.sampled_from(["gaussian_diag", "poisson", "bernoulli", "categorical"]),
           st.sampled_from(METHODS), st.integers(1, 3), st.booleans(), st.booleans())
    def test(X, first, second, method, K, weighted, schedule):
        if not (isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind in "biuf"
                and X.shape[1] >= 1):
            family = first
        elif X.shape[1] == 1 or second == "gaussian_diag":
            family = first
        else:
            with np.errstate(all="ignore"):
                rest = np.abs(X[:, 1:].astype(np.float64))
                rest = {"poisson": np.round(rest), "bernoulli": (rest > 1).astype(float),
                        "categorical": np.round(rest) % 4}[second]
                X = np.column_stack([X[:, :1].astype(np.float64), rest])
            family = Product([(first, [0]), (second, list(range(1, X.shape[1])))])
        kw = {}
        if schedule and method in ("em", "vem"):
            kw["accelerate"] = "squarem"
        if schedule and method == "meanfield":
            kw["n_batches"] = 3
        est = fastvem.Mixture(family, K, method=method, random_state=0, max_iter=10,
                              n_samples=4, burn_in=2, **kw)
        if not _fit_untouched(est, X, weighted):
            return
        for a in (est.params_, est.weights_):
            assert _finite(np.asarray(a)), "Mixture parameters are not finite"
        for call in (est.predict_proba, est.score_samples, est.predict):
            _finite_or_refused(call, X, what="Mixture")
    _run(test, n)


_EXPFAM_DTYPES = {"bernoulli_uint8": np.uint8, "counts_float64": np.float64,
                  "counts_float32": np.float32, "categorical_int32": np.int32,
                  "bernoulli_bits": np.uint8, "csr_float64": np.int64,
                  "gaussian_float64": np.float64, "gaussian_float32": np.float32,
                  "gaussian_full_float64": np.float64, "gaussian_full_float32": np.float32}


@st.composite
def _expfam_part(draw, N):
    """(kind name, data, aux, S) for one family of the row driver: mostly well-formed
    (so that the kernel runs), with one field at a time drawn wrong."""
    kind = draw(st.sampled_from(sorted(_EXPFAM_DTYPES)))
    D = draw(st.integers(0, 5))
    dtype = draw(st.sampled_from([_EXPFAM_DTYPES[kind]] * 4 + [np.float64, np.int32,
                                                               np.uint8]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    aux, S = None, D
    if kind == "categorical_int32":
        cats = rng.integers(1, 4, D)
        aux = np.concatenate(([0], np.cumsum(cats))).astype(np.int64)
        S = int(aux[-1])
        data = (rng.integers(0, 4, (N, D)) * draw(st.sampled_from([1, 1, 1, -1, 2])))
    elif kind == "csr_float64":
        S = D + 1
        lengths = rng.integers(0, 3, N)
        ptr = np.concatenate(([0], np.cumsum(lengths)))
        data = np.column_stack((ptr[:-1], ptr[1:]))
        cols = rng.integers(0, S + draw(st.sampled_from([0, 0, 0, 1])), ptr[-1])
        aux = np.column_stack((cols, rng.random(ptr[-1]))).astype(np.float64)
    elif kind == "bernoulli_bits":
        S = 8 * D - draw(st.integers(0, 7)) if D else 0
        data = rng.integers(0, 256, (N, D))
    elif kind.startswith("gaussian"):
        full = "full" in kind
        S = D + D * (D + 1) // 2 if full else 2 * D
        data = rng.normal(size=(N, D)) * draw(st.sampled_from([1.0, 1.0, 1e200, np.nan]))
        aux = draw(st.sampled_from([np.zeros(D), np.zeros(D + 1), None]))
    else:
        data = rng.poisson(2.0, (N, D)) * draw(st.sampled_from([1, 1, 1, -1]))
    data = np.asarray(data).astype(dtype)
    if draw(st.integers(0, 9)) == 0:
        data = np.asfortranarray(data)
    S += draw(st.sampled_from([0, 0, 0, 0, 1, -1]))
    return kind, data, aux, max(S, 0)


def expfam_inputs(n):
    """The exponential-family row driver's entries (fastvem.kernels' low level:
    _expfam.row_pass, log_joint_rows) on generated buffers of every features kind
    and products of them, with wrong shapes, dtypes, aux arrays, codes out of range,
    labels, modes and thread counts: a ValueError / TypeError, or finite statistics
    and log-joint rows where the inputs are finite -- never a crash."""
    from fastvem._ext import _expfam as k

    @given(st.integers(0, 40).flatmap(
        lambda N: st.tuples(st.just(N), st.lists(_expfam_part(N), min_size=1, max_size=3))),
        st.booleans(), st.integers(0, 4), st.integers(0, 4), st.integers(1, 3),
        st.booleans(), st.integers(0, 2 ** 16))
    def test(spec, product, K, mode, threads, weighted, seed):
        N, parts = spec
        rng = np.random.default_rng(seed)
        if product:
            data = [(k.FEATURES.get(kind, -1), d, a, S) for kind, d, a, S in parts]
            kind, aux, S = k.FEATURES["product"], None, sum(p[3] for p in parts)
        else:
            kname, data, aux, S = parts[0]
            kind = k.FEATURES[kname]
        W = rng.normal(size=(K, S))
        c, logw = rng.normal(size=K), np.log(np.full(K, 1.0 / max(K, 1)))
        sw = rng.random(N) if weighted else None
        given = rng.integers(0, max(K, 1), N).astype(np.int64) if mode == 3 \
            else np.empty(0, dtype=np.int64)
        labels = np.empty(N if mode in (1, 2) else 0, dtype=np.int64)
        stats, nk, totals = np.zeros((K, S)), np.zeros(K), np.zeros(3)
        bad_codes = any(kn == "categorical_int32" and d.dtype == np.int32 and a is not None
                        and d.ndim == 2 and d.shape[1] == len(a) - 1 and d.size
                        and (np.any(d < 0) or np.any(d >= np.diff(a)[None, :]))
                        for kn, d, a, _ in (parts if product else parts[:1]))
        try:
            k.row_pass(data, aux, kind, 0, S, W, c, logw, sw, given, labels, stats, nk, totals,
                       mode, seed, threads)
        except CLEAN as exc:
            _refused(exc)
        else:
            assert not bad_codes, "row_pass accepted category codes out of range"
            finite_in = all(np.all(np.isfinite(np.asarray(p[1], dtype=np.float64)))
                            for p in parts)
            if finite_in and "gaussian" not in str(parts):
                assert _finite(stats) and _finite(nk), "row_pass gave NaN / inf"
            if mode in (1, 2) and N and K:
                assert labels.min() >= 0 and labels.max() < K, "labels out of range"
        out = np.empty((N, K))
        try:
            k.log_joint_rows(data, aux, kind, 0, S, W, c, logw, out, threads)
        except CLEAN as exc:
            _refused(exc)
    _run(test, n)


def lda_inputs(n):
    """Generated corpora (dense / CSR / CSC, duplicates, negative, NaN, inf,
    fractional, huge and tiny counts, empty documents, zero rows or columns) into
    every LDA method and learning_method: finite topics or a clean refusal, and
    the caller's arrays untouched."""
    @given(corpora(), st.sampled_from([dict(method="meanfield"), dict(method="vem"),
                                       dict(method="gibbs"), dict(method="crisp"),
                                       dict(learning_method="online"),
                                       dict(learning_method="memoized")]),
           st.integers(1, 3))
    def test(X, kw, K):
        before = X.copy()
        est = fastvem.LatentDirichletAllocation(K, max_iter=3, random_state=0, n_threads=2,
                                                **kw)
        try:
            est.fit(X)
        except CLEAN as exc:
            _refused(exc)
            return
        finally:
            assert _same(X, before), "X was modified"
        assert _finite(est.components_) and _finite(est.exp_dirichlet_component_)
        for call in (est.transform, est.perplexity, est.score):
            _finite_or_refused(call, X)
    _run(test, n)


# values a user might set a parameter to, valid or not
VALUES = [None, "abc", -1, 0, 1, 2, 3, 60, 0.5, 1e-300, 1e300, np.nan, 2 ** 31, True,
          "full", "tied", "diag", "spherical", "em", "meanfield", "gibbs", "vem", "crisp",
          "online", "batch", "memoized", "dirichlet_distribution", "random", [1.0, 2.0]]


def _fitted(kind):
    rng = np.random.default_rng(0)
    if kind == "lda":
        X = rng.poisson(1.0, size=(20, 8)).astype(float)
        X[:, 0] += 1
        return fastvem.LatentDirichletAllocation(3, max_iter=3, random_state=0).fit(X), X
    if kind.startswith("hmm-"):            # hmm-<family>-<method>
        _, family, method = kind.split("-")
        if family == "categorical":
            X = rng.integers(0, 4, (40, 1))
            est = fastvem.CategoricalHMM(2, method=method, n_iter=4, random_state=0)
        else:
            X = rng.normal(size=(40, 2))
            est = fastvem.GaussianHMM(2, covariance_type=family, method=method, n_iter=4,
                                      random_state=0)
        return est.fit(X, [25, 15]), X
    X = rng.normal(size=(40, 2))
    method = kind.split("-")[1]
    est = _mixture("bgm" if method == "bgm" else "gm", method, "full", 2)
    return est.fit(X), X


# parameters that set an amount of work: huge values are capped in the fuzz
WORK = ("max_iter", "n_init", "n_samples", "burn_in", "thin", "n_chains", "n_batches",
        "batch_size", "max_doc_update_iter", "total_samples", "n_components",
        "verbose_interval", "evaluate_every")

PUBLIC = ("predict", "predict_proba", "score", "score_samples", "sample", "bic", "aic",
          "transform", "perplexity", "partial_fit", "fit_predict", "fit")


def mutations_after_fit(n):
    """set_params of any constructor parameter to any value after fit, then every
    public method: finite results or a clean refusal ('refit required' when a
    parameter that shapes the fitted state changed), and a save that loads."""
    kinds = ["lda"] + [f"gm-{m}" for m in METHODS] + ["gm-bgm"]
    fitted = {k: _fitted(k) for k in kinds}

    @given(st.sampled_from(kinds), st.data())
    def test(kind, data):
        import copy
        est, X = fitted[kind]
        est = copy.deepcopy(est)
        param = data.draw(st.sampled_from(sorted(est.get_params(deep=False))))
        value = data.draw(st.sampled_from(VALUES))
        if param in WORK and isinstance(value, (int, float)) and value > 100:
            value = 100        # a huge amount of work asked for is long, not wrong
        est.set_params(**{param: value})
        for name in PUBLIC:
            if not hasattr(est, name):
                continue
            args = (3,) if name == "sample" else (X,)
            try:
                out = getattr(est, name)(*args)
            except CLEAN + (NotFittedError,) as exc:
                _refused(exc)
                continue
            if name in ("fit", "partial_fit"):
                continue
            assert _finite(out), f"{param}={value!r}: {name} gave NaN / inf"
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "m.npz")
            try:
                est.save(path)
            except CLEAN + (NotFittedError,) as exc:
                _refused(exc)
                return
            back = fastvem.load(path)
            call = back.transform if kind == "lda" else back.score_samples
            assert _finite(call(X))
    _run(test, n)


def corrupted_files(n):
    """A saved model (every estimator x method) with one stored array replaced by a
    random array (another shape, dtype or values): load refuses it with a
    ValueError, or the loaded model predicts finite values."""
    kinds = (["lda"] + [f"gm-{m}" for m in METHODS] + ["gm-bgm"]
             + [f"hmm-{f}-{m}" for f in ("full", "diag", "categorical") for m in METHODS])
    saved = {}
    for k in kinds:
        est, X = _fitted(k)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "m.npz")
            est.save(path)
            with np.load(path, allow_pickle=False) as f:
                saved[k] = ({key: f[key] for key in f.files}, X)

    @given(st.sampled_from(kinds), st.data())
    def test(kind, data):
        files, X = saved[kind]
        files = dict(files)
        key = data.draw(st.sampled_from(sorted(k for k in files if k != "__meta__")))
        old = files[key]
        how = data.draw(st.sampled_from(["drop", "shape", "nan", "negate", "zero", "dtype",
                                         "scalar", "huge", "transpose"]))
        if how == "drop":
            del files[key]
        elif how == "shape":
            files[key] = np.resize(old, max(old.size - 1, 0))
        elif how == "nan" and old.dtype.kind == "f":
            files[key] = np.full_like(old, np.nan)
        elif how == "negate" and old.dtype.kind in "fi":
            files[key] = -old
        elif how == "zero" and old.dtype.kind in "fi":
            files[key] = np.zeros_like(old)
        elif how == "dtype":
            files[key] = old.astype(str)
        elif how == "scalar":
            files[key] = np.array(1.0)
        elif how == "huge" and old.dtype.kind == "f":
            files[key] = old * 1e300
        elif how == "transpose" and old.ndim >= 2:
            files[key] = np.swapaxes(old, 0, 1).copy()
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "bad.npz")
            with open(path, "wb") as fh:
                np.savez(fh, **files)
            try:
                back = fastvem.load(path)
            except ValueError as exc:
                _refused(exc)
                return
            call = back.transform if kind == "lda" else back.predict_proba
            _finite_or_refused(call, X, what=f"{key} ({how}) loaded and")
    _run(test, n)


def kernel_inputs(n):
    """The low-level kernel API (fastvem.kernels) with generated means, precision
    factors, weights and seeds of any shape, dtype and value: finite outputs of
    the promised shapes or a clean refusal."""
    import fastvem.kernels as fk

    @given(st.integers(0, 12), st.integers(1, 3), st.integers(1, 3), st.sampled_from(COV),
           st.sampled_from(["float64", "float32"]), st.data())
    def test(N, D, K, cov, dtype, data):
        rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 16)))
        X = rng.normal(size=(N, D)).astype(dtype)
        means = rng.normal(size=(K, D)) * data.draw(st.sampled_from([1.0, 1e20, 1e37]))
        shape = {"full": (K, D, D), "tied": (D, D), "diag": (K, D), "spherical": (K,)}[cov]
        pc = rng.uniform(0.5, 2.0, size=shape)
        if cov in ("full", "tied"):
            pc = np.triu(pc)
        bad = data.draw(st.sampled_from(["none", "shape_means", "shape_pc", "nan", "lower",
                                         "weights", "huge_pc", "seed"]))
        weights, seed = None, 0
        if bad == "shape_means":
            means = means[:, :-1] if D > 1 else means[:0]
        elif bad == "shape_pc":
            pc = pc[..., :-1] if pc.ndim else np.ones(3)
        elif bad == "nan":
            means = means.copy()
            means[0, 0] = np.nan
        elif bad == "lower" and cov in ("full", "tied") and D > 1:
            pc = pc.T.copy()
        elif bad == "weights":
            weights = data.draw(st.sampled_from([np.ones(K), -np.ones(K), np.ones(K + 1)]))
        elif bad == "huge_pc":
            pc = pc * 1e30
        elif bad == "seed":
            seed = data.draw(st.sampled_from([None, "x", 1.5, -3, 2 ** 70]))
        calls = [lambda: fk.gaussian_log_prob(X, means, pc, cov, weights),
                 lambda: fk.gaussian_responsibilities(X, means, pc, cov, weights),
                 lambda: fk.gaussian_score_samples(X, means, pc, cov, weights),
                 lambda: fk.gaussian_predict(X, means, pc, cov, weights),
                 lambda: fk.gaussian_statistics(X, means, pc, cov, weights, assign="sample",
                                                seed=seed)]
        for call in calls:
            try:
                out = call()
            except CLEAN as exc:
                _refused(exc)
                continue
            if isinstance(out, fk.GaussianStats):
                out = (out.nk, out.s1)
            assert _finite(out), f"{bad}: NaN / inf from finite input"
    _run(test, n)


def parameter_scan(_n=None):
    """Exhaustive: every estimator x method, every constructor parameter set to
    every value in VALUES after a fit, then each public method.  Prints the counts
    of finite results, clean refusals, NaN / inf results and refusals whose message
    does not name the problem (a Python-internal conversion error, say)."""
    import collections
    import copy
    import re
    internal = re.compile(r"could not convert|float\(\) argument|invalid literal|not supported "
                          r"between|truth value|unhashable|object is not|has no len|object "
                          r"of type|int\(\) arg")
    kinds = ["lda"] + [f"gm-{m}" for m in METHODS] + ["gm-bgm"]
    counts, bad = collections.Counter(), []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            est0, X = _fitted(kind)
            for param in sorted(est0.get_params(deep=False)):
                for value in VALUES:
                    if param in WORK and isinstance(value, (int, float)) and value > 100:
                        continue
                    est = copy.deepcopy(est0).set_params(**{param: value})
                    for name in ("fit", "predict", "transform", "partial_fit", "score",
                                 "sample", "save"):
                        if not hasattr(est, name):
                            continue
                        args = ((os.path.join(tmp, "m.npz"),) if name == "save"
                                else (3,) if name == "sample" else (X,))
                        try:
                            out = getattr(est, name)(*args)
                        except CLEAN + (NotFittedError,) as exc:
                            if internal.search(str(exc)):
                                counts["unhelpful refusal"] += 1
                                bad.append((kind, param, value, name, str(exc)[:100]))
                            else:
                                counts["clean refusal"] += 1
                            continue
                        except Exception as exc:          # noqa: BLE001 - counted
                            counts["other exception"] += 1
                            bad.append((kind, param, value, name, repr(exc)[:100]))
                            continue
                        if name in ("predict", "transform", "score", "sample") and \
                                not _finite(out):
                            counts["NaN / inf"] += 1
                            bad.append((kind, param, value, name, "NaN / inf"))
                        else:
                            counts["finite"] += 1
    print("probes", sum(counts.values()), dict(counts))
    for row in bad:
        print(*row, sep=" | ")
    assert not bad


CASES = {f.__name__: f for f in (mixture_inputs, discrete_inputs, mixed_inputs,
                                 expfam_inputs, lda_inputs,
                                 mutations_after_fit, corrupted_files, kernel_inputs,
                                 parameter_scan)}

if __name__ == "__main__":
    CASES[sys.argv[1]](int(sys.argv[2]))
    print("ok", sys.argv[1], sys.argv[2])
