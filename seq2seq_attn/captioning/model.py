"""Show, Attend and Tell (Xu et al., 2015, arXiv:1502.03044): a CNN encoder and an LSTM decoder that attends,
word by word, over the L positions of the CNN's last feature map.

- :class:`CaptionEncoder`: one of the project's ResNets (``vision/models/resnet.py``), optionally with a
  registered CV attention module in its blocks, without pooling and classifier: uint8 images (B, C, H, W) ->
  annotations a (B, L, D), L = h*w (section 3.1.1). Images are normalized inside (``vision.data.Normalize``).
  Optionally a row encoder (a BiLSTM over each row, Deng et al., 2017) and 2-D positions added (DETR), so
  that the annotations say where they are.
- :class:`ShowAttendTellDecoder`: the LSTM of section 3.1.2 on the translation decoders' (batch, beam)
  layout (:class:`~seq2seq_attn.translation.models.rnn_decoders.RNNDecoderBase`): h_0, c_0 = MLPs of the mean
  annotation; alpha_t = the attention core's weights of h_{t-1} over a (any score, any normalizer: soft, or
  the stochastic hard attention of ``categorical``); z_t = beta_t * sum_i alpha_ti a_i with the gate
  beta_t = sigmoid(f_beta(h_{t-1})) (section 4.2.1); LSTM input [E y_{t-1}; z_t]; the deep output
  p(y_t) = softmax(L_o(E y_{t-1} + L_h h_t + L_z z_t)) (Eq. 7).
- :class:`CaptionModel`: both as a :class:`~seq2seq_attn.translation.models.base.Seq2SeqModel` whose source is
  the image (``src_pad_mask`` (B, L) all False), so the translation search (greedy, beam, n-best, sampling)
  decodes it unchanged.
- :func:`doubly_stochastic_penalty`: lambda * sum_i (1 - sum_t alpha_ti)^2 (Eq. 14).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vision.data import Normalize
from vision.models.resnet import build_resnet

from ..attention import Attention, build_normalizer
from ..attention.scores import build_score
from ..layers import GridPositionalEncoding, PackedRNN
from ..translation.models.base import Seq2SeqModel
from ..translation.models.rnn_decoders import EncoderOutput, RNNDecoderBase
from .config import CaptionModelConfig, DecoderConfig, EncoderConfig


class CaptionEncoder(nn.Module):
    """A ResNet trunk (stem + stages) emitting its last feature map as annotation vectors.

    ``forward``: uint8 or float images (B, C, H, W) -> (B, L, D) with L = h*w in row-major order (row ``i // w``,
    column ``i % w``), D = the last stage's channels. ``freeze`` keeps the trunk fixed: no gradients, and its
    BatchNorm layers stay in eval mode whatever ``train()`` says.

    ``cfg.row_rnn``: the CNN's rows run through a bidirectional LSTM (D/2 units per direction; the row encoder
    of Deng et al., 2017); ``cfg.position``: :class:`~seq2seq_attn.layers.GridPositionalEncoding` added last
    (``learned`` tables sized for the grid of ``image_size`` (H, W), the images the model is built for). Both
    need an even D; learned positions need ``image_size`` (``ValueError`` otherwise).
    """

    def __init__(self, cfg: EncoderConfig, in_channels: int, mean: list[float], std: list[float],
                 image_size: tuple[int, int] | None = None) -> None:
        super().__init__()
        cnn = build_resnet(cfg.arch, num_classes=1, in_channels=in_channels, shortcut=cfg.shortcut,
                           blocks=cfg.blocks, widths=cfg.widths, stem_stride=cfg.stem_stride,
                           attention=cfg.attention, attention_kwargs=cfg.attention_kwargs,
                           attention_stages=cfg.attention_stages, attention_position=cfg.attention_position)
        self.stem, self.stages = cnn.stem, cnn.stages  # no pooling, no classifier
        self.num_stages = len(cnn.stages)
        self.stem_stride = cfg.stem_stride
        self.out_dim = cnn.num_features
        self.normalize = Normalize(mean, std)
        self.frozen = cfg.freeze
        if self.frozen:
            for p in self.parameters():
                p.requires_grad_(False)
        if (cfg.row_rnn or cfg.position) and self.out_dim % 2:
            raise ValueError(f"row_rnn and position need an even number of channels, the CNN gives {self.out_dim}")
        self.row_rnn = PackedRNN(self.out_dim, self.out_dim // 2, cell="lstm") if cfg.row_rnn else None
        if cfg.position == "learned" and image_size is None:
            raise ValueError("learned positions need the image size (H, W) the model is built for")
        grid = self.grid(*image_size) if image_size is not None else (1, 1)  # (1, 1): sinusoids, any grid
        self.position = GridPositionalEncoding(self.out_dim, grid, cfg.position) if cfg.position else None

    def load_cnn(self, source: str) -> None:
        """Start from the trunk of a ``vision train`` run (its best weights) or a .safetensors file of the same
        ResNet; the classifier ``fc.*`` is dropped. Raises ``FileNotFoundError``/``CheckpointError`` naming the
        file (e.g. another arch)."""
        from ..paths import resolve_path
        from ..training.checkpoint import load_state_dict_checked, read_weights, resolve_weights

        path = resolve_path(source, "encoder.init_from")
        weights = resolve_weights(path, "best") if path.is_dir() else path
        state = {k: v for k, v in read_weights(weights).items() if not k.startswith("fc.")}
        own = self.state_dict()  # the row RNN and position tables are not the CNN's: they keep their init
        state.update({k: v for k, v in own.items() if k.startswith(("row_rnn.", "position."))})
        load_state_dict_checked(self, state, weights)

    def grid(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) of the feature map of an H x W image: the stem divides by its stride, every later stage by 2
        (3x3 convolutions with padding 1: ceil divisions)."""
        h, w = math.ceil(height / self.stem_stride), math.ceil(width / self.stem_stride)
        for _ in range(self.num_stages - 1):
            h, w = math.ceil(h / 2), math.ceil(w / 2)
        return h, w

    def train(self, mode: bool = True) -> CaptionEncoder:
        super().train(mode)
        if self.frozen:
            self.stem.eval()
            self.stages.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.normalize(images) if images.dtype == torch.uint8 else images
        features = self.stages(self.stem(x))  # (B, D, h, w)
        b, d, h, w = features.shape
        annotations = features.flatten(2).transpose(1, 2)  # (B, L, D)
        if self.row_rnn is not None:
            rows = annotations.reshape(b * h, w, d)  # (B*h, w, D): each row a sequence, left to right
            lengths = torch.full((b * h,), w, dtype=torch.long)
            annotations = self.row_rnn(rows, lengths)[0].reshape(b, h * w, d)  # (B, L, D): [forward; backward]
        if self.position is not None:
            annotations = annotations + self.position(h, w).to(annotations.dtype)  # (L, D) broadcast over B
        return annotations


class ShowAttendTellDecoder(RNNDecoderBase):
    """One LSTM step for every hypothesis (B, K) (see the module doc); the attention is the core's
    ``Attention(build_score(score), build_normalizer(normalize))``, the same one the Bahdanau decoder uses."""

    def __init__(self, cfg: DecoderConfig, enc_dim: int, vocab_size: int, positions: int, pad_id: int) -> None:
        super().__init__(cfg.emb_dim + enc_dim, cfg.hidden, 1, "lstm", 0.0)
        self.embedding = nn.Embedding(vocab_size, cfg.emb_dim, padding_idx=pad_id)
        self.attention = Attention(build_score(cfg.score, cfg.hidden, enc_dim, cfg.attn_hidden, positions),
                                   build_normalizer(cfg.normalize, cfg.temperature, **cfg.normalize_options))
        self.init_h = nn.Linear(enc_dim, cfg.hidden)  # f_init,h and f_init,c of section 3.1.2
        self.init_c = nn.Linear(enc_dim, cfg.hidden)
        self.f_beta = nn.Linear(cfg.hidden, 1) if cfg.gate else None
        self.deep_output = cfg.deep_output
        if cfg.deep_output:  # Eq. 7: L_o(E y_{t-1} + L_h h_t + L_z z_t)
            self.L_h = nn.Linear(cfg.hidden, cfg.emb_dim)
            self.L_z = nn.Linear(enc_dim, cfg.emb_dim)
            self.L_o = nn.Linear(cfg.emb_dim, vocab_size)
        else:
            self.L_o = nn.Linear(cfg.hidden, vocab_size)
        self.dropout = nn.Dropout(cfg.dropout)

    def initial(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h_0, c_0 (1, B, H) = tanh(f_init(mean_i a_i)) of the annotations (B, L, D)."""
        mean = memory.mean(1)  # (B, D)
        return torch.tanh(self.init_h(mean)).unsqueeze(0), torch.tanh(self.init_c(mean)).unsqueeze(0)

    def forward(self, prev: torch.Tensor, state: dict, enc: EncoderOutput) -> tuple[torch.Tensor, dict, torch.Tensor]:
        """prev (B, K) token ids -> logits (B, K, V), new state, attention alpha_t (B, K, L)."""
        emb = self.dropout(self.embedding(prev))  # (B, K, E)
        query = state["h"][-1]  # (B, K, H): h_{t-1}
        context, weights = self.attend(query, state, enc)  # (B, K, D), (B, K, L)
        if self.f_beta is not None:
            context = torch.sigmoid(self.f_beta(query)) * context  # z_t = beta_t * phi(a, alpha_t)
        out, new = self.run_rnn(torch.cat([emb, context], -1), state)  # (B, K, H): h_t
        new["t"] = state["t"] + 1
        if self.deep_output:
            out = emb + self.L_h(out) + self.L_z(context)  # (B, K, E)
        return self.L_o(self.dropout(out)), new, weights


class CaptionModel(Seq2SeqModel):
    """Encoder + decoder behind the translation models' interface; ``src`` = uint8 images (B, C, H, W),
    ``src_pad_mask`` = (B, L) bool, all False (:meth:`source_mask`)."""

    def __init__(self, encoder: CaptionEncoder, decoder: ShowAttendTellDecoder, pad_id: int) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.pad_id = pad_id

    def source_mask(self, images: torch.Tensor) -> torch.Tensor:
        """(B, L) bool, all False: every position of the feature map may be attended."""
        h, w = self.encoder.grid(images.shape[-2], images.shape[-1])
        return torch.zeros(images.shape[0], h * w, dtype=torch.bool, device=images.device)

    def encode(self, src: torch.Tensor, src_pad_mask: torch.Tensor | None) -> EncoderOutput:
        """``src_pad_mask`` None = :meth:`source_mask` (what a task passes through a DDP/compile wrapper)."""
        memory = self.encoder(src)  # (B, L, D)
        if src_pad_mask is None:
            src_pad_mask = self.source_mask(src)
        if memory.shape[:2] != src_pad_mask.shape:
            raise ValueError(f"source mask {tuple(src_pad_mask.shape)} does not match the {memory.shape[1]} "
                             "feature-map positions (use CaptionModel.source_mask)")
        return EncoderOutput(memory, src_pad_mask.unsqueeze(1), self.decoder.project_keys(memory),
                             self.decoder.initial(memory))

    def init_state(self, enc: EncoderOutput, beam_size: int) -> dict:
        return self.decoder.init_state(enc, beam_size)

    def reorder_state(self, state: dict, beam_index: torch.Tensor) -> dict:
        return self.decoder.reorder_state(state, beam_index)

    def step(self, prev_tokens: torch.Tensor, state: dict, enc: EncoderOutput
             ) -> tuple[torch.Tensor, dict, torch.Tensor]:
        logits, state, weights = self.decoder(prev_tokens, state, enc)
        return torch.log_softmax(logits.float(), dim=-1), state, weights

    def forward(self, src: torch.Tensor, src_pad_mask: torch.Tensor | None, tgt_in: torch.Tensor,
                return_attention: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Teacher forcing: images, mask, ``tgt_in`` (B, T) (BOS + caption) -> logits (B, T, V), and with
        ``return_attention`` also alpha (B, T, L)."""
        enc = self.encode(src, src_pad_mask)
        state = self.init_state(enc, 1)
        logits, alphas = [], []
        for prev in tgt_in.unbind(1):
            out, state, weights = self.decoder(prev.unsqueeze(1), state, enc)  # (B, 1, V), (B, 1, L)
            logits.append(out)
            alphas.append(weights)
        logits_t = torch.cat(logits, 1)  # (B, T, V)
        return (logits_t, torch.cat(alphas, 1)) if return_attention else logits_t


def doubly_stochastic_penalty(alphas: torch.Tensor, keep: torch.Tensor, weight: float) -> torch.Tensor:
    """Eq. 14's regularizer summed over the batch: ``weight * sum_b sum_i (1 - sum_t alpha_bti)^2``, the inner
    sum over the steps ``keep`` (B, T) bool marks (the caption's words and its EOS). alphas (B, T, L)."""
    attention_sum = (alphas * keep.unsqueeze(-1)).sum(1)  # (B, L)
    return weight * (1.0 - attention_sum).pow(2).sum()


def build_caption_model(cfg: CaptionModelConfig, vocab_size: int, image_shape: tuple[int, int, int],
                        mean: list[float], std: list[float], pad_id: int = 0, pretrained: bool = False
                        ) -> CaptionModel:
    """The configured model for images of ``image_shape`` (C, H, W) normalized with ``mean``/``std``;
    ``pretrained``: load ``encoder.init_from`` (training; a loaded run has the weights already)."""
    encoder = CaptionEncoder(cfg.encoder, image_shape[0], mean, std, image_size=image_shape[1:])
    if pretrained and cfg.encoder.init_from:
        encoder.load_cnn(cfg.encoder.init_from)
    h, w = encoder.grid(image_shape[1], image_shape[2])
    decoder = ShowAttendTellDecoder(cfg.decoder, encoder.out_dim, vocab_size, h * w, pad_id)
    return CaptionModel(encoder, decoder, pad_id)


__all__ = ["CaptionEncoder", "CaptionModel", "ShowAttendTellDecoder", "build_caption_model",
           "doubly_stochastic_penalty"]
