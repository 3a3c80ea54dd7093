"""Multi-head attention (Vaswani et al., 2017, "Attention Is All You Need", section 3.2.2).

Drop-in for ``torch.nn.MultiheadAttention``: the same parameter names (a state dict loads either way), the
same mask conventions, but ``batch_first=True`` and ``need_weights=False`` by default. Two paths:

- fast path (weights not needed): ``F.scaled_dot_product_attention`` (fused kernels on GPU);
- weights path (``need_weights=True`` or inside ``capture_attention``): the generic core ``Attention`` with a
  scaled dot score and masked softmax, which returns the per-head weights.

Both agree to 1e-5 in float32. Masks follow the core's one rule (:mod:`seq2seq_attn.attention.core`):
boolean (True = not allowed) or float (added, -inf = not allowed), merged by ``merge_masks``. A query with no
allowed key gets zero weights and a zero context in both paths, with finite gradients (PyTorch's module gives
NaN there).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .capture import RecordsAttention
from .core import Attention, merge_masks, split_mask
from .normalize import Softmax
from .scores import build_score


class MultiHeadAttention(RecordsAttention):
    """Multi-head attention with ``torch.nn.MultiheadAttention``'s interface and parameter names.

    Args:
        embed_dim: model width ``E`` (query size and output size).
        num_heads: number of heads; ``E`` must be divisible by it.
        dropout: dropout on the attention weights (training only).
        bias: add biases to the input and output projections.
        kdim, vdim: key and value sizes (default ``E``).
        batch_first: inputs are (B, T, E) when True (default), (T, B, E) otherwise.
        score: the core score of each head's query against its keys (``scaled_dot``, default: Vaswani et al.,
            2017, with the fused fast path; ``dot``, ``general``, ``additive``: Luong et al., 2015 /
            Bahdanau et al., 2015 on the head's ``d = E / H`` features, one score module shared by the heads,
            always through the weights path). Raises ``ValueError`` for an unknown name.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 kdim: int | None = None, vdim: int | None = None, batch_first: bool = True,
                 score: str = "scaled_dot") -> None:
        super().__init__()
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self.dropout_p = dropout
        self.batch_first = batch_first
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = nn.Parameter(torch.empty(embed_dim, embed_dim))
            self.k_proj_weight = nn.Parameter(torch.empty(embed_dim, self.kdim))
            self.v_proj_weight = nn.Parameter(torch.empty(embed_dim, self.vdim))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        # The weights path: the project's one attention abstraction.
        if score not in ("scaled_dot", "dot", "general", "additive"):
            raise ValueError(f"score must be scaled_dot, dot, general or additive, got {score!r}")
        self.score_name = score
        self.attention = Attention(build_score(score, self.head_dim, self.head_dim), Softmax(), dropout)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        # Same initialization as torch.nn.MultiheadAttention.
        if self._qkv_same_embed_dim:
            nn.init.xavier_uniform_(self.in_proj_weight)
        else:
            nn.init.xavier_uniform_(self.q_proj_weight)
            nn.init.xavier_uniform_(self.k_proj_weight)
            nn.init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)

    # -- projections (public so that incremental decoders can cache keys and values) ----------------------

    def _weights(self, i: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        e = self.embed_dim
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight[i * e:(i + 1) * e]
        else:
            w = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)[i]
        b = self.in_proj_bias[i * e:(i + 1) * e] if self.in_proj_bias is not None else None
        return w, b

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, d)

    def project_query(self, query: torch.Tensor) -> torch.Tensor:
        """(B, Tq, E) -> (B, H, Tq, d)."""
        return self._heads(F.linear(query, *self._weights(0)))

    def project_key(self, key: torch.Tensor) -> torch.Tensor:
        """(B, Tk, kdim) -> (B, H, Tk, d)."""
        return self._heads(F.linear(key, *self._weights(1)))

    def project_value(self, value: torch.Tensor) -> torch.Tensor:
        """(B, Tk, vdim) -> (B, H, Tk, d)."""
        return self._heads(F.linear(value, *self._weights(2)))

    def project_qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Self-attention input projection in one matrix product: (B, T, E) -> 3 x (B, H, T, d)."""
        if not self._qkv_same_embed_dim:
            return self.project_query(x), self.project_key(x), self.project_value(x)
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        return self._heads(q), self._heads(k), self._heads(v)

    # -- attention over projected heads --------------------------------------------------------------------

    def attend(
        self,
        q: torch.Tensor,  # (B, H, Tq, d)
        k: torch.Tensor,  # (B, H, Tk, d)
        v: torch.Tensor,  # (B, H, Tk, d)
        key_padding_mask: torch.Tensor | None = None,  # (B, Tk): bool True = pad, or float additive
        attn_mask: torch.Tensor | None = None,  # (Tq, Tk) or (B*H, Tq, Tk) / (B, H, Tq, Tk)
        need_weights: bool = False,
        is_causal: bool = False,
        average_attn_weights: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attention over already projected heads, then the output projection: returns (B, Tq, E)."""
        bsz, _, tq, _ = q.shape
        tk = k.size(2)
        if is_causal and attn_mask is None:
            attn_mask = torch.ones(tq, tk, dtype=torch.bool, device=q.device).triu(tk - tq + 1)
        if attn_mask is not None and attn_mask.dim() == 3:
            attn_mask = attn_mask.view(bsz, self.num_heads, tq, tk)
        mask = merge_masks(key_padding_mask, attn_mask, heads=True)  # bool or float, to (B, H, Tq, Tk)
        if need_weights or self.capturing or self.score_name != "scaled_dot":
            ctx, weights = self.attention(q, k, v, mask=mask)
            self.record(weights)  # (B, H, Tq, Tk)
        else:
            weights = None
            ctx = self._fused(q, k, v, mask)
        ctx = ctx.transpose(1, 2).reshape(bsz, tq, self.embed_dim)  # (B, Tq, E)
        out = self.out_proj(ctx)
        if not (need_weights or self.capturing):
            weights = None
        if weights is not None and average_attn_weights:
            weights = weights.mean(dim=1)  # (B, Tq, Tk)
        return out, weights

    def _fused(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """``F.scaled_dot_product_attention`` under the core's mask rule: (B, H, Tq, d) contexts, zero for a
        query with no allowed key (SDPA alone gives NaN there, or NaN gradients)."""
        not_allowed, bias = split_mask(mask)
        empty = None
        if not_allowed is not None:
            empty = not_allowed.all(dim=-1, keepdim=True)  # (B|1, H|1, Tq, 1)
            not_allowed = not_allowed & ~empty  # such a row attends everywhere (finite), and is zeroed below
        if bias is not None:
            sdpa_mask = bias if not_allowed is None else bias.masked_fill(not_allowed, float("-inf"))
        else:
            sdpa_mask = None if not_allowed is None else ~not_allowed  # SDPA's boolean masks mean "may attend"
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=sdpa_mask,
                                             dropout_p=self.dropout_p if self.training else 0.0)
        return ctx if empty is None else ctx.masked_fill(empty, 0.0)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = False,
        attn_mask: torch.Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not self.batch_first:
            query, key, value = (x.transpose(0, 1) for x in (query, key, value))
        if query is key and key is value:
            q, k, v = self.project_qkv(query)
        else:
            q, k, v = self.project_query(query), self.project_key(key), self.project_value(value)
        out, weights = self.attend(q, k, v, key_padding_mask, attn_mask, need_weights, is_causal,
                                   average_attn_weights)
        if not self.batch_first:
            out = out.transpose(0, 1)
        return out, weights
