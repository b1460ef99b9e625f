"""Only here because cffi's build step (``cffi_modules``) is a setuptools keyword."""

import sysconfig

from setuptools import setup

# cffi compiles heifkit._native._binding against Python's stable ABI (an .abi3.so), so one wheel, tagged
# cp310-abi3, serves every CPython from 3.10 on. Free-threaded builds have no stable ABI before 3.15: their
# wheels keep their own tag.
options = {} if sysconfig.get_config_var("Py_GIL_DISABLED") else {"bdist_wheel": {"py_limited_api": "cp310"}}

setup(cffi_modules=["src/heifkit/_native/build.py:ffibuilder"], options=options)
