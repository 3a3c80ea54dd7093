"""Classifier and vision runs as ONNX graphs (``torch.onnx.export``, TorchScript tracer) with dynamic batch and
length (or height/width) axes, checked with onnxruntime against PyTorch.

The classifiers' packed RNNs (``pack_padded_sequence``, data-dependent row selection) do not trace, so
:func:`traceable` swaps each :class:`~seq2seq_attn.layers.PackedRNN` for :class:`MaskedRNN`, the same function
(same weights, same outputs) written with masks and gathers: the forward direction runs over the padded rows
(padding follows the tokens, so it never reaches a real token's state) and the backward direction over each
row reversed within its length.

Graph inputs and outputs (float32 unless noted):

- flat classifiers (attention classifier, Transformer): ``tokens`` int64 (B, T), ``lengths`` int64 (B,) ->
  ``logits`` (B, C), ``probabilities`` (B, C), ``token_weights`` (B, T);
- HAN: ``tokens`` int64 (B, S, W), ``sentence_lengths`` int64 (B, S) -> ``logits``, ``probabilities``,
  ``token_weights`` (B, S, W), ``sentence_weights`` (B, S);
- vision: ``images`` (B, C, H, W), already normalized as in training -> ``logits``, ``probabilities``.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

ONNX_FILE = "model.onnx"
OPSET = 17


class MaskedRNN(nn.Module):
    """A traceable :class:`~seq2seq_attn.layers.PackedRNN` (same weights): ``(N, T, E)`` and lengths ``(N,)``
    -> outputs ``(N, T, D)``, equal to the packed computation, zeros at padding and for rows of length 0.

    Each layer and direction is a one-layer GRU/LSTM holding that slice of the packed module's weights; the
    backward direction reads each row reversed within its length. Only the outputs are computed (the
    classifiers use no final state): the second element of the returned pair is None.
    """

    def __init__(self, packed: nn.Module) -> None:
        super().__init__()
        rnn = packed.rnn
        self.embedding, self.input_dropout = packed.embedding, packed.input_dropout
        self.directions = 2 if rnn.bidirectional else 1
        self.cells = nn.ModuleList()
        for layer in range(rnn.num_layers):
            for direction in range(self.directions):
                size = rnn.input_size if layer == 0 else rnn.hidden_size * self.directions
                cell = type(rnn)(size, rnn.hidden_size, batch_first=True, bias=rnn.bias)
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                with torch.no_grad():
                    for name, param in cell.named_parameters():
                        param.copy_(getattr(rnn, name.replace("_l0", suffix)))
                self.cells.append(cell)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, None]:
        if self.embedding is not None:
            x = self.input_dropout(self.embedding(x))  # (N, T, E)
        positions = torch.arange(x.size(1), device=x.device).unsqueeze(0)  # (1, T)
        valid = positions < lengths.unsqueeze(1)  # (N, T)
        # Position t of the reversed row reads position length - 1 - t (padding stays where it is).
        rev = torch.where(valid, lengths.unsqueeze(1) - 1 - positions, positions).unsqueeze(-1)  # (N, T, 1)
        keep = valid.unsqueeze(-1).to(x.dtype)
        for i in range(0, len(self.cells), self.directions):
            outs = [self.cells[i](x)[0]]  # (N, T, H); padding follows the tokens, so it never reaches them
            if self.directions == 2:
                back = self.cells[i + 1](x.gather(1, rev.expand_as(x)))[0]  # reversed order
                outs.append(back.gather(1, rev.expand_as(back)))
            x = torch.cat(outs, dim=-1) * keep  # (N, T, D)
        return x, None


def traceable(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode with every ``PackedRNN`` replaced by a :class:`MaskedRNN`."""
    from ..layers import PackedRNN

    model = copy.deepcopy(model).eval()
    for name, module in list(model.named_modules()):
        if isinstance(module, PackedRNN):
            parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
            setattr(parent, name.rpartition(".")[2], MaskedRNN(module))
    return model


class ClassifierGraph(nn.Module):
    """A classifier's ``ClassifierOutput`` as a tuple of tensors (logits, probabilities, weights...)."""

    def __init__(self, model: nn.Module, hierarchical: bool, trace: bool = True) -> None:
        """``trace``: swap the packed RNNs for :class:`MaskedRNN` (False: the model as it is, the reference)."""
        super().__init__()
        self.model, self.hierarchical = traceable(model) if trace else model, hierarchical
        self.eval()

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(tokens, lengths)
        extra = (out.sentence_weights,) if self.hierarchical else ()
        return (out.logits, torch.softmax(out.logits, -1), out.token_weights, *extra)


class VisionGraph(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = copy.deepcopy(model)
        self.eval()

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(images)
        return logits, torch.softmax(logits, -1)


def classifier_io(hierarchical: bool) -> tuple[list[str], list[str], dict[str, dict[int, str]]]:
    """Input names, output names and dynamic axes of a classifier graph."""
    if hierarchical:
        inputs = ["tokens", "sentence_lengths"]
        outputs = ["logits", "probabilities", "token_weights", "sentence_weights"]
        grid, rows = {0: "batch", 1: "sentences", 2: "words"}, {0: "batch", 1: "sentences"}
        axes = {"tokens": grid, "sentence_lengths": rows, "token_weights": grid, "sentence_weights": rows}
    else:
        inputs, outputs = ["tokens", "lengths"], ["logits", "probabilities", "token_weights"]
        seq = {0: "batch", 1: "length"}
        axes = {"tokens": seq, "lengths": {0: "batch"}, "token_weights": seq}
    for name in ("logits", "probabilities"):
        axes[name] = {0: "batch"}
    return inputs, outputs, axes


def _isneginf(g, x):
    return g.op("IsInf", x, detect_positive_i=0, detect_negative_i=1)


def _argsort(g, x, *args):
    """``aten::argsort`` and ``aten::argsort.stable`` (HAN moves empty sentences last, keeping the order of the
    others; both overloads end with dim, descending) as ONNX TopK over the whole axis: TopK breaks ties by the
    lower index, i.e. it is stable."""
    from torch.onnx import symbolic_helper as sh

    dim, descending = args[-2:]
    dim, descending = sh._get_const(dim, "i", "dim"), sh._get_const(descending, "b", "descending")
    values = g.op("Cast", x, to_i=1)  # float: onnxruntime's TopK has no int8 kernel
    size = g.op("Gather", g.op("Shape", x), g.op("Constant", value_t=torch.tensor([dim])), axis_i=0)
    _, indices = g.op("TopK", values, size, axis_i=dim, largest_i=int(descending), sorted_i=1, outputs=2)
    return indices


def _eye(g, n, *args):
    """``aten::eye`` (criss-cross attention builds a boolean eye): EyeLike on float zeros, then a Cast, since
    onnxruntime has no boolean EyeLike. Overloads: (n, dtype, layout, device, pin) and (n, m, dtype, ...)."""
    from torch.onnx import symbolic_helper as sh

    m, dtype = (n, args[0]) if len(args) == 4 else args[:2]
    one = g.op("Constant", value_t=torch.tensor([1]))
    shape = g.op("Concat", g.op("Reshape", n, one), g.op("Reshape", m, one), axis_i=0)
    eye = g.op("EyeLike", g.op("ConstantOfShape", shape, value_t=torch.tensor([0.0])))
    scalar = sh._get_const(dtype, "i", "dtype")
    if scalar is None:
        return eye
    return g.op("Cast", eye, to_i=sh._type_utils.JitScalarType(scalar).onnx_type())


def export_graph(graph: nn.Module, example: tuple[torch.Tensor, ...], path: Path, inputs: list[str],
                 outputs: list[str], axes: dict[str, dict[int, str]]) -> None:
    """``torch.onnx.export`` of ``graph`` in eval mode with the TorchScript tracer (no onnxscript needed) and
    opset :data:`OPSET`. (The exporter restores the top module's mode on every submodule afterwards.)"""
    graph.eval()
    # The core's masked softmax finds fully masked rows with torch.isneginf: ONNX's IsInf, negative side only.
    torch.onnx.register_custom_op_symbolic("aten::isneginf", _isneginf, OPSET)
    torch.onnx.register_custom_op_symbolic("aten::argsort", _argsort, OPSET)
    torch.onnx.register_custom_op_symbolic("aten::eye", _eye, OPSET)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python values taken as constants
        torch.onnx.export(graph, example, str(path), input_names=inputs, output_names=outputs,
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)


def onnx_session(path: str | Path, threads: int = 1):
    """An onnxruntime CPU session for ``path``."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


@torch.no_grad()
def max_difference(path: str | Path, reference: nn.Module, batches: list[tuple[torch.Tensor, ...]],
                   inputs: list[str]) -> float:
    """Largest absolute difference between onnxruntime's outputs and ``reference``'s (the PyTorch model as
    trained, not the traced copy) over ``batches``."""
    session = onnx_session(path)
    reference.eval()
    worst = 0.0
    for batch in batches:
        ours = reference(*batch)
        theirs = session.run(None, {name: t.numpy() for name, t in zip(inputs, batch)})
        for a, b in zip(ours, theirs):
            if a.shape != b.shape:
                raise ValueError(f"onnxruntime output shape {b.shape} != PyTorch's {tuple(a.shape)}")
            worst = max(worst, float(np.abs(a.numpy() - b).max(initial=0.0)))
    return worst
