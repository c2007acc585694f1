"""Checks for every exercise, one module per notebook topic.

Each module registers its checks with :func:`course_utils.checks.register` on
import; :mod:`course_utils.checks` imports every module in this package, so a
new module needs no edit here. Hidden checks (``hidden=True``) run only in the
grader.
"""
