"""Additive sufficient statistics.

Statistics form an additive group: ``a + b``, ``a - b`` and ``c * a`` are
defined, so chunked kernels, thread-parallel reduction, mini-batch (stepwise)
updates, memoized passes (``total - old + new``) and distributed map-reduce are
all the same code.

Gaussian statistics are *centred*: ``s1 = sum r (x - c_k)`` and
``s2 = sum r (x - c_k)(x - c_k)^T`` about a reference point ``c_k`` per
component.  A kernel pass uses one point for every component (the mean of the
component means it ran with: a point near the data), and (full covariances) sums
a component again about its own mean where its sums about that point cancel (a
tight component far from it: families/gaussian.py, _far_components); re-centring
moves them.
Centring avoids the ``E[x^2] - mu^2`` cancellation; two sets with different
references are added after :meth:`GaussianStats.recentre`, which is exact, each
component about the point of the set that holds more of its weight.
"""
import numpy as np

__all__ = ["GaussianStats"]


class GaussianStats:
    """Weighted sufficient statistics of a Gaussian family, per component.

    Attributes
    ----------
    nk : (K,) sum of weights r_nk (times sample weights)
    s1 : (K, D) sum r (x - shift_k)
    s2 : full (K, D, D), diag (K, D), spherical (K,), tied None
    shift : (K, D) the reference points
    objective : float, sum over rows of the weighted per-row objective term
    weight : float, total sample weight seen
    entropy : float, sum over rows of w_n H[q(z_n)] (soft assignments; else 0)
    """

    __slots__ = ("covariance_type", "nk", "s1", "s2", "shift", "objective", "weight",
                 "entropy")

    def __init__(self, covariance_type, nk, s1, s2, shift, objective=0.0, weight=0.0,
                 entropy=0.0):
        self.covariance_type = covariance_type
        self.nk = nk
        self.s1 = s1
        self.s2 = s2
        self.shift = shift
        self.objective = float(objective)
        self.weight = float(weight)
        self.entropy = float(entropy)

    @classmethod
    def zeros(cls, covariance_type, shift):
        K, D = shift.shape
        s2 = {"full": (K, D, D), "diag": (K, D), "spherical": (K,), "tied": None}[covariance_type]
        return cls(covariance_type, np.zeros(K), np.zeros((K, D)),
                   None if s2 is None else np.zeros(s2), np.array(shift, dtype=np.float64))

    @classmethod
    def from_flat(cls, covariance_type, flat, shift, weight):
        """View the kernel's flat statistics vector (see _ext/_gaussian.pyx)."""
        K, D = shift.shape
        nk = flat[:K]
        s1 = flat[K:K + K * D].reshape(K, D)
        rest = flat[K + K * D:-2]
        if covariance_type == "full":
            s2 = rest.reshape(K, D, D)
            # the kernel fills the lower triangle (row-major); mirror it
            il = np.tril_indices(D, -1)
            s2[:, il[1], il[0]] = s2[:, il[0], il[1]]
        elif covariance_type == "diag":
            s2 = rest.reshape(K, D)
        elif covariance_type == "spherical":
            s2 = rest
        else:
            s2 = None
        return cls(covariance_type, nk, s1, s2, np.array(shift, dtype=np.float64),
                   flat[-2], weight, flat[-1])

    @property
    def stats(self):
        """The family's part of the statistics (RowStats.stats): the object itself."""
        return self

    def copy(self):
        return GaussianStats(self.covariance_type, self.nk.copy(), self.s1.copy(),
                             None if self.s2 is None else self.s2.copy(),
                             self.shift.copy(), self.objective, self.weight, self.entropy)

    def recentre(self, shift):
        """The same statistics about another reference point (exact)."""
        shift = np.asarray(shift, dtype=np.float64)
        delta = self.shift - shift                     # (K, D)
        s1 = self.s1 + self.nk[:, None] * delta
        s2 = self.s2
        if self.covariance_type == "full":
            s2 = (s2 + self.s1[:, :, None] * delta[:, None, :]
                  + delta[:, :, None] * self.s1[:, None, :]
                  + self.nk[:, None, None] * delta[:, :, None] * delta[:, None, :])
        elif self.covariance_type == "diag":
            s2 = s2 + 2 * self.s1 * delta + self.nk[:, None] * delta ** 2
        elif self.covariance_type == "spherical":
            s2 = (s2 + 2 * np.einsum("kd,kd->k", self.s1, delta)
                  + self.nk * np.einsum("kd,kd->k", delta, delta))
        return GaussianStats(self.covariance_type, self.nk.copy(), s1,
                             None if s2 is None else np.array(s2, copy=True), shift.copy(),
                             self.objective, self.weight, self.entropy)

    def take(self, k, other):
        """Component k's statistics from other (the same rows about another point):
        in place."""
        self.nk[k] = other.nk[k]
        self.s1[k] = other.s1[k]
        if self.s2 is not None:
            self.s2[k] = other.s2[k]
        self.shift[k] = other.shift[k]

    def _aligned(self, other):
        """(self, other) about common reference points: each component's from the
        set that holds more of its weight (recentring moves the smaller set's
        sums, so a component's sums about its own mean stay about it)."""
        if not isinstance(other, GaussianStats) or other.covariance_type != self.covariance_type:
            raise TypeError("can only combine GaussianStats of the same covariance_type")
        if other.shift.shape != self.shift.shape:
            raise ValueError("statistics of different shapes cannot be combined")
        if np.array_equal(other.shift, self.shift):
            return self, other
        theirs = np.abs(other.nk) > np.abs(self.nk)
        shift = np.where(theirs[:, None], other.shift, self.shift)
        mine = self if np.array_equal(shift, self.shift) else self.recentre(shift)
        return mine, (other if np.array_equal(shift, other.shift) else other.recentre(shift))

    def _combine(self, other, sign):
        a, o = self._aligned(other)
        return GaussianStats(self.covariance_type, a.nk + sign * o.nk, a.s1 + sign * o.s1,
                             None if a.s2 is None else a.s2 + sign * o.s2,
                             a.shift.copy(), self.objective + sign * o.objective,
                             self.weight + sign * o.weight, self.entropy + sign * o.entropy)

    def __add__(self, other):
        return self._combine(other, 1.0)

    def __sub__(self, other):
        return self._combine(other, -1.0)

    def __mul__(self, c):
        c = float(c)
        return GaussianStats(self.covariance_type, c * self.nk, c * self.s1,
                             None if self.s2 is None else c * self.s2, self.shift.copy(),
                             c * self.objective, c * self.weight, c * self.entropy)

    __rmul__ = __mul__

    def means(self, eps=0.0):
        """Weighted means sum r x / (N_k + eps)."""
        return self.shift + self.s1 / (self.nk + eps)[:, None]

    def __repr__(self):
        K, D = self.shift.shape
        return f"GaussianStats({self.covariance_type!r}, K={K}, D={D}, weight={self.weight:g})"
