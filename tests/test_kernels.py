"""Each compiled kernel against the NumPy oracle, at chunk-boundary sizes and random shapes."""
import zlib

import numpy as np
import pytest

import fastvem.kernels as fk
from fastvem._ext import _gaussian as _k
from fastvem.families.gaussian import precision_cholesky
from fastvem.stats import GaussianStats

import oracle

COVS = ["full", "tied", "diag", "spherical"]


def random_params(rng, K, D, covariance_type, offset=0.0):
    means = rng.normal(size=(K, D)) * 2 + offset
    if covariance_type == "full":
        A = rng.normal(size=(K, D, D))
        covs = A @ A.transpose(0, 2, 1) / D + 0.5 * np.eye(D)
    elif covariance_type == "tied":
        A = rng.normal(size=(D, D))
        covs = A @ A.T / D + 0.5 * np.eye(D)
    elif covariance_type == "diag":
        covs = rng.uniform(0.3, 3, size=(K, D))
    else:
        covs = rng.uniform(0.3, 3, size=K)
    weights = rng.dirichlet(np.ones(K))
    return weights, means, precision_cholesky(covs, covariance_type)


def sizes(covariance_type, K, D):
    B = _k.chunk_rows(_k.COVARIANCE_TYPES[covariance_type], K, D)
    P = _k.PART_ROWS
    return sorted({0, 1, B - 1, B, B + 1, P - 1, P, P + 1, 2 * P + B + 3})


@pytest.mark.parametrize("covariance_type", COVS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("assign", ["softmax", "argmax", "sample"])
def test_statistics_against_oracle(covariance_type, dtype, assign):
    # a seed that is the same in every process (str hashes are salted per process)
    rng = np.random.default_rng(zlib.crc32(f"{covariance_type}-{assign}-{dtype.__name__}".encode()))
    for trial in range(2):
        K, D = (int(rng.integers(1, 7)), int(rng.integers(1, 6))) if trial else (3, 4)
        w, means, pc = random_params(rng, K, D, covariance_type, offset=5.0)
        for N in sizes(covariance_type, K, D):
            X = rng.normal(size=(2 * N + 8, D)) * 2 + 5.0
            if assign == "argmax":
                # keep rows whose best component wins clearly: a float32 argmax may
                # legitimately flip a near-tie that float64 resolves the other way
                lp = oracle.responsibilities(X, w, means, pc, covariance_type)[2]
                top2 = np.sort(lp, axis=1)[:, -2:] if K > 1 else np.c_[lp - 1, lp]
                X = X[top2[:, 1] - top2[:, 0] > 1e-2]
            X = X[:N]
            assert X.shape[0] == N
            sw = rng.uniform(0.1, 2.0, size=N)
            st = fk.gaussian_statistics(X.astype(dtype), means, pc, covariance_type, weights=w,
                                        sample_weight=sw, assign=assign, seed=11, n_threads=2)
            R, norm, lp = oracle.responsibilities(X, w, means, pc, covariance_type)
            if assign == "argmax":
                R = np.eye(K)[lp.argmax(1)] if N else np.zeros((0, K))
                obj = lp.max(1) if N else np.zeros(0)
            elif assign == "sample":
                # the draws are the kernel's; check they are one-hot, consistent with
                # the objective, and statistics of *those* labels
                assert st.nk.sum() == pytest.approx(sw.sum(), rel=1e-6 if dtype == np.float32 else 1e-12)
                continue
            else:
                obj = norm
            nk, s1, s2 = oracle.centred_stats(X, R * sw[:, None], means, covariance_type)
            got = st.recentre(means)
            tol = 1e-9 if dtype == np.float64 else 2e-4
            scale = max(1.0, np.abs(nk).max())
            np.testing.assert_allclose(got.nk, nk, atol=tol * scale, rtol=tol)
            np.testing.assert_allclose(got.s1, s1, atol=tol * max(1, np.abs(s1).max()) * 10)
            if s2 is not None:
                np.testing.assert_allclose(got.s2, s2, atol=tol * max(1, np.abs(s2).max()) * 10)
            assert got.objective == pytest.approx(float(sw @ obj), rel=tol, abs=tol * (1 + N))
            if assign == "softmax":      # sum_n w_n H[q(z_n)] = -sum w r log r
                with np.errstate(divide="ignore", invalid="ignore"):
                    H = -np.where(R > 0, R * np.log(R), 0.0).sum(1)
                assert got.entropy == pytest.approx(float(sw @ H), rel=tol * 10, abs=tol * (1 + N))
            else:
                assert got.entropy == 0.0
            assert got.weight == pytest.approx(sw.sum())


@pytest.mark.parametrize("covariance_type", COVS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_estep_entries_against_oracle(covariance_type, dtype):
    rng = np.random.default_rng(3)
    K, D = 4, 3
    w, means, pc = random_params(rng, K, D, covariance_type)
    for N in sizes(covariance_type, K, D):
        X = rng.normal(size=(N, D)) * 2
        R, norm, lp = oracle.responsibilities(X, w, means, pc, covariance_type)
        Xd = X.astype(dtype)
        tol = 1e-10 if dtype == np.float64 else 2e-4
        got_lp = fk.gaussian_log_prob(Xd, means, pc, covariance_type, weights=w)
        assert got_lp.dtype == dtype and got_lp.shape == (N, K)
        np.testing.assert_allclose(got_lp, lp, rtol=tol, atol=tol * 10)
        np.testing.assert_allclose(fk.gaussian_responsibilities(Xd, means, pc, covariance_type, w),
                                   R, atol=tol * 10)
        np.testing.assert_allclose(fk.gaussian_score_samples(Xd, means, pc, covariance_type, w),
                                   norm, rtol=tol, atol=tol * 10)
        if N:
            agree = fk.gaussian_predict(Xd, means, pc, covariance_type, w) == lp.argmax(1)
            assert agree.mean() > (0.999 if dtype == np.float32 else 1 - 1e-12)


def test_sample_mode_draws_are_calibrated_and_keyed_by_row():
    rng = np.random.default_rng(0)
    K, D, N = 3, 2, 60000
    w = np.array([0.2, 0.3, 0.5])
    means = np.zeros((K, D))                   # identical components: draws follow w
    pc = np.ones((K, D))
    X = rng.normal(size=(N, D))
    st = fk.gaussian_statistics(X, means, pc, "diag", weights=w, assign="sample", seed=5)
    np.testing.assert_allclose(st.nk / N, w, atol=4 * np.sqrt(0.25 / N))
    st1 = fk.gaussian_statistics(X, means, pc, "diag", weights=w, assign="sample", seed=5,
                                 n_threads=1)
    np.testing.assert_array_equal(st.nk, st1.nk)
    st2 = fk.gaussian_statistics(X, means, pc, "diag", weights=w, assign="sample", seed=6)
    assert not np.array_equal(st.nk, st2.nk)


@pytest.mark.parametrize("covariance_type", COVS)
def test_stats_group_laws(covariance_type):
    rng = np.random.default_rng(1)
    K, D = 3, 4
    w, means, pc = random_params(rng, K, D, covariance_type)
    X = rng.normal(size=(3000, D))
    whole = fk.gaussian_statistics(X, means, pc, covariance_type, weights=w)
    a = fk.gaussian_statistics(X[:1234], means, pc, covariance_type, weights=w)
    b = fk.gaussian_statistics(X[1234:], means, pc, covariance_type, weights=w)
    s = a + b
    np.testing.assert_allclose(s.nk, whole.nk, rtol=1e-12)
    np.testing.assert_allclose(s.s1, whole.s1, rtol=1e-10, atol=1e-9)
    d = s - b
    np.testing.assert_allclose(d.nk, a.nk, rtol=1e-10, atol=1e-10)
    h = 0.5 * whole
    np.testing.assert_allclose(h.nk, whole.nk / 2)
    # recentring is exact and round-trips
    other = whole.recentre(means + 1.0).recentre(whole.shift)
    np.testing.assert_allclose(other.s1, whole.s1, atol=1e-8)
    if whole.s2 is not None:
        np.testing.assert_allclose(other.s2, whole.s2, rtol=1e-10, atol=1e-7)
    # statistics about different references combine after recentring
    c = a.recentre(means) + b
    np.testing.assert_allclose(c.recentre(whole.shift).s1, whole.s1, atol=1e-8)


@pytest.mark.parametrize("covariance_type", COVS)
def test_m_step_equals_oracle(covariance_type):
    rng = np.random.default_rng(2)
    K, D = 3, 3
    w, means, pc = random_params(rng, K, D, covariance_type)
    X = rng.normal(size=(2000, D)) * 2
    st = fk.gaussian_statistics(X, means, pc, covariance_type, weights=w)
    scatter = fk.gaussian_data_scatter(X) if covariance_type == "tied" else None
    nw, nmu, ncov, npc = fk.gaussian_m_step(st, reg_covar=1e-6, scatter=scatter)
    from fastvem.families.gaussian import covariances_from_precision_cholesky
    covs = covariances_from_precision_cholesky(pc, covariance_type)
    ow, omu, ocov, _ = oracle.em_step(X, w, means, covs, covariance_type, 1e-6)
    np.testing.assert_allclose(nw, ow, rtol=1e-10)
    np.testing.assert_allclose(nmu, omu, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(ncov, ocov, rtol=1e-8, atol=1e-10)
    assert isinstance(st, GaussianStats)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rounds_of_dynamically_scheduled_partitions_sum_the_same_for_any_threads(dtype):
    """More partitions than one round holds (ROUND per thread): the sums are the
    same, bitwise, for 1, 2 and 3 threads (partitions reduced in order)."""
    from fastvem.kernels import gaussian_statistics
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150_000, 3)).astype(dtype)        # 37 partitions of 4096 rows
    means = rng.normal(size=(4, 3))
    pc = np.stack([np.eye(3)] * 4)
    runs = [gaussian_statistics(X, means, pc, "full", assign="sample", seed=3, n_threads=t)
            for t in (1, 2, 3)]
    for st in runs[1:]:
        np.testing.assert_array_equal(st.nk, runs[0].nk)
        np.testing.assert_array_equal(st.s1, runs[0].s1)
        np.testing.assert_array_equal(st.s2, runs[0].s2)
        assert st.objective == runs[0].objective
