"""Fuzzing the command line in process (issue 12): malformed configs, ``--set`` overrides and input files go
through every subcommand, and bad input must never reach the user as a traceback — only as one line
``seq2seq-attn COMMAND: error: <what, where>`` with exit code 2 (or a clean run, exit 0).

The examples are derandomized and bounded so the default suite stays fast and stable; run more of them, with
fresh randomness, with ``SEQ2SEQ_ATTN_FUZZ=500 pytest tests/test_fuzz_cli.py``.
"""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_reliability import classify_run, translation_run  # noqa: F401 (module-scoped fixtures)
from test_translation_cli import tiny_corpus

from seq2seq_attn.cli import main

_MORE = int(os.environ.get("SEQ2SEQ_ATTN_FUZZ", "0"))
FUZZ = settings(
    max_examples=_MORE or 12,
    derandomize=not _MORE,
    deadline=None,  # a valid example trains for a step; the example count bounds the time
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
#: Applied after the fuzzed overrides: a valid example trains one step into a fresh dir, on one thread.
BUDGET = ["training.max_steps=1", "training.eval_every=1", "training.progress=false", "training.cpu_threads=1",
          "training.device=cpu", "training.max_epochs=1"]


def run_cli(argv: list[str], capsys: pytest.CaptureFixture) -> int:
    """``main(argv)`` as a user sees it: the exit code, and for a failure one error line and no traceback.
    Any exception escaping ``main`` fails the test (it would be a traceback)."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:  # argparse: usage error, exit 2 with its own one-line message
        code = e.code if isinstance(e.code, int) else 2
        assert code in (0, 2), argv
        return code
    err = capsys.readouterr().err
    assert "Traceback" not in err, (argv, err)
    assert code in (0, 1, 2), (argv, code, err)
    if code == 2:
        lines = [line for line in err.splitlines() if line.strip()]
        assert lines and lines[-1].startswith("seq2seq-attn ") and ": error: " in lines[-1], (argv, err)
    return code


def _flat_keys(data: dict, prefix: str = "") -> list[str]:
    keys = []
    for k, v in data.items():
        keys.append(f"{prefix}{k}")
        if isinstance(v, dict):
            keys.extend(_flat_keys(v, f"{prefix}{k}."))
    return keys


def _set(data: dict, dotted: str, value) -> None:
    node = data
    *parents, last = dotted.split(".")
    for p in parents:
        if not isinstance(node.get(p), dict):
            node[p] = {}
        node = node[p]
    node[last] = value


def _delete(data: dict, dotted: str) -> None:
    node = data
    *parents, last = dotted.split(".")
    for p in parents:
        node = node.get(p)
        if not isinstance(node, dict):
            return
    node.pop(last, None)


# Values a config or an override may hold: every YAML type, with edge cases but small sizes (a model of
# 2**31 units is not what this test is about).
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 40), st.sampled_from([0, -1, 10**9]),
    st.floats(allow_nan=True, allow_infinity=True, width=32), st.text(max_size=12),
    st.sampled_from(["", "none", "all", "auto", "cpu", "cuda:7", "mps", "adam", "se", "softmax", "1e-3", "[1",
                     "{a: 1", "shared:nothing", "/nonexistent/file.txt", "rnn", "transformer", "bpe", "tokens"]),
)
values = st.one_of(scalars, st.lists(scalars, max_size=4), st.dictionaries(st.text(max_size=6), scalars, max_size=3))
override_text = st.one_of(
    st.text(max_size=30),
    st.builds(lambda k, v: f"{k}={v}", st.text(max_size=15), st.text(max_size=15)),
)


def _mutations(keys: list[str]):
    """(kind, key, value) edits of a valid config: set a known key (or a new one) to any value, or delete it."""
    key = st.one_of(st.sampled_from(keys), st.builds(lambda k, s: f"{k}.{s}", st.sampled_from(keys),
                                                     st.text("abcxyz_", min_size=1, max_size=6)))
    return st.lists(st.tuples(st.sampled_from(["set", "set", "delete"]), key, values), min_size=1, max_size=3)


# --------------------------------------------------------------------------------------- base configs


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    """A valid tiny config per training command (translation, classification, vision, vision compare)."""
    root = tmp_path_factory.mktemp("fuzz")
    src, tgt = tiny_corpus(root)
    translation = {
        "data": {"train": {"src": str(src), "tgt": str(tgt)}, "dev": {"src": str(src), "tgt": str(tgt)},
                 "vocab_size": 40, "spm_type": "bpe", "max_tokens": 400},
        "model": {"arch": "rnn", "rnn": {"emb_dim": 8, "enc_hidden": 8, "dec_hidden": 8}},
        "decoding": {"beam_size": 2},
        "training": {"lr": 0.01},
    }
    tsv = root / "train.tsv"
    tsv.write_text("text\tlabel\n" + "".join(f"doc {i} w{i % 3}\t{'ab'[i % 2]}\n" for i in range(8)),
                   encoding="utf-8")
    classification = {"data": {"format": "tsv", "train": str(tsv), "min_freq": 1, "batch_size": 4},
                      "model": {"type": "attention", "encoder": "none", "embed_dim": 8}, "training": {"lr": 0.01}}
    rng = np.random.default_rng(0)
    npz = root / "tiny.npz"
    x = rng.integers(0, 256, (8, 8, 8), dtype=np.uint8)
    np.savez(npz, x_train=x, y_train=np.arange(8) % 2, x_test=x[:4], y_test=np.arange(4) % 2)
    vision = {"data": {"path": str(npz), "batch_size": 4}, "model": {"arch": "small", "widths": [4, 4]},
              "training": {"lr": 0.01}}
    compare = {**copy.deepcopy(vision), "compare": {"modules": ["se"], "train": False, "bench_repeats": 1,
                                                   "bench_warmup": 0, "out_dir": str(root / "compare")}}
    return {
        ("train",): translation,
        ("classify", "train"): classification,
        ("vision", "train"): vision,
        ("vision", "compare"): compare,
        ("prepare",): translation,
    }


COMMANDS = [("train",), ("classify", "train"), ("vision", "train"), ("vision", "compare"), ("prepare",)]


def _argv(command: tuple[str, ...], config: Path, overrides: list[str]) -> list[str]:
    fresh = tempfile.mkdtemp(prefix="run-", dir=config.parent)
    budget = [*BUDGET, f"training.run_dir={fresh}"]
    if command == ("vision", "compare"):
        budget += [f"compare.out_dir={fresh}", "compare.train=false", "compare.modules=[se]",
                   "compare.bench_repeats=1", "compare.bench_warmup=0"]
    sets = [a for o in [*overrides, *budget] for a in ("--set", o)]
    return [*command, str(config), *sets]


# ----------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_malformed_configs_never_give_a_traceback(command, bases, tmp_path, capsys):
    base = bases[command]
    keys = _flat_keys(base) + ["training.optimizer", "training.precision", "training.metric", "training.seed",
                               "training.accumulate", "training.clip_grad_norm", "training.warmup_steps"]

    @FUZZ
    @given(edits=_mutations(keys))
    def check(edits):
        data = copy.deepcopy(base)
        for kind, key, value in edits:
            if kind == "delete":
                _delete(data, key)
            else:
                _set(data, key, value)
        config = Path(tempfile.mkdtemp(dir=tmp_path)) / "c.yaml"
        config.write_text(yaml.safe_dump(data), encoding="utf-8")
        run_cli(_argv(command, config, []), capsys)

    check()


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_malformed_yaml_text_and_overrides_never_give_a_traceback(command, bases, tmp_path, capsys):
    valid = yaml.safe_dump(bases[command])

    @FUZZ
    @given(text=st.one_of(st.just(valid), st.text(max_size=60), st.builds(lambda a, b: valid[:a] + b + valid[a:],
                                                                             st.integers(0, len(valid)),
                                                                             st.text(max_size=8))),
           overrides=st.lists(override_text, max_size=3))
    def check(text, overrides):
        config = Path(tempfile.mkdtemp(dir=tmp_path)) / "c.yaml"
        config.write_text(text, encoding="utf-8")
        run_cli(_argv(command, config, overrides), capsys)

    check()


def test_malformed_data_files_never_give_a_traceback(bases, tmp_path, capsys):
    """Random bytes as a corpus, a TSV training file and an image archive."""

    @FUZZ
    @given(command=st.sampled_from(COMMANDS[:3]), content=st.one_of(
        st.binary(max_size=200), st.text(max_size=200).map(str.encode),
        st.sampled_from([b"", b"\n\n", b"text\tlabel\n", b"text\tlabel\n\tx\n", b"PK\x03\x04junk",
                         b"\xff\xfe\x00bad utf-8\n", b"a\tb\tc\n" * 3])))
    def check(command, content):
        data = copy.deepcopy(bases[command])
        folder = Path(tempfile.mkdtemp(dir=tmp_path))
        path = folder / ("data.npz" if command[0] == "vision" else "data.txt")
        path.write_bytes(content)
        if command == ("train",):
            data["data"]["train"]["src"] = str(path)
        else:
            data["data"]["train" if command[0] == "classify" else "path"] = str(path)
        config = folder / "c.yaml"
        config.write_text(yaml.safe_dump(data), encoding="utf-8")
        run_cli(_argv(command, config, []), capsys)

    check()


def test_malformed_inputs_to_trained_runs_never_give_a_traceback(translation_run, classify_run, tmp_path,  # noqa: F811
                                                                 monkeypatch, capsys):
    """Random input files (and flags) for test, translate, classify test and classify predict."""
    _, _, mt_run = translation_run

    @FUZZ
    @given(content=st.one_of(st.binary(max_size=120), st.text(max_size=120).map(str.encode)),
           action=st.sampled_from(["test", "translate", "classify test", "classify predict"]),
           flags=st.lists(st.sampled_from(["--beam", "0", "3", "--which", "latest", "nope", "--n-best", "2",
                                           "--alpha", "-1", "--device", "cpu", "--explain", "--sample",
                                           "--temperature", "--top-k", "--top-p", "1.5", "--no-repeat-ngram",
                                           "--coverage-penalty", "--align-layer", "7", "--prefix"]), max_size=4))
    def check(content, action, flags):
        folder = Path(tempfile.mkdtemp(dir=tmp_path))
        path = folder / "input.txt"
        path.write_bytes(content)
        if action == "test":
            argv = ["test", str(mt_run), "--src", str(path), "--ref", str(path), "--output", str(folder / "o")]
        elif action == "translate":
            monkeypatch.setattr("sys.stdin", open(path, encoding="utf-8"))  # noqa: SIM115
            argv = ["translate", str(mt_run)]
        elif action == "classify test":
            argv = ["classify", "test", str(classify_run), "--data", str(path), "--out", str(folder)]
        else:
            argv = ["classify", "predict", str(classify_run), "--input", str(path)]
        for flag in ("--explain", "--prefix"):  # flags that take a file: the input itself, or a new prefix
            if flag in flags:
                flags = [f for f in flags if f != flag] + [flag, str(path if flag == "--prefix" else folder / "ex")]
        run_cli([*argv, *flags], capsys)

    check()


def test_attention_demo_and_vision_list_arguments(tmp_path, capsys):
    @FUZZ
    @given(args=st.lists(st.sampled_from(["--seed", "-1", "x", "--normalizer", "softmax", "nope", "--out",
                                          str(tmp_path / "d.png"), str(tmp_path / "missing" / "d.png")]),
                         max_size=4))
    def check(args):
        run_cli(["attention-demo", *args], capsys)
        run_cli(["vision", "list", *args[:1]], capsys)

    check()
