"""Real data without a download: scikit-learn's bundled 8x8 digits.

Covers: a fixed train/test split as tensors, a small CNN, and a seeded training
loop of a few seconds, so later notebooks (runtime comparison, deployment) have
a trained model without repeating notebook 02. Does not cover: export (the
notebooks show ``torch.onnx.export`` themselves).
"""
from __future__ import annotations

import numpy as np
# torch is imported here, not lazily: this module is only imported by code that
# trains or runs the CNN, never by ``import course_utils`` or the install check.
import torch
import torch.nn as nn

__all__ = ["split_digits", "load_digits_split", "DigitsCNN", "train_digits_cnn", "accuracy"]


def split_digits(test_size: float = 0.25, seed: int = 0, *, form: str = "features"):
    """Return ``(x_train, x_test, y_train, y_test)`` of scikit-learn's digits as numpy arrays.

    The one split every notebook and check uses: stratified, fixed by ``seed``.

    Args:
        test_size: the held-out share.
        seed: the split's random state.
        form: ``"features"``: the 64 pixels of each image, float32 in 0..16, as
            scikit-learn gives them, shape ``(n, 64)``; ``"images"``: float32 in
            [0, 1], shape ``(n, 1, 8, 8)``.

    Example:
        >>> x_train, x_test, y_train, y_test = split_digits()
        >>> x_test.shape, float(x_test.max())
        ((450, 64), 16.0)
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if form not in ("features", "images"):
        raise ValueError(f"form must be 'features' or 'images', got {form!r}")
    digits = load_digits()
    if form == "images":
        data = (digits.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8)
    else:
        data = digits.data.astype(np.float32)  # (1797, 64)
    return train_test_split(data, digits.target, test_size=test_size, random_state=seed,
                            stratify=digits.target)


def load_digits_split(test_size: float = 0.25, seed: int = 0):
    """Return ``(x_train, x_test, y_train, y_test)`` of :func:`split_digits` as tensors.

    Images are float32 of shape ``(n, 1, 8, 8)`` scaled to [0, 1]; labels are
    int64. 1,347 train and 450 test images with the defaults.

    Example:
        >>> x_train, x_test, y_train, y_test = load_digits_split()
        >>> tuple(x_test.shape), int(y_test.max())
        ((450, 1, 8, 8), 9)
    """
    x_train, x_test, y_train, y_test = split_digits(test_size, seed, form="images")
    return (torch.from_numpy(x_train), torch.from_numpy(x_test),
            torch.from_numpy(y_train).long(), torch.from_numpy(y_test).long())


class DigitsCNN(nn.Module):
    """Two conv blocks and a linear head: (batch, 1, 8, 8) -> (batch, 10) logits."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),   # (b, 16, 8, 8)
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),  # (b, 32, 8, 8)
            nn.MaxPool2d(2),                             # (b, 32, 4, 4)
        )
        self.head = nn.Linear(32 * 4 * 4, 10)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


def train_digits_cnn(epochs: int = 15, seed: int = 0):
    """Train a :class:`DigitsCNN` on the training split and return it in eval mode.

    Takes a few seconds and reaches about 97-99 % test accuracy. Trains on one
    thread: for a model this small, more threads only add contention (26 s
    instead of 2 s was measured on a busy 2-core machine).
    """
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(epochs, seed)
    finally:
        torch.set_num_threads(previous_threads)


def _train(epochs, seed):
    torch.manual_seed(seed)
    x_train, _, y_train, _ = load_digits_split()
    model = DigitsCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(x_train), generator=generator)
        for batch in order.split(64):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
    return model.eval()


def accuracy(logits, labels) -> float:
    """Share of rows whose arg-max matches the label (numpy or torch inputs)."""
    logits, labels = np.asarray(logits), np.asarray(labels)
    return float((logits.argmax(axis=1) == labels).mean())
