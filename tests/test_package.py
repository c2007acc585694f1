"""The package's public face."""
import subprocess
import sys

import course_utils


def test_every_public_verb_resolves():
    """Does every name in course_utils.__all__ lead to a documented callable?"""
    for name in course_utils.__all__:
        verb = getattr(course_utils, name)
        assert callable(verb) and verb.__doc__, name


def test_import_is_light():
    """Does `import course_utils` leave torch and onnxruntime unimported (so the install check runs anywhere)?"""
    code = "import sys, course_utils; print('torch' in sys.modules, 'onnxruntime' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["False", "False"]
