"""Building blocks shared by the tasks, written once on top of the attention core.

Translation and classification (and any later task) take these from here; nothing in this package imports a
task, and it imports nothing of the project but :mod:`seq2seq_attn.attention`.

- :mod:`.text_io`: :func:`open_text`, the gzip-aware opener of every text file;
- :mod:`.batching`: :func:`length_batches`, length-bucketed batches by token or sentence count.
"""

from .batching import length_batches
from .text_io import is_gzip, open_text

__all__ = ["is_gzip", "length_batches", "open_text"]
