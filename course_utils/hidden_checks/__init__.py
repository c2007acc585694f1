"""Hidden checks, one module per notebook: only the grader imports them.

Students never receive this package (the sandbox and the student release leave it
out), so its checks and answer constants stay with the instructor. Each module
registers its checks with ``register(..., hidden=True)``; the grader imports every
module here, so a new one needs no edit.
"""
