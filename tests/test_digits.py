"""Is the digits CNN an ordinary class, and is the split what the notebooks say?"""
import importlib

from course_utils import digits


def test_digits_cnn_is_one_class():
    """Does every import give the same DigitsCNN class, so isinstance holds?"""
    again = importlib.import_module("course_utils.digits").DigitsCNN
    model = digits.DigitsCNN()
    assert again is digits.DigitsCNN
    assert isinstance(model, again)


def test_split_sizes_and_shapes():
    """Are there 1,347 training and 450 test images of shape (1, 8, 8) in [0, 1]?"""
    x_train, x_test, y_train, y_test = digits.load_digits_split()
    assert tuple(x_train.shape) == (1347, 1, 8, 8) and tuple(x_test.shape) == (450, 1, 8, 8)
    # the pixels are 0..16: scaled to [0, 1] they reach both ends exactly (/255 would not)
    assert (float(x_train.min()), float(x_train.max())) == (0.0, 1.0)
    assert sorted(set(y_test.tolist())) == list(range(10))
