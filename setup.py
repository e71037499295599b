"""Build the C extension of astrot2 (everything else is in pyproject.toml).

The default build is portable: a wheel built on one x86-64 or ARM machine runs, and gives
the same numbers, on any other (no ``-march=native``; no reassociation of floating-point
sums, which would make results depend on the vector width; no fused multiply-add
contraction, present on some CPUs only).  ``ASTROT2_NATIVE=1 pip install .`` builds for
the build machine's own CPU instead (AVX2/AVX-512, reassociated sums): faster, for a
broker that builds where it runs (docs/gp.md has the measured difference).
"""

import os

from setuptools import Extension, setup

PORTABLE_FLAGS = [
    "-O3",
    "-fno-math-errno",  # sqrt and friends inline; no errno, same values
    "-fno-trapping-math",
    "-ffp-contract=off",  # a * b + c rounds twice on every CPU, FMA or not
]
NATIVE_FLAGS = [
    "-march=native",
    # let dot products vectorise their sums (no finite-math assumption)
    "-fassociative-math",
    "-fno-signed-zeros",
    "-ffp-contract=fast",  # fused multiply-add where the CPU has it (GCC's default)
]


def compile_flags() -> list[str]:
    """The portable flags, plus the native ones with ``ASTROT2_NATIVE=1``."""
    native = os.environ.get("ASTROT2_NATIVE", "0").strip()
    if native not in ("0", "1", ""):
        raise SystemExit(f"ASTROT2_NATIVE must be 0 or 1, got {native!r}")
    return PORTABLE_FLAGS + (NATIVE_FLAGS if native == "1" else [])


setup(
    ext_modules=[
        Extension("astrot2._gpcore", sources=["src/astrot2/_gpcore.c"],
                  extra_compile_args=compile_flags()),
        Extension("astrot2._templatecore", sources=["src/astrot2/_templatecore.c"],
                  extra_compile_args=compile_flags()),
    ]
)
