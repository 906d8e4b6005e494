"""Input validation shared by the estimators (run once, before any kernel)."""
import numbers
import sys
import time

import numpy as np


def check_scale(X, name="X", rows=1 << 20):
    """ValueError when X's magnitude makes the kernels' second moments overflow in
    its dtype (|x| above about sqrt(max) / 1e4: 1e150 in float64, 1e15 in float32).
    A Gaussian model is scale-equivariant: the caller divides X by a constant (its
    means scale with it, its covariances with its square).  Read in blocks."""
    X = np.asarray(X) if not hasattr(X, "dtype") else X
    limit = np.sqrt(np.finfo(X.dtype).max) / 1e4
    big = 0.0
    for s in range(0, X.shape[0], rows):
        block = np.asarray(X[s:s + rows])
        if block.size:
            big = max(big, float(np.max(np.abs(block))))
    if big > limit:
        raise ValueError(f"{name} holds values up to {big:.3g}: in {X.dtype} their squares "
                         f"overflow (values up to {limit:.3g} are supported); divide {name} "
                         "by a constant -- the model is scale-equivariant")
    return X


def is_choice(value, options):
    """value is one of options (strings, bools, None): an array or a list, which
    `in` would compare element-wise, is not."""
    return (value is None or isinstance(value, (str, bool, np.bool_))) and value in options


def check_random_state_param(value):
    """scikit-learn's check_random_state, with an error that names the parameter."""
    from sklearn.utils import check_random_state
    try:
        return check_random_state(value)
    except (ValueError, TypeError):
        raise ValueError(f"random_state must be None, an int in [0, 2**32) or a "
                         f"numpy RandomState / Generator, got {value!r}") from None


def check_array_param(value, name, shape):
    """A finite float64 array of exactly `shape`, or a ValueError/TypeError naming `name`."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} could not be converted to an array: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity")
    return arr


def check_sample_weight(sample_weight, n_samples):
    """None, or a finite, non-negative float64 vector of length n_samples with a positive sum."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, numbers.Number) and not isinstance(sample_weight, (bool, np.bool_)):
        if not np.isfinite(sample_weight) or sample_weight <= 0:
            raise ValueError(f"sample_weight must be positive and finite, got {sample_weight}")
        return np.full(n_samples, float(sample_weight))
    arr = np.asarray(sample_weight)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight must be numeric, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"sample_weight must be 1D array or scalar, got shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise ValueError(f"sample_weight.shape == ({arr.shape[0]},), expected ({n_samples},)!")
    if not np.all(np.isfinite(arr)):
        raise ValueError("sample_weight contains NaN or infinity")
    if np.any(arr < 0):
        raise ValueError("Negative values in data passed to sample_weight")
    if n_samples > 0 and arr.sum() <= 0:
        raise ValueError("sample_weight must contain at least one non-zero weight (all are zero)")
    return arr


class _Report:
    """Progress as scikit-learn prints it: verbose=1 one line per initialisation and
    per verbose_interval iterations, verbose=2 with times and objective changes, and
    the convergence line at the end of each initialisation.  A tqdm bar, with the
    whole run as its total, replaces the lines where it adds something (Gibbs
    chains, online passes)."""

    def __init__(self, estimator, label, total=None, unit="Initialization"):
        self.verbose = int(getattr(estimator, "verbose", 0) or 0)
        self.interval = max(int(getattr(estimator, "verbose_interval", 10) or 10), 1)
        self.label, self.unit = label, unit
        self.bar = None
        if self.verbose > 0 and total is not None:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=int(total), desc=label, leave=False, file=sys.stderr)
        self.t_init = self.t_iter = time.perf_counter()

    def restart(self, init):
        self.t_init = self.t_iter = time.perf_counter()
        if self.bar is not None:
            self.bar.set_description(f"{self.label} {self.unit.lower()} {init}")
        elif self.verbose > 0:
            print(f"{self.unit} {init}")

    def iteration(self, n_iter, objective, change):
        now = time.perf_counter()
        if self.bar is not None:
            self.bar.update(1)
            if np.isfinite(objective):
                self.bar.set_postfix_str(f"objective {objective:.6g}", refresh=False)
        elif self.verbose > 0 and n_iter % self.interval == 0:
            if self.verbose == 1:
                print(f"  Iteration {n_iter}")
            else:
                print(f"  Iteration {n_iter}\t time lapse {now - self.t_iter:.5f}s\t "
                      f"objective change {change:.5f}")
        self.t_iter = now

    def end(self, converged, objective):
        if self.bar is not None or self.verbose <= 0:
            return
        msg = "converged" if converged else "did not converge"
        if self.verbose == 1:
            print(f"{self.unit} {msg}.")
        else:
            print(f"{self.unit} {msg}. time lapse {time.perf_counter() - self.t_init:.5f}s\t "
                  f"objective {objective:.5f}")

    def close(self):
        if self.bar is not None:
            self.bar.close()


def progress_reporter(estimator, label, total=None, unit="Initialization"):
    """(reporter, close): scikit-learn's verbose lines, or a tqdm bar over `total`
    steps where one is given."""
    rep = _Report(estimator, label, total, unit)
    return rep, rep.close


class FittedConfig:
    """An estimator predicts with the configuration it was fitted with.  fit (and
    partial_fit, and fastvem.load) record the parameters named in _CONFIG; a
    method that needs the fitted state refuses, "refit required", when one of
    them was changed since (by set_params, say).  A fit that fails leaves the
    estimator unfitted (NotFittedError), not half-fitted."""

    _CONFIG = ("n_components",)

    def _config(self):
        return {p: getattr(self, p) for p in self._CONFIG}

    def _check_config(self, what="predict"):
        fitted = getattr(self, "_fitted_with", None)
        if fitted is None:
            return
        for p, v in fitted.items():
            now = getattr(self, p)
            if now != v:
                raise ValueError(f"{p} was {v!r} when the model was fitted and is now {now!r}: "
                                 f"refit required before {what} (call fit)")

    def __sklearn_is_fitted__(self):
        return hasattr(self, "_fitted_with")


def stepwise_schedule(est):
    """(learning_decay, learning_offset, total_samples) of partial_fit, read from the
    estimator with their defaults (0.7, 1.0, None) and checked: the step size of
    call t is rho = (learning_offset + t) ** -learning_decay."""
    decay = getattr(est, "learning_decay", 0.7)
    offset = getattr(est, "learning_offset", 1.0)
    total = getattr(est, "total_samples", None)
    if not (isinstance(decay, (int, float)) and 0.5 < decay <= 1.0):
        raise ValueError(f"learning_decay must be in (0.5, 1], got {decay!r}")
    if not (isinstance(offset, (int, float)) and offset >= 1.0):
        raise ValueError(f"learning_offset must be >= 1, got {offset!r}")
    if total is not None and not (isinstance(total, (int, float)) and total > 0):
        raise ValueError(f"total_samples must be None or positive, got {total!r}")
    return float(decay), float(offset), total


def stepwise_rho(t, decay, offset):
    """The step size of partial_fit's step t (0, 1, ...): 1 for the first (its
    statistics taken whole), then (offset + t) ** -decay."""
    return 1.0 if t == 0 else (offset + t) ** (-decay)
