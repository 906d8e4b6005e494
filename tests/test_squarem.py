"""SQUAREM for em: the same optimum as plain EM in fewer E-steps, monotone, refused
where it does not apply."""
import numpy as np
import pytest

import fastvem
from fastvem.datasets import make_gaussian_mixture


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_squarem_reaches_the_em_optimum_in_fewer_e_steps(covariance_type):
    # heavily overlapping components: plain EM crawls
    X, _, _ = make_gaussian_mixture(4000, 3, 4, covariance_type, separation=1.2,
                                    random_state=0)
    kw = dict(n_components=4, covariance_type=covariance_type, tol=1e-10, max_iter=100000,
              random_state=0)
    plain = fastvem.GaussianMixture(**kw).fit(X)
    fast = fastvem.GaussianMixture(accelerate="squarem", **kw).fit(X)
    assert plain.converged_ and fast.converged_
    # the same optimum (plain EM stops a little short of it on its slow tail)
    assert fast.lower_bound_ >= plain.lower_bound_ - 1e-9
    assert fast.lower_bound_ - plain.lower_bound_ < 1e-6
    o, p = np.argsort(plain.means_[:, 0]), np.argsort(fast.means_[:, 0])
    np.testing.assert_allclose(fast.means_[p], plain.means_[o], atol=3e-2)
    np.testing.assert_allclose(fast.weights_[p], plain.weights_[o], atol=1e-2)
    assert fast.n_e_steps_ <= 0.7 * plain.n_e_steps_, (fast.n_e_steps_, plain.n_e_steps_)
    assert plain.n_e_steps_ == plain.n_iter_
    # safeguarded: the objective never decreases
    assert np.all(np.diff(fast.lower_bounds_) >= -1e-12)


def test_squarem_is_refused_where_it_does_not_apply():
    X, _, _ = make_gaussian_mixture(200, 2, 2, random_state=0)
    with pytest.raises(ValueError, match="accelerate must be"):
        fastvem.GaussianMixture(2, accelerate="anderson").fit(X)
    for method in ("meanfield", "gibbs", "crisp"):
        with pytest.raises(ValueError, match="not available for method"):
            fastvem.GaussianMixture(2, method=method, accelerate="squarem").fit(X)


def test_squarem_roundtrip_of_the_parameters():
    """The unconstrained coordinates map back to the same parameters."""
    from fastvem.families.gaussian import GaussianFamily
    X, _, _ = make_gaussian_mixture(500, 3, 3, "full", random_state=1)
    for ct in ("full", "tied", "diag", "spherical"):
        gm = fastvem.GaussianMixture(3, covariance_type=ct, random_state=0).fit(X)
        fam = GaussianFamily(ct, n_features=3)
        _, theta = gm._get_params()
        back = fam.from_unconstrained(fam.to_unconstrained(theta))
        for key in ("means", "covariances", "precisions_cholesky"):
            np.testing.assert_allclose(back[key], theta[key], rtol=1e-10, atol=1e-12)
