"""An example third-party venue plugin for tornado-engine, as its own distribution.

``pip install -e plugins/example_venue`` and the engine finds the ``mock-orca``
venue kind through the ``tornado_engine`` entry-point group; nothing in the
engine names this package.
"""

from setuptools import setup

setup(
    name="tornado-engine-example-venue",
    version="0.1.0",
    description="Example tornado-engine venue plugin: a constant-price, Orca-like mock venue",
    python_requires=">=3.10",
    py_modules=["tornado_engine_example_venue"],
    install_requires=["tornado-engine"],
    extras_require={"test": ["pytest>=8,<10", "pytest-tornado>=0.8.1"]},
    entry_points={"tornado_engine": ["mock-orca = tornado_engine_example_venue"]},
)
