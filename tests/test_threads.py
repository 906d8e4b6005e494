"""fastvem._threads.map_rows: an elementwise ufunc over row blocks in threads gives
bitwise the ufunc's own result, in the input's layout, for any thread count."""
import numpy as np
import pytest
from scipy.special import digamma, gammaln

from fastvem._threads import map_rows


@pytest.mark.parametrize("ufunc", [digamma, gammaln, np.exp])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("n_threads", [1, 2, 3, 7])
def test_map_rows_is_the_ufunc_bitwise(ufunc, dtype, order, n_threads):
    rng = np.random.default_rng(0)
    a = np.asarray(rng.gamma(0.5, 2.0, (37, 1500)) + 1e-3, dtype=dtype, order=order)
    want = ufunc(a)
    got = map_rows(ufunc, a, n_threads)
    assert got.dtype == want.dtype
    assert got.flags.c_contiguous == want.flags.c_contiguous
    assert got.flags.f_contiguous == want.flags.f_contiguous
    assert np.array_equal(got, want)
    # a sum over the result adds in the same order as over the ufunc's own
    assert np.sum(got) == np.sum(want)


def test_map_rows_small_or_strided_input_is_one_call():
    a = np.arange(1.0, 13.0).reshape(3, 4)
    assert np.array_equal(map_rows(np.exp, a, 4), np.exp(a))
    big = np.linspace(1.0, 2.0, 200 * 400).reshape(200, 400)[:, ::2]   # neither layout
    assert np.array_equal(map_rows(gammaln, big, 3), gammaln(big))


def test_an_error_in_a_worker_reaches_the_caller():
    def bad(x, out=None):
        if out is not None and out.shape[0] < 20:      # a worker's block
            raise FloatingPointError("from a block")
        return np.exp(x, out=out)

    a = np.ones((64, 1024))
    with pytest.raises(FloatingPointError, match="from a block"):
        map_rows(bad, a, 4)
