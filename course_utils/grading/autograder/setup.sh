#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image
# (https://gradescope-autograders.readthedocs.io/en/latest/specs/). The zip holds this
# repository (with run_autograder and setup.sh copied to its top folder); it is unzipped in
# /autograder/source. The grader's sandbox needs bubblewrap.
set -euo pipefail
apt-get install -y --no-install-recommends bubblewrap python3-venv python3-pip
python3 -m pip install --no-cache-dir -e /autograder/source
