"""Mixed data: a product of families over disjoint columns (docs/architecture.md: statistics
are additive, and a product's are its members' side by side).

    from fastvem.families import Product
    fam = Product([("gaussian_diag", [0, 1, 2]), ("categorical", [3, 4]),
                   ("poisson", [5])])
    fastvem.Mixture(fam, n_components=4, method="meanfield").fit(X)

Each member is a built-in family's name ('gaussian' (full covariance),
'gaussian_diag', 'bernoulli', 'categorical', 'poisson', 'multinomial', built with
that family's defaults from its columns at fit) or a family object of one of those kinds; columns are the
indices of X that it reads.  Every column of X belongs to exactly one member.

The compiled row driver reads the members' prepared columns in one pass
(features 'product': a table of the members' sparse forms, each shifted to its
first statistic), so a row's log-density is the sum of its members' and the
statistics of every member are gathered in the same pass.  theta, the
statistics and the effective parameters are the members' side by side; q is
the list of the members' posteriors.  A user's ExponentialFamily (a dense
features function) cannot be a member in this version.
"""
import numbers

import numpy as np

from .base import Family

__all__ = ["Product", "ProductData"]


class ProductData:
    """A product's prepared rows: one (kind name, data, aux, S) part per member."""

    def __init__(self, parts):
        self.parts = parts

    @property
    def shape(self):
        return (self.parts[0][1].shape[0], len(self.parts))

    def __len__(self):
        return self.shape[0]


def _builtin(name, n_columns, Xc):
    from .discrete import Bernoulli, Categorical, Multinomial, Poisson
    from .normal import GaussianDiag, GaussianFull, GaussianSpherical, GaussianTied
    gaussians = {"gaussian": GaussianFull, "gaussian_diag": GaussianDiag,
                 "gaussian_tied": GaussianTied, "gaussian_spherical": GaussianSpherical}
    if name in gaussians:
        return gaussians[name](n_columns)
    if name == "bernoulli":
        return Bernoulli(n_columns, packed=False)
    if name == "poisson":
        return Poisson(n_columns)
    if name == "categorical":
        return Categorical(Categorical.infer_categories(Xc, None))
    if name == "multinomial":
        return Multinomial(n_columns)
    raise ValueError("a Product member must be one of 'gaussian', 'gaussian_diag', "
                     "'gaussian_tied', 'gaussian_spherical', 'bernoulli', 'categorical', "
                     "'poisson', 'multinomial' or a family object "
                     f"of those kinds, got {name!r}")


def _in_columns(message, cols, fam):
    """A member family's message about its own columns, told in X's: 'column j',
    'feature j' and 'X[i, j]' name X's column cols[j]."""
    import re
    cols = [int(c) for c in np.atleast_1d(cols)]

    def col(j):
        j = int(j)
        return str(cols[j]) if 0 <= j < len(cols) else str(j)

    message = re.sub(r"X\[(\d+), (\d+)\]", lambda m: f"X[{m.group(1)}, {col(m.group(2))}]",
                     message)
    message = re.sub(r"\b(column|feature) (\d+)", lambda m: f"{m.group(1)} {col(m.group(2))}",
                     message)
    message = re.sub(r"n_categories\[(\d+)\]",
                     lambda m: f"n_categories of column {col(m.group(1))}", message)
    return f"{message} (X columns {cols}: the product's {fam.name} part)"


class Product(Family):
    """A product of families over disjoint columns (see the module doc)."""

    name = "product"
    features = "product"
    n_posterior_arrays = 1          # the members' packed posteriors side by side

    def __init__(self, members):
        if not isinstance(members, (list, tuple)) or len(members) == 0:
            raise ValueError("Product needs a non-empty list of (family, columns) pairs")
        self.members = []
        for i, pair in enumerate(members):
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise ValueError(f"Product member {i} must be a (family, columns) pair, got "
                                 f"{pair!r}")
            family, cols = pair
            if isinstance(cols, numbers.Integral) and not isinstance(cols, bool):
                cols = [cols]
            try:
                cols = np.asarray(cols)
            except Exception:
                cols = np.asarray([], dtype=object)
            if cols.ndim != 1 or cols.size == 0 or cols.dtype.kind not in "iu":
                raise ValueError(f"Product member {i}: columns must be a non-empty list of "
                                 f"integer column indices, got {pair[1]!r}")
            if len(np.unique(cols)) != len(cols):
                raise ValueError(f"Product member {i}: columns {cols.tolist()} repeat a column")
            if not isinstance(family, (str, Family)):
                raise ValueError(f"Product member {i}: the family must be a name or a family "
                                 f"object, got {family!r}")
            if isinstance(family, Family) and family.features in (None, "address", "product"):
                raise ValueError(f"Product member {i}: a {type(family).__name__} cannot be a "
                                 "member (only the built-in families' sparse forms combine)")
            self.members.append((family, cols.astype(np.int64)))
        self.parts = None           # the resolved (family, columns) once the data are seen
        self.n_features = None

    # --------------------------------------------------------- the columns
    def _check_columns(self, n_features):
        owner = np.full(n_features, -1)
        for i, (_, cols) in enumerate(self.members):
            if cols.min() < 0 or cols.max() >= n_features:
                raise ValueError(f"Product member {i}: columns {cols.tolist()} are not all "
                                 f"in [0, {n_features}) (X has {n_features} columns)")
            taken = owner[cols] >= 0
            if np.any(taken):
                j = int(cols[np.argmax(taken)])
                raise ValueError(f"Product columns overlap: column {j} is in members "
                                 f"{owner[j]} and {i}")
            owner[cols] = i
        if np.any(owner < 0):
            raise ValueError(f"Product columns miss a column: column {int(np.argmax(owner < 0))}"
                             f" of X is in no member (every column must belong to one)")

    def _resolve(self, X):
        parts = []
        for family, cols in self.members:
            if isinstance(family, str):
                family = _builtin(family, len(cols), X[:, cols])
            elif getattr(family, "packed", False):
                from .discrete import Bernoulli
                family = Bernoulli(family.n_features, family.alpha, family.binarize,
                                   packed=False)
            if family.n_features is not None and family.n_features != len(cols):
                raise ValueError(f"Product: the {family.name} member has {family.n_features} "
                                 f"features but is given {len(cols)} columns")
            parts.append((family, cols))
        return parts

    def set_parts(self, parts, n_features):
        """The resolved (family, columns) members over n_features columns, and the
        offsets of their statistics and posteriors."""
        self.parts = parts
        self.n_features = int(n_features)
        widths = [f.n_statistics() for f, _ in self.parts]
        self.offsets = np.concatenate(([0], np.cumsum(widths))).astype(np.int64)
        qw = [f.n_posterior_arrays * f.posterior_width() for f, _ in self.parts]
        self.q_offsets = np.concatenate(([0], np.cumsum(qw))).astype(np.int64)

    def prepare(self, X, fitting=False):
        from .discrete import _numeric
        X = _numeric(X)
        if fitting or self.parts is None:
            self._check_columns(X.shape[1])
            self.set_parts(self._resolve(X), X.shape[1])
        elif X.shape[1] != self.n_features:
            raise ValueError(f"X has {X.shape[1]} features, expected {self.n_features}")
        out = []
        for fam, cols in self.parts:
            try:
                data = fam.prepare(np.ascontiguousarray(X[:, cols]), fitting=fitting)
            except (ValueError, TypeError) as exc:
                raise type(exc)(_in_columns(str(exc), cols, fam)) from None
            out.append((fam.features, data, fam.aux(), fam.n_statistics()))
        return ProductData(out)

    def kernel_data(self, data):
        from .._ext._expfam import FEATURES
        return [(FEATURES[k], d, a, s) for k, d, a, s in data.parts]

    def take_rows(self, data, rows):
        return ProductData([(k, np.ascontiguousarray(d[rows]), a, s)
                            for k, d, a, s in data.parts])

    def n_statistics(self):
        return int(self.offsets[-1])

    def posterior_width(self):
        return int(self.q_offsets[-1])

    def dense_features(self, data):
        import scipy.sparse as sp
        feats = [fam.dense_features(part[1]) for (fam, _), part in zip(self.parts, data.parts)]
        if any(sp.issparse(f) for f in feats):
            return sp.hstack(feats, format="csr")
        return np.hstack(feats)

    # ----------------------------------------------------- the members' blocks
    def blocks(self, a):
        """The members' blocks of a K x S array."""
        return [a[:, self.offsets[i]:self.offsets[i + 1]] for i in range(len(self.parts))]

    def _each(self, *arrays):
        """Yield (member family, that member's block of each K x S array)."""
        for i, (fam, _) in enumerate(self.parts):
            yield fam, [a[:, self.offsets[i]:self.offsets[i + 1]] for a in arrays]

    def check_theta(self, theta, name, structure=True):
        for (fam, cols), block in zip(self.parts, self.blocks(theta)):
            fam.check_theta(block, f"{name} (the {fam.name} member on columns "
                                   f"{cols.tolist()})", structure)

    def check_posterior(self, post, name):
        for i, (fam, cols) in enumerate(self.parts):
            block = post[0][:, self.q_offsets[i]:self.q_offsets[i + 1]]
            packed = np.transpose(block.reshape(block.shape[0], fam.n_posterior_arrays, -1),
                                  (1, 0, 2))
            fam.check_posterior(packed, f"{name} (the {fam.name} member on columns "
                                        f"{cols.tolist()})")

    def describe(self, theta):
        return [dict(columns=cols, family=fam.name, **fam.describe(block))
                for (fam, cols), block in zip(self.parts, self.blocks(theta))]

    def log_prior(self, theta):
        return float(sum(fam.log_prior(t) for fam, (t,) in self._each(theta)))

    def to_unconstrained(self, theta):
        us = [fam.to_unconstrained(t) for fam, (t,) in self._each(theta)]
        if any(u is None for u in us):
            return None
        self._u_widths = np.cumsum([0] + [u.shape[1] for u in us])
        return np.hstack(us)

    def from_unconstrained(self, u):
        parts = []
        for i, (fam, _) in enumerate(self.parts):
            t = fam.from_unconstrained(u[:, self._u_widths[i]:self._u_widths[i + 1]])
            if t is None:
                return None
            parts.append(t)
        return np.hstack(parts)

    def rows(self, data, lo, hi):
        return ProductData([(k, d[lo:hi], a, s) for k, d, a, s in data.parts])

    def split(self, theta_k):
        """Every member split (the two rows differ in each member's widest statistic);
        None if a member does not split."""
        pairs = [fam.split(block[0])
                 for (fam, _), block in zip(self.parts, self.blocks(theta_k[None]))]
        if any(p is None for p in pairs):
            return None
        return np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])

    def effective(self, theta):
        Ws, cs = zip(*(fam.effective(t) for fam, (t,) in self._each(theta)))
        return np.hstack(Ws), np.sum(cs, axis=0)

    def expected_effective(self, q):
        Ws, cs = zip(*(fam.expected_effective(qi) for (fam, _), qi in zip(self.parts, q)))
        return np.hstack(Ws), np.sum(cs, axis=0)

    def point_estimate(self, stats, nk, previous):
        return np.hstack([fam.point_estimate(s, nk, p)
                          for fam, (s, p) in self._each(stats, previous)])

    def default_prior(self, data, sample_weight=None):
        return [fam.default_prior(part[1], sample_weight)
                for (fam, _), part in zip(self.parts, data.parts)]

    def posterior(self, stats, nk, prior):
        return [fam.posterior(s, nk, p) for (fam, (s,)), p in zip(self._each(stats), prior)]

    def posterior_statistics(self, q, prior):
        pairs = [fam.posterior_statistics(qi, p)
                 for (fam, _), qi, p in zip(self.parts, q, prior)]
        return np.hstack([s for s, _ in pairs]), pairs[0][1]

    def sample_posterior(self, q, rng):
        return np.hstack([fam.sample_posterior(qi, rng) for (fam, _), qi in zip(self.parts, q)])

    def posterior_mean(self, q):
        return np.hstack([fam.posterior_mean(qi) for (fam, _), qi in zip(self.parts, q)])

    def kl(self, q, prior):
        return float(sum(fam.kl(qi, p) for (fam, _), qi, p in zip(self.parts, q, prior)))

    def pack_posterior(self, q):
        blocks = []
        for (fam, _), qi in zip(self.parts, q):
            post = fam.pack_posterior(qi)
            blocks.append(np.transpose(post, (1, 0, 2)).reshape(post.shape[1], -1))
        return np.hstack(blocks)[None]

    def unpack_posterior(self, post):
        q = []
        for i, (fam, _) in enumerate(self.parts):
            block = post[0][:, self.q_offsets[i]:self.q_offsets[i + 1]]
            K = block.shape[0]
            q.append(fam.unpack_posterior(
                np.ascontiguousarray(np.transpose(block.reshape(K, fam.n_posterior_arrays, -1),
                                                  (1, 0, 2)))))
        return q

    def n_parameters(self, n_components):
        return sum(fam.n_parameters(n_components) for fam, _ in self.parts)

    def sample_rows(self, theta_k, n, rng):
        out = np.empty((n, self.n_features))
        for (fam, cols), block in zip(self.parts, self.blocks(theta_k[None])):
            out[:, cols] = fam.sample_rows(block[0], n, rng)
        return out
