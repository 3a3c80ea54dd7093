"""Shared test fixtures: the real datasets, when present, and small CPU settings."""

from __future__ import annotations

import pytest
import torch

from seq2seq_attn.paths import data_root

# Two CPU cores in CI: keep each test's thread pool small and predictable.
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def shared_data():
    """The shared dataset folder; skips the test with a clear reason when it is absent."""
    root = data_root()
    if root is None:
        pytest.skip("shared datasets not found: set SEQ2SEQ_ATTN_DATA (default ../shared/data)")
    return root
