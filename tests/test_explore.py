"""``seq2seq-attn explore``: the page data and encoding, the injection-safe template, and each view opened in
headless Chromium (the page's script runs; the test reads the document it built, with hovers and clicks
simulated through the URL hash). The browser tests skip with a reason when Chromium is absent."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_transformer_cli import transformer_config
from test_translation_cli import tiny_corpus

from seq2seq_attn.cli import main
from seq2seq_attn.explore import run_kind
from seq2seq_attn.explore.page import dequantize, quantize, render_page
from seq2seq_attn.explore.translation import group_maps
from seq2seq_attn.explore.vision import describe

INJECT = '</script><script>document.title="pwned"</script><img src=x onerror=alert(1)>'
SHORT_INJECT = "</script><img src=x>"  # fits the tiny Transformer's 64 positions
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
needs_browser = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (Debian: apt-get "
                                   "install chromium); the page is only checked in a real browser")


def dump_dom(page: Path, fragment: str = "") -> str:
    """The document after the page's script ran, as headless Chromium serializes it."""
    url = page.resolve().as_uri() + (f"#{fragment}" if fragment else "")
    proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", url],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'data-built-ms="' in proc.stdout, "the page script did not finish"
    return proc.stdout


def page_data(page: Path) -> dict:
    text = page.read_text(encoding="utf-8")
    return json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', text, re.S).group(1))


def count(dom: str, cls: str) -> int:
    return len(re.findall(f'class="{cls}"', dom))


def test_quantize_round_trip_and_safe_json():
    w = np.random.default_rng(0).random((2, 3, 5))
    back = dequantize(quantize(w), w.shape)
    assert np.abs(back - w).max() <= 1 / 510 + 1e-7
    page = render_page("classification", {"notes": INJECT, "docs": [{"text": INJECT}]}, INJECT)
    assert page.count("<script") == 2 and page.count("</script>") == 2  # the data block and the page script
    assert "pwned" in page and "<img" not in page  # the text is there, escaped as \u003c...
    with pytest.raises(ValueError, match="unknown view"):
        render_page("audio", {}, "x")


def test_describe_reads_every_kind_of_recorded_weights():
    rng = np.random.default_rng(0)
    assert describe(rng.random((1, 4, 4)), 8, 4, 4)["kind"] == "spatial"  # a spatial gate
    assert describe(rng.random((8, 1, 1)), 8, 4, 4)["kind"] == "channel"  # a channel gate
    gc = describe(rng.random((1, 16)), 8, 4, 4)  # GC: one weight per position
    assert gc["kind"] == "spatial" and (gc["h"], gc["w"]) == (4, 4)
    nl = describe(rng.random((16, 16)), 8, 4, 4)
    assert (nl["kind"], nl["kh"], nl["k"]) == ("self", 4, 16)
    pooled = describe(rng.random((16, 5)), 8, 4, 4)  # ANL's pyramid-pooled keys: bars, not a map
    assert (pooled["kind"], pooled["kh"]) == ("self", None)
    assert describe(rng.random((8, 8)), 8, 4, 4, channel_affinity=True)["kind"] == "channel"
    # Criss-cross (H, W, H + W): position (1, 2) attends to its column (keys 0..H-1) and row (keys H..).
    cc = np.zeros((4, 4, 8))
    cc[1, 2, 3] = 0.6  # column key: position (3, 2)
    cc[1, 2, 4 + 0] = 0.4  # row key: position (1, 0)
    e = describe(cc, 8, 4, 4)
    rows = dequantize(e["data"], (16, 16))
    query = 1 * 4 + 2
    assert rows[query, 3 * 4 + 2] == pytest.approx(1.0) and rows[query, 1 * 4 + 0] == pytest.approx(0.4 / 0.6, abs=3e-3)
    assert describe(rng.random((2, 3, 5, 7)), 8, 4, 4)["kind"] == "other"


def test_every_vision_module_is_drawn():
    import torch

    from seq2seq_attn.explore.vision import module_maps
    from vision import list_attention
    from vision.models import build_resnet

    spatial_keys = {"non_local", "non_local_dot", "non_local_gaussian", "non_local_concat", "sagan", "da_pam",
                    "danet", "criss_cross"}
    for name in list_attention():
        torch.manual_seed(0)
        model = build_resnet("small", num_classes=3, in_channels=1, widths=[4, 8], blocks=[1, 1], attention=name)
        _, entries = module_maps(model.eval(), torch.randn(1, 1, 8, 8))
        kinds = {e["kind"] for e in entries}
        assert entries and kinds <= {"spatial", "channel", "self"}, (name, kinds)
        assert {e["stage"] for e in entries} == {1, 2}, name
        if name in spatial_keys:
            assert any(e["kind"] == "self" and e["kh"] for e in entries), name


def test_group_maps_sorts_rnn_and_transformer_attention_by_kind():
    rng = np.random.default_rng(0)
    rnn = group_maps({"decoder.attention": rng.random((1, 6, 5))}, src_len=5, tgt_len=4)  # steps stacked
    assert [m["name"] for m in rnn["cross"]] == ["decoder.attention"] and rnn["cross"][0]["shape"] == [1, 4, 5]
    assert rnn["encoder"] == rnn["decoder"] == []
    maps = {"encoder_layers.0.self_attn": rng.random((2, 5, 5)), "decoder_layers.0.self_attn": rng.random((2, 4, 4)),
            "decoder_layers.0.multihead_attn": rng.random((2, 4, 5))}
    tx = group_maps(maps, src_len=5, tgt_len=4)
    assert [(k, [m["shape"] for m in v]) for k, v in tx.items()] == [
        ("cross", [[2, 4, 5]]), ("encoder", [[2, 5, 5]]), ("decoder", [[2, 4, 4]])]
    back = dequantize(tx["cross"][0]["data"], (2, 4, 5))
    assert np.abs(back - maps["decoder_layers.0.multihead_attn"]).max() <= 1 / 510 + 1e-7


# ------------------------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def translation_page(tmp_path_factory):
    root = tmp_path_factory.mktemp("explore_tx")
    src, tgt = tiny_corpus(root)
    config = transformer_config(root, src, tgt)
    cfg = yaml.safe_load(config.read_text())
    cfg["training"].update(max_epochs=2, eval_every=1000)
    cfg["decoding"].update(max_len_a=1.0, max_len_b=4)  # short outputs of the untrained model
    config.write_text(yaml.safe_dump(cfg))
    assert main(["train", str(config)]) == 0
    inputs = root / "in.txt"
    lines = src.read_text(encoding="utf-8").splitlines()[:2] + [SHORT_INJECT]
    inputs.write_text("\n".join(lines) + "\n", encoding="utf-8")
    page = root / "tx.html"
    assert main(["explore", str(root / "run"), "--input", str(inputs), "--out", str(page), "--device", "cpu",
                 "--beam", "2", "--n-best", "2"]) == 0
    return page


def test_translation_data_has_every_layer_and_head(translation_page):
    data = page_data(translation_page)
    assert len(data["sentences"]) == 3 and data["sentences"][2]["source"] == SHORT_INJECT
    s = data["sentences"][0]
    assert len(s["nbest"]) == 2 and s["nbest"][0]["score"] >= s["nbest"][1]["score"]
    assert [len(s["maps"][k]) for k in ("encoder", "decoder", "cross")] == [2, 2, 2]  # 2 layers each
    assert s["maps"]["cross"][1]["shape"] == [4, len(s["tgt"]), len(s["src"])]  # heads, target, source
    rows = dequantize(s["maps"]["cross"][0]["data"], tuple(s["maps"]["cross"][0]["shape"]))
    assert rows.sum(-1) == pytest.approx(np.ones((4, len(s["tgt"]))), abs=len(s["src"]) / 255)


@needs_browser
def test_translation_page_in_the_browser(translation_page):
    data = page_data(translation_page)
    s = data["sentences"][0]
    n_src, n_tgt = len(s["src"]), len(s["tgt"])
    w = dequantize(s["maps"]["cross"][1]["data"], tuple(s["maps"]["cross"][1]["shape"])).mean(0)  # layer 1, mean
    shaded = []
    for q in (0, 1):
        dom = dump_dom(translation_page, f"s=0&kind=cross&layer=1&hover=q:{q}")
        assert count(dom, "cell") == n_src * n_tgt and count(dom, "tok") + count(dom, "tok hl") == n_src + n_tgt
        shown = [float(v) for v in re.findall(r'data-w="([0-9.]+)"', dom)]
        assert shown == pytest.approx(w[q].tolist(), abs=2e-3)  # the hovered target token's source weights
        shaded.append(shown)
    assert shaded[0] != shaded[1]
    head = dump_dom(translation_page, "s=0&kind=encoder&layer=0&head=2&argmax=1")
    assert count(head, "cell amax") == n_src and count(head, "cell") == n_src * n_src - n_src
    words = dump_dom(translation_page, "s=0&kind=cross&merge=1")
    n_words = len(s["source"].split()) + 1  # + </s>
    assert count(words, "cell") % n_words == 0 and count(words, "cell") < n_src * n_tgt
    injected = dump_dom(translation_page, "s=2")
    assert injected.count("<script") == 2 and "<img" not in injected and "&lt;/script&gt;" in injected


@pytest.fixture(scope="module")
def classification_page(tmp_path_factory):
    root = tmp_path_factory.mktemp("explore_cls")
    data = root / "train.tsv"
    docs = [("The plot was dull. It was long.", "neg"), ("The film was great.", "pos"),
            ("The acting was awful.", "neg"), ("The cast was superb. We liked it.", "pos")]
    data.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in docs), encoding="utf-8")
    config = root / "cls.yaml"
    config.write_text(f"""
data: {{format: tsv, train: {data}, min_freq: 1, batch_size: 4}}
model: {{type: han, embed_dim: 12, hidden_size: 6, dropout: 0.0, embed_dropout: 0.0}}
training: {{run_dir: {root / 'run'}, device: cpu, lr: 0.05, max_epochs: 3, metric: accuracy, metric_mode: max,
           log_every: 1000, progress: false}}
""", encoding="utf-8")
    assert main(["classify", "train", str(config)]) == 0
    inputs = root / "in.txt"
    inputs.write_text(f"The plot was great. {INJECT}\nThe acting was awful. It was long.\n", encoding="utf-8")
    page = root / "cls.html"
    assert main(["explore", str(root / "run"), "--input", str(inputs), "--out", str(page), "--device", "cpu",
                 "--ig-steps", "8"]) == 0
    return page


@needs_browser
def test_classification_page_in_the_browser(classification_page):
    data = page_data(classification_page)
    d = data["docs"][1]
    assert d["sentence_weights"] is not None and len(d["sentence_weights"]) == 2  # HAN: two sentences
    assert set(d["methods"]) == {"attention", "integrated_gradients", "occlusion"}
    assert sum(d["methods"]["attention"]) == pytest.approx(1.0, abs=1e-3)
    n_tokens = sum(len(x["tokens"]) for x in data["docs"])
    plain = dump_dom(classification_page)
    assert count(plain, "tok") == 3 * n_tokens and count(plain, "bar") == sum(len(x["sentences"]) for x in data["docs"])
    details = []
    for i in (1, 3):
        dom = dump_dom(classification_page, f"hover=1:{i}")
        assert count(dom, "tok hl") == 3  # the token outlined in all three columns
        details.append(re.search(r'class="detail">([^<]*)<', dom.split('id="doc-1"')[1]).group(1))
    assert details[0].startswith(d["tokens"][1] + ": attention") and details[0] != details[1]
    assert plain.count("<script") == 2 and "<img" not in plain and "&lt;/script&gt;" in plain


@pytest.fixture(scope="module")
def vision_page(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("explore_vision")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 40, size=(48, 12, 12), dtype=np.uint8)
    y = np.arange(48) % 2
    x[y == 0, :6, :6] += 200
    x[y == 1, 6:, 6:] += 200
    np.savez(root / "tiny.npz", x_train=x[:32], y_train=y[:32], x_test=x[32:], y_test=y[32:])
    (root / "imgs").mkdir()
    for i in range(2):
        Image.fromarray(x[32 + i]).save(root / "imgs" / f"img{i}.png")
    config = root / "vision.yaml"
    config.write_text(f"data:\n  path: {root / 'tiny.npz'}\n  batch_size: 16\nmodel:\n  arch: small\n"
                      f"  widths: [4, 8]\n  attention: danet\ntraining:\n  run_dir: {root / 'run'}\n  max_epochs: 1\n"
                      "  metric: acc\n  metric_mode: max\n  progress: false\n")
    assert main(["vision", "train", str(config)]) == 0
    page = root / "vision.html"
    assert run_kind(root / "run") == "vision"
    assert main(["explore", str(root / "run"), "--input", str(root / "imgs"), "--out", str(page)]) == 0
    return page


@needs_browser
def test_vision_page_in_the_browser(vision_page):
    data = page_data(vision_page)
    img = data["images"][0]
    kinds = [(e["name"], e["kind"], e["stage"]) for e in img["entries"]]
    assert kinds == [("stages.0.0.attn.pam.attention", "self", 1), ("stages.0.0.attn.cam.attention", "channel", 1),
                     ("stages.1.0.attn.pam.attention", "self", 2), ("stages.1.0.attn.cam.attention", "channel", 2)]
    pam = img["entries"][2]  # stage 2: 6 x 6 positions
    rows = dequantize(pam["data"], (pam["qh"] * pam["qw"], pam["k"]))
    panels = []
    for q in (0, 20):
        dom = dump_dom(vision_page, f"click=0:2:{q}")
        section = dom.split('id="img-0"')[1].split('id="img-1"')[0]
        picker = section.split('id="picker-0-2"')[1]
        assert picker.count('class="px sel"') == 1
        right = re.search(r'data-query="(\d+)"', picker)
        assert right and int(right.group(1)) == q
        colors = re.findall(r'rgba\(220, 38, 38, ([0-9.]+)\)', picker.split('data-query="')[1])[:36]
        assert [float(c) for c in colors] == pytest.approx((rows[q] * 0.75).tolist(), abs=3e-3)
        panels.append(colors)
    assert panels[0] != panels[1]
    assert count(dom, "bars") == 4 + 0  # two channel entries per image, two images
