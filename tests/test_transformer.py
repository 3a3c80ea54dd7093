"""The Transformer: equivalence with torch's layers, cached decoding, beam search, capture, overfitting."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seq2seq_attn.attention import capture_attention
from seq2seq_attn.config import ConfigError, from_dict
from seq2seq_attn.layers import TransformerDecoderLayer, TransformerEncoderLayer, sinusoidal_positions
from seq2seq_attn.translation.models.transformer import TransformerSeq2Seq
from seq2seq_attn.translation.search import beam_search, greedy_search
from seq2seq_attn.translation.transformer_config import TransformerConfig

PAD, BOS, EOS = 0, 1, 2



def _batch(b: int = 3, s: int = 9, t: int = 7, vocab: int = 40, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(3, vocab, (b, s), generator=g)
    pad = torch.zeros(b, s, dtype=torch.bool)
    pad[1, s - 3:] = True  # one shorter sentence
    src = src.masked_fill(pad, PAD)
    tgt = torch.randint(3, vocab, (b, t), generator=g)
    return src, pad, tgt


def _model(norm_first: bool = False, positions: str = "sinusoidal", vocab: int = 40, **kw) -> TransformerSeq2Seq:
    torch.manual_seed(0)
    cfg = TransformerConfig(d_model=32, heads=4, encoder_layers=2, decoder_layers=2, ffn_dim=48,
                            norm_first=norm_first, positions=positions, max_positions=64, **kw)
    return TransformerSeq2Seq(vocab, vocab, cfg, pad_id=PAD).eval()


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_layers_match_torch(norm_first: bool, activation: str) -> None:
    torch.manual_seed(1)
    x = torch.randn(3, 7, 16)
    mem_pad = torch.zeros(3, 7, dtype=torch.bool)
    mem_pad[0, 4:] = True
    y = torch.randn(3, 5, 16)

    ref_enc = nn.TransformerEncoderLayer(16, 4, 24, activation=activation, batch_first=True, norm_first=norm_first)
    ours_enc = TransformerEncoderLayer(16, 4, 24, activation=activation, norm_first=norm_first)
    ours_enc.load_state_dict(ref_enc.state_dict())  # strict: the parameter names are torch's
    ref_enc.eval(), ours_enc.eval()
    expected = ref_enc(x, src_key_padding_mask=mem_pad)
    torch.testing.assert_close(ours_enc(x, mem_pad), expected, atol=1e-5, rtol=0)

    ref_dec = nn.TransformerDecoderLayer(16, 4, 24, activation=activation, batch_first=True, norm_first=norm_first)
    ours_dec = TransformerDecoderLayer(16, 4, 24, activation=activation, norm_first=norm_first)
    ours_dec.load_state_dict(ref_dec.state_dict())
    ref_dec.eval(), ours_dec.eval()
    causal = nn.Transformer.generate_square_subsequent_mask(5)
    expected = ref_dec(y, x, tgt_mask=causal, memory_key_padding_mask=mem_pad, tgt_is_causal=True)
    out, _, _ = ours_dec(y, ours_dec.project_memory(x), mem_pad)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")  # torch's note about its own fast path
@pytest.mark.parametrize("norm_first", [False, True])
def test_stacks_match_torch_transformer(norm_first: bool) -> None:
    """Whole encoder and decoder stacks (with final LayerNorms) equal ``torch.nn.Transformer``."""
    model = _model(norm_first, final_norm=True)
    ref = nn.Transformer(32, 4, 2, 2, 48, batch_first=True, norm_first=norm_first).eval()
    state = {}
    for name, value in ref.state_dict().items():
        name = name.replace("encoder.layers.", "encoder_layers.").replace("decoder.layers.", "decoder_layers.")
        state[name.replace("encoder.norm", "encoder_norm").replace("decoder.norm", "decoder_norm")] = value
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all("embed" in k or "output_projection" in k or "positions" in k for k in missing)

    src, pad, tgt = _batch()
    x = model._embed(model.src_embed, src)
    y = model._embed(model.tgt_embed, tgt)
    causal = nn.Transformer.generate_square_subsequent_mask(tgt.size(1))
    expected = ref(x, y, tgt_mask=causal, src_key_padding_mask=pad, memory_key_padding_mask=pad, tgt_is_causal=True)
    enc = model.encode(src, pad)
    h = y
    for i, layer in enumerate(model.decoder_layers):
        h, _, _ = layer(h, enc.memory_kv[i], pad)
    torch.testing.assert_close(model.decoder_norm(h), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("norm_first,positions", [(False, "sinusoidal"), (True, "learned")])
@pytest.mark.parametrize("use_cache", [True, False])
def test_incremental_decoding_matches_forward(norm_first: bool, positions: str, use_cache: bool) -> None:
    """Step-by-step decoding of K different prefixes per sentence, with a beam reorder in the middle, gives the
    log-probs of a full forward pass over each prefix."""
    model = _model(norm_first, positions)
    model.use_cache = use_cache
    src, pad, _ = _batch()
    b, k, t = 3, 4, 6
    g = torch.Generator().manual_seed(3)
    prefixes = torch.randint(3, 40, (b, k, t), generator=g)
    prefixes[..., 0] = BOS
    with torch.no_grad():
        enc = model.encode(src, pad)
        state = model.init_state(enc, k)
        rows = torch.arange(k).expand(b, k).clone()  # which prefix each hypothesis follows
        for step in range(t):
            if step == 3:  # hypotheses swap and duplicate, as in beam search
                beam_index = torch.randint(0, k, (b, k), generator=g)
                state = model.reorder_state(state, beam_index)
                rows = rows.gather(1, beam_index)  # each hypothesis has consumed prefix rows[b, j] so far
            prev = prefixes.gather(1, rows.unsqueeze(-1).expand(b, k, t))[..., step]  # (B, K)
            lp, state, attn = model.step(prev, state, enc)
            assert lp.shape == (b, k, 40) and attn.shape == (b, k, 9)
            torch.testing.assert_close(attn.sum(-1), torch.ones(b, k))
            assert attn[1, :, -3:].abs().max() == 0  # padded source positions get no attention
            for i in range(b):
                for j in range(k):
                    seq = prefixes[i, rows[i, j], : step + 1]
                    full = torch.log_softmax(model(src[i:i + 1], pad[i:i + 1], seq.unsqueeze(0)), -1)[0, -1]
                    torch.testing.assert_close(lp[i, j], full, atol=1e-5, rtol=0)


@pytest.mark.parametrize("norm_first", [False, True])
def test_cached_logits_match_forward(norm_first: bool) -> None:
    """The raw logits too: one token at a time through the key/value cache equals the teacher-forced pass."""
    model = _model(norm_first)
    src, pad, tgt = _batch()
    with torch.no_grad():
        full = model(src, pad, tgt)  # (B, T, V)
        enc = model.encode(src, pad)
        cache, steps = None, []
        for t in range(tgt.size(1)):
            logits, cache, _ = model._decode(tgt[:, t:t + 1], enc.memory_kv, pad, start=t, cache=cache)
            steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=0)


def test_cache_layout_and_capture_shapes() -> None:
    """Cross-attention K/V are (B, H, S, d), projected once in ``encode``; each cached step records the cross
    attention with the K beams as the query length (B, H, K, S)."""
    model = _model()
    src, pad, _ = _batch()
    calls = []
    for layer in model.decoder_layers:
        orig = layer.project_memory
        layer.project_memory = lambda m, orig=orig: calls.append(1) or orig(m)
    with torch.no_grad(), capture_attention(model) as maps:
        enc = model.encode(src, pad)
        assert [kv[0].shape for kv in enc.memory_kv] == [torch.Size([3, 4, 9, 8])] * 2
        state = model.init_state(enc, 5)
        prev = torch.full((3, 5), BOS)
        for _ in range(3):
            _, state, _ = model.step(prev, state, enc)
    assert len(calls) == 2  # once per decoder layer, not per step
    assert state.cache[0][0].shape == (15, 4, 3, 8)  # (B * K, H, steps, d)
    assert [w.shape for w in maps["encoder_layers.0.self_attn"]] == [torch.Size([3, 4, 9, 9])]
    assert [w.shape for w in maps["decoder_layers.1.multihead_attn"]] == [torch.Size([3, 4, 5, 9])] * 3
    assert [w.shape[-1] for w in maps["decoder_layers.0.self_attn"]] == [1, 2, 3]  # the growing prefix


def test_capture_all_attentions_teacher_forced() -> None:
    model = _model()
    src, pad, tgt = _batch()
    with torch.no_grad(), capture_attention(model) as maps:
        logits = model(src, pad, tgt)
    assert set(maps) == {f"{side}_layers.{i}.{name}" for i in range(2)
                         for side, name in [("encoder", "self_attn"), ("decoder", "self_attn"),
                                            ("decoder", "multihead_attn")]}
    dec_self = maps["decoder_layers.0.self_attn"][0]  # (B, H, T, T)
    assert dec_self.shape == (3, 4, 7, 7)
    assert dec_self.triu(1).abs().max() == 0  # causal
    assert maps["encoder_layers.1.self_attn"][0][1, :, :, -3:].abs().max() == 0  # source padding
    # Capturing takes the weights path; the outputs equal the fused path's.
    torch.testing.assert_close(logits, model(src, pad, tgt), atol=1e-5, rtol=0)


@pytest.mark.parametrize("norm_first", [False, True])
def test_beam_search_same_with_and_without_cache(norm_first: bool) -> None:
    model = _model(norm_first)
    src, pad, _ = _batch(b=4, seed=5)
    results = []
    for use_cache in (True, False):
        model.use_cache = use_cache
        results.append(beam_search(model, src, pad, BOS, EOS, beam_size=4, alpha=0.6, max_len=12, n_best=3))
    for cached, plain in zip(*results):
        assert [h.tokens for h in cached] == [h.tokens for h in plain]
        for hc, hp in zip(cached, plain):
            assert hc.score == pytest.approx(hp.score, abs=1e-4)
            torch.testing.assert_close(hc.attention, hp.attention, atol=1e-5, rtol=0)


def test_tied_and_shared_embeddings() -> None:
    cfg = TransformerConfig(d_model=16, heads=2, encoder_layers=1, decoder_layers=1, ffn_dim=16)
    shared = TransformerSeq2Seq(30, 30, cfg, tie_embeddings=True, share_embeddings=True)
    assert shared.src_embed.weight is shared.tgt_embed.weight is shared.output_projection.weight
    assert shared.src_embed.weight[PAD].abs().max() == 0
    separate = TransformerSeq2Seq(30, 20, cfg, tie_embeddings=False, share_embeddings=False)
    assert separate.output_projection.weight is not separate.tgt_embed.weight
    assert separate.src_embed.num_embeddings == 30 and separate.output_projection.out_features == 20
    with pytest.raises(ValueError, match="joint vocabulary"):
        TransformerSeq2Seq(30, 20, cfg, share_embeddings=True)


def test_gradients_reach_every_parameter() -> None:
    model = _model(True, "learned").train()
    src, pad, tgt = _batch()
    model(src, pad, tgt).logsumexp(-1).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_positions() -> None:
    pe = sinusoidal_positions(50, 8)
    assert torch.allclose(pe[:, 0], torch.sin(torch.arange(50.0)))
    assert torch.allclose(pe[:, 1], torch.cos(torch.arange(50.0)))
    assert torch.allclose(pe[7, 6], torch.sin(torch.tensor(7.0) / 10000 ** (6 / 8)))
    assert torch.allclose(pe[7, 7], torch.cos(torch.tensor(7.0) / 10000 ** (6 / 8)))
    model = _model()
    with pytest.raises(ValueError, match="max_positions"):
        model(torch.ones(1, 70, dtype=torch.long), torch.zeros(1, 70, dtype=torch.bool), torch.ones(1, 3).long())


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match="heads"):
        from_dict(TransformerConfig, {"d_model": 30, "heads": 4}, "x.yaml")
    with pytest.raises(ConfigError, match="x.yaml: activation"):
        from_dict(TransformerConfig, {"activation": "tanh"}, "x.yaml")
    with pytest.raises(ConfigError, match="alignment_layer"):
        from_dict(TransformerConfig, {"decoder_layers": 2, "alignment_layer": 2}, "x.yaml")


def test_overfits_a_tiny_corpus() -> None:
    """Learn to reverse 16 short sequences; greedy search then reproduces every target."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    n, vocab = 16, 20
    src = torch.stack([torch.randperm(vocab - 3, generator=g)[:6] + 3 for _ in range(n)])  # distinct tokens
    lengths = torch.tensor([6, 5, 4] * 5 + [6])
    pad = torch.arange(6).unsqueeze(0) >= lengths.unsqueeze(1)
    src = src.masked_fill(pad, PAD)
    targets = [src[i, : lengths[i]].flip(0).tolist() for i in range(n)]
    tgt = torch.full((n, 8), PAD)
    for i, seq in enumerate(targets):
        tgt[i, : len(seq) + 2] = torch.tensor([BOS, *seq, EOS])
    cfg = TransformerConfig(d_model=32, heads=4, encoder_layers=2, decoder_layers=2, ffn_dim=64, dropout=0.0,
                            norm_first=True, max_positions=16)
    model = TransformerSeq2Seq(vocab, vocab, cfg, pad_id=PAD)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(300):
        logits = model(src, pad, tgt[:, :-1])
        loss = nn.functional.cross_entropy(logits.reshape(-1, vocab), tgt[:, 1:].reshape(-1), ignore_index=PAD)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    model.eval()
    greedy = greedy_search(model, src, pad, BOS, EOS, max_len=8)
    assert [h[0].tokens for h in greedy] == targets
