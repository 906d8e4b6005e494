"""The five inference methods as (assign, update) pairs, and the validity table.

A method is a frozen pair: how q(T) is formed (``assign``: softmax, argmax or
sample), how theta is updated (``update``: point, posterior or sample), and
whether the local step is the exact conditional or a factorised fixed point
(``local``).  Families and structures never branch on the method's name; the
engine reads these fields and picks which of their operations to call.

For a mixture the exact posterior over z already factorises over rows, so
``vem`` and ``em`` coincide (same iterates, same objective).
"""
from dataclasses import dataclass

__all__ = ["Method", "PRESETS", "get_method", "check_supported", "METHOD_NAMES"]


@dataclass(frozen=True)
class Method:
    name: str
    assign: str      # 'softmax' | 'argmax' | 'sample'
    update: str      # 'point' | 'posterior' | 'sample'
    local: str       # 'exact' | 'fixed_point'
    objective: str   # what the trace records: 'loglik' | 'elbo' | 'log_joint'


PRESETS = {
    "gibbs": Method("gibbs", "sample", "sample", "exact", "log_joint"),
    "meanfield": Method("meanfield", "softmax", "posterior", "fixed_point", "elbo"),
    "em": Method("em", "softmax", "point", "exact", "loglik"),
    "vem": Method("vem", "softmax", "point", "fixed_point", "elbo"),
    "crisp": Method("crisp", "argmax", "point", "exact", "log_joint"),
}
METHOD_NAMES = tuple(PRESETS)   # from accurate and slow to inaccurate and fast

# structure -> {method name: reason it cannot be used}; absent means supported.
UNSUPPORTED = {
    "mixture": {},
    "topic_model": {
        "em": "the exact E-step over (theta_d, z_d) is intractable for LDA; "
              "use method='vem' (factorised q(theta_d) q(z_d))",
    },
}


def get_method(method):
    """A Method from a preset name or a Method instance (ValueError otherwise)."""
    if isinstance(method, Method):
        return method
    if not isinstance(method, str) or method not in PRESETS:
        raise ValueError(f"method must be one of {list(PRESETS)}, got {method!r}")
    return PRESETS[method]


def check_supported(method, structure):
    """Raise ValueError, saying why, when the structure cannot use the method."""
    m = get_method(method)
    reason = UNSUPPORTED.get(structure, {}).get(m.name)
    if reason:
        raise ValueError(f"method={m.name!r} is not available for a {structure}: {reason}")
    return m
