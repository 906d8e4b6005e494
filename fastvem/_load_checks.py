"""What ``fastvem.load`` checks in a loaded estimator before handing it back.

A file is data, not code we wrote: every fitted attribute is checked against a
schema before any method can read it --

- presence: the attributes that the estimator's methods (predict, predict_proba,
  score, score_samples, transform, perplexity, sample, bic, aic, warm_start /
  partial_fit continuation, save) read for the method it was fitted with;
- dtype: float32 / float64 where floats are expected, ints for counts, bools;
- exact shape: K from n_components, D (V for LDA) from n_features_in_, the
  covariance_type's layout, the Dirichlet-process pair of weight_concentration_,
  the gibbs draws (S, K, ...) and chains;
- domain: finite values, weights non-negative and summing to 1, covariances
  symmetric positive definite (positive for diag / spherical), precision Cholesky
  factors upper-triangular with a positive diagonal, precisions that agree with
  them, positive priors, degrees of freedom > D - 1, positive topics, and the
  fitted quantities consistent with one another (precisions_ with their Cholesky
  factors, weights_ with q(pi) or the draws, exp_dirichlet_component_ with
  components_, rhat_ / ess_ with mixing_, occupied_ with occupancy_);
- the constructor parameters, with the estimators' own checks.

Attributes of another method (left by a refit with a different ``method``) are
only checked for a numeric dtype and no NaN.  Each violation raises ValueError
naming the attribute; fastvem.load prefixes the path.
"""
import numbers

import numpy as np

__all__ = ["check_gaussian_mixture", "check_lda"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_TINY = np.finfo(np.float64).tiny
_SUM_TOL = 1e-6          # |sum of weights - 1|
_DIAGNOSTICS = ("mixing_", "rhat_", "ess_")   # may hold NaN / inf legitimately


def _fail(message):
    raise ValueError(message)


def _short(value, n=40):
    text = repr(value)
    return text if len(text) <= n else text[:n] + "..."


# ------------------------------------------------------------------ scalars
def _float(name, v, *, low=None, strict=True, nan=False, posinf=False, neginf=False):
    if isinstance(v, np.ndarray):
        _fail(f"{name} has shape {v.shape}, expected a scalar")
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (float, np.floating)):
        _fail(f"{name} must be a float, got {type(v).__name__} {_short(v)}")
    v = float(v)
    if np.isnan(v):
        if not nan:
            _fail(f"{name} is NaN")
        return v
    if (v == np.inf and not posinf) or (v == -np.inf and not neginf):
        _fail(f"{name} is {v}, expected a finite value")
    if low is not None and (v < low or (strict and v == low)):
        _fail(f"{name} is {v}, expected {'>' if strict else '>='} {low}")
    return v


def _int(name, v, low=0, high=None):
    if isinstance(v, np.ndarray):
        _fail(f"{name} has shape {v.shape}, expected a scalar")
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
        _fail(f"{name} must be an int, got {type(v).__name__} {_short(v)}")
    v = int(v)
    if v < low or (high is not None and v > high):
        _fail(f"{name} is {v}, expected an int in [{low}, {'inf' if high is None else high}]")
    return v


def _bool(name, v):
    if isinstance(v, np.ndarray):
        _fail(f"{name} has shape {v.shape}, expected a scalar")
    if not isinstance(v, (bool, np.bool_)):
        _fail(f"{name} must be a bool, got {type(v).__name__} {_short(v)}")
    return bool(v)


# ------------------------------------------------------------------- arrays
def _as_array(name, v):
    if isinstance(v, (list, tuple)):           # lower_bounds_, a DP pair in memory
        try:
            v = np.asarray(v)
        except ValueError:
            _fail(f"{name} is ragged")
    if not isinstance(v, np.ndarray):
        _fail(f"{name} must be an array, got {type(v).__name__} {_short(v)}")
    return v


def _shape(name, a, shape):
    if a.shape != tuple(shape):
        _fail(f"{name} has shape {a.shape}, expected {tuple(shape)}")


def _farray(name, v, shape=None, *, ndim=None):
    """A float32 / float64 array of exactly `shape` (or `ndim` dimensions)."""
    a = _as_array(name, v)
    if a.dtype not in _FLOATS:
        _fail(f"{name} has dtype {a.dtype}, expected float32 or float64")
    if shape is not None:
        _shape(name, a, shape)
    if ndim is not None and a.ndim != ndim:
        _fail(f"{name} has shape {a.shape}, expected {ndim} dimension(s)")
    return a


def _finite(name, a, *, nan=False):
    bad = ~np.isfinite(a)
    if nan:
        bad &= ~np.isnan(a)
    if np.any(bad):
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        _fail(f"{name} is not finite (value {a[where]} at index {where})")
    return a


def _magnitude(name, a):
    """Means beyond what the kernels' squares hold in the array's dtype (the limit
    fit applies to data) are refused: predictions would overflow."""
    limit = np.sqrt(np.finfo(a.dtype if a.dtype.kind == "f" else np.float64).max) / 1e4
    big = float(np.max(np.abs(a), initial=0.0))
    if big > limit:
        _fail(f"{name} holds values up to {big:.3g}, beyond the {limit:.3g} the kernels "
              "support")


def _positive(name, a, strict=True):
    bad = ~(a > 0) if strict else ~(a >= 0)
    bad &= ~np.isnan(a)                       # NaN: for _finite to report
    if np.any(bad):
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        _fail(f"{name} must be {'positive' if strict else 'non-negative'} "
              f"(value {a[where]} at index {where})")


def _probabilities(name, a, axis=-1):
    """Non-negative, summing to 1 along axis."""
    _finite(name, a)
    _positive(name, a, strict=False)
    total = a.astype(np.float64).sum(axis=axis)
    bad = np.abs(total - 1.0) > _SUM_TOL
    if np.any(bad):
        _fail(f"{name} does not sum to 1 (sum {np.ravel(total)[np.argmax(np.ravel(bad))]!r})")


def _positive_floats(name, v, shape, low=0.0):
    a = _farray(name, v, shape)
    _finite(name, a)
    if low:
        if np.any(a <= low):
            _fail(f"{name} must be > {low} (min {a.min()})")
    else:
        _positive(name, a)
    return a


# -------------------------------------------------------- Gaussian matrices
def _matrix_index(lead_shape, flat):
    """'[i, j]' of the flat-th matrix of a stack ('' for a single matrix)."""
    if not lead_shape:
        return ""
    return str([int(i) for i in np.unravel_index(flat, lead_shape)])


def _spd(name, a, allow_singular):
    """a (..., D, D): symmetric, positive definite (positive semi-definite up to
    rounding where allow_singular: reg_covar=0 on collapsed data)."""
    lead = a.shape[:-2]
    m = a.astype(np.float64).reshape((-1,) + a.shape[-2:])
    scale = np.abs(m).max(axis=(1, 2))
    asym = np.abs(m - np.swapaxes(m, 1, 2)).max(axis=(1, 2))
    bad = asym > 1e-6 * np.maximum(scale, _TINY)
    if np.any(bad):
        _fail(f"{name}{_matrix_index(lead, np.argmax(bad))} is not symmetric")
    diag = np.diagonal(m, axis1=1, axis2=2)
    dbad = np.any(diag < 0 if allow_singular else diag <= 0, axis=1)
    eig = np.linalg.eigvalsh(m)
    tol = (1e-5 if a.dtype == np.float32 else 1e-10) * np.maximum(eig[:, -1], 0)
    ebad = eig[:, 0] < -tol if allow_singular else (eig[:, 0] <= -tol) | (eig[:, -1] <= 0)
    bad = dbad | ebad
    if np.any(bad):
        i = int(np.argmax(bad))
        _fail(f"{name}{_matrix_index(lead, i)} is not positive definite "
              f"(smallest eigenvalue {eig[i, 0]:.3g})")


def _cov_shape(ct, K, D):
    return {"full": (K, D, D), "tied": (D, D), "diag": (K, D), "spherical": (K,)}[ct]


def _covariances(name, v, ct, K, D, reg_covar, lead=()):
    a = _farray(name, v, lead + _cov_shape(ct, K, D))
    _finite(name, a)
    if ct in ("full", "tied"):
        _spd(name, a, allow_singular=reg_covar == 0)
    else:
        _positive(name, a, strict=reg_covar > 0)
    return a


def _precisions_cholesky(name, v, ct, K, D):
    a = _farray(name, v, _cov_shape(ct, K, D))
    _finite(name, a)
    if ct in ("full", "tied"):
        m = a.reshape((-1, D, D))
        lower = np.tril(m, -1)
        if np.any(lower != 0):
            i = int(np.argmax(np.any(lower != 0, axis=(1, 2))))
            _fail(f"{name}{[i] if ct == 'full' else ''} is not upper-triangular")
        diag = np.diagonal(m, axis1=1, axis2=2)
        if np.any(diag <= 0):
            i = int(np.argmax(np.any(diag <= 0, axis=1)))
            _fail(f"{name}{[i] if ct == 'full' else ''} has a non-positive diagonal "
                  f"(min {diag[i].min()})")
    else:
        _positive(name, a)
    return a


def _precisions(name, v, chol, ct, K, D):
    """precisions_ = U U^T of the Cholesky factors (diag / spherical: U**2), to a
    loose tolerance scaled by |U| |U|^T."""
    a = _farray(name, v, _cov_shape(ct, K, D))
    _finite(name, a)
    u = chol.astype(np.float64)
    if ct in ("full", "tied"):
        um = u.reshape((-1, D, D))
        ref = um @ np.swapaxes(um, 1, 2)
        bound = np.abs(um) @ np.swapaxes(np.abs(um), 1, 2)
        got = a.astype(np.float64).reshape(ref.shape)
    else:
        ref = u ** 2
        bound = ref
        got = a.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        bad = np.abs(got - ref) > 1e-3 * bound + _TINY
    if np.any(bad):
        _fail(f"{name} does not match precisions_cholesky_ (U U^T), largest difference "
              f"{np.max(np.abs(got - ref)):.3g}")
    return a


def _feature_names(est, n_features):
    v = vars(est).get("feature_names_in_")
    if v is None:
        return
    a = _as_array("feature_names_in_", v)
    if a.dtype.kind != "U" and not (a.dtype == object and all(isinstance(s, str)
                                                              for s in a.ravel())):
        _fail(f"feature_names_in_ has dtype {a.dtype}, expected strings")
    _shape("feature_names_in_", a, (n_features,))


def _trace(est, n_iter, nan_objective, exact=True):
    """trace_ (optional): objective and seconds per iteration (n_iter_ of them where
    exact; partial_fit restarts n_iter_ but keeps the last fit's trace), events
    (iteration, text)."""
    t = vars(est).get("trace_")
    if t is None:
        return
    if not isinstance(t, dict) or set(t) != {"objective", "seconds", "events"}:
        _fail("trace_ must be a dict with 'objective', 'seconds' and 'events'")
    obj = _farray("trace_['objective']", t["objective"], (n_iter,) if exact else None, ndim=1)
    n_iter = obj.shape[0]
    _finite("trace_['objective']", obj, nan=nan_objective)
    sec = _farray("trace_['seconds']", t["seconds"], (n_iter,))
    _finite("trace_['seconds']", sec)
    _positive("trace_['seconds']", sec, strict=False)
    events = t["events"]
    if not isinstance(events, list):
        _fail("trace_['events'] must be a list of (iteration, text)")
    for e in events:
        if (not isinstance(e, tuple) or len(e) != 2 or not isinstance(e[1], str)
                or isinstance(e[0], bool) or not isinstance(e[0], numbers.Integral)
                or not 0 <= e[0] <= max(n_iter, 0)):
            _fail(f"trace_['events'] holds an invalid entry {_short(e)}")


def _generic(name, v):
    """An attribute that belongs to another method than the model's: numeric, no NaN."""
    if isinstance(v, dict):
        for key, sub in v.items():
            _generic(f"{name}[{key!r}]", sub)
        return
    if isinstance(v, (bool, np.bool_, numbers.Number)):
        a = np.asarray(v)
    else:
        a = _as_array(name, v)
    if a.dtype.kind not in "biuf":
        _fail(f"{name} has dtype {a.dtype}, expected numbers")
    if a.dtype.kind == "f" and name.split("[")[0] not in _DIAGNOSTICS and np.any(np.isnan(a)):
        _fail(f"{name} contains NaN")


def _params(*calls):
    try:
        for call in calls:
            call()
    except (TypeError, ValueError, NotImplementedError) as exc:
        raise ValueError(f"invalid constructor parameter: {exc}") from None


def _random_state(est):
    from sklearn.utils import check_random_state
    try:
        check_random_state(est.random_state)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"random_state={_short(est.random_state)}: {exc}") from None


class _Attrs:
    """The estimator's fitted attributes, with presence rules."""

    def __init__(self, est, context):
        self.d = vars(est)
        self.context = context
        self.seen = set()

    def need(self, name):
        if name not in self.d:
            _fail(f"{name} is missing (needed by a model fitted with {self.context})")
        self.seen.add(name)
        return self.d[name]

    def maybe(self, name):
        self.seen.add(name)
        return self.d.get(name)

    def others(self, names):
        for name in names:
            if name in self.d and name not in self.seen:
                _generic(name, self.d[name])


# --------------------------------------------------------- shared: gibbs
def _mixing(attrs, expected_keys):
    """mixing_ {name: (R-hat, ESS)} of the monitored quantities, and rhat_ / ess_:
    the worst R-hat (inf where one is NaN: too short a chain) and the least ESS."""
    mixing = attrs.need("mixing_")
    if not isinstance(mixing, dict):
        _fail(f"mixing_ must be a dict, got {type(mixing).__name__}")
    if set(mixing) != set(expected_keys):
        missing = sorted(set(expected_keys) - set(mixing))
        extra = sorted(set(mixing) - set(expected_keys))
        _fail(f"mixing_ has the wrong quantities (missing {missing[:4]}, unexpected {extra[:4]})")
    worst, least = 1.0, np.inf
    for key in expected_keys:
        label = f"mixing_[{key!r}]"
        a = _farray(label, mixing[key], (2,)).astype(np.float64)
        r, e = float(a[0]), float(a[1])
        if np.isinf(r) or (not np.isnan(r) and r < 0):
            _fail(f"{label} has R-hat {r}, expected a non-negative number or NaN")
        if not np.isfinite(e) or e < 0:
            _fail(f"{label} has ESS {e}, expected a finite non-negative number")
        worst = max(worst, r) if np.isfinite(r) else np.inf
        least = min(least, e)
    rhat = _float("rhat_", attrs.need("rhat_"), low=0.0, strict=False, posinf=True)
    ess = _float("ess_", attrs.need("ess_"), low=0.0, strict=False, posinf=True)
    if rhat != worst:
        _fail(f"rhat_ ({rhat}) is not the worst R-hat in mixing_ ({worst})")
    if ess != least:
        _fail(f"ess_ ({ess}) is not the least ESS in mixing_ ({least})")


def _chains(attrs, S, n_iter, trace, lbs, lb):
    """log_joint_ (chains, sweeps), the chains whose kept sweeps are the S draws,
    against the trace (its mean over the chains), lower_bounds_ (one chain) and
    lower_bound_ (the mean of the kept sweeps)."""
    lj = _farray("log_joint_", attrs.need("log_joint_"), ndim=2)
    C = lj.shape[0]
    if lj.shape[1] != n_iter or C < 1 or S % C:
        _fail(f"log_joint_ has shape {lj.shape}, expected (chains, n_iter_={n_iter}) "
              f"with the chains dividing the {S} draws")
    _finite("log_joint_", lj)
    if trace is not None and not np.allclose(trace["objective"], lj.mean(0),
                                             rtol=1e-12, atol=0):
        _fail("trace_['objective'] is not the mean of log_joint_ over the chains")
    if not any(np.array_equal(lbs, row) for row in lj):
        _fail("lower_bounds_ is not a chain of log_joint_")
    if not lj.min() <= lb <= lj.max():
        _fail(f"lower_bound_ ({lb}) lies outside log_joint_")


def _mixing_keys(K, per_component):
    """The quantities the chains' diagnostics monitor (MixtureEstimator._mixing)."""
    return (["log_joint", "allocation_entropy"] + [f"sorted_weight_{j}" for j in range(K)]
            + [q for k in range(K) for q in [f"weight_{k}"] + per_component(k)])


def _occupancy(attrs, K):
    occ = _farray("occupancy_", attrs.need("occupancy_"), (K,))
    _finite("occupancy_", occ)
    if np.any(occ < 0) or np.any(occ > 1):
        _fail("occupancy_ must lie in [0, 1]")
    _probabilities("n_occupied_posterior_",
                   _farray("n_occupied_posterior_", attrs.need("n_occupied_posterior_"),
                           (K + 1,)))
    return occ


# ------------------------------------------------------ Gaussian mixtures
_GIBBS_DRAWS = ("weights", "means", "covariances", "counts")


def _gibbs_params(est):
    for name, low in (("n_samples", 1), ("burn_in", 0), ("thin", 1), ("n_chains", 1)):
        v = getattr(est, name)
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{name} must be an int, got {type(v).__name__}")
        if v < low:
            raise ValueError(f"{name} must be >= {low}, got {v}")


def check_gaussian_mixture(est):
    """Validate a loaded GaussianMixture / BayesianGaussianMixture (see the module doc)."""
    from .models.gaussian_mixture import _FITTED
    from .structures.mixture import DirichletWeights
    _params(est._check_hyper, lambda: _random_state(est))
    method = est._method()
    update = method.update
    attrs = _Attrs(est, f"method={method.name!r}")
    D = _int("n_features_in_", attrs.need("n_features_in_"), low=1)
    _params(lambda: est._check_inits(D),
            lambda: est._priors(np.zeros((0, D)), (2.0, np.zeros(D), np.eye(D))),
            *((lambda: _gibbs_params(est),) if update == "sample" else ()))
    K, ct, reg = int(est.n_components), est.covariance_type, float(est.reg_covar)

    # --- the point parameters every method stores (predict / score / sample / bic)
    weights = _farray("weights_", attrs.need("weights_"), (K,))
    _probabilities("weights_", weights)
    _magnitude("means_", _finite("means_", _farray("means_", attrs.need("means_"), (K, D))))
    covs = _covariances("covariances_", attrs.need("covariances_"), ct, K, D, reg)
    chol = _precisions_cholesky("precisions_cholesky_", attrs.need("precisions_cholesky_"),
                                ct, K, D)
    _precisions("precisions_", attrs.need("precisions_"), chol, ct, K, D)
    if ct in ("diag", "spherical"):
        ref = 1.0 / np.sqrt(np.maximum(covs.astype(np.float64), _TINY))
        if not np.allclose(chol, ref, rtol=1e-3, atol=0):
            _fail("precisions_cholesky_ does not match covariances_ (1 / sqrt)")

    # --- the run (warm_start reads converged_ and lower_bound_)
    _bool("converged_", attrs.need("converged_"))
    n_iter = _int("n_iter_", attrs.need("n_iter_"), low=1 if update == "sample" else 0)
    lbs = _farray("lower_bounds_", attrs.need("lower_bounds_"), ndim=1)
    _finite("lower_bounds_", lbs)
    lb = _float("lower_bound_", attrs.need("lower_bound_"), neginf=n_iter == 0)
    trace = vars(est).get("trace_")
    # fit: one bound per iteration, as many as the trace; partial_fit (possibly after
    # a fit, whose trace stays): the last step's bound only
    stepped = update != "sample" and n_iter >= 1 and lbs.shape[0] == 1
    if not stepped:
        _shape("lower_bounds_", lbs, (n_iter,))
    n_e = attrs.maybe("n_e_steps_")
    if n_e is not None:
        _int("n_e_steps_", n_e, low=0 if stepped else n_iter)
    attrs.maybe("feature_names_in_")
    _feature_names(est, D)
    _trace(est, n_iter, nan_objective=False, exact=not stepped)
    if update != "sample":
        if lbs.shape[0] and lb != lbs[-1]:
            _fail(f"lower_bound_ ({lb}) is not the last of lower_bounds_ ({lbs[-1]})")
        if (trace is not None and est._objective_scale(2.0) == 1.0
                and trace["objective"].shape == lbs.shape
                and not np.array_equal(lbs, trace["objective"])):
            _fail("lower_bounds_ does not match trace_['objective']")

    # --- the priors (meanfield and gibbs)
    if update != "point":
        wcp = _float("weight_concentration_prior_", attrs.need("weight_concentration_prior_"),
                     low=0.0)
        _float("mean_precision_prior_", attrs.need("mean_precision_prior_"), low=0.0)
        _finite("mean_prior_", _farray("mean_prior_", attrs.need("mean_prior_"), (D,)))
        _float("degrees_of_freedom_prior_", attrs.need("degrees_of_freedom_prior_"),
               low=float(D - 1))
        c0 = attrs.need("covariance_prior_")
        if ct == "spherical":
            _float("covariance_prior_", c0, low=0.0)
        else:
            a = _farray("covariance_prior_", c0, (D, D) if ct in ("full", "tied") else (D,))
            _finite("covariance_prior_", a)
            if ct in ("full", "tied"):
                _spd("covariance_prior_", a, allow_singular=False)
            else:
                _positive("covariance_prior_", a)

    # --- q(theta) (meanfield): predict and score read it, not weights_
    if update == "posterior":
        dp = est.weight_concentration_prior_type == "dirichlet_process"
        conc = _positive_floats("weight_concentration_", attrs.need("weight_concentration_"),
                                (2, K) if dp else (K,))
        _positive_floats("mean_precision_", attrs.need("mean_precision_"), (K,))
        dof = attrs.need("degrees_of_freedom_")
        if ct == "tied":
            _float("degrees_of_freedom_", dof, low=float(D - 1))
        else:
            _positive_floats("degrees_of_freedom_", dof, (K,), low=float(D - 1))
        mean_w = DirichletWeights(est.weight_concentration_prior_type, wcp).mean_weights(
            (conc[0].astype(np.float64), conc[1].astype(np.float64)) if dp
            else conc.astype(np.float64))
        if not np.allclose(weights, mean_w, rtol=0, atol=1e-6):
            _fail("weights_ does not match the mean of weight_concentration_")

    # --- gibbs: the draws predict averages over, and the diagnostics
    if update == "sample":
        ps = attrs.need("posterior_samples_")
        if not isinstance(ps, dict):
            _fail(f"posterior_samples_ must be a dict, got {type(ps).__name__}")
        if set(ps) != set(_GIBBS_DRAWS):
            _fail(f"posterior_samples_ has keys {sorted(ps)}, expected {sorted(_GIBBS_DRAWS)}")
        w = _farray("posterior_samples_['weights']", ps["weights"], ndim=2)
        S = w.shape[0]
        if S < 1:
            _fail("posterior_samples_['weights'] holds no draw")
        _shape("posterior_samples_['weights']", w, (S, K))
        _probabilities("posterior_samples_['weights']", w)
        _magnitude("posterior_samples_['means']", _finite(
            "posterior_samples_['means']",
            _farray("posterior_samples_['means']", ps["means"], (S, K, D))))
        _covariances("posterior_samples_['covariances']", ps["covariances"], ct, K, D, reg,
                     lead=(S,))
        counts = _farray("posterior_samples_['counts']", ps["counts"], (S, K))
        _finite("posterior_samples_['counts']", counts)
        _positive("posterior_samples_['counts']", counts, strict=False)
        mean_w = w.astype(np.float64).mean(0)
        if not np.allclose(weights, mean_w / mean_w.sum(), rtol=0, atol=1e-6):
            _fail("weights_ is not the mean of posterior_samples_['weights']")
        _chains(attrs, S, n_iter, trace, lbs, lb)
        _int("n_relabelled_", attrs.need("n_relabelled_"), 0, S)
        occ = _occupancy(attrs, K)
        occupied = _as_array("occupied_", attrs.need("occupied_"))
        if occupied.dtype != np.bool_:
            _fail(f"occupied_ has dtype {occupied.dtype}, expected bool")
        _shape("occupied_", occupied, (K,))
        if not np.array_equal(occupied, occ >= 0.5):
            _fail("occupied_ does not match occupancy_ >= 0.5")
        _mixing(attrs, _mixing_keys(K, lambda k: [f"mean_{k}_{d}" for d in range(D)]))
    attrs.others(_FITTED)


# -------------------------------------------------------------------- LDA
def check_lda(est):
    """Validate a loaded LatentDirichletAllocation (see the module doc)."""
    from .families.categorical import TopicWords
    from .methods import PRESETS
    from .models.lda import _FITTED
    _params(est._check_params, lambda: est._priors(est.n_components),
            lambda: _random_state(est))
    method = PRESETS[est.method]
    attrs = _Attrs(est, f"method={method.name!r}")
    K = int(est.n_components)
    V = _int("n_features_in_", attrs.need("n_features_in_"), low=1)
    comp = _positive_floats("components_", attrs.need("components_"), (K, V))
    edc = _positive_floats("exp_dirichlet_component_", attrs.need("exp_dirichlet_component_"),
                           (K, V))
    if edc.dtype != comp.dtype:
        _fail(f"exp_dirichlet_component_ has dtype {edc.dtype}, components_ {comp.dtype}")
    with np.errstate(over="ignore", under="ignore"):
        ref = TopicWords(V, 1.0).effective_topics(comp.astype(np.float64),
                                                  method.update == "posterior", np.float64).T
    if not np.allclose(edc, ref, rtol=1e-3 if comp.dtype == np.float32 else 1e-6, atol=0):
        _fail(f"exp_dirichlet_component_ does not match components_ for "
              f"method={method.name!r}")
    _int("n_batch_iter_", attrs.need("n_batch_iter_"), low=1)
    n_iter = _int("n_iter_", attrs.need("n_iter_"), low=0)
    alpha = attrs.need("doc_topic_prior_")
    if isinstance(alpha, np.ndarray):
        if alpha.shape != (K,):
            _fail(f"doc_topic_prior_ has shape {alpha.shape}, expected ({K},) or a scalar")
        _positive_floats("doc_topic_prior_", alpha, (K,))
    else:
        _float("doc_topic_prior_", alpha, low=0.0)
    _float("topic_word_prior_", attrs.need("topic_word_prior_"), low=0.0)
    from .models.lda import MAX_PRIOR
    for name in ("doc_topic_prior_", "topic_word_prior_"):
        if np.max(np.asarray(attrs.need(name), dtype=np.float64)) > MAX_PRIOR:
            _fail(f"{name} exceeds {MAX_PRIOR:g} (a Dirichlet concentration that large is "
                  "a point mass in float64)")
    bound = attrs.maybe("bound_")              # absent after partial_fit
    if bound is not None:
        _float("bound_", bound, low=0.0)
    attrs.maybe("feature_names_in_")
    _feature_names(est, V)
    # online passes and partial_fit record no objective (NaN)
    _trace(est, n_iter, nan_objective=True)
    if method.assign == "sample":
        _finite("log_joint_", _farray("log_joint_", attrs.need("log_joint_"), (n_iter,)))
        _int("n_relabelled_", attrs.need("n_relabelled_"), 0, n_iter)
        _occupancy(attrs, K)
        _mixing(attrs, ["log_joint"])
    rs = attrs.maybe("random_state_")          # absent in files of earlier versions
    if rs is not None and not isinstance(rs, np.random.RandomState):
        _fail(f"random_state_ must be a numpy RandomState, got {type(rs).__name__}")
    attrs.others(_FITTED)


# ------------------------------------------------------ discrete mixtures
def check_discrete_mixture(est):
    """Validate a loaded BernoulliMixture / CategoricalMixture / PoissonMixture:
    the family's parameters (est._check_theta), the weights, the run, and per
    method the conjugate posterior (meanfield) or the kept draws (gibbs)."""
    from .methods import get_method
    from .engine import default_n_threads
    _params(lambda: est._check_params(2 ** 62), lambda: default_n_threads(est.n_threads),
            lambda: _random_state(est))
    method = get_method(est.method)
    update = method.update
    attrs = _Attrs(est, f"method={method.name!r}")
    K = int(est.n_components)
    D = _int("n_features_in_", attrs.need("n_features_in_"), low=1)
    est.n_features_in_ = D
    _probabilities("weights_", _farray("weights_", attrs.need("weights_"), (K,)))
    for name in ("probabilities_", "rates_", "n_categories_", "shape_prior_", "rate_prior_",
                 "mean_length_", "params_", "family_", "family_prior_"):   # est._check_theta
        attrs.maybe(name)
    est._check_theta(K)
    theta = est._fitted_theta(est._fitted_family())
    S = theta.shape[1]
    _bool("converged_", attrs.need("converged_"))
    n_iter = _int("n_iter_", attrs.need("n_iter_"), low=1 if update == "sample" else 0)
    lbs = _farray("lower_bounds_", attrs.need("lower_bounds_"), (n_iter,))
    _finite("lower_bounds_", lbs)
    lb = _float("lower_bound_", attrs.need("lower_bound_"), neginf=n_iter == 0)
    _trace(est, n_iter, nan_objective=False)
    trace = vars(est).get("trace_")
    est.n_rows_seen_ = _float("n_rows_seen_", attrs.need("n_rows_seen_"), low=0.0)
    if hasattr(est, "n_e_steps_"):
        est.n_e_steps_ = _int("n_e_steps_", est.n_e_steps_, low=0)
    if update == "posterior":
        fam = est._fitted_family()
        n_q, width = fam.n_posterior_arrays, fam.posterior_width()
        post = _farray("posterior_", attrs.need("posterior_"), (n_q, K, width))
        _finite("posterior_", post)
        _magnitude("posterior_", post)
        fam.check_posterior(post, "posterior_")
        dp = est.weight_concentration_prior_type == "dirichlet_process"
        conc = _positive_floats("weight_concentration_", attrs.need("weight_concentration_"),
                                (2, K) if dp else (K,))
        _magnitude("weight_concentration_", conc)
        est.weight_concentration_ = tuple(conc) if dp else conc
        # what predictions read: q's expected parameters finite, and the fitted
        # weights_ and parameters q's means (score_samples reads those)
        q = fam.unpack_posterior(post.astype(np.float64))
        wprior = est._weights_prior(K)
        conc64 = (tuple(c.astype(np.float64) for c in conc) if dp
                  else conc.astype(np.float64))
        with np.errstate(all="ignore"):
            W, c = fam.expected_effective(q)
            elogw = wprior.expected_log_weights(conc64)
        if not (np.all(np.isfinite(W)) and np.all(np.isfinite(c))
                and np.all(np.isfinite(elogw))):
            _fail("posterior_ / weight_concentration_ give non-finite expected parameters")
        weights = np.asarray(est.weights_, dtype=np.float64)
        if not np.allclose(weights, wprior.mean_weights(conc64), rtol=0, atol=1e-6):
            _fail("weights_ does not match the mean of weight_concentration_")
        mean_theta = fam.posterior_mean(q)
        if not np.allclose(theta, mean_theta, rtol=1e-6, atol=1e-9 * max(
                1.0, float(np.max(np.abs(mean_theta), initial=0.0)))):
            _fail(f"the fitted parameters ({est._theta_attr}) do not match the mean of "
                  "posterior_")
    if update == "sample":
        _int("n_relabelled_", attrs.need("n_relabelled_"), 0, n_iter)
        draws = attrs.need("posterior_samples_")
        if not isinstance(draws, dict) or set(draws) != {"weights", "theta"}:
            _fail("posterior_samples_ must be a dict with 'weights' and 'theta'")
        w = _farray("posterior_samples_['weights']", draws["weights"], ndim=2)
        if w.shape[1] != K or w.shape[0] < 1:
            _fail(f"posterior_samples_['weights'] has shape {w.shape}, expected (draws, {K})")
        _probabilities("posterior_samples_['weights']", w)
        t = _farray("posterior_samples_['theta']", draws["theta"], (w.shape[0], K, S))
        _finite("posterior_samples_['theta']", t)
        for draw in t.astype(np.float64):            # per draw (tied: one covariance each)
            est._fitted_family().check_theta(draw, "posterior_samples_['theta']")
        _chains(attrs, w.shape[0], n_iter, trace, lbs, lb)
        n_mon = min(S, est._MONITORED_ENTRIES)
        _mixing(attrs, _mixing_keys(K, lambda k: [f"theta_{k}_{j}" for j in range(n_mon)]))
    attrs.others(est._fitted_attributes)
