"""Sampler diagnostics, shared by every Gibbs sampler in fastvem.

- Label switching: ``relabel`` puts the draws of one or several chains on common
  labels (Stephens 2000, with each draw's permutation found by the Hungarian
  algorithm instead of a search over all K! permutations).
- Occupancy: ``occupancy`` says in which draws a component holds data.
- Mixing: rank-normalised split-R-hat and effective sample size (Vehtari,
  Gelman, Simpson, Carpenter & Buerkner 2021; Gelman et al., Bayesian Data
  Analysis, 3rd ed., ch. 11), and ``mixing_report`` over several quantities.
"""
import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.special import ndtri

__all__ = ["relabel", "permute_draws", "occupancy", "split_rhat", "rank_split_rhat",
           "effective_sample_size", "mixing_report", "RHAT_MAX", "ESS_MIN_PER_CHAIN"]

# convergence thresholds (Vehtari et al. 2021): R-hat below 1.01, bulk ESS of at
# least 100 per chain
RHAT_MAX = 1.01
ESS_MIN_PER_CHAIN = 100

_TINY = 1e-300


def _assign(cost):
    """perm with perm[slot] = own label minimising sum_slot cost[slot, perm[slot]]."""
    slot, own = linear_sum_assignment(cost)
    perm = np.empty(cost.shape[0], dtype=np.int64)
    perm[slot] = own
    return perm


def relabel(probs, row_weight=None, max_iter=100):
    """Common labels for S draws of a K-component latent allocation.

    probs : (S, n, K) allocation probabilities of n reference rows under each
        draw (each row sums to 1), from one chain or several chains stacked.
    row_weight : optional (n,) non-negative weights of the rows.

    Returns (perms, n_iter): perms (S, K) int with ``probs[s][:, perms[s]]`` on the
    common labels (slot j of draw s is its own component perms[s, j]).

    Stephens' algorithm: start by matching each draw to the running mean of the
    draws already matched, then repeat (i) Q = mean of the relabelled
    probabilities, (ii) for every draw the permutation minimising
    KL(Q || probs_s o perm), which is a linear assignment with cost
    C[j, k] = -sum_i w_i Q[i, j] log probs_s[i, k], until no permutation changes.
    Each step cannot increase the total KL, so it stops."""
    P = np.asarray(probs, dtype=np.float64)
    if P.ndim != 3:
        raise ValueError(f"probs must be (n_draws, n_rows, n_components), got shape {P.shape}")
    S, n, K = P.shape
    w = np.ones(n) if row_weight is None else np.asarray(row_weight, dtype=np.float64)
    if w.shape != (n,) or np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValueError("row_weight must be n_rows finite non-negative weights")
    perms = np.tile(np.arange(K), (S, 1))
    if S == 0 or K == 1:
        return perms, 0
    logP = np.log(np.maximum(P, _TINY))
    # sequential start: each draw against the running mean of those before it
    Q = P[0].copy()
    for s in range(1, S):
        perms[s] = _assign(-(Q * w[:, None]).T @ logP[s])
        Q += (P[s][:, perms[s]] - Q) / (s + 1)
    for it in range(1, max_iter + 1):
        Q = np.mean(np.take_along_axis(P, perms[:, None, :], axis=2), axis=0)
        Qw = (Q * w[:, None]).T                                   # (K, n)
        new = np.stack([_assign(-Qw @ logP[s]) for s in range(S)])
        if np.array_equal(new, perms):
            return perms, it
        perms = new
    return perms, max_iter


def permute_draws(draws, perms, shared=()):
    """Apply perms (S, K) to a dict of stacked draws (arrays with the draw on
    axis 0 and the component on axis 1); keys in `shared` are left as they are."""
    idx = np.arange(perms.shape[0])[:, None]
    return {k: (v if k in shared else np.asarray(v)[idx, perms]) for k, v in draws.items()}


def occupancy(counts, unit):
    """occupied (S, K) bool: a component holds at least `unit` of the data's
    weight in a draw (unit: the weight of one average row, so one row for unit
    weights).  Returns (occupied, share of draws each component is occupied in,
    posterior probabilities of the number of occupied components, 0..K)."""
    occ = np.asarray(counts, dtype=np.float64) >= 0.5 * unit
    K = occ.shape[1]
    number = np.bincount(occ.sum(1), minlength=K + 1)[:K + 1] / max(occ.shape[0], 1)
    return occ, occ.mean(0), number


def split_rhat(chains):
    """Split-R-hat of a scalar (chains: (n_chains, n_draws)); nan if too short."""
    x = np.asarray(chains, dtype=np.float64)
    n = x.shape[1] // 2
    if n < 2:
        return float("nan")
    halves = np.concatenate([x[:, :n], x[:, -n:]], axis=0)     # (2m, n)
    means = halves.mean(1)
    w = halves.var(1, ddof=1).mean()
    b = n * means.var(ddof=1)
    if w <= 0:
        return float("nan") if b > 0 else 1.0
    var = (n - 1) / n * w + b / n
    return float(np.sqrt(var / w))


def _rank_normal(x):
    """Normal scores of the pooled ranks (Vehtari et al. 2021, eq. 14); ties averaged."""
    from scipy.stats import rankdata
    r = rankdata(x, method="average").reshape(x.shape)
    return ndtri((r - 0.375) / (x.size + 0.25))


def rank_split_rhat(chains):
    """Rank-normalised split-R-hat: the larger of the bulk (ranks of x) and the
    tail (ranks of |x - median|) values.  A constant quantity gives 1."""
    x = np.asarray(chains, dtype=np.float64)
    if x.shape[1] < 4:
        return float("nan")
    if np.ptp(x) == 0:
        return 1.0
    bulk = split_rhat(_rank_normal(x))
    tail = split_rhat(_rank_normal(np.abs(x - np.median(x))))
    return float(np.nanmax([bulk, tail]))


def effective_sample_size(chains):
    """ESS of a scalar over chains (Geyer's initial positive sequence on the
    chain-averaged autocorrelation)."""
    x = np.asarray(chains, dtype=np.float64)
    m, n = x.shape
    if n < 4:
        return float(m * n)
    xc = x - x.mean(1, keepdims=True)
    var = xc.var(1).mean()
    if var <= 0:
        return float(m * n)
    f = np.fft.rfft(xc, 2 * n, axis=1)
    acov = np.fft.irfft(f * np.conj(f), axis=1)[:, :n].mean(0) / n
    rho = acov / acov[0]
    s = 0.0
    for t in range(1, n - 1, 2):
        pair = rho[t] + rho[t + 1]
        if pair < 0:
            break
        s += pair
    tau = 1.0 + 2.0 * s
    return float(m * n / max(tau, 1e-12))


def bulk_ess(chains):
    """ESS of the rank-normalised split chains (Vehtari et al. 2021's bulk-ESS)."""
    x = np.asarray(chains, dtype=np.float64)
    n = x.shape[1] // 2
    if n < 2 or np.ptp(x) == 0:
        return float(x.size)
    z = _rank_normal(np.concatenate([x[:, :n], x[:, -n:]], axis=0))
    return effective_sample_size(z)


def mixing_report(quantities):
    """quantities: name -> (n_chains, n_draws) array.  Returns
    (name -> (R-hat, ESS), worst R-hat, least ESS, list of the names that fail
    R-hat < RHAT_MAX or ESS >= ESS_MIN_PER_CHAIN * n_chains)."""
    report, failing = {}, []
    worst_r, least_e = 1.0, np.inf
    for name, x in quantities.items():
        x = np.asarray(x, dtype=np.float64)
        r, e = rank_split_rhat(x), bulk_ess(x)
        report[name] = (r, e)
        if not np.isfinite(r) or r >= RHAT_MAX or e < ESS_MIN_PER_CHAIN * x.shape[0]:
            failing.append(name)
        worst_r = max(worst_r, r) if np.isfinite(r) else np.inf
        least_e = min(least_e, e)
    return report, worst_r, least_e, failing


def check_mixing(quantities, advice):
    """mixing_report of the monitored quantities, and a ConvergenceWarning naming the
    worst of those that did not mix (advice: what to increase).  Returns
    (name -> array (R-hat, ESS), worst R-hat, least ESS, all mixed)."""
    import warnings
    from sklearn.exceptions import ConvergenceWarning
    mix, rhat, ess, failing = mixing_report(quantities)
    if failing:
        worst = sorted(failing, key=lambda q: -np.nan_to_num(mix[q][0], nan=np.inf))[:4]
        what = ", ".join(f"{q} (R-hat {mix[q][0]:.3f}, ESS {mix[q][1]:.0f})" for q in worst)
        warnings.warn(
            f"gibbs: the chains did not mix: {len(failing)} of {len(quantities)} monitored "
            f"quantities have R-hat >= {RHAT_MAX} or ESS < {ESS_MIN_PER_CHAIN} per chain, "
            f"worst {what}; increase {advice}", ConvergenceWarning)
    return {k: np.array(v) for k, v in mix.items()}, rhat, ess, not failing

