"""Pickle-free persistence: ``est.save(path)`` / ``fastvem.load(path)``.

The file is a NumPy .npz archive read with ``allow_pickle=False``: constructor
parameters as JSON (array-valued ones as arrays), fitted attributes as arrays,
plus a format name and version.  Pickling estimators also works (plain Python
objects holding NumPy arrays).
"""
import io
import json
import zipfile

import numpy as np

FORMAT_NAME = "fastvem-model"
FORMAT_VERSION = 1

__all__ = ["load", "save_estimator", "register", "FORMAT_VERSION"]


_REGISTRY = {}


def register(cls):
    """Class decorator: an estimator that save / load may write and read.  The
    models register themselves when their module is imported, so this module
    imports none of them."""
    _REGISTRY[cls.__name__] = cls
    return cls


def _registry():
    if not _REGISTRY:               # fastvem's namespace imports the models lazily
        import importlib
        importlib.import_module("fastvem.models")
    return _REGISTRY


def save_estimator(est, path):
    from sklearn.utils.validation import check_is_fitted
    check_is_fitted(est)
    if hasattr(est, "_check_config"):
        est._check_config("save")
    name = type(est).__name__
    if name not in _registry():
        raise TypeError(f"cannot save a {name}")
    arrays = {}
    scalars = {}
    # a model may store a parameter or attribute in a plain form of its own (a
    # Mixture's family object as its JSON state)
    saved_params = (est._saved_params() if hasattr(est, "_saved_params")
                    else est.get_params(deep=False))
    for key, value in saved_params.items():
        if value is None or isinstance(value, (bool, int, float, str)):
            scalars[key] = value
        elif isinstance(value, (np.integer, np.floating, np.bool_)):
            scalars[key] = value.item()
        elif (isinstance(value, (list, tuple)) and value
              and all(isinstance(v, np.ndarray) for v in value)):
            for i, sub_value in enumerate(value):     # one array per feature, say
                arrays[f"plist__{key}.{i}"] = sub_value
        elif isinstance(value, (np.ndarray, list, tuple)):
            arrays["param__" + key] = np.asarray(value)
        else:
            raise TypeError(f"cannot save parameter {key}={value!r}: only None, numbers, "
                            "strings and arrays can be stored without pickle")
    saved_attributes = est._saved_attributes() if hasattr(est, "_saved_attributes") else vars(est)
    for key, value in saved_attributes.items():
        if not key.endswith("_") or key.startswith("_"):
            continue
        if key == "trace_":
            arrays["trace__objective"] = np.asarray(value["objective"])
            arrays["trace__seconds"] = np.asarray(value["seconds"])
            arrays["trace__events"] = np.asarray([f"{i}\t{t}" for i, t in value["events"]],
                                                 dtype=str)
            continue
        if isinstance(value, np.random.RandomState):
            # the Mersenne Twister's state: its 624 keys, position and cached Gaussian
            _, keys, pos, has_gauss, cached = value.get_state(legacy=True)
            for sub_key, sub_value in zip(_RNG_KEYS, (keys, pos, has_gauss, cached)):
                arrays[f"rng__{key}.{sub_key}"] = np.asarray(sub_value)
            continue
        if isinstance(value, dict):
            for sub_key, sub_value in value.items():
                arrays[f"dict__{key}.{sub_key}"] = np.asarray(sub_value)
            continue
        if isinstance(value, list) and value and all(isinstance(v, np.ndarray) for v in value):
            for i, sub_value in enumerate(value):     # one array per feature, say
                arrays[f"list__{key}.{i}"] = sub_value
            continue
        arr = np.asarray(value)
        if arr.dtype == object:
            arr = arr.astype(str)
        arrays["attr__" + key] = arr
    meta = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "class": name,
            "params": scalars}
    # written only if it loads back: a file that save writes, load reads
    buf = io.BytesIO()
    np.savez(buf, __meta__=np.array(json.dumps(meta)), **arrays)
    buf.seek(0)
    try:
        load(buf)
    except ValueError as exc:
        reason = str(exc).split(": ", 1)[-1] if str(exc).startswith("<") else str(exc)
        raise ValueError(f"cannot save this {name}: it would not load back ({reason}); "
                         "fix the parameter or refit first") from None
    with open(path, "wb") as fh:
        fh.write(buf.getvalue())


def load(path):
    """Load an estimator written by ``save``; ValueError for a corrupt or foreign file.

    Every fitted attribute is checked (presence, dtype, shape, domain: see
    fastvem._load_checks) before the estimator is returned."""
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("not an .npz archive")
        with data:
            files = {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{path!s} is not a readable fastvem model file ({exc})") from None
    if not isinstance(files, dict) or "__meta__" not in files:
        raise ValueError(f"{path!s} is not a fastvem model file (no metadata)")
    try:
        meta = json.loads(str(files.pop("__meta__")))
        fmt, version, cls_name, params = (meta["format"], meta["version"], meta["class"],
                                          meta["params"])
        if not isinstance(params, dict):
            raise TypeError("params is not a mapping")
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{path!s}: corrupted fastvem metadata") from None
    if fmt != FORMAT_NAME:
        raise ValueError(f"{path!s} is not a fastvem model file (format {fmt!r})")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise ValueError(f"{path!s} has format version {version!r}; this fastvem reads "
                         f"versions 1..{FORMAT_VERSION} (upgrade fastvem)")
    registry = _registry()
    if cls_name not in registry:
        raise ValueError(f"{path!s}: unknown estimator class {cls_name!r}")
    for key in [k for k in files if k.startswith("param__")]:
        params[key[len("param__"):]] = files.pop(key)
    plists = {}
    for key in [k for k in files if k.startswith("plist__")]:
        name, index = key[len("plist__"):].rsplit(".", 1) if "." in key else (key, "")
        if not (index.isascii() and index.isdigit()):
            raise ValueError(f"{path!s}: unexpected archive member {key!r}")
        plists.setdefault(name, {})[int(index)] = files.pop(key)
    for name, parts in plists.items():
        if sorted(parts) != list(range(len(parts))):
            raise ValueError(f"{path!s}: parameter {name} has entries {sorted(parts)}")
        params[name] = [parts[i] for i in range(len(parts))]
    cls = registry[cls_name]
    unknown = sorted(set(params) - set(cls().get_params(deep=False)))
    if unknown:
        raise ValueError(f"{path!s}: unknown parameters {unknown} for {cls_name}")
    if hasattr(cls, "_loaded_params"):
        try:
            params = cls._loaded_params(params)
        except ValueError as exc:
            raise ValueError(f"{path!s}: {exc}") from None
    est = cls(**params)
    allowed = set(getattr(cls, "_fitted_attributes", ()))
    trace = {}
    rngs = {}
    lists = {}
    for key, value in files.items():
        if key.startswith("attr__"):
            name = key[len("attr__"):]
            if name not in allowed:
                raise ValueError(f"{path!s}: unexpected attribute {name!r} for {cls_name}")
            setattr(est, name, value.item() if value.ndim == 0 else value)
        elif key.startswith("trace__"):
            sub_key = key[len("trace__"):]
            if sub_key not in _TRACE_KEYS:
                raise ValueError(f"{path!s}: unexpected trace_ entry {sub_key!r}")
            trace[sub_key] = value
        elif key.startswith("list__") and "." in key:
            name, index = key[len("list__"):].rsplit(".", 1)
            if name not in allowed or not (index.isascii() and index.isdigit()):
                raise ValueError(f"{path!s}: unexpected list entry {key!r} for {cls_name}")
            lists.setdefault(name, {})[int(index)] = value
        elif key.startswith("rng__") and "." in key:
            name, sub_key = key[len("rng__"):].rsplit(".", 1)
            if name not in allowed or sub_key not in _RNG_KEYS:
                raise ValueError(f"{path!s}: unexpected random state {key!r} for {cls_name}")
            rngs.setdefault(name, {})[sub_key] = value
        elif key.startswith("dict__") and "." in key:
            name, sub_key = key[len("dict__"):].rsplit(".", 1)
            if name not in allowed:
                raise ValueError(f"{path!s}: unexpected attribute {name!r} for {cls_name}")
            if not isinstance(getattr(est, name, None), dict):
                setattr(est, name, {})
            getattr(est, name)[sub_key] = value
        else:
            raise ValueError(f"{path!s}: unexpected archive member {key!r}")
    for name, parts in lists.items():
        if sorted(parts) != list(range(len(parts))):
            raise ValueError(f"{path!s}: {name} has entries {sorted(parts)}, expected 0.."
                             f"{len(parts) - 1}")
        setattr(est, name, [parts[i] for i in range(len(parts))])
    for name, parts in rngs.items():
        try:
            setattr(est, name, _read_rng(name, parts))
        except ValueError as exc:
            raise ValueError(f"{path!s}: {exc}") from None
    if trace:
        try:
            est.trace_ = _read_trace(trace)
        except ValueError as exc:
            raise ValueError(f"{path!s}: {exc}") from None
    try:
        est._check_loaded()
    except (ValueError, TypeError, KeyError, AttributeError, IndexError,
            np.linalg.LinAlgError) as exc:
        raise ValueError(f"{path!s}: {exc}") from None
    if hasattr(est, "lower_bounds_"):
        est.lower_bounds_ = list(np.asarray(est.lower_bounds_, dtype=np.float64))
    if hasattr(est, "_config"):       # predictions need the configuration it was fitted with
        est._fitted_with = est._config()
    return est


_TRACE_KEYS = ("objective", "seconds", "events")
_RNG_KEYS = ("keys", "pos", "has_gauss", "cached_gaussian")


def _read_rng(name, parts):
    """A numpy RandomState from its saved Mersenne Twister state, every part checked
    (errors name the part: random_state_.pos, say)."""
    missing = [k for k in _RNG_KEYS if k not in parts]
    if missing:
        raise ValueError(f"{name}.{missing[0]} is missing (a saved random state has "
                         f"{', '.join(_RNG_KEYS)})")
    keys, pos, has_gauss, cached = (parts[k] for k in _RNG_KEYS)
    if keys.dtype != np.uint32 or keys.shape != (624,):
        raise ValueError(f"{name}.keys must be 624 uint32 values, got dtype {keys.dtype} "
                         f"and shape {keys.shape}")
    for part, value, lo, hi in (("pos", pos, 0, 624), ("has_gauss", has_gauss, 0, 1)):
        if value.shape != () or value.dtype.kind not in "iu" or not lo <= int(value) <= hi:
            raise ValueError(f"{name}.{part} must be an integer in [{lo}, {hi}], got {value!r}")
    if cached.shape != () or cached.dtype.kind != "f" or not np.isfinite(cached):
        raise ValueError(f"{name}.cached_gaussian must be a finite float, got {cached!r}")
    rng = np.random.RandomState()
    rng.set_state(("MT19937", keys, int(pos), int(has_gauss), float(cached)))
    return rng


def _read_trace(arrays):
    """trace_ from its three arrays (all or none); events are "iteration<TAB>text"."""
    missing = [k for k in _TRACE_KEYS if k not in arrays]
    if missing:
        raise ValueError(f"trace_ is incomplete: no {missing}")
    events = arrays["events"]
    if events.dtype.kind != "U" or events.ndim != 1:
        raise ValueError(f"trace_['events'] must be a 1-D array of strings, got dtype "
                         f"{events.dtype} and shape {events.shape}")
    parsed = []
    for e in events:
        head, tab, text = str(e).partition("\t")
        if not tab or not (head.isascii() and head.isdigit()):
            raise ValueError(f"trace_['events'] holds an invalid entry {str(e)[:40]!r}")
        parsed.append((int(head), text))
    return {"objective": arrays["objective"], "seconds": arrays["seconds"], "events": parsed}
