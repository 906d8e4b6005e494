"""One random-stream convention for every kernel (_ext/_common.pxd): a sweep's key
is sweep_key(seed, sweep) = seed * 0x9E3779B97F4A7C15 + sweep (mod 2^64), a key is
made specific to an index by stream_key(key, i) = splitmix64(key ^ splitmix64(i)),
and an index's uniform is the top 53 bits of stream_key(key, i).  The Python side
(fastvem.engine.sweep_seed / stream_key) must give the kernels' numbers: checked
against an independent splitmix64 and against the draws the row driver makes."""
import numpy as np

from fastvem.engine import stream_key, sweep_seed
from fastvem.families.discrete import Bernoulli
from fastvem.models.discrete_mixture import _row_pass

M = (1 << 64) - 1


def splitmix64(z):
    """Vigna's reference splitmix64 output function (a fresh implementation)."""
    z = (z + 0x9E3779B97F4A7C15) & M
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return z ^ (z >> 31)


def test_python_keys_follow_the_convention():
    assert splitmix64(0) == 0xE220A8397B1DCDAF          # the generator's known first value
    for seed, sweep in ((0, 0), (1, 1), (2 ** 31 - 1, 7), (M, 3), (12345, 10 ** 12)):
        assert sweep_seed(seed, sweep) == (seed * 0x9E3779B97F4A7C15 + sweep) & M
        key = sweep_seed(seed, sweep)
        for i in (0, 1, 4095, 2 ** 40):
            assert stream_key(key, i) == splitmix64(key ^ splitmix64(i))


def test_row_driver_draws_from_the_keyed_uniforms():
    """The sampling pass draws row n's label by the inverse cdf of its posterior at
    u_n = (stream_key(key, n) >> 11) / 2^53: reproduced here row by row."""
    rng = np.random.default_rng(0)
    N, D = 3000, 4
    X = (rng.random((N, D)) < 0.5).astype(np.float64)
    fam = Bernoulli(D, alpha=0.0)
    data = fam.prepare(X, fitting=True)
    theta = np.array([[0.2, 0.7, 0.5, 0.9], [0.6, 0.3, 0.5, 0.1]])
    W, c = fam.effective(theta)
    logw = np.log(np.array([0.45, 0.55]))
    key = sweep_seed(987654321, 5)
    labels = np.full(N, -7, dtype=np.int64)
    _row_pass(fam, data, None, W, c, logw, 2, key, None, labels, 2)
    lp = np.log(theta) @ X.T + np.log1p(-theta) @ (1 - X).T + logw[:, None]    # K x N
    e = np.exp(lp - lp.max(0))
    u = np.array([(stream_key(key, n) >> 11) * 2.0 ** -53 for n in range(N)]) * e.sum(0)
    expected = np.where(u < e[0], 0, 1)
    assert np.mean(labels == expected) == 1.0
