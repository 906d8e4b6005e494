"""Compiled kernels (built from the top-level _ext/ sources by setup.py)."""

import os as _os

# libgomp reads GOMP_SPINCOUNT once, when it is loaded -- with the first of these
# kernels.  Its default lets an idle thread spin ~300,000 times at a barrier
# before sleeping, which steals the CPU from the threads that have work whenever
# the machine is shared (measured: an LDA vem fit 11.7x slower with two busy
# processes per core, where a fair share predicts 3x).  20,000 keeps quiet speed
# (within noise) and gives 4.1x; a value set by the user wins.
_os.environ.setdefault("GOMP_SPINCOUNT", "20000")
