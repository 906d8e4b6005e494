"""Sampler diagnostics: label-switching alignment, split-R-hat and effective
sample size (Gelman et al., Bayesian Data Analysis, 3rd ed., ch. 11)."""
import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["align_draws", "split_rhat", "effective_sample_size"]


def align_draws(draws, tied=False):
    """Permute the components of each draw (dicts with 'weights', 'means',
    'covariances') to best match the running mean of the aligned draws
    (Hungarian assignment on squared distances between means).  A tied
    covariance is shared and left as it is."""
    if not draws:
        return []
    ref = np.array(draws[0]["means"], dtype=np.float64)
    out = []
    for i, d in enumerate(draws):
        cost = ((d["means"][:, None, :] - ref[None, :, :]) ** 2).sum(-1)   # (own, ref)
        own, slot = linear_sum_assignment(cost)
        perm = np.empty_like(own)
        perm[slot] = own
        cov = np.asarray(d["covariances"])
        out.append({"weights": d["weights"][perm], "means": d["means"][perm],
                    "covariances": cov if tied else cov[perm]})
        ref += (out[-1]["means"] - ref) / (i + 2)
    return out


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
