"""Build the compiled kernels in _ext/ into fastvem._ext.

OpenMP is used when the compiler supports it; otherwise the kernels are built
single-threaded and a warning says so.  FASTVEM_PORTABLE=1 drops -march=native
(use it when building a wheel for other machines).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import warnings

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def _compiler_accepts(flags, openmp=False):
    """True when the C compiler compiles and links a tiny program with flags."""
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        return False
    if openmp:
        src = "#include <omp.h>\nint main(void){return omp_get_max_threads() < 1;}\n"
    else:
        src = "int main(void){return 0;}\n"
    with tempfile.TemporaryDirectory() as tmp:
        c = os.path.join(tmp, "t.c")
        with open(c, "w") as f:
            f.write(src)
        cmd = [cc, c, "-o", os.path.join(tmp, "t")] + flags
        try:
            return subprocess.run(cmd, capture_output=True).returncode == 0
        except OSError:
            return False


def _flags():
    compile_args = ["-O3", "-fno-math-errno", "-fno-trapping-math"]
    link_args = []
    if sys.platform == "win32":
        return ["/O2", "/openmp"], []
    if os.environ.get("FASTVEM_PORTABLE", "0") != "1" and _compiler_accepts(["-march=native"]):
        compile_args.append("-march=native")
    if os.environ.get("FASTVEM_NO_OPENMP", "0") != "1" and _compiler_accepts(["-fopenmp"], openmp=True):
        compile_args.append("-fopenmp")
        link_args.append("-fopenmp")
    else:
        warnings.warn(
            "fastvem: OpenMP is unavailable (or FASTVEM_NO_OPENMP=1); the kernels are built "
            "single-threaded (n_threads is ignored)."
        )
    return compile_args, link_args


compile_args, link_args = _flags()
ext_names = ["_gaussian", "_lda", "_expfam", "_hmm"]
extensions = [
    Extension(
        f"fastvem._ext.{name}",
        [os.path.join("_ext", f"{name}.pyx")],
        include_dirs=[np.get_include(), os.path.join(HERE, "_ext")],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
    )
    for name in ext_names
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=[os.path.join(HERE, "_ext")],
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    ),
)
