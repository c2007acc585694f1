"""Hidden checks for notebook 06 (the browser) and their test data: grader only, never released."""
from __future__ import annotations

from ...checks import CheckFailed, register
from ...exercise_checks.browser import agrees_with_python, browser_outcome
from ..cases import Cases, Right, Wrong

#: The hidden run: images of another size (12x12) and other weights, so a script that only
#: works for the notebook's 8x8 digits (a shape written as constants) is told apart.
_OTHER_SIZE, _OTHER_SEED = 12, 7


@register("06.1", hidden=True, browser=True)
def _works_for_any_item_shape(predict_js):
    if not agrees_with_python(browser_outcome(predict_js, _OTHER_SIZE, _OTHER_SEED)):
        raise CheckFailed("on images of another size the script failed or its logits differ from "
                          "Python ONNX Runtime's: build the tensor's shape from item.dims, not "
                          "from constants")


# --- test data (grading/cases.py): right and wrong answers, the alternative ----------------------

_ALTERNATIVE = '''predict_js = """
async function predict(session, item) {
  const shape = [1].concat(Array.from(item.dims));           // (1, 1, 8, 8)
  const feeds = {};
  feeds[session.inputNames[0]] = new ort.Tensor("float32", Float32Array.from(item.data), shape);
  const results = await session.run(feeds);
  return Array.from(results[session.outputNames[0]].data);   // 10 numbers
}
"""'''

_RIGHT = '''
async function predict(session, item) {
  const tensor = new ort.Tensor('float32', item.data, [1].concat(item.dims));
  const {logits} = await session.run({x: tensor});
  return logits.data;
}
'''

CASES = [
    Cases("06.1",
          alternative=_ALTERNATIVE,
          right=[Right("destructured", _RIGHT)],
          wrong=[Wrong("not-a-string", ["predict"], "browser:_a_script", "expected the JavaScript as a str"),
                 Wrong("no-batch-dimension", _RIGHT.replace("[1].concat(item.dims)", "item.dims"),
                       "browser:_runs_like_python", "headless Chromium ran the script and it failed"),
                 Wrong("fixed-shape", _RIGHT.replace("[1].concat(item.dims)", "[1, 1, 8, 8]"),
                       "browser:_works_for_any_item_shape", "on images of another size")],
          answer_words=["[1, ...item.dims]", "[1].concat", "1, 1, 8, 8"]),
]
