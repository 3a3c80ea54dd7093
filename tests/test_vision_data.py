"""Image data: npz (plain and JPEG bytes, cached), Hugging Face folders, normalization, augmentation, the task."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

import vision.data as vdata
from seq2seq_attn.config import ConfigError, load_config
from vision.config import VisionConfig, VisionDataConfig, VisionModelConfig
from vision.data import ImageSet, Normalize, augment, batch_seed, channel_stats, load_hf, load_npz
from vision.task import VisionTask, prepare_data


def _images(n: int, h: int = 8, w: int = 8, c: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, c), dtype=np.uint8)


def _jpeg_npz(path, n_train=6, n_test=4):
    """A file in the shared CIFAR-10 copy's format: concatenated JPEG files, offsets, labels, classes."""
    arrays = {}
    decoded = {}
    for split, n in (("train", n_train), ("test", n_test)):
        blobs, offsets, pics = [], [0], []
        for img in _images(n, seed=n):
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="JPEG", quality=90)
            blobs.append(np.frombuffer(buf.getvalue(), dtype=np.uint8))
            offsets.append(offsets[-1] + len(blobs[-1]))
            pics.append(np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")))
        arrays[f"{split}_jpeg"] = np.concatenate(blobs)
        arrays[f"{split}_offsets"] = np.asarray(offsets, dtype=np.int64)
        arrays[f"y_{split}"] = np.arange(n, dtype=np.uint8) % 3
        decoded[split] = np.stack(pics)
    arrays["classes"] = np.asarray(["a", "b", "c"])
    np.savez_compressed(path, **arrays)
    return decoded


def test_plain_npz_gray_and_colour(tmp_path):
    gray = tmp_path / "gray.npz"
    x = _images(5, 6, 4, 1)[..., 0]
    np.savez(gray, x_train=x, y_train=np.arange(5) % 2, x_test=x[:2], y_test=np.zeros(2, np.uint8))
    train = load_npz(gray, "train")
    assert train.images.shape == (5, 1, 6, 4) and train.images.dtype == torch.uint8
    assert torch.equal(train.images[:, 0], torch.from_numpy(x))
    assert train.labels.tolist() == [0, 1, 0, 1, 0] and train.classes == ["0", "1"]
    colour = tmp_path / "colour.npz"
    xc = _images(3)
    np.savez(colour, x_train=xc, y_train=np.arange(3), x_test=xc, y_test=np.arange(3))
    assert torch.equal(load_npz(colour, "test").images, torch.from_numpy(xc).permute(0, 3, 1, 2))


def test_npz_errors_name_the_file_and_keys(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=_images(2))
    with pytest.raises(ValueError, match=r"bad\.npz: no train images"):
        load_npz(bad, "train")
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_npz(tmp_path / "missing.npz", "train")
    with pytest.raises(ValueError, match="split"):
        load_npz(bad, "valid")


def test_jpeg_npz_is_decoded_once_and_cached(tmp_path, monkeypatch):
    path = tmp_path / "cifar_like.npz"
    decoded = _jpeg_npz(path)
    monkeypatch.setenv("SEQ2SEQ_ATTN_CACHE", str(tmp_path / "cache"))
    train = load_npz(path, "train")
    assert torch.equal(train.images, torch.from_numpy(decoded["train"]).permute(0, 3, 1, 2))
    assert train.classes == ["a", "b", "c"] and train.labels.tolist() == [0, 1, 2, 0, 1, 2]
    cached = sorted((tmp_path / "cache" / "vision").glob("*.npy"))
    assert len(cached) == 1 and "cifar_like" in cached[0].name

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(vdata, "decode_jpegs", no_decoding)
    again = load_npz(path, "train")
    assert torch.equal(again.images, train.images)
    with pytest.raises(AssertionError, match="decoded again"):
        load_npz(path, "test")  # another split is not cached yet


def test_hugging_face_folder_with_cifar10_columns(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    x = _images(4)
    features = datasets.Features({"img": datasets.Image(), "label": datasets.ClassLabel(names=["cat", "dog"])})
    split = datasets.Dataset.from_dict({"img": [Image.fromarray(a) for a in x], "label": [0, 1, 1, 0]}, features)
    datasets.DatasetDict({"train": split, "test": split.select([0, 1])}).save_to_disk(str(tmp_path / "hf"))
    train = load_hf(str(tmp_path / "hf"), "train")
    assert torch.equal(train.images, torch.from_numpy(x).permute(0, 3, 1, 2))
    assert train.labels.tolist() == [0, 1, 1, 0] and train.classes == ["cat", "dog"]
    assert len(load_hf(str(tmp_path / "hf"), "test")) == 2
    with pytest.raises(ValueError, match="no split 'valid'"):
        load_hf(str(tmp_path / "hf"), "valid")
    train, valid, test = prepare_data(VisionDataConfig(source="hf", hf_name=str(tmp_path / "hf")))
    assert (len(train), len(valid), len(test)) == (4, 2, 2) and valid is test


def test_channel_stats_and_normalize():
    x = torch.from_numpy(_images(10)).permute(0, 3, 1, 2).contiguous()
    mean, std = channel_stats(x, chunk=3)
    ref = x.double() / 255
    assert np.allclose(mean, ref.mean(dim=(0, 2, 3)).numpy())
    assert np.allclose(std, ref.std(dim=(0, 2, 3), unbiased=False).numpy())
    out = Normalize(mean, std)(x)
    assert out.dtype == torch.float32
    assert torch.allclose(out.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(out.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4)


def test_augment_crops_windows_of_the_padded_image_and_flips():
    x = torch.arange(2 * 2 * 5 * 6, dtype=torch.float32).view(2, 2, 5, 6) + 1
    p = 2
    padded = torch.nn.functional.pad(x, (p, p, p, p))
    seen_offsets, seen_flips = set(), set()
    for seed in range(40):
        out = augment(x, torch.Generator().manual_seed(seed), padding=p, flip=True)
        assert out.shape == x.shape
        for b in range(2):
            matches = [(i, j, f) for i in range(2 * p + 1) for j in range(2 * p + 1) for f in (False, True)
                       if torch.equal(out[b], (padded[b, :, i:i + 5, j:j + 6].flip(-1) if f
                                               else padded[b, :, i:i + 5, j:j + 6]))]
            assert matches, "an augmented image is not a (flipped) window of the padded image"
            seen_offsets.add(matches[0][:2])
            seen_flips.add(matches[0][2])
    assert len(seen_offsets) > 10 and seen_flips == {False, True}
    same = [augment(x, torch.Generator().manual_seed(7), padding=p) for _ in range(2)]
    assert torch.equal(same[0], same[1])
    assert torch.equal(augment(x, torch.Generator(), padding=0, flip=False), x)


def test_uint8_augmentation_keeps_dtype_and_memory_format():
    x = torch.from_numpy(_images(3)).permute(0, 3, 1, 2)  # a channels-last view, as from (N, H, W, C)
    out = augment(x, torch.Generator().manual_seed(0), padding=4)
    assert out.dtype == torch.uint8 and out.shape == x.shape
    assert out.is_contiguous(memory_format=torch.channels_last)
    plain = augment(x.contiguous(), torch.Generator().manual_seed(0), padding=4)
    assert plain.is_contiguous() and torch.equal(plain, out)


def _task(tmp_path, **data_kwargs) -> VisionTask:
    path = tmp_path / "tiny.npz"
    if not path.exists():
        x = _images(40, 8, 8, 1, seed=1)[..., 0]
        y = np.arange(40) % 4
        np.savez(path, x_train=x, y_train=y, x_test=x[:12], y_test=y[:12])
    kwargs = {"path": str(path), "batch_size": 16, **data_kwargs}
    cfg = VisionConfig(data=VisionDataConfig(**kwargs),
                       model=VisionModelConfig(arch="small", widths=[8, 16]))
    cfg.training.seed = 3
    return VisionTask(cfg)


def test_prepare_data_holdout_and_subsets_are_disjoint_and_seeded(tmp_path):
    _task(tmp_path)
    cfg = VisionDataConfig(path=str(tmp_path / "tiny.npz"), valid="holdout", valid_size=10, max_train=20,
                           max_test=5, data_seed=4)
    train, valid, test = prepare_data(cfg)
    assert (len(train), len(valid), len(test)) == (20, 10, 5)
    keys = {bytes(im.numpy()) for im in train.images}
    assert keys.isdisjoint(bytes(im.numpy()) for im in valid.images)
    again = prepare_data(cfg)
    assert torch.equal(again[0].images, train.images) and torch.equal(again[2].labels, test.labels)


def test_task_batches_cover_each_image_once_and_are_deterministic(tmp_path):
    task = _task(tmp_path)
    batches = task.train_batches(0)
    assert sorted(i for b in batches for i in b) == list(range(40))
    assert [len(b) for b in batches] == [16, 16, 8]
    assert task.train_batches(0) == batches and task.train_batches(1) != batches
    batch = task.collate(batches[0])
    assert batch["images"].dtype == torch.uint8 and batch["images"].shape == (16, 1, 8, 8)
    assert batch["seed"] == batch_seed(3, torch.tensor(batches[0])) != task.collate(batches[1])["seed"]


def test_task_loss_is_summed_and_augmentation_depends_only_on_the_batch(tmp_path):
    task = _task(tmp_path)
    other = _task(tmp_path)  # a second instance, as after a restart
    torch.manual_seed(0)
    model = task.build_model()
    batch = task.collate(task.train_batches(0)[1])
    a = task.prepare_inputs(batch["images"], batch["seed"])
    torch.rand(5)  # the global RNG must not matter
    b = other.prepare_inputs(other.collate(other.train_batches(0)[1])["images"], batch["seed"])
    assert torch.equal(a, b)
    assert not torch.equal(a, task.prepare_inputs(batch["images"]))  # evaluation does not augment
    out = task.loss(model, batch)
    mean = torch.nn.functional.cross_entropy(model(a), batch["labels"])
    assert out.num_items == out.num_units == 16
    assert torch.allclose(out.loss_sum, mean * 16, rtol=1e-4)
    metrics = task.evaluate(model, torch.device("cpu"))
    assert set(metrics) == {"loss", "acc", "err"} and abs(metrics["acc"] + metrics["err"] - 100) < 1e-9


def test_resumed_training_matches_uninterrupted_training(tmp_path):
    from seq2seq_attn.training import Trainer

    def run(name, epochs, resume=False):
        task = _task(tmp_path)
        cfg = task.config.training
        cfg.run_dir, cfg.max_epochs, cfg.lr, cfg.progress = str(tmp_path / name), epochs, 0.01, False
        cfg.deterministic = True
        trainer = Trainer(task, cfg, task.config, resume=resume)
        trainer.fit()
        return trainer.model.state_dict()

    straight = run("straight", 2)
    run("resumed", 1)
    resumed = run("resumed", 2, resume=True)
    for k, v in straight.items():
        assert torch.equal(v, resumed[k]), k


def test_config_errors_name_the_file_and_key(tmp_path):
    path = tmp_path / "v.yaml"
    path.write_text("data:\n  path: x.npz\n  crop_pad: 4\n")
    with pytest.raises(ConfigError, match=r"v\.yaml: data\.crop_pad: unknown key"):
        load_config(VisionConfig, path)
    path.write_text("data:\n  path: x.npz\nmodel:\n  arch: resnet7\n")
    with pytest.raises(ConfigError, match=r"v\.yaml: model: unknown arch 'resnet7'"):
        load_config(VisionConfig, path)
    path.write_text("data:\n  source: npz\n")
    with pytest.raises(ConfigError, match="data.path is required"):
        load_config(VisionConfig, path)


def test_image_set_checks_shapes():
    with pytest.raises(ValueError, match="uint8"):
        ImageSet(torch.zeros(2, 1, 3, 3), torch.zeros(2, dtype=torch.long), [])
    with pytest.raises(ValueError, match="labels"):
        ImageSet(torch.zeros(2, 1, 3, 3, dtype=torch.uint8), torch.zeros(3, dtype=torch.long), [])


@pytest.mark.shared_data
def test_shared_mnist_and_cifar10_jpeg_bytes(shared_data):
    mnist = load_npz(shared_data / "mnist" / "mnist.npz", "test")
    assert mnist.images.shape == (10000, 1, 28, 28) and mnist.labels.bincount().tolist()[:2] == [980, 1135]
    with np.load(shared_data / "cifar10" / "cifar10_yoongikim_jpeg.npz") as data:
        offsets = data["test_offsets"][:201]
        first = vdata.decode_jpegs(data["test_jpeg"][: offsets[-1]], offsets)
        classes = list(data["classes"])
    assert first.shape == (200, 32, 32, 3) and first.dtype == np.uint8
    assert classes[:3] == ["airplane", "automobile", "bird"]
    assert 80 < first.mean() < 160  # natural images, not noise or zeros
