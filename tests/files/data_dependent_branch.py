"""A model the dynamo exporter cannot handle: its forward branches on a tensor's value.

``torch.export`` traces shapes, not values, so ``if x.sum() > 0`` has no single
answer at export time (data-dependent control flow). Used by tests/test_export.py
through the spec ``data_dependent_branch:make_model`` with tests/files on sys.path.
"""
import torch


class DataDependentBranch(torch.nn.Module):
    """Doubles positive-sum inputs, shifts the others: (batch, 4) -> (batch, 4)."""

    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x - 1


def make_model():
    return DataDependentBranch()
