"""A fixture for the vision tests: tiny models on one thread (OpenMP threads wait on each other on a busy 2-core
machine, which makes small convolutions several times slower on two threads than on one)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
