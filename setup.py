"""Only here because cffi's build step (``cffi_modules``) is a setuptools keyword."""

from setuptools import setup

setup(cffi_modules=["src/heifkit/_build.py:ffibuilder"])
