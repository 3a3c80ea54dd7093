"""Building blocks shared by the tasks, written once on top of the attention core.

Translation and classification (and any later task) take these from here; nothing in this package imports a
task, and it imports nothing of the project but :mod:`seq2seq_attn.attention`.

- :mod:`.text_io`: :func:`open_text`, the gzip-aware opener of every text file;
- :mod:`.batching`: :func:`length_batches`, length-bucketed batches by token or sentence count;
- :mod:`.positions`: :class:`PositionalEncoding` (sinusoidal, cached, or learned) and its 2-D form
  :class:`GridPositionalEncoding` (feature maps);
- :mod:`.transformer`: the residual :class:`Sublayers` wiring (pre-/post-LN), :class:`TransformerEncoderLayer`
  and :class:`TransformerDecoderLayer` (key/value cache, beams grouped per sentence in cross-attention);
- :mod:`.gates`: the gate in the core's terms (:class:`GateAttention`, the base of every vision gate) and the
  channel gates SE and ECA (:class:`ChannelGate`, a padding-aware squeeze) that images and text encoders
  share (:class:`SequenceChannelGate`: (B, T, C) states);
- :mod:`.rnn`: :class:`PackedRNN`, the (bi)directional GRU/LSTM over packed sequences (translation encoder,
  attention classifier, HAN);
- :mod:`.ragged`: :class:`RaggedArray` / :class:`RaggedWriter`, flat id sequences on disk read with
  positioned reads (encoded corpora), :class:`RaggedView` (a filtered subset) and :func:`build_folder`
  (built once, atomically).
"""

from .batching import length_batches
from .gates import CHANNEL_GATES, ChannelGate, GateAttention, SequenceChannelGate
from .positions import POSITION_KINDS, GridPositionalEncoding, PositionalEncoding, sinusoidal_positions
from .ragged import RaggedArray, RaggedView, RaggedWriter, build_folder, ids_dtype, index_dtype
from .rnn import RNN_CELLS, FinalState, PackedRNN
from .text_io import is_gzip, open_text
from .transformer import ACTIVATIONS, KV, Sublayers, TransformerDecoderLayer, TransformerEncoderLayer

__all__ = ["ACTIVATIONS", "CHANNEL_GATES", "KV", "POSITION_KINDS", "RNN_CELLS", "ChannelGate", "FinalState",
           "GateAttention", "GridPositionalEncoding", "PackedRNN", "PositionalEncoding", "RaggedArray", "RaggedView",
           "RaggedWriter", "SequenceChannelGate", "Sublayers", "TransformerDecoderLayer", "TransformerEncoderLayer",
           "build_folder", "ids_dtype", "index_dtype", "is_gzip", "length_batches", "open_text",
           "sinusoidal_positions"]
