"""Sphinx configuration of heifkit's documentation (``make docs``: HTML in docs/_build/html).

The pages are Markdown (MyST). The API reference is generated from the docstrings of the installed heifkit,
so ``make docs`` installs heifkit first. Nothing is fetched from the network: intersphinx is not used.
"""

from __future__ import annotations

import importlib.metadata

project = "heifkit"
author = "the heifkit authors"
copyright = "2026, the heifkit authors"
release = importlib.metadata.version("heifkit")
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "requirements.txt"]

# Markdown: "name.md#anchor" links resolve to the headings of other pages.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

# API reference: members in source order, type hints in the descriptions rather than long signatures.
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "furo"
html_title = f"heifkit {release}"
html_show_sourcelink = False
