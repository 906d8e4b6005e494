"""The checkpointed passes of long sequences (_ext/_hmm.pyx, header: "Blocks, and
the checkpointed passes"): with the threshold lowered, every mode gives bitwise
the results of the plain passes -- the kernel's entries, for any thread count, and
the estimators' fits."""
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import fastvem
from fastvem._ext import _hmm
from fastvem.families.discrete import Categorical
from fastvem.families.normal import GaussianDiag, GaussianFull
from oracle_hmm import random_chain

# short sequences around long ones; with the threshold at 50: 51 rows in blocks of
# 8 (a short last block), 997 in 32 (a last block of 5), 2500 in 50 (every block
# full); at threshold 1 also 3 rows in blocks of 2 (a last block of 1 row)
LENGTHS = [3, 1, 2, 49, 12, 50, 51, 4, 997, 2500, 7, 1]
PLAIN = 10 ** 9


@pytest.fixture
def threshold():
    """Set the checkpoint threshold inside a test; the previous one comes back after."""
    before = _hmm.checkpoint_rows()
    yield _hmm.set_checkpoint_rows
    _hmm.set_checkpoint_rows(before)
    assert _hmm.checkpoint_rows() == before


def offsets_of(lengths):
    return np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)


class Case:
    """A family with K states at random parameters: its prepared rows and (W, c)."""

    def __init__(self, name, K, N, rng, dtype=np.float64):
        if name == "categorical":
            cats = [3, 5]
            X = np.stack([rng.integers(0, n, N) for n in cats], axis=1)
            fam = Categorical(cats)
            theta = np.hstack([rng.dirichlet(np.ones(n), size=K) for n in cats])
        else:
            D = 3
            X = (rng.normal(size=(N, D)) * 1.5).astype(dtype)
            means = rng.normal(size=(K, D)) * 2
            fam = GaussianDiag(D) if name == "gaussian_diag" else GaussianFull(D)
        data = fam.prepare(X, fitting=True)
        if name == "gaussian_diag":
            mu = means - fam.ref                # the statistics are about the reference
            var = rng.uniform(0.5, 2.0, (K, D))
            theta = np.hstack((mu, var + mu * mu))
        elif name == "gaussian_full":
            covs = []
            for _ in range(K):
                a = rng.normal(size=(D, D))
                covs.append(a @ a.T + 0.5 * np.eye(D))
            theta = fam.theta_from(means, np.array(covs))
        W, c = fam.effective(theta)
        self.fam, self.data, self.K = fam, data, K
        self.W, self.c = np.ascontiguousarray(W), np.ascontiguousarray(c)

    def args(self):
        f = self.fam
        return (f.kernel_data(self.data), f.aux(), _hmm.FEATURES[f.features], f.address,
                self.W.shape[1], self.W, self.c)


chain = random_chain


def every_output(case, ls, lt, off, sw, mode, n_threads):
    """hmm_pass's accumulators and labels, and (mode 0) hmm_posteriors' or (mode 1)
    hmm_viterbi's outputs, as bytes by name."""
    K, S = case.W.shape
    N, n_seq = off[-1], len(off) - 1
    out = dict(stats=np.zeros((K, S)), nk=np.zeros(K), start=np.zeros(K),
               trans=np.zeros((K, K)), totals=np.zeros(3),
               labels=np.full(N, -1, dtype=np.int64))
    _hmm.hmm_pass(*case.args(), ls, lt, off, sw, out["stats"], out["nk"], out["start"],
                  out["trans"], out["totals"], mode, 17, n_threads, labels=out["labels"])
    if mode in (0, 3):
        out["gamma"], out["loglik"] = np.full((N, K), np.nan), np.full(n_seq, np.nan)
        _hmm.hmm_posteriors(*case.args(), ls, lt, off, out["gamma"], out["loglik"], n_threads,
                            mode=mode)
    if mode == 1:
        out["path"], out["logjoint"] = np.full(N, -1, dtype=np.int64), np.full(n_seq, np.nan)
        _hmm.hmm_viterbi(*case.args(), ls, lt, off, out["path"], out["logjoint"], n_threads)
    return out


FAMILIES = [("gaussian_diag", 3, np.float64), ("gaussian_diag", 4, np.float32),
            ("gaussian_diag", 8, np.float64), ("gaussian_full", 4, np.float64),
            ("gaussian_full", 3, np.float32), ("categorical", 3, None),
            ("categorical", 4, None)]


@pytest.mark.parametrize("name,K,dtype", FAMILIES)
def test_checkpointed_equals_plain_bitwise(threshold, name, K, dtype):
    """softmax, argmax and sample (and vem, which keeps the plain path) with the
    threshold at 50 and at 1 give bytes for bytes what the plain passes give, for
    1, 2 and 3 threads, weighted, with a forbidden transition."""
    rng = np.random.default_rng([K, len(name), 0 if dtype is None else np.dtype(dtype).itemsize])
    off = offsets_of(LENGTHS)
    case = Case(name, K, off[-1], rng, dtype)
    ls, lt = chain(rng, K, forbid=True)
    sw = rng.uniform(0.2, 3.0, len(LENGTHS))
    modes = (0, 1, 2)
    threshold(PLAIN)
    ref = {(m, T): every_output(case, ls, lt, off, sw, m, T) for m in modes for T in (1, 2, 3)}
    # vem needs every transition allowed
    ls3, lt3 = chain(rng, K, forbid=False)
    ref_vem = every_output(case, ls3, lt3, off, sw, 3, 2)
    plain_scratch = _hmm.scratch_size(off, K)
    for thr in (50, 1):
        threshold(thr)
        # the blocks' path is taken: 2500 rows in 50-row blocks, not one of 2500
        assert _hmm.scratch_size(off, K)[0] < plain_scratch[0] // 10
        for m in modes:
            for T in (1, 2, 3):
                got = every_output(case, ls, lt, off, sw, m, T)
                for key, value in ref[m, T].items():
                    assert value.tobytes() == got[key].tobytes(), (thr, m, T, key)
        got = every_output(case, ls3, lt3, off, sw, 3, 2)
        for key, value in ref_vem.items():
            assert value.tobytes() == got[key].tobytes(), (thr, "vem", key)
    # the outputs are the real ones: finite posteriors summing to 1, full paths
    out = ref[0, 1]
    gamma = out["gamma"]
    assert np.all(np.isfinite(gamma)) and np.allclose(gamma.sum(1), 1.0)
    assert np.all(ref[1, 1]["path"] >= 0) and np.all(ref[2, 1]["labels"] >= 0)
    # the path of argmax and hmm_viterbi's are one path
    assert np.array_equal(ref[1, 1]["path"], ref[1, 1]["labels"])


def test_one_long_sequence_and_the_blocks(threshold):
    """A single sequence in blocks of every shape: L = 2 .. 40 rows at threshold 1
    (B = ceil(sqrt(L)); short last blocks, blocks of 2 rows) equals the plain pass."""
    rng = np.random.default_rng(5)
    for L in range(2, 41):
        off = offsets_of([L])
        case = Case("gaussian_diag", 4, L, rng)
        ls, lt = chain(rng, 4, forbid=True)
        for m in (0, 1, 2):
            threshold(PLAIN)
            ref = every_output(case, ls, lt, off, None, m, 1)
            threshold(1)
            got = every_output(case, ls, lt, off, None, m, 1)
            for key, value in ref.items():
                assert value.tobytes() == got[key].tobytes(), (L, m, key)


def test_far_below_rows_and_unreachable_states(threshold):
    """Rows whose reachable states lie far below the best (the forward step's log
    space) and a state the chain cannot reach, inside checkpointed blocks."""
    rng = np.random.default_rng(11)
    K = 4
    lengths = [700, 3, 1200]
    off = offsets_of(lengths)
    case = Case("gaussian_diag", K, off[-1], rng)
    case.c = case.c.copy()
    case.c[3] += 800.0                       # state 3 best by far on every row
    ls = np.log(np.array([0.5, 0.5, 0.0, 0.0]) + 1e-300)
    ls[2:] = -np.inf
    A = rng.dirichlet(np.ones(K), size=K)
    A[:, 3] = 0.0                            # ... and never reached
    A /= A.sum(1, keepdims=True)
    with np.errstate(divide="ignore"):
        lt = np.log(A)
    for m in (0, 1, 2):
        threshold(PLAIN)
        ref = every_output(case, ls, lt, off, None, m, 2)
        threshold(30)
        got = every_output(case, ls, lt, off, None, m, 2)
        for key, value in ref.items():
            assert value.tobytes() == got[key].tobytes(), (m, key)
        assert np.all(np.isfinite(ref["totals"]))


def test_scratch_is_sqrt_of_the_length(threshold):
    """The per-thread scratch of the blocks: 3 (L + 1) K + K doubles for a plain
    sequence, (3 (B + 1) + nb) K (B = ceil(sqrt(L))) once it is checkpointed; vem's
    stays plain."""
    K = 4
    L = 10 ** 6 + 1
    off = offsets_of([5, L, 17])
    threshold(10 ** 6)
    B = 1001                                    # ceil(sqrt(10^6 + 1))
    nb = -(-L // B)
    assert _hmm.scratch_size(off, K, 0) == ((3 * (B + 1) + nb) * K, B + 1)
    assert _hmm.scratch_size(off, K, 1) == ((3 * (B + 1) + nb) * K, (B + 1) * (1 + K))
    assert _hmm.scratch_size(off, K, 3) == ((3 * (L + 1) + 1) * K, L + 1)
    # a plain sequence up to the threshold: the short ones then set the size
    assert _hmm.scratch_size(offsets_of([5, 10 ** 6, 17]), K, 0)[0] == (3 * (10 ** 6 + 1) + 1) * K
    threshold(PLAIN)
    assert _hmm.scratch_size(off, K, 0) == ((3 * (L + 1) + 1) * K, L + 1)
    threshold(50)
    assert _hmm.scratch_size(offsets_of([50, 3]), K, 0) == ((3 * 51 + 1) * K, 51)
    assert _hmm.scratch_size(offsets_of([51]), K, 0) == ((3 * 9 + 7) * K, 9)


def test_set_checkpoint_rows_validates_and_returns_the_previous(threshold):
    assert _hmm.CHECKPOINT_ROWS == 10 ** 6
    prev = threshold(123)
    assert _hmm.checkpoint_rows() == 123
    assert threshold(np.int64(7)) == 123 and _hmm.checkpoint_rows() == 7
    for bad in (0, -5, 1.5, True, "10", None, 2 ** 64):
        with pytest.raises(ValueError, match="set_checkpoint_rows: n must be an integer >= 1"):
            _hmm.set_checkpoint_rows(bad)
    assert _hmm.checkpoint_rows() == 7
    threshold(prev)


# ---------------------------------------------------------------- the estimators
def _gaussian_data(rng, lengths, dtype=np.float64):
    K = 3
    A = np.array([[0.9, 0.05, 0.05], [0.1, 0.85, 0.05], [0.1, 0.1, 0.8]])
    z = [0]
    for _ in range(sum(lengths) - 1):
        z.append(rng.choice(K, p=A[z[-1]]))
    z = np.array(z)
    X = rng.normal(size=(len(z), 2)) + 3.0 * z[:, None]
    return X.astype(dtype)


def _fitted(est):
    """Every fitted attribute (the arrays and numbers a fit sets), by name."""
    out = {}
    for key, value in vars(est).items():
        if key.endswith("_") and not key.startswith("_"):
            if isinstance(value, np.ndarray):
                out[key] = value.tobytes()
            elif isinstance(value, (int, float, np.floating)):
                out[key] = float(value)
            elif isinstance(value, dict):               # trace_, mixing_ (not the timings)
                out[key] = repr(sorted((k, np.asarray(v).tobytes()) for k, v in value.items()
                                       if k != "seconds"))
    out["history"] = repr(list(est.monitor_.history))
    return out


@pytest.mark.parametrize("method,cov,dtype", [("em", "diag", np.float64),
                                              ("em", "full", np.float32),
                                              ("crisp", "diag", np.float64),
                                              ("gibbs", "diag", np.float32)])
def test_estimator_fit_equals_plain(threshold, method, cov, dtype):
    """A GaussianHMM fit with the threshold lowered (the long sequences
    checkpointed in every iteration and in the predictions) equals the plain fit."""
    rng = np.random.default_rng(2)
    lengths = [300, 1, 1100, 51, 40, 2]
    X = _gaussian_data(rng, lengths, dtype)
    kw = dict(n_chains=2, n_iter=20) if method == "gibbs" else dict(n_iter=6, tol=-np.inf)
    outs = []
    for thr in (PLAIN, 50):
        threshold(thr)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est = fastvem.GaussianHMM(3, covariance_type=cov, method=method, random_state=0,
                                      n_threads=2, **kw).fit(X, lengths)
        got = _fitted(est)
        ll, gamma = est.score_samples(X, lengths)
        lp, path = est.decode(X, lengths)
        got["score"], got["gamma"] = ll, gamma.tobytes()
        got["decode"], got["path"] = lp, path.tobytes()
        outs.append(got)
    assert outs[0].keys() == outs[1].keys()
    for key in outs[0]:
        assert outs[0][key] == outs[1][key], key
    assert np.isfinite(outs[0]["score"])


def test_categorical_estimator_fit_equals_plain(threshold):
    rng = np.random.default_rng(4)
    lengths = [900, 3, 120]
    X = rng.integers(0, 5, (sum(lengths), 1))
    outs = []
    for thr in (PLAIN, 40):
        threshold(thr)
        est = fastvem.CategoricalHMM(3, n_iter=5, tol=-np.inf, random_state=1).fit(X, lengths)
        got = _fitted(est)
        got["score"] = est.score(X, lengths)
        got["path"] = est.predict(X, lengths).tobytes()
        outs.append(got)
    assert outs[0] == outs[1]
