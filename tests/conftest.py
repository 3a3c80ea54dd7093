"""Shared test fixtures: the real datasets, when present, and small CPU settings."""

from __future__ import annotations

import os
import tempfile

import pytest
import torch

from seq2seq_attn.paths import data_root

# The tests run many tiny ops (step-by-step decoding, small models): one thread is fastest, and more threads
# spin against each other on the 2-core CI machine (10-20x slower when it is busy).
torch.set_num_threads(1)

# Encoded corpora and subword models are cached (seq2seq_attn.translation.prepare): the tests (and the CLI
# processes they start) share one throwaway cache, never the user's.
_CACHE = tempfile.TemporaryDirectory(prefix="seq2seq_attn_cache_")
os.environ["SEQ2SEQ_ATTN_CACHE"] = _CACHE.name


@pytest.fixture
def shared_data():
    """The shared dataset folder; skips the test with a clear reason when it is absent."""
    root = data_root()
    if root is None:
        pytest.skip("shared datasets not found: set SEQ2SEQ_ATTN_DATA (default ../shared/data)")
    return root
