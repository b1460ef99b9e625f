"""Converting files: the output formats and their options (``formats``) and the per-file pipeline
(``pipeline``) that the command line and :mod:`heifkit.batch` run.
"""
