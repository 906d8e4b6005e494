"""The compiled entries never trust their callers: every buffer must have exactly the
size the kernel's loops assume (K, D, V, N each from one source), else a ValueError
naming the argument, raised before any work; and the thread count is checked (>= 1)
and clamped to the CPUs available without changing any result.

Each kernel has a builder of valid arguments (as fastvem's own callers build them:
fastvem/families/gaussian.py, fastvem/structures/topic_model.py, fastvem/models/lda.py);
the tests perturb one argument at a time, by one element along one axis."""
import os
import re

import numpy as np
import pytest
import scipy.sparse as sp

from fastvem._ext import _gaussian as _k
from fastvem._ext import _lda
from fastvem.corpus import check_corpus
from fastvem.families.gaussian import GaussianFamily, precision_cholesky

from oracle import word_topic_lists

COVS = ["full", "tied", "diag", "spherical"]


# ----------------------------------------------------------------------------------
# valid arguments, as ordered dicts (the kernels are called positionally)
# ----------------------------------------------------------------------------------

def gaussian_args(entry, cov, N=37, K=3, D=4, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(K, D)) * 2
    if cov == "full":
        A = rng.normal(size=(K, D, D))
        covs = A @ A.transpose(0, 2, 1) / D + 0.5 * np.eye(D)
    elif cov == "tied":
        A = rng.normal(size=(D, D))
        covs = A @ A.T / D + 0.5 * np.eye(D)
    elif cov == "diag":
        covs = rng.uniform(0.3, 3, size=(K, D))
    else:
        covs = rng.uniform(0.3, 3, size=K)
    pc = precision_cholesky(covs, cov)
    fam = GaussianFamily(cov)
    kp = fam.kernel_params(means, pc, fam.log_normaliser(pc, D) + np.log(np.full(K, 1 / K)),
                           dtype)
    X = (rng.normal(size=(N, D)) * 2).astype(dtype)
    S = _k.stats_size(_k.COVARIANCE_TYPES[cov], K, D)
    if entry == "fit_pass":
        return dict(X=X, sample_weight=rng.uniform(0.5, 2.0, N), fac=kp.fac, bvec=kp.bvec,
                    ref=kp.ref, cst=kp.cst, stats=np.zeros(S), covariance_type=cov, mode=0,
                    seed=7, n_threads=2)
    if entry == "accumulate":
        R = np.ascontiguousarray(rng.dirichlet(np.ones(K), N), dtype=dtype)
        return dict(X=X, R=R, ref=kp.ref, stats=np.zeros(S), covariance_type=cov,
                    n_threads=2)
    assert entry == "estep"
    return dict(X=X, fac=kp.fac, bvec=kp.bvec, ref=kp.ref, cst=kp.cst,
                out=np.empty((N, K), dtype=dtype), out_norm=np.empty(N),
                out_label=np.empty(N, dtype=np.intp), covariance_type=cov,
                responsibilities=True, n_threads=2)


def _corpus(n_docs, V, seed):
    rng = np.random.default_rng(seed)
    X = sp.random(n_docs, V, density=0.15, random_state=seed, format="lil")
    for d in range(n_docs):                     # no empty document (the last one included)
        X[d, int(rng.integers(V))] = 1.0
    X = X.tocsr()
    X.data = np.ceil(X.data * 4)
    return check_corpus(X, integer=True)


def lda_args(entry, n_docs=40, V=30, K=3, seed=0):
    rng = np.random.default_rng(seed)
    if entry == "doc_fixed_point":
        c = _corpus(n_docs, V, seed)
        eb = np.ascontiguousarray(rng.dirichlet(np.ones(V), K).T)
        return dict(indptr=c.indptr, indices=c.indices, data=c.data, eb=eb,
                    alpha=np.full(K, 0.5), gamma=np.ones((n_docs, K)),
                    sstats=np.zeros((V, K)), totals=np.zeros(3 + K), hard=0, max_iter=50,
                    tol=1e-4, need_stats=True, restart=0, n_threads=2)
    if entry == "gibbs_sweep":
        c = _corpus(n_docs, V, seed)
        doc_ptr, words = c.tokens()
        z = rng.integers(0, K, words.shape[0], dtype=np.int32)
        nwk = np.zeros((V, K), np.int64)
        np.add.at(nwk, (words, z), 1)
        wlist, wcnt, wlen, wpos = word_topic_lists(nwk)
        n_d = np.diff(doc_ptr)
        dk_ptr = np.concatenate([[0], np.cumsum(np.minimum(n_d, K))])
        return dict(doc_ptr=doc_ptr, words=words, z=z, nk=nwk.sum(axis=0), wlist=wlist,
                    wcnt=wcnt, wlen=wlen, wpos=wpos, doc_ll=np.zeros(n_docs),
                    alpha=np.full(K, 0.3), eta=0.1, seed=np.uint64(5), sweep=1,
                    n_threads=2, dk_ptr=dk_ptr, dk_top=np.full(dk_ptr[-1], -7, np.int32),
                    dk_cnt=np.full(dk_ptr[-1], -7, np.int32))   # unused slots stay -7
    if entry == "count_histogram":
        n = 50
        return dict(groups=rng.integers(0, 4, n).astype(np.int32),
                    values=rng.integers(-1, 9, n).astype(np.int32),
                    hist=np.zeros((4, 7), np.int64))
    if entry == "local_vocabulary":
        nnz = 3 * V
        return dict(indices=rng.integers(0, V, nnz).astype(np.int32),
                    scratch=np.full(V, -1, np.int32), words=np.empty(min(nnz, V), np.int32),
                    local=np.empty(nnz, np.int32))
    if entry == "lazy_effective":
        n = 7
        S = rng.uniform(0.1, 2.0, (V, K))
        return dict(S=S, a=0.9, b=0.05,
                    words=np.sort(rng.choice(V, n, replace=False)).astype(np.int32),
                    total=0.9 * S.sum(axis=0) + V * 0.05, out=np.empty((n, K)),
                    posterior=True, n_threads=2)
    if entry == "lazy_add":
        n = 7
        S = rng.uniform(0.1, 2.0, (V, K))
        return dict(S=S, colsum=S.sum(axis=0),
                    words=np.sort(rng.choice(V, n, replace=False)).astype(np.int32),
                    stats=rng.uniform(0, 3, (n, K)), eb=rng.uniform(0.1, 1, (n, K)), coef=0.7,
                    soft=True, n_threads=2)
    if entry == "gibbs_word_terms":
        nwk = rng.integers(0, 3, (V, K)) * rng.integers(1, 50, (V, K))
        wlist, wcnt, wlen, _ = word_topic_lists(nwk)
        return dict(wlist=wlist, wcnt=wcnt, wlen=wlen, acc=np.zeros((V, K)), add=True,
                    eta=0.05, n_threads=2)
    if entry == "exp_digamma_array":
        return dict(x=rng.uniform(0.1, 20, 11), ps=1.5, out=np.empty(11))
    assert entry == "digamma_array"
    return dict(x=rng.uniform(0.1, 20, 11), out=np.empty(11))


ENTRIES = {
    "fit_pass": _k.fit_pass, "accumulate": _k.accumulate, "estep": _k.estep,
    "doc_fixed_point": _lda.doc_fixed_point, "gibbs_sweep": _lda.gibbs_sweep,
    "count_histogram": _lda.count_histogram, "local_vocabulary": _lda.local_vocabulary,
    "lazy_effective": _lda.lazy_effective, "lazy_add": _lda.lazy_add,
    "gibbs_word_terms": _lda.gibbs_word_terms, "digamma_array": _lda.digamma_array,
    "exp_digamma_array": _lda.exp_digamma_array,
}
GAUSSIAN = ("fit_pass", "accumulate", "estep")


def build(entry, cov=None, **kw):
    return gaussian_args(entry, cov, **kw) if entry in GAUSSIAN else lda_args(entry, **kw)


def call(entry, args):
    return ENTRIES[entry](*args.values())


def perturb(a, axis, delta):
    """a with one element (slice) fewer (delta -1) or more (+1, a copy of the last one)
    along axis, C-contiguous."""
    a = np.asarray(a)
    if delta < 0:
        return np.ascontiguousarray(np.delete(a, a.shape[axis] - 1, axis=axis))
    last = np.take(a, [a.shape[axis] - 1], axis=axis)
    return np.ascontiguousarray(np.concatenate([a, last], axis=axis))


# (entry, argument, axes perturbed).  Arguments that are the source of a size (X for N
# and D, cst or R for K, eb / wlist / S for K and V, indptr / doc_ptr for D, words or
# indices for N / nnz) are perturbed too: the message then names them as the source.
# Not perturbed, by contract: hist (any shape), local_vocabulary's scratch (V) and the
# rows of S (V): the indices into them are data, validated in Python; local_vocabulary's
# words may be longer than needed (a capacity).
PERTURBED = {
    "fit_pass": [("X", (0, 1)), ("sample_weight", (0,)), ("fac", (0,)), ("bvec", (0,)),
                 ("ref", (0,)), ("cst", (0,)), ("stats", (0,))],
    "accumulate": [("X", (0, 1)), ("R", (0, 1)), ("ref", (0,)), ("stats", (0,))],
    "estep": [("X", (0, 1)), ("fac", (0,)), ("bvec", (0,)), ("ref", (0,)), ("cst", (0,)),
              ("out", (0, 1)), ("out_norm", (0,)), ("out_label", (0,))],
    "doc_fixed_point": [("indptr", (0,)), ("indices", (0,)), ("data", (0,)), ("eb", (0, 1)),
                        ("alpha", (0,)), ("gamma", (0, 1)), ("sstats", (0, 1)),
                        ("totals", (0,))],
    "gibbs_sweep": [("doc_ptr", (0,)), ("words", (0,)), ("z", (0,)), ("nk", (0,)),
                    ("wlist", (0, 1)), ("wcnt", (0, 1)), ("wlen", (0,)), ("wpos", (0, 1)),
                    ("doc_ll", (0,)), ("alpha", (0,)), ("dk_ptr", (0,)), ("dk_top", (0,)),
                    ("dk_cnt", (0,))],
    "count_histogram": [("groups", (0,)), ("values", (0,))],
    "local_vocabulary": [("indices", (0,)), ("local", (0,))],
    "lazy_effective": [("S", (1,)), ("words", (0,)), ("total", (0,)), ("out", (0, 1))],
    "lazy_add": [("S", (1,)), ("colsum", (0,)), ("words", (0,)), ("stats", (0, 1)),
                 ("eb", (0, 1))],
    "gibbs_word_terms": [("wlist", (0, 1)), ("wcnt", (0, 1)), ("wlen", (0,)), ("acc", (0, 1))],
    "digamma_array": [("x", (0,)), ("out", (0,))],
    "exp_digamma_array": [("x", (0,)), ("out", (0,))],
}


def _cases():
    for entry, args in PERTURBED.items():
        for cov in (COVS if entry in GAUSSIAN else [None]):
            for name, axes in args:
                for axis in axes:
                    for delta in (-1, 1):
                        label = f"{entry}-{cov}-{name}-ax{axis}{delta:+d}".replace("-None", "")
                        yield pytest.param(entry, cov, name, axis, delta, id=label)
    yield pytest.param("local_vocabulary", None, "words", 0, -1, id="local_vocabulary-words")


# ----------------------------------------------------------------------------------
# contracts
# ----------------------------------------------------------------------------------

@pytest.mark.parametrize("entry,cov", [(e, c) for e in ENTRIES
                                       for c in (COVS if e in GAUSSIAN else [None])])
def test_a_valid_call_succeeds(entry, cov):
    call(entry, build(entry, cov))


@pytest.mark.parametrize("entry,cov,name,axis,delta", list(_cases()))
def test_a_wrong_size_names_the_argument(entry, cov, name, axis, delta):
    args = build(entry, cov)
    before = {k: np.array(v, copy=True) for k, v in args.items() if isinstance(v, np.ndarray)}
    args[name] = perturb(args[name], axis, delta)
    with pytest.raises(ValueError, match=rf"\b{re.escape(name)}\b"):
        call(entry, args)
    for k, v in before.items():          # raised before any work: nothing was written
        if k != name:
            np.testing.assert_array_equal(args[k], v)


@pytest.mark.parametrize("cov", COVS)
def test_estep_outputs_may_be_skipped(cov):
    args = gaussian_args("estep", cov)
    K = args["cst"].shape[0]
    for out in (np.empty((0, K)), np.empty((0, 0))):
        a = dict(args, out=out, out_norm=np.empty(0), out_label=np.empty(0, np.intp))
        call("estep", a)
    with pytest.raises(ValueError, match=r"\bout\b"):
        call("estep", dict(args, out=np.empty((0, K + 1))))


@pytest.mark.parametrize("entry", GAUSSIAN)
def test_unknown_covariance_type_is_a_value_error(entry):
    args = gaussian_args(entry, "full")
    with pytest.raises(ValueError, match="covariance_type"):
        call(entry, dict(args, covariance_type="fulll"))


def test_fit_pass_refuses_an_unknown_mode_and_unit_weights_may_be_empty():
    args = gaussian_args("fit_pass", "diag")
    call("fit_pass", dict(args, sample_weight=np.empty(0)))
    with pytest.raises(ValueError, match="mode"):
        call("fit_pass", dict(args, mode=3))


def test_gibbs_sweep_dk_buffers_come_together():
    args = lda_args("gibbs_sweep")
    with pytest.raises(ValueError, match="dk_ptr"):
        call("gibbs_sweep", dict(args, dk_ptr=None))
    with pytest.raises(ValueError, match="dk_top"):
        call("gibbs_sweep", dict(args, dk_top=None))
    call("gibbs_sweep", dict(args, dk_ptr=None, dk_top=None, dk_cnt=None))


def test_doc_fixed_point_without_stats_checks_only_their_topics():
    args = lda_args("doc_fixed_point")
    K = args["eb"].shape[1]
    call("doc_fixed_point", dict(args, need_stats=False, sstats=np.zeros((1, K))))
    with pytest.raises(ValueError, match="sstats"):
        call("doc_fixed_point", dict(args, need_stats=False, sstats=np.zeros((1, K + 1))))


def test_doc_fixed_point_refuses_gamma_with_more_topics_than_eb():
    """The heap corruption this prevents: gamma with 60 columns, eb and totals for 3."""
    args = lda_args("doc_fixed_point", K=3)
    args["gamma"] = np.ones((args["gamma"].shape[0], 60))
    with pytest.raises(ValueError, match=r"gamma.*\(40, 60\).*\(40, 3\)"):
        call("doc_fixed_point", args)


def test_lda_transform_after_changing_n_components_raises_instead_of_corrupting():
    from fastvem import LatentDirichletAllocation as LDA
    X = sp.random(60, 40, density=0.1, random_state=0, format="csr")
    X.data = np.ceil(X.data * 5)
    lda = LDA(3, max_iter=2, random_state=0, n_threads=1).fit(X)
    lda.set_params(n_components=60)
    with pytest.raises(ValueError, match="refit required"):   # the estimator refuses
        lda.transform(X)
    lda._fitted_with = None        # a caller past the estimator's check: the kernel refuses
    with pytest.raises(ValueError, match="K topics from eb"):
        lda.transform(X)


# ----------------------------------------------------------------------------------
# threads
# ----------------------------------------------------------------------------------

THREADED = ["fit_pass", "accumulate", "estep", "doc_fixed_point", "gibbs_sweep",
            "lazy_effective", "lazy_add", "gibbs_word_terms"]


def _big(entry):
    """Arguments large enough for several partitions (rows, documents, blocks)."""
    if entry in GAUSSIAN:
        args = gaussian_args(entry, "full", N=3 * _k.PART_ROWS + 17, K=3, D=3)
        if entry == "fit_pass":
            args["mode"] = 2
        return args
    if entry == "doc_fixed_point":
        return lda_args(entry, n_docs=5 * _lda.PARTITION_DOCS + 3, V=60, K=4)
    if entry == "gibbs_sweep":
        return lda_args(entry, n_docs=2 * _lda.GIBBS_BLOCK_DOCS + 9, V=60, K=4)
    return lda_args(entry, V=500, K=5)


def _outputs(entry, n_threads):
    args = _big(entry)
    args["n_threads"] = n_threads
    res = call(entry, args)
    return res, {k: v for k, v in args.items() if isinstance(v, np.ndarray)}


@pytest.mark.parametrize("entry", THREADED)
def test_many_threads_are_clamped_and_give_identical_results(entry):
    r1, a1 = _outputs(entry, 1)
    r2, a2 = _outputs(entry, 1000)
    assert r1 == r2
    for k in a1:
        np.testing.assert_array_equal(a1[k], a2[k], err_msg=k)   # bitwise, NaN-free


@pytest.mark.parametrize("n_threads", [0, -1])
@pytest.mark.parametrize("entry", THREADED)
def test_fewer_than_one_thread_is_a_value_error(entry, n_threads):
    args = build(entry, "spherical")
    args["n_threads"] = n_threads
    with pytest.raises(ValueError, match="n_threads"):
        call(entry, args)


def test_thread_count_is_clamped_to_the_cpus():
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:       # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    n = _k._threads(10 ** 9, 1000)
    assert 1 <= n <= max(cpus, 1)
    assert _k._threads(1, 1000) == 1          # one partition: one thread
    with pytest.raises(ValueError, match="n_threads"):
        _k._threads(10, 0)
