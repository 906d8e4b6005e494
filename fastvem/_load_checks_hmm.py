"""What ``fastvem.load`` checks in a loaded hidden Markov model (GaussianHMM,
CategoricalHMM, PoissonHMM, MultinomialHMM, HMM(family), the variational HMMs)
before handing it back -- the HMM counterpart of fastvem/_load_checks.py, whose
helpers it uses:

- the constructor parameters, with the estimators' own checks (the emission
  family is rebuilt from them, which validates the priors);
- the chain: startprob_ (K) and transmat_ (K x K) float arrays, finite, >= 0,
  every row summing to 1;
- the emissions, by model: means_ (K x D, finite, within the kernels' range) and
  covars_ in the covariance_type's own shape (positive, or symmetric positive
  definite); emissionprob_ (K x symbols, rows that are distributions; of
  MultinomialHMM K x n_features_in_, with n_trials None, an integer or integers
  >= 0); lambdas_
  (K x D, finite, >= 0); theta_ of HMM(family) (K x the family's statistics, in
  the family's domain), with the reference point of a Gaussian family and the
  categories of a categorical one;
- the run: n_iter_, lower_bound_ (-inf only without iterations),
  monitor_history_ (n_iter_ finite totals: hmmlearn's monitor_.history), trace_;
  n_rows_seen_ (0 .. 2^53 rows), n_sequences_seen_ (1 .. n_rows_seen_) and
  n_steps_ (an int >= 0), which partial_fit reads;
- mean field: family_prior_, the family's prior of the fit (JSON; checked by
  families.state.prior_loads in the estimator's _check_loaded);
- mean field: the Dirichlet concentrations startprob_posterior_ (K) and
  transmat_posterior_ (K x K), positive, whose means are startprob_ / transmat_;
  emission_posterior_ (the family's q packed, finite, positive where q's
  parameters are);
- gibbs: posterior_samples_ {'startprob' (S x K), 'transmat' (S x K x K), 'theta'
  (S x K x statistics)}, S a multiple of n_chains, each draw in its domain,
  startprob_ / transmat_ their means; n_relabelled_ in [0, S]; the chains'
  diagnostics: log_joint_ (n_chains x n_iter_, finite, its mean over the chains
  the trace, lower_bound_ within it), mixing_ (R-hat, ESS of the monitored
  quantities; rhat_ the worst, ess_ the least) and converged_ (a bool);
- finally the parameters the predictions read, through the estimator's own
  validation (a covariance that does not factor, say).

Each violation raises ValueError naming the attribute; fastvem.load prefixes the
path.  Returns the rebuilt family (the estimator keeps what predictions need).
"""
import numpy as np

from ._load_checks import (_Attrs, _bool, _covariances, _farray, _fail, _finite, _float, _int,
                           _magnitude, _mixing, _params, _positive, _positive_floats,
                           _probabilities, _random_state, _shape, _spd, _trace)

__all__ = ["check_hmm"]

_MEAN_TOL = 1e-6
_MAX_ROWS = 2.0 ** 53           # rows counted exactly in a float64


def _chain(attrs, K):
    start = _farray("startprob_", attrs.need("startprob_"), (K,))
    _probabilities("startprob_", start)
    trans = _farray("transmat_", attrs.need("transmat_"), (K, K))
    _probabilities("transmat_", trans)
    return start, trans


def _n_features(attrs):
    return _int("n_features_in_", attrs.need("n_features_in_"), low=1)


# ------------------------------------------------------------ emissions
def _gaussian(est, attrs, K):
    D = _n_features(attrs)
    means = _farray("means_", attrs.need("means_"), (K, D))
    _magnitude("means_", _finite("means_", means))
    ct = est.covariance_type
    _covariances("covars_", attrs.need("covars_"), ct, K, D, reg_covar=1.0)
    fam = est._family(D)
    # predictions take the data's mean as the reference point; any finite one
    # validates the parameters
    ref = np.ascontiguousarray(means.astype(np.float64).mean(0))
    fam.ref = ref
    pfam = est._predict_family(D)
    pfam.ref = ref
    return fam, D, pfam


def _categorical(est, attrs, K):
    D = _n_features(attrs)
    if D != 1:
        _fail(f"n_features_in_ is {D}, expected 1 (one symbol a row)")
    e = _farray("emissionprob_", attrs.need("emissionprob_"), ndim=2)
    if e.shape[0] != K or e.shape[1] < 1:
        _fail(f"emissionprob_ has shape {e.shape}, expected ({K}, n_symbols)")
    _probabilities("emissionprob_", e)
    nf = e.shape[1]
    if est.n_features is not None and int(est.n_features) != nf:
        _fail(f"emissionprob_ has {nf} symbols, but n_features={est.n_features}")
    fam = est._emission_family(nf)
    return fam, D, fam


def _multinomial(est, attrs, K):
    D = _n_features(attrs)
    e = _farray("emissionprob_", attrs.need("emissionprob_"), (K, D))
    _probabilities("emissionprob_", e)
    if est.n_trials is not None:
        from .models.hmm import _check_n_trials
        try:
            _check_n_trials(est.n_trials)
        except ValueError as exc:
            _fail(f"invalid constructor parameter: {exc}")
    from .models.hmm import _MultinomialHMMFamily
    fam = _MultinomialHMMFamily(D, est.params)
    return fam, D, fam


def _poisson(est, attrs, K):
    D = _n_features(attrs)
    lam = _farray("lambdas_", attrs.need("lambdas_"), (K, D))
    _finite("lambdas_", lam)
    _positive("lambdas_", lam, strict=False)
    _magnitude("lambdas_", lam)
    fam = est._family(D)
    return fam, D, fam


def _generic(est, attrs, K):
    from .families.base import Family
    from .families.discrete import Categorical
    from .families.normal import GaussianDiag, GaussianFull
    from .models.hmm import _FAMILIES
    if isinstance(est.family, Family):        # a family object: its saved JSON state
        from .families.state import loads
        D = _n_features(attrs)
        state = attrs.need("family_state_")
        if isinstance(state, np.ndarray) and state.ndim == 0:
            state = state.item()
        fam = loads(state, "family_state_", fitted=True)
        if type(fam) is not type(est.family):
            _fail(f"family_state_ is a {type(fam).__name__}, not the family parameter's "
                  f"{type(est.family).__name__}")
        if fam.n_features != D:
            _fail(f"family_state_ has {fam.n_features} features, n_features_in_ is {D}")
        theta = _farray("theta_", attrs.need("theta_"), (K, fam.n_statistics()))
        _theta_domain("theta_", fam, theta, _point_theta(est))
        return fam, D, fam
    if est.family not in _FAMILIES:
        _fail(f"family={est.family!r} cannot be rebuilt (one of {list(_FAMILIES)})")
    D = _n_features(attrs)
    name = est.family
    if name == "categorical":
        cats = attrs.need("n_categories_")
        if not isinstance(cats, np.ndarray) or cats.dtype.kind not in "iu":
            _fail(f"n_categories_ must be an integer array, got {type(cats).__name__} "
                  f"{getattr(cats, 'dtype', '')}")
        _shape("n_categories_", cats, (D,))
        if np.any(cats < 1) or np.any(cats > 2 ** 31 - 1):
            _fail(f"n_categories_ must hold counts >= 1, got {cats.min()}")
        fam = Categorical([int(v) for v in cats])
    else:
        from .families.discrete import Bernoulli, Poisson
        fam = {"gaussian_diag": GaussianDiag, "gaussian_full": GaussianFull,
               "gaussian": GaussianFull, "poisson": Poisson,
               "bernoulli": lambda d: Bernoulli(d, packed=False)}[name](D)
    if isinstance(fam, (GaussianDiag, GaussianFull)):
        ref = _farray("reference_", attrs.need("reference_"), (D,))
        _magnitude("reference_", _finite("reference_", ref))
        fam.ref = np.ascontiguousarray(ref, dtype=np.float64)
    S = fam.n_statistics()
    theta = _farray("theta_", attrs.need("theta_"), (K, S))
    _theta_domain("theta_", fam, theta, _point_theta(est))
    return fam, D, fam


def _point_theta(est):
    """theta_ is one parameter point (not gibbs' average over draws)."""
    from .methods import get_method
    return get_method(est.method).update != "sample"


def _theta_domain(name, fam, theta, structure=True):
    """theta (..., K, S), the family's mean parameters, in its domain (structure:
    as Family.check_theta)."""
    from .families.discrete import Bernoulli, Categorical, Poisson
    from .families.normal import GaussianDiag, GaussianFull
    _finite(name, theta)
    t = theta.astype(np.float64).reshape((-1,) + theta.shape[-1:])
    if isinstance(fam, (GaussianDiag, GaussianFull)):
        _magnitude(name, theta)
        mu, var = fam._split(t)
        if isinstance(fam, GaussianFull):
            _spd(f"{name} (its covariances)", var, allow_singular=False)
        elif np.any(~(var > 0)):
            _fail(f"{name} holds a variance <= 0 (second moment below the squared mean)")
    elif isinstance(fam, Categorical):
        _positive(name, t, strict=False)
        for j in range(len(fam.n_categories)):
            block = t[:, fam.offsets[j]:fam.offsets[j + 1]]
            _probabilities(f"{name} (feature {j})", block)
    elif isinstance(fam, (Bernoulli, Poisson)):
        _positive(name, t, strict=False)
        if isinstance(fam, Bernoulli) and np.any(t > 1):
            _fail(f"{name} holds a probability above 1")
        if isinstance(fam, Poisson):
            _magnitude(name, t)
    else:                                     # a product: each member's domain
        _magnitude(name, theta)
    if hasattr(fam, "check_theta"):           # the family's own rules (tied: one covariance)
        for block in t.reshape((-1,) + theta.shape[-2:]):      # per draw
            fam.check_theta(block, name, structure)


def _gmm(est, attrs, K):
    """GMMHMM: weights_ (K x n_mix, rows that are distributions), means_
    (K x n_mix x D, finite, within the kernels' range), covars_ in hmmlearn's
    GMMHMM shapes ((K, n_mix) spherical, (K, n_mix, D) diag, (K, n_mix, D, D) full,
    (K, D, D) tied: positive, or symmetric positive definite)."""
    D = _n_features(attrs)
    M = int(est.n_mix)
    w = _farray("weights_", attrs.need("weights_"), (K, M))
    _probabilities("weights_", w)
    means = _farray("means_", attrs.need("means_"), (K, M, D))
    _magnitude("means_", _finite("means_", means))
    ct = est.covariance_type
    if ct == "tied":
        _covariances("covars_", attrs.need("covars_"), "full", K, D, reg_covar=1.0)
    else:
        _covariances("covars_", attrs.need("covars_"), ct, M, D, reg_covar=1.0, lead=(K,))
    fam = est._family(D)
    # predictions take the data's mean as the reference point; any finite one
    # validates the parameters
    fam.ref = np.ascontiguousarray(means.astype(np.float64).reshape(K * M, D).mean(0))
    return fam, D, fam


_EMISSIONS = {"GaussianHMM": _gaussian, "VariationalGaussianHMM": _gaussian,
              "CategoricalHMM": _categorical, "VariationalCategoricalHMM": _categorical,
              "MultinomialHMM": _multinomial, "PoissonHMM": _poisson, "HMM": _generic}
_EMISSIONS["GMMHMM"] = _gmm


def _emissions(est, attrs, K):
    for cls in type(est).__mro__:
        if cls.__name__ in _EMISSIONS:
            return _EMISSIONS[cls.__name__](est, attrs, K)
    _fail(f"no load checks for {type(est).__name__}")


# ------------------------------------------------------- mean field
def _posterior_shape(fam, K):
    from .families.normal import GaussianDiag, GaussianFull
    D = fam.n_features
    if isinstance(fam, GaussianFull):
        return (1, K, 2 + D + D * D)
    if isinstance(fam, GaussianDiag):
        return (4, K, D)
    return (fam.n_posterior_arrays, K, fam.posterior_width())


def _posterior(attrs, fam, K, start, trans):
    from .families.normal import GaussianDiag, GaussianFull
    a = _positive_floats("startprob_posterior_", attrs.need("startprob_posterior_"), (K,))
    A = _positive_floats("transmat_posterior_", attrs.need("transmat_posterior_"), (K, K))
    a64, A64 = a.astype(np.float64), A.astype(np.float64)
    if not np.allclose(start, a64 / a64.sum(), rtol=0, atol=_MEAN_TOL):
        _fail("startprob_ is not the mean of startprob_posterior_")
    if not np.allclose(trans, A64 / A64.sum(1, keepdims=True), rtol=0, atol=_MEAN_TOL):
        _fail("transmat_ is not the mean of transmat_posterior_")
    name = "emission_posterior_"
    q = _farray(name, attrs.need(name), _posterior_shape(fam, K))
    _finite(name, q)
    D = fam.n_features
    if isinstance(fam, GaussianFull):
        q0 = q[0].astype(np.float64)
        _positive(f"{name} (beta)", q0[:, D])
        if np.any(q0[:, D + 1] <= D - 1):
            _fail(f"{name} holds degrees of freedom <= n_features - 1")
        _spd(f"{name} (scale matrices)", q0[:, D + 2:].reshape(K, D, D), allow_singular=False)
    elif isinstance(fam, GaussianDiag):
        _positive(name, q[1:])                 # q[0]: the means, any real
    elif type(fam).__name__ == "Product":      # each member's packed q in its domain
        fam.check_posterior(q.astype(np.float64), name)
    else:
        _positive(name, q)
    _magnitude(name, q)


def _draws(est, attrs, fam, K, start, trans, n_iter):
    from .families.normal import GaussianDiag, GaussianFull
    from .models.hmm import _monitored_names
    n_chains = int(est.n_chains)
    ps = attrs.need("posterior_samples_")
    keys = ("startprob", "transmat", "theta")
    if not isinstance(ps, dict) or set(ps) != set(keys):
        _fail(f"posterior_samples_ must be a dict with {list(keys)}")
    s = _farray("posterior_samples_['startprob']", ps["startprob"], ndim=2)
    S = s.shape[0]
    if S < 1 or S > n_chains * max(n_iter, 1) or S % n_chains:
        _fail(f"posterior_samples_['startprob'] holds {S} draws, expected n_chains="
              f"{n_chains} times 1..{n_iter}")
    _shape("posterior_samples_['startprob']", s, (S, K))
    _probabilities("posterior_samples_['startprob']", s)
    t = _farray("posterior_samples_['transmat']", ps["transmat"], (S, K, K))
    _probabilities("posterior_samples_['transmat']", t)
    th = _farray("posterior_samples_['theta']", ps["theta"], (S, K, fam.n_statistics()))
    _theta_domain("posterior_samples_['theta']", fam, th)
    # the fitted emissions are the draws' average; a Gaussian's draws are about the
    # fit's reference point, which is not saved: its fitted means less the draws'
    # average means are one shift for every state, and each draw keeps the
    # covariance type (one variance a state, or one covariance for all)
    fitted = np.asarray(est._theta(fam), dtype=np.float64)
    mean = th.astype(np.float64).mean(0)
    if isinstance(fam, (GaussianDiag, GaussianFull)):
        D = fam.n_features
        shift = fitted[:, :D] - mean[:, :D]
        fitted, mean = shift, np.broadcast_to(shift[:1], shift.shape)
        ct = getattr(est, "covariance_type", None) or {
            "GaussianTied": "tied", "GaussianSpherical": "spherical"}.get(type(fam).__name__)
        mu, var = fam._split(th.astype(np.float64).reshape(-1, th.shape[-1]))
        var = var.reshape((S, K) + var.shape[1:])
        if ct == "spherical" and not np.allclose(var, var[..., :1], rtol=1e-9, atol=0):
            _fail("posterior_samples_['theta'] holds a spherical draw whose variance differs "
                  "between features")
        if ct == "tied" and not np.allclose(var, var[:, :1], rtol=1e-9, atol=1e-12):
            _fail("posterior_samples_['theta'] holds a tied draw whose covariance differs "
                  "between states")
    if not np.allclose(fitted, mean, rtol=1e-9, atol=_MEAN_TOL):
        _fail("the fitted emission parameters are not the mean of "
              "posterior_samples_['theta']")
    if not np.allclose(start, s.astype(np.float64).mean(0), rtol=0, atol=_MEAN_TOL):
        _fail("startprob_ is not the mean of posterior_samples_['startprob']")
    if not np.allclose(trans, t.astype(np.float64).mean(0), rtol=0, atol=_MEAN_TOL):
        _fail("transmat_ is not the mean of posterior_samples_['transmat']")
    _int("n_relabelled_", attrs.need("n_relabelled_"), 0, S)
    # the chains' diagnostics
    lj = _farray("log_joint_", attrs.need("log_joint_"), (n_chains, n_iter))
    _finite("log_joint_", lj)
    lj = lj.astype(np.float64)
    if not np.allclose(est.trace_["objective"], lj.mean(0), rtol=1e-12, atol=0):
        _fail("trace_['objective'] is not the mean of log_joint_ over the chains")
    lb = float(est.lower_bound_)
    if not lj.min() <= lb <= lj.max():
        _fail(f"lower_bound_ ({lb}) lies outside log_joint_")
    _mixing(attrs, _monitored_names(K, fam.n_statistics()))
    _bool("converged_", attrs.need("converged_"))


# ---------------------------------------------------------------- entry
def check_hmm(est):
    """Validate a loaded HMM (see the module doc); returns its emission family."""
    from .methods import get_method
    _params(est._check_common, lambda: _random_state(est))
    method = get_method(est.method)
    K = int(est.n_components)
    attrs = _Attrs(est, f"method={method.name!r}")
    start, trans = _chain(attrs, K)
    start, trans = start.astype(np.float64), trans.astype(np.float64)
    try:
        fam, D, pfam = _emissions(est, attrs, K)
    except (TypeError, NotImplementedError) as exc:
        raise ValueError(f"invalid constructor parameter: {exc}") from None
    update = method.update
    n_iter = _int("n_iter_", attrs.need("n_iter_"), low=1 if update == "sample" else 0)
    _float("lower_bound_", attrs.need("lower_bound_"), neginf=n_iter == 0)
    hist = _farray("monitor_history_", attrs.need("monitor_history_"), (n_iter,))
    _finite("monitor_history_", hist)
    _trace(est, n_iter, nan_objective=False)
    n_rows = _float("n_rows_seen_", attrs.need("n_rows_seen_"), low=0.0)
    if n_rows > _MAX_ROWS:
        _fail(f"n_rows_seen_ ({n_rows}) exceeds {_MAX_ROWS:.0f} rows (2^53)")
    n_seq = _float("n_sequences_seen_", attrs.need("n_sequences_seen_"), low=1.0, strict=False)
    if n_seq > n_rows:
        _fail(f"n_sequences_seen_ ({n_seq}) exceeds n_rows_seen_ ({n_rows})")
    _int("n_steps_", attrs.need("n_steps_"), low=0, high=1 << 53)
    if update == "posterior":
        _posterior(attrs, fam, K, start, trans)
    if update == "sample":
        _draws(est, attrs, fam, K, start, trans, n_iter)
    attrs.others(est._fitted_attributes)
    # what predictions read, through the estimator's own validation
    est._fitted_params(pfam)
    return pfam
