"""The built-in families as plain data, for saving a fitted ``fastvem.Mixture``
without pickle.

A family's state is its constructor's arguments and what it learnt from the data
at fit (the Gaussians' reference point, the multinomial's mean document length, a
product's resolved members), as JSON: numbers, strings, None, lists, arrays as
``{"array": [...], "dtype": ...}`` and nested families as ``{"family": state}``.
Reading a state back validates every field (the class among the built-in ones,
the constructor's own checks, the shapes and domains of the fitted fields) and
raises ValueError otherwise, so a corrupted file never builds a family the
kernels would read out of bounds.  An ``ExponentialFamily`` holds the user's numba
functions, which have no such form: it is refused (pickle the estimator).
"""
import inspect
import json
import numbers

import numpy as np

from .base import Family

__all__ = ["family_state", "family_from_state", "dumps", "loads", "saved_family_param",
           "loaded_family_param", "prior_dumps", "prior_loads"]

_DTYPES = ("<f8", "<f4", "<i8", "<i4")
_MAX_DEPTH = 4


def _classes():
    from .discrete import Bernoulli, Categorical, Multinomial, Poisson
    from .normal import GaussianDiag, GaussianFull, GaussianSpherical, GaussianTied
    from .product import Product
    return {c.__name__: c for c in (Bernoulli, Categorical, Multinomial, Poisson, GaussianDiag,
                                    GaussianFull, GaussianSpherical, GaussianTied, Product)}


def _init_names(cls):
    return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]


def _encode(v):
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real):
        return float(v)
    if isinstance(v, np.ndarray):
        if v.dtype.str not in _DTYPES:
            v = v.astype(np.float64 if v.dtype.kind == "f" else np.int64)
        return {"array": v.tolist(), "dtype": v.dtype.str}
    if isinstance(v, Family):
        return {"family": family_state(v)}
    if isinstance(v, (list, tuple)):
        return [_encode(x) for x in v]
    raise TypeError(f"cannot store {type(v).__name__} values of a family without pickle")


def family_state(fam):
    """The state of a built-in family (see the module doc); TypeError otherwise."""
    cls = type(fam)
    if _classes().get(cls.__name__) is not cls:
        raise TypeError(f"a {cls.__name__} family cannot be saved without pickle (only the "
                        "built-in families can); pickle the estimator instead")
    init = {name: _encode(getattr(fam, name)) for name in _init_names(cls)}
    fitted = {}
    if getattr(fam, "ref", None) is not None:                # the Gaussians' reference point
        fitted["ref"] = _encode(np.asarray(fam.ref, dtype=np.float64))
    if cls.__name__ == "Multinomial":
        fitted["mean_length"] = float(fam.mean_length)
    if cls.__name__ == "Product" and fam.parts is not None:
        fitted["parts"] = [[_encode(f), _encode(np.asarray(c, dtype=np.int64))]
                           for f, c in fam.parts]
        fitted["n_features"] = int(fam.n_features)
    return {"class": cls.__name__, "init": init, "fitted": fitted}


def dumps(fam):
    return json.dumps(family_state(fam))


def loads(text, what="family", fitted=False):
    """The family of a JSON state; ValueError naming what otherwise.  fitted: the
    state must hold what the family learns at fit (a fitted model's family); else
    it may (an estimator's family parameter, fitted or not)."""
    if not isinstance(text, str):
        raise ValueError(f"{what} must be a family's saved state (a JSON string), got "
                         f"{type(text).__name__}")
    if len(text) > _MAX_TEXT:
        raise ValueError(f"{what}: a saved state of {len(text)} characters (at most "
                         f"{_MAX_TEXT})")
    try:
        state = json.loads(text)
    except (ValueError, RecursionError):
        raise ValueError(f"{what} is not a family's saved state (not JSON, or nested too "
                         "deeply)") from None
    return family_from_state(state, what, fitted=fitted)


_MAX_TEXT = 1 << 26           # characters of a saved state
_MAX_LIST_DEPTH = 3           # lists in lists: a product's [[family, columns], ...], a matrix
_MAX_INT = 2 ** 31 - 1
_LIMIT = float(np.sqrt(np.finfo(np.float64).max) / 1e4)   # what the kernels' squares hold


def _decode(v, what, depth, fitted=False, level=0):
    if v is None or isinstance(v, (bool, str, int, float)):
        return v
    if isinstance(v, list):
        if level >= _MAX_LIST_DEPTH:
            raise ValueError(f"{what}: lists nested too deeply")
        return [_decode(x, what, depth, fitted, level + 1) for x in v]
    if isinstance(v, dict) and set(v) == {"array", "dtype"}:
        if v["dtype"] not in _DTYPES:
            raise ValueError(f"{what}: an array of dtype {str(v['dtype'])[:20]!r}")
        try:
            a = np.array(v["array"], dtype=v["dtype"])
        except (TypeError, ValueError, OverflowError, RecursionError):
            raise ValueError(f"{what}: an array that is not numeric or not rectangular") from None
        if a.ndim > 2 or (a.dtype.kind == "f" and not np.all(np.isfinite(a))):
            raise ValueError(f"{what}: an array of {a.ndim} dimensions or with non-finite "
                             "values")
        return a
    if isinstance(v, dict) and set(v) == {"family"}:
        return family_from_state(v["family"], what, depth + 1, fitted)
    raise ValueError(f"{what}: an unexpected value {str(v)[:40]!r}")


def _finite_vector(value, n, what):
    a = np.asarray(value) if isinstance(value, np.ndarray) else None
    if a is None or a.dtype.kind != "f" or a.shape != (n,) or not np.all(np.isfinite(a)):
        raise ValueError(f"{what} must be {n} finite floats")
    if np.max(np.abs(a), initial=0.0) > _LIMIT:
        raise ValueError(f"{what} holds values up to {np.max(np.abs(a)):.3g}, beyond the "
                         f"{_LIMIT:.3g} the kernels support")
    return np.ascontiguousarray(a, dtype=np.float64)


def _count(v, what, name):
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= _MAX_INT:
        raise ValueError(f"{what}: {name} must be an integer in [1, {_MAX_INT}], got "
                         f"{str(v)[:40]}")
    return v


def _real(v, what, name, allow_none=True):
    if v is None and allow_none:
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
        raise ValueError(f"{what}: {name} must be a finite number{' or None' * allow_none}, "
                         f"got {str(v)[:40]}")
    return float(v)


def _prior_array(v, n, what, name):
    """None, a finite number, or a finite array of n entries (n x n): a prior's or a
    reference point's argument."""
    if v is None:
        return v
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return _real(v, what, name)
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{what}: {name} must be a number or an array of numbers") from None
    if a.ndim not in (1, 2) or any(d != n for d in a.shape) or not np.all(np.isfinite(a)):
        raise ValueError(f"{what}: {name} must be finite, of shape ({n},) or ({n}, {n}), got "
                         f"shape {a.shape}")
    return a


def _check_args(args, what):
    """The constructor's arguments by kind, before the constructor sees them."""
    if "n_features" in args:
        args["n_features"] = _count(args["n_features"], what, "n_features")
    if "n_categories" in args:
        cats = args["n_categories"]
        if not isinstance(cats, list) or not cats or len(cats) > _MAX_INT:
            raise ValueError(f"{what}: n_categories must be a non-empty list")
        args["n_categories"] = [_count(c, what, "n_categories") for c in cats]
        if sum(args["n_categories"]) > _MAX_INT:
            raise ValueError(f"{what}: n_categories sum beyond {_MAX_INT}")
    for key in ("alpha", "reg_covar", "mean_precision_prior", "degrees_of_freedom_prior",
                "binarize"):
        if key in args:
            args[key] = _real(args[key], what, key, allow_none=key not in ("alpha",
                                                                             "reg_covar"))
    D = args.get("n_features", 1)
    for key in ("mean_prior", "covariance_prior", "shape_prior", "rate_prior", "reference"):
        if key in args:
            args[key] = _prior_array(args[key], D, what, key)
    if "packed" in args and not isinstance(args["packed"], bool):
        raise ValueError(f"{what}: packed must be true or false")
    return args


def family_from_state(state, what="family", depth=0, fitted=False):
    """A built-in family from its state, every field checked; ValueError naming
    what otherwise (fitted: as loads)."""
    try:
        return _from_state(state, what, depth, fitted)
    except (RecursionError, MemoryError, OverflowError, TypeError) as exc:
        raise ValueError(f"{what}: not a valid family state ({type(exc).__name__})") from None


def _from_state(state, what, depth, required):
    if depth > _MAX_DEPTH:
        raise ValueError(f"{what}: families nested too deeply")
    if not isinstance(state, dict) or set(state) != {"class", "init", "fitted"}:
        raise ValueError(f"{what} is not a family's saved state (keys class, init, fitted)")
    classes = _classes()
    name = state["class"]
    if not isinstance(name, str) or name not in classes:
        raise ValueError(f"{what}: unknown family class {str(name)[:40]!r}")
    cls = classes[name]
    init, fitted = state["init"], state["fitted"]       # fitted: the state's fields
    if not isinstance(init, dict) or set(init) != set(_init_names(cls)):
        raise ValueError(f"{what}: {name}'s arguments must be {_init_names(cls)}")
    if not isinstance(fitted, dict):
        raise ValueError(f"{what}: the fitted state must be a mapping")
    args = _check_args({k: _decode(v, what, depth) for k, v in init.items()}, what)
    try:
        fam = cls(**args)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: {name}({', '.join(args)}) refused its arguments: "
                         f"{exc}") from None
    allowed = {"ref", "mean_length", "parts", "n_features"}
    if set(fitted) - allowed:
        raise ValueError(f"{what}: unexpected fitted fields {sorted(set(fitted) - allowed)}")
    if name == "Product":
        if fitted or required:
            _product_fitted(fam, fitted, what, depth)
    elif "ref" in fitted:
        if not hasattr(fam, "ref"):
            raise ValueError(f"{what}: a {name} has no reference point")
        fam.ref = _finite_vector(_decode(fitted["ref"], what, depth), fam.n_features,
                                 f"{what}'s reference point")
        if fam.reference is not None and not np.array_equal(
                np.broadcast_to(np.asarray(fam.reference, dtype=np.float64),
                                (fam.n_features,)), fam.ref):
            raise ValueError(f"{what}: the {name}'s reference point differs from its "
                             "reference argument")
    elif required and hasattr(fam, "ref") and fam.reference is None:
        raise ValueError(f"{what}: the {name}'s reference point is missing")
    if name == "Multinomial" and ("mean_length" in fitted or required):
        m = fitted.get("mean_length")
        if isinstance(m, bool) or not isinstance(m, (int, float)) or not np.isfinite(m) \
                or m <= 0:
            raise ValueError(f"{what}: the multinomial's mean_length must be a positive "
                             f"finite number, got {str(m)[:40]}")
        fam.mean_length = float(m)
    return fam


def _product_fitted(fam, fitted, what, depth):
    """A product's resolved members: the same columns as its members, each a
    built-in family of as many features in the row driver's sparse form."""
    parts = fitted.get("parts")
    n = fitted.get("n_features")
    if not isinstance(parts, list) or len(parts) != len(fam.members):
        raise ValueError(f"{what}: a product's fitted members must be {len(fam.members)} "
                         "(family, columns) pairs")
    n = _count(n, what, "a product's n_features")
    if n != sum(len(cols) for _, cols in fam.members):
        raise ValueError(f"{what}: a product's n_features ({n}) is not the number of its "
                         "members' columns")
    fam._check_columns(n)
    resolved = []
    for i, (pair, (member, cols)) in enumerate(zip(parts, fam.members)):
        if not isinstance(pair, list) or len(pair) != 2:
            raise ValueError(f"{what}: product member {i} must be a (family, columns) pair")
        part = _decode(pair[0], what, depth, fitted=True)
        c = _decode(pair[1], what, depth)
        if not isinstance(part, Family) or isinstance(part, type(fam)):
            raise ValueError(f"{what}: product member {i} is not a built-in family")
        if getattr(part, "packed", False) or part.features in (None, "address", "product"):
            raise ValueError(f"{what}: product member {i} is not in the row driver's sparse "
                             "form (a packed Bernoulli, say)")
        if not isinstance(c, np.ndarray) or not np.array_equal(c, cols):
            raise ValueError(f"{what}: product member {i}'s columns differ from the "
                             "product's")
        if isinstance(member, Family) and type(member) is not type(part):
            raise ValueError(f"{what}: product member {i} is a {type(member).__name__}, its "
                             f"fitted form a {type(part).__name__}")
        if isinstance(member, str) and part.name != member:
            raise ValueError(f"{what}: product member {i} is {member!r}, its fitted form a "
                             f"{part.name}")
        if part.n_features != len(cols):
            raise ValueError(f"{what}: product member {i} has {part.n_features} features "
                             f"for {len(cols)} columns")
        resolved.append((part, cols))
    fam.set_parts(resolved, n)


def saved_family_param(params):
    """An estimator's constructor parameters with a family object as its JSON state
    (what save stores; TypeError for a family with no plain form)."""
    if isinstance(params.get("family"), Family):
        params = dict(params, family=dumps(params["family"]))
    return params


def loaded_family_param(params):
    """The inverse of saved_family_param on a loaded file's parameters."""
    family = params.get("family")
    if isinstance(family, str) and family.startswith("{"):
        params = dict(params, family=loads(family, "the family parameter"))
    return params


_PRIOR_MAX = 1e100


def prior_dumps(prior):
    """A family's prior (numbers and arrays, in tuples or lists) as JSON."""
    return json.dumps(_encode(prior))


def prior_loads(text, fam, what="family_prior_"):
    """The prior prior_dumps wrote, checked against fam: finite, and q = the prior
    itself (no data) gives finite expected parameters; ValueError naming what."""
    if isinstance(text, np.ndarray) and text.ndim == 0:
        text = text.item()
    if not isinstance(text, str) or len(text) > _MAX_TEXT:
        raise ValueError(f"{what} must be a prior's saved state (a JSON string)")
    try:
        prior = _decode(json.loads(text), what, 0)
        flat = prior if isinstance(prior, list) else [prior]
        for v in _leaves(flat):
            if isinstance(v, (bool, str)) or v is None or not np.all(np.isfinite(v)):
                raise ValueError(f"{what} holds a value that is not a finite number")
            a = np.abs(np.asarray(v, dtype=np.float64))
            if np.any(a > _PRIOR_MAX) or np.any((a > 0) & (a < 1.0 / _PRIOR_MAX)):
                # a concentration of 1e150 passes the checks below, then a step of
                # partial_fit overflows (products of three such stay finite)
                raise ValueError(f"{what} holds a value beyond the range [1e-100, 1e100] "
                                 "that a prior takes")
        S = fam.n_statistics()
        with np.errstate(all="ignore"):
            q = fam.posterior(np.zeros((1, S)), np.zeros(1), prior)     # the prior itself
            W, c = fam.expected_effective(q)
            kl = fam.kl(q, prior)
        packed = np.asarray(fam.pack_posterior(q), dtype=np.float64)
        if not np.all(np.isfinite(packed)):
            raise ValueError(f"{what} is not finite")
        fam.check_posterior(packed, what)         # its domain: positive precisions, ...
        if not (np.all(np.isfinite(W)) and np.all(np.isfinite(c)) and np.isfinite(kl)
                and abs(kl) < 1e-6):
            raise ValueError(f"{what} is not a valid prior (its own KL is {kl}, or its "
                             "expected parameters are not finite)")
    except ValueError as exc:
        msg = str(exc)
        raise ValueError(msg if msg.startswith(what) else f"{what}: {msg}") from None
    except (TypeError, IndexError, KeyError, RecursionError, MemoryError,
            OverflowError) as exc:
        raise ValueError(f"{what} is not a prior of this {type(fam).__name__} "
                         f"({type(exc).__name__})") from None
    return prior


def _leaves(v):
    for x in v:
        if isinstance(x, list):
            yield from _leaves(x)
        else:
            yield x
