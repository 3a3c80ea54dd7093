"""Every attention matrix of a translation, for plots and ``.npz`` dumps (the Transformer's, or any model's).

After search, each chosen hypothesis is run once more with teacher forcing inside ``capture_attention``: the
Transformer then records, per layer and head, its encoder self-attention (H, S, S), decoder self-attention
(H, T, T) and cross-attention (H, T, S), where S counts the source pieces plus EOS and T the output pieces
plus EOS, the same axes as the search's heatmaps. Models that record once per decoding step (the RNNs) get
their steps stacked along the query axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..attention import capture_attention
from .data import collate_pairs
from .heatmap import save_heatmap
from .subwords import Vocabs


@torch.no_grad()
def attention_maps(model: nn.Module, src_ids: list[int], tokens: Sequence[int], device: torch.device | str
                   ) -> dict[str, np.ndarray]:
    """All recorded attention of one sentence pair: ``{module name: (heads, queries, keys)}`` float32 arrays.

    ``src_ids`` are the encoder ids (with EOS, as ``Vocabs.encode_src`` gives them); ``tokens`` the output
    ids without BOS/EOS (a hypothesis' ``tokens``).
    """
    batch = collate_pairs([src_ids], [list(tokens)], [0]).to(device)
    was_training = model.training
    model.eval()
    try:
        with capture_attention(model, cpu=True) as maps:
            model(batch.src, batch.src_pad_mask, batch.tgt_in)
    finally:
        model.train(was_training)
    out = {}
    for name, calls in maps.items():
        if calls:
            # Drop the batch axis; a call gives (H, Tq, Tk), (Tq, Tk) or one step's (Tk,): stack along queries.
            per_call = [c[0].reshape(-1, *c.shape[-2:]) if c.dim() >= 3 else c[0].reshape(1, 1, -1) for c in calls]
            out[name] = torch.cat(per_call, dim=1).float().numpy()  # (H, Tq, Tk)
    return out


def save_attention_npz(path: Path, sentences: Sequence[dict[str, np.ndarray]],
                       src_pieces: Sequence[Sequence[str]], tgt_pieces: Sequence[Sequence[str]]) -> Path:
    """One compressed ``.npz``: ``"{i}/{module}"`` -> (heads, queries, keys) for sentence i (0-based), plus
    ``"{i}/src"`` and ``"{i}/tgt"`` with the pieces labelling the axes."""
    arrays: dict[str, np.ndarray] = {}
    for i, (maps, src, tgt) in enumerate(zip(sentences, src_pieces, tgt_pieces)):
        for name, w in maps.items():
            arrays[f"{i}/{name}"] = w
        arrays[f"{i}/src"] = np.array(list(src), dtype=str)
        arrays[f"{i}/tgt"] = np.array(list(tgt), dtype=str)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:  # through a handle: numpy adds no ".npz" to the name it is given
        np.savez_compressed(fh, **arrays)
    return path


def cross_attention_names(maps: dict[str, np.ndarray]) -> list[str]:
    """Names of the encoder-decoder attentions among the captured modules, in layer order."""
    return [n for n in maps if n.endswith("multihead_attn")]


def save_head_heatmaps(maps: dict[str, np.ndarray], src: Sequence[str], tgt: Sequence[str], out_dir: Path,
                       stem: str, layer: int = -1, title: str | None = None) -> list[Path]:
    """Per-head cross-attention of decoder layer ``layer`` (``out_dir/{stem}_L{l}_h{h}.png``) and the mean
    over its heads (``..._mean.png``)."""
    names = cross_attention_names(maps)
    if not names:
        raise ValueError("the model recorded no cross-attention (multihead_attn) modules")
    layer = layer % len(names)
    w = torch.from_numpy(maps[names[layer]])  # (H, T, S)
    paths = [save_heatmap(w.mean(0), src, tgt, out_dir / f"{stem}_L{layer}_mean.png",
                          title=f"{title or ''}\nlayer {layer}, mean of {w.size(0)} heads".strip())]
    for h in range(w.size(0)):
        paths.append(save_heatmap(w[h], src, tgt, out_dir / f"{stem}_L{layer}_h{h}.png",
                                  title=f"{title or ''}\nlayer {layer}, head {h}".strip()))
    return paths


def write_attention(model: nn.Module, vocabs: Vocabs, device: torch.device | str, sources: Sequence[str],
                    hyps: Sequence[list], npz: Path | None = None, heads_dir: Path | None = None, layer: int = -1,
                    start: int = 1) -> None:
    """For translations already made with ``model`` (e.g. ``TranslationRun.translate``; ``hyps[i]`` the
    hypotheses of ``sources[i]``, best first): dump every attention matrix of each best hypothesis to ``npz``
    and/or write per-head cross-attention heatmaps of decoder ``layer`` into ``heads_dir``
    (``{n:05d}_L{layer}_h{h}.png`` and ``..._mean.png``, numbered from ``start``)."""
    all_maps, src_pieces, tgt_pieces = [], [], []
    for n, (source, hyp_list) in enumerate(zip(sources, hyps), start=start):
        tokens = hyp_list[0].tokens if source and hyp_list else []
        maps = attention_maps(model, vocabs.encode_src([source])[0], tokens, device)
        src_tok = [*vocabs.src.encode(source, out_type=str), "</s>"]
        tgt_tok = [*(vocabs.tgt.id_to_piece(t) for t in tokens), "</s>"]
        all_maps.append(maps)
        src_pieces.append(src_tok)
        tgt_pieces.append(tgt_tok)
        if heads_dir is not None and source:
            save_head_heatmaps(maps, src_tok, tgt_tok, heads_dir, f"{n:05d}", layer,
                               f"{source}\n{vocabs.decode_tgt(tokens)}")
    if npz is not None:
        save_attention_npz(npz, all_maps, src_pieces, tgt_pieces)
