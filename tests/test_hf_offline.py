"""Hugging Face ``datasets`` is loaded in offline mode the same way by every task (``paths.offline_datasets``):
local files load with the offline variables set, and nothing touches the network."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest

from seq2seq_attn.classification.config import DataConfig
from seq2seq_attn.classification.data import read_split
from seq2seq_attn.paths import HF_OFFLINE_VARIABLES, offline_datasets
from seq2seq_attn.translation.corpus import read_hf

datasets = pytest.importorskip("datasets")
hub = pytest.importorskip("huggingface_hub.constants")


class NetworkUsed(AssertionError):
    pass


@pytest.fixture
def no_network(tmp_path, monkeypatch):
    """Unset offline variables and switches as a fresh process has them, a private cache, and any attempt to
    open a connection fails the test."""
    for name in HF_OFFLINE_VARIABLES:
        monkeypatch.setenv(name, "unset")  # recorded, so the variables are restored after the test
        monkeypatch.delenv(name)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)  # as if imported without the variables
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", False)
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))

    def refuse(*args, **kwargs):
        raise NetworkUsed(f"network used: {args[1:] or kwargs}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def _offline() -> bool:
    import os

    return all(os.environ.get(n) == "1" for n in HF_OFFLINE_VARIABLES) and datasets.config.HF_HUB_OFFLINE \
        and hub.HF_HUB_OFFLINE


def test_every_task_loads_local_files_offline(tmp_path, no_network):
    from PIL import Image

    from vision.data import load_hf

    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"de": d, "en": e}) + "\n" for d, e in [("ein Hund", "a dog"),
                                                                                  ("eine Katze", "a cat")]))
    assert read_hf("json", None, "train", "de", "en", {"train": str(path)}) == (["ein Hund", "eine Katze"],
                                                                                  ["a dog", "a cat"])
    assert _offline()  # translation set the variables and switches

    for name in HF_OFFLINE_VARIABLES:  # each task on its own, from a fresh state
        import os

        del os.environ[name]
    datasets.config.HF_HUB_OFFLINE = hub.HF_HUB_OFFLINE = False
    rows = tmp_path / "reviews.jsonl"
    rows.write_text('{"text": "great", "label": "pos"}\n{"text": "awful", "label": "neg"}\n')
    split = read_split(str(rows), DataConfig(train="unused", format="hf", hf_name="json"))
    assert [(e.text, e.label) for e in split.examples] == [("great", "pos"), ("awful", "neg")] and _offline()

    for name in HF_OFFLINE_VARIABLES:
        del os.environ[name]
    datasets.config.HF_HUB_OFFLINE = hub.HF_HUB_OFFLINE = False
    images = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    features = datasets.Features({"img": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])})
    ds = datasets.Dataset.from_dict({"img": [Image.fromarray(x) for x in images], "label": [0, 1, 1]}, features)
    datasets.DatasetDict({"train": ds}).save_to_disk(str(tmp_path / "images"))
    assert load_hf(str(tmp_path / "images"), "train").labels.tolist() == [0, 1, 1] and _offline()


def test_a_hub_name_fails_at_once_without_the_network(tmp_path, no_network):
    from vision.data import load_hf

    with pytest.raises(Exception) as caught:
        read_hf("someone/not-cached-anywhere", None, "train", "de", "en")
    assert not isinstance(caught.value, NetworkUsed) and _offline()
    with pytest.raises(Exception) as caught:
        load_hf("someone/not-cached-images", "train")
    assert not isinstance(caught.value, NetworkUsed)


def test_an_explicit_online_setting_is_kept(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    assert offline_datasets() is datasets
    assert not datasets.config.HF_HUB_OFFLINE and not hub.HF_HUB_OFFLINE
