"""Public checks for every exercise, one module per notebook topic.

Each module declares its exercises' answers (``answers.register_answer``) and
registers its public checks with :func:`course_utils.checks.register` on import;
:mod:`course_utils.checks` imports every module in this package, so a new module
needs no edit here. Students receive this package; hidden checks and their
answer constants live in ``course_utils/grading/hidden_checks/``, which they never get.
"""
