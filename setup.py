"""Build the C extension of astrot2 (everything else is in pyproject.toml)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "astrot2._gpcore",
            sources=["src/astrot2/_gpcore.c"],
            extra_compile_args=[
                "-O3",
                "-march=native",
                "-fno-math-errno",
                # let dot products vectorise their sums (no finite-math assumption)
                "-fassociative-math",
                "-fno-signed-zeros",
                "-fno-trapping-math",
            ],
        )
    ]
)
