"""The standing fuzz suite (cases in tests/fuzz_cases.py, built on Hypothesis).

Each case runs in a child process, so that a crash (a segfault, an abort from the
C runtime) fails its test instead of ending the test run.  The quick profile runs
with the suite; the long profile runs on demand:

    python -m pytest tests -m fuzz
"""
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))

# examples per case: (quick, long)
CASES = {"mixture_inputs": (300, 5000), "discrete_inputs": (300, 5000), "lda_inputs": (200, 3000),
         "mixed_inputs": (300, 5000), "expfam_inputs": (300, 5000),
         "mutations_after_fit": (150, 3000), "corrupted_files": (400, 5000),
         "kernel_inputs": (300, 5000)}


def _run_case(name, n, timeout):
    proc = subprocess.run([sys.executable, os.path.join(HERE, "fuzz_cases.py"), name, str(n)],
                          capture_output=True, text=True, timeout=timeout, cwd=HERE)
    assert proc.returncode == 0, (
        f"fuzz case {name} failed (exit code {proc.returncode}"
        f"{', a crash' if proc.returncode < 0 else ''}):\n{proc.stdout[-4000:]}"
        f"\n{proc.stderr[-8000:]}")
    assert f"ok {name} {n}" in proc.stdout


@pytest.mark.parametrize("name", sorted(CASES))
def test_fuzz_quick(name):
    _run_case(name, CASES[name][0], timeout=300)


@pytest.mark.fuzz
@pytest.mark.parametrize("name", sorted(CASES) + ["parameter_scan"])
def test_fuzz_long(name):
    # parameter_scan: every constructor parameter x every value after fit (exhaustive)
    _run_case(name, CASES[name][1] if name in CASES else 0, timeout=3600)
