"""Hidden checks for notebook 00 (install check): grader only, never released."""
from __future__ import annotations

from ...checks import CheckFailed, register
from ...exercise_checks.install import call_distributions_of


@register("00.2", hidden=True)
def _really_two_runtimes(outputs):
    # outputs: a CapturedPair (answers.py) that knows whether the entries were one object
    if getattr(outputs, "same_object", False):
        raise CheckFailed("both entries are the same object: compare two different runtimes")
    if getattr(outputs, "modules", ("", ""))[1].startswith("torch"):
        raise CheckFailed("the second entry is a torch tensor: it should come from session.run")


@register("00.3", hidden=True)
def _import_name_is_not_the_package_name(fn):
    # A module whose distribution has another name: a function that returns [module]
    # for any installed module fails here.
    found = call_distributions_of(fn, "sklearn")
    if found != ["scikit-learn"]:
        raise CheckFailed(f"distributions_of('sklearn') gave {found}: read which distribution "
                          "installed the module's files, not the module's name")
