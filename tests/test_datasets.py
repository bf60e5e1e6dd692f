"""Tests for the CelebA, AFHQ and OASIS readers, image conversion, and bad raw input."""

import hashlib
import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neurosql.cli import main as cli_main
from neurosql.data.images import DatasetError, ImageTooSmallError, UnreadableImageError, load_image
from neurosql.data.imageset import content_sha256
from neurosql.data.prepare import load_prepared, prepare_dataset
from neurosql.data.splits import split_groups
from tests.fixtures import write_afhq, write_celeba, write_mnist, write_oasis

SUBJECT = re.compile(r"OAS1_\d{4}")
CHANNELS = {"celeba": 3, "afhq": 3, "oasis": 1}


def config(kind: str, raw: Path, **overrides) -> dict:
    cfg = {
        "kind": kind,
        "name": kind,
        "raw_dir": str(raw),
        "resolution": 16,
        "channels": CHANNELS.get(kind, 1),
        "n_train_max": 1000,
        "n_val": 3 if kind == "afhq" else 1000,
        "n_test": None,
        "split_seed": 5,
    }
    return {**cfg, **overrides}


def prepare(cfg: dict, out: Path) -> dict:
    return prepare_dataset(cfg, out / "data.npz", out / "data.manifest.json")


def assert_fails_cleanly(cfg: dict, out: Path, *patterns: str) -> str:
    """Assert that prepare raises DatasetError whose message matches every pattern, and writes nothing."""
    with pytest.raises(DatasetError) as error:
        prepare(cfg, out)
    message = str(error.value)
    for pattern in patterns:
        assert re.search(pattern, message), f"{pattern!r} not in {message!r}"
    assert not out.exists() or not any(out.iterdir()), sorted(out.iterdir())
    return message


def save_png(array: np.ndarray, path: Path, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path)
    return path


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> dict[str, Path]:
    """One small fixture tree per image kind, shared read-only by the tests."""
    root = tmp_path_factory.mktemp("raw")
    write_celeba(root / "celeba", n_train=10, n_val=4, n_test=4, size=(36, 44))
    write_afhq(root / "afhq", n_train=6, n_val=2, size=24)
    write_oasis(root / "oasis", subjects_per_class=(8, 6, 4, 2), slices=3, size=(40, 20))
    return {name: root / name for name in ("celeba", "afhq", "oasis")}


@pytest.fixture
def tree(trees, tmp_path, request) -> Path:
    """A writable copy of one fixture tree (the test's ``kind`` parameter)."""
    return Path(shutil.copytree(trees[request.param], tmp_path / request.param))


# --- image conversion ---


def test_center_crop_keeps_middle(tmp_path):
    image = np.zeros((40, 60), dtype=np.uint8)
    image[:, 10:50] = 200  # the centered 40x40 square of a 60x40 image
    array, upscaled = load_image(save_png(image, tmp_path / "a.png"), 20, 1)
    assert array.shape == (1, 20, 20)
    assert np.all(array == 200)
    assert not upscaled


def test_center_crop_tall_image(tmp_path):
    image = np.full((60, 40, 3), 9, dtype=np.uint8)
    image[10:50] = (10, 20, 30)
    array, _ = load_image(save_png(image, tmp_path / "a.png"), 40, 3)
    assert np.array_equal(array[:, 0, 0], [10, 20, 30])
    assert np.all(array == np.array([10, 20, 30])[:, None, None])


def test_resize_averages_blocks(tmp_path):
    # Halving a 2x2-block checkerboard of 0/200 gives the block means back.
    blocks = np.kron(np.array([[0, 200], [200, 0]], dtype=np.uint8), np.ones((16, 16), dtype=np.uint8))
    array, _ = load_image(save_png(blocks, tmp_path / "a.png"), 16, 1)
    assert array[0, 2, 2] == 0
    assert array[0, 2, 13] == 200
    assert abs(float(array.mean()) - 100.0) < 2.0


def _mode_image(mode: str, rng) -> tuple[Image.Image, np.ndarray, int]:
    """Return (image, expected (C, 8, 8) array by the documented formula, channels)."""
    if mode == "L":
        values = rng.integers(0, 256, (8, 8), dtype=np.uint8)
        return Image.fromarray(values), values[None], 1
    if mode == "LA":
        values = rng.integers(0, 256, (8, 8, 2), dtype=np.uint8)
        return Image.fromarray(values, mode="LA"), (values[..., 0] * (values[..., 1] / 255.0))[None], 1
    if mode == "RGB":
        values = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        luma = values @ np.array([0.299, 0.587, 0.114])
        return Image.fromarray(values), luma[None], 1
    if mode == "RGBA":
        values = rng.integers(0, 256, (8, 8, 4), dtype=np.uint8)
        expected = values[..., :3] * (values[..., 3:] / 255.0)
        return Image.fromarray(values, mode="RGBA"), expected.transpose(2, 0, 1), 3
    if mode == "P":
        palette = rng.integers(0, 256, (256, 3), dtype=np.uint8)
        indices = rng.integers(0, 256, (8, 8), dtype=np.uint8)
        image = Image.fromarray(indices, mode="P")
        image.putpalette(palette.tobytes())
        return image, palette[indices].transpose(2, 0, 1), 3
    if mode == "CMYK":
        values = rng.integers(0, 256, (8, 8, 4), dtype=np.uint8)
        cmy, k = values[..., :3].astype(float), values[..., 3:].astype(float)
        return Image.fromarray(values, mode="CMYK"), ((255 - cmy) * (255 - k) / 255).transpose(2, 0, 1), 3
    values = rng.integers(0, 65536, (8, 8), dtype=np.uint16)
    return Image.fromarray(values), (values / 257.0)[None], 1


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "P", "CMYK", "I;16"])
def test_mode_conversion(tmp_path, mode):
    image, expected, channels = _mode_image(mode, np.random.default_rng(0))
    path = tmp_path / ("a.tif" if mode == "CMYK" else "a.png")
    image.save(path)
    assert Image.open(path).mode == mode
    array, _ = load_image(path, 8, channels)
    assert array.shape == (channels, 8, 8)
    assert array.dtype == np.uint8
    assert np.abs(array.astype(float) - expected).max() <= 1.0


def test_gray_to_rgb_repeats(tmp_path):
    values = np.random.default_rng(1).integers(0, 256, (8, 8), dtype=np.uint8)
    array, _ = load_image(save_png(values, tmp_path / "a.png"), 8, 3)
    for channel in range(3):
        assert np.array_equal(array[channel], values), channel


def test_float_mode_rejected(tmp_path):
    path = tmp_path / "a.tif"
    Image.fromarray(np.ones((8, 8), dtype=np.float32)).save(path)
    with pytest.raises(UnreadableImageError, match=r"a\.tif: image mode 'F' has no defined conversion"):
        load_image(path, 8, 1)


def test_small_image_rejected(tmp_path):
    path = save_png(np.zeros((10, 12), dtype=np.uint8), tmp_path / "small.png")
    with pytest.raises(ImageTooSmallError, match=r"small\.png: image is 12x10, smaller than the 16x16 target.*upscale_small"):
        load_image(path, 16, 1)


# --- splits ---


def test_split_groups_sizes_and_seed():
    groups = [f"s{i:02d}" for i in range(20)] * 3
    first = split_groups(groups, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=4)
    assert {split: len(g) for split, g in first.items()} == {"train": 16, "val": 2, "test": 2}
    assert sorted(first["train"] + first["val"] + first["test"]) == sorted(set(groups))
    assert first == split_groups(groups, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=4)
    assert first != split_groups(groups, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=5)


def test_split_groups_too_few():
    with pytest.raises(ValueError, match="2 groups cannot fill"):
        split_groups(["a", "b", "a"], {"train": 0.8, "val": 0.1, "test": 0.1}, seed=0)


def test_celeba_official_partition(trees, tmp_path):
    manifest = prepare(config("celeba", trees["celeba"], n_train_max=6, n_val=3), tmp_path)
    partition = dict(line.split() for line in (trees["celeba"] / "list_eval_partition.txt").read_text().splitlines())
    codes = {"train": "0", "val": "1", "test": "2"}
    assert manifest["sizes"] == {"train": 6, "val": 3, "test": 4}
    for split in ("train", "val", "test"):
        for path in manifest["items"][split]:
            assert partition[Path(path).name] == codes[split], path
    assert len(manifest["items"]["unused"]) == 4 + 1
    arrays = load_prepared(tmp_path / "data.npz")
    assert arrays["train_images"].shape == (6, 3, 16, 16)


def test_afhq_val_folder_is_test(trees, tmp_path):
    manifest = prepare(config("afhq", trees["afhq"], n_val=4), tmp_path)
    items = manifest["items"]
    assert manifest["sizes"] == {"train": 14, "val": 4, "test": 6}
    assert all(path.startswith("val/") for path in items["test"])
    assert all(path.startswith("train/") for path in items["train"] + items["val"])
    assert not set(items["train"]) & set(items["val"])
    assert manifest["class_counts"]["test"] == [2, 2, 2]
    assert "carved" in manifest["split_rules"]["val"]


def test_oasis_subject_split(trees, tmp_path):
    manifest = prepare(config("oasis", trees["oasis"]), tmp_path)
    subjects = {split: {SUBJECT.search(p).group(0) for p in manifest["items"][split]} for split in ("train", "val", "test")}
    assert {split: len(s) for split, s in subjects.items()} == {"train": 16, "val": 2, "test": 2}
    assert not subjects["train"] & subjects["val"]
    assert not subjects["train"] & subjects["test"]
    assert not subjects["val"] & subjects["test"]
    assert {split: sorted(s) for split, s in subjects.items()} == manifest["subjects"]
    assert manifest["sizes"] == {"train": 48, "val": 6, "test": 6}


def test_train_cap_seeded_and_recorded(trees, tmp_path):
    small = prepare(config("oasis", trees["oasis"], n_train_max=5), tmp_path / "a")
    again = prepare(config("oasis", trees["oasis"], n_train_max=5), tmp_path / "b")
    large = prepare(config("oasis", trees["oasis"], n_train_max=20), tmp_path / "c")
    assert small["items"]["train"] == again["items"]["train"]
    assert small["train_cap"] == {**small["train_cap"], "n_train_max": 5, "pool": 48, "drawn": 5}
    assert len(small["items"]["unused"]) == 43
    # A larger cap leaves val and test as they were.
    assert small["items"]["val"] == large["items"]["val"]
    assert small["items"]["test"] == large["items"]["test"]


@pytest.mark.parametrize("kind", ["celeba", "afhq", "oasis"])
def test_same_seed_same_manifest_hash(trees, tmp_path, kind):
    digests = []
    for run, seed in (("a", 5), ("b", 5), ("c", 6)):
        prepare(config(kind, trees[kind], split_seed=seed, n_train_max=4), tmp_path / run)
        digests.append(hashlib.sha256((tmp_path / run / "data.manifest.json").read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    assert digests[0] != digests[2]


@pytest.mark.parametrize("kind", ["celeba", "afhq", "oasis"])
def test_manifest_accounts_for_every_file(trees, tmp_path, kind):
    manifest = prepare(config(kind, trees[kind], n_train_max=4), tmp_path)
    listed = [p for key in ("train", "val", "test", "unused") for p in manifest["items"][key]]
    on_disk = sorted(str(p.relative_to(trees[kind])) for p in trees[kind].rglob("*.jpg"))
    assert sorted(listed) == on_disk


def test_manifest_hashes_match_arrays(trees, tmp_path):
    manifest = prepare(config("afhq", trees["afhq"]), tmp_path)
    with np.load(tmp_path / "data.npz") as npz:
        arrays = {key: npz[key] for key in npz.files}
    assert manifest["content_sha256"] == content_sha256(arrays)
    assert manifest["npz_sha256"] == hashlib.sha256((tmp_path / "data.npz").read_bytes()).hexdigest()
    assert int(arrays["train_images"].max()) <= 255
    assert arrays["train_labels"].dtype == np.uint8


# --- bad input: each kind gets a clear error and leaves no output ---


@pytest.mark.parametrize("tree", ["celeba"], indirect=True)
def test_corrupt_image_named(tree, tmp_path):
    (tree / "img_align_celeba" / "000002.jpg").write_bytes(b"not a jpeg at all")
    assert_fails_cleanly(config("celeba", tree), tmp_path / "out", r"000002\.jpg: corrupt or truncated", "skip_unreadable: true")


@pytest.mark.parametrize("tree", ["celeba"], indirect=True)
def test_truncated_image_named(tree, tmp_path):
    path = tree / "img_align_celeba" / "000003.jpg"
    path.write_bytes(path.read_bytes()[:300])
    assert_fails_cleanly(config("celeba", tree), tmp_path / "out", r"000003\.jpg: corrupt or truncated image file")


@pytest.mark.parametrize("tree", ["celeba"], indirect=True)
def test_skip_unreadable_records(tree, tmp_path, caplog):
    (tree / "img_align_celeba" / "000002.jpg").write_bytes(b"junk")
    path = tree / "img_align_celeba" / "000003.jpg"
    path.write_bytes(path.read_bytes()[:300])
    with caplog.at_level(logging.WARNING):
        manifest = prepare(config("celeba", tree, skip_unreadable=True), tmp_path)
    skipped = [record["path"] for record in manifest["skipped_unreadable"]]
    assert skipped == ["img_align_celeba/000002.jpg", "img_align_celeba/000003.jpg"]
    assert manifest["sizes"]["train"] == 8
    assert "000002.jpg" in caplog.text
    assert "000003.jpg" in caplog.text


@pytest.mark.parametrize("tree", ["oasis"], indirect=True)
def test_small_image_option_records(tree, tmp_path):
    small = tree / "Data" / "Non Demented" / "OAS1_0001_MR1_mpr-1_100.jpg"
    Image.new("RGB", (12, 8), (90, 90, 90)).save(small)
    assert_fails_cleanly(config("oasis", tree), tmp_path / "out", r"OAS1_0001_MR1_mpr-1_100\.jpg: image is 12x8", "upscale_small: true")
    manifest = prepare(config("oasis", tree, upscale_small=True), tmp_path / "ok")
    assert manifest["upscaled"] == ["Data/Non Demented/OAS1_0001_MR1_mpr-1_100.jpg"]


@pytest.mark.parametrize("tree", ["afhq"], indirect=True)
def test_empty_class_folder(tree, tmp_path):
    for path in (tree / "val" / "dog").iterdir():
        path.unlink()
    assert_fails_cleanly(config("afhq", tree), tmp_path / "out", r"class folder .*val/dog contains no image files")


@pytest.mark.parametrize("tree", ["oasis"], indirect=True)
def test_oasis_name_without_subject(tree, tmp_path):
    source = tree / "Data" / "Mild Dementia" / "OAS1_0015_MR1_mpr-1_100.jpg"
    source.rename(source.with_name("brain_slice_100.jpg"))
    assert_fails_cleanly(config("oasis", tree), tmp_path / "out", r"brain_slice_100\.jpg: file name carries no subject id", "Rename them")


@pytest.mark.parametrize("tree", ["celeba"], indirect=True)
def test_missing_partition_file(tree, tmp_path):
    (tree / "list_eval_partition.txt").unlink()
    assert_fails_cleanly(config("celeba", tree), tmp_path / "out", "CelebA partition file not found", "list_eval_partition.txt")


@pytest.mark.parametrize("tree", ["afhq"], indirect=True)
def test_duplicate_files(tree, tmp_path):
    shutil.copy(tree / "train" / "cat" / "flickr_cat_000002.jpg", tree / "val" / "cat" / "flickr_cat_999999.jpg")
    assert_fails_cleanly(config("afhq", tree), tmp_path / "out", r"val/cat/flickr_cat_999999\.jpg has the same bytes as train/cat/flickr_cat_000002\.jpg", "duplicates: drop")
    manifest = prepare(config("afhq", tree, duplicates="drop"), tmp_path / "ok")
    assert [record["path"] for record in manifest["duplicates"]] == ["val/cat/flickr_cat_999999.jpg"]
    assert manifest["sizes"]["test"] == 6


@pytest.mark.parametrize("kind", ["celeba", "afhq", "oasis"])
def test_missing_raw_dir(tmp_path, kind):
    assert_fails_cleanly(config(kind, tmp_path / "data" / "raw" / kind), tmp_path / "out", rf"raw data folder .*raw/{kind} does not exist", "Download")


def test_missing_idx_without_sample(tmp_path):
    cfg = {**config("mnist", tmp_path / "fashion"), "resolution": 28, "sample": None, "n_val": 5}
    assert_fails_cleanly(cfg, tmp_path / "out", r"fashion does not exist and datasets\.mnist names no embedded sample")


def test_idx_without_sample_uses_official_split(tmp_path):
    arrays = write_mnist(tmp_path / "fashion", n_train=50, n_test=20, gz=False)
    cfg = {**config("mnist", tmp_path / "fashion"), "resolution": 28, "sample": None, "n_val": 5}
    manifest = prepare(cfg, tmp_path / "out")
    prepared = load_prepared(tmp_path / "out" / "data.npz")
    assert manifest["sizes"] == {"train": 45, "val": 5, "test": 20}
    assert np.array_equal(prepared["test_images"][:, 0], arrays["test_images"])


def test_cli_logs_error(tmp_path):
    cfg = json.dumps(config("oasis", tmp_path / "nowhere"))
    log_file = tmp_path / "prepare.log"
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["--log", str(log_file), "prepare", "--config", cfg, "--out", str(tmp_path / "o.npz"), "--manifest", str(tmp_path / "o.json")])
    assert exit_info.value.code == 1
    assert "prepare failed for dataset oasis: raw data folder" in log_file.read_text()
    assert not (tmp_path / "o.npz").exists()


def test_cli_logs_uncaught_error_with_traceback(tmp_path):
    # Snakemake rules discard stderr, so the job's log file must hold the error.
    log_file = tmp_path / "table.log"
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["--log", str(log_file), "table", "--metrics", str(tmp_path / "missing.json"),
                  "--models", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "t.csv"),
                  "--summary", str(tmp_path / "s.csv")])
    assert exit_info.value.code == 1
    text = log_file.read_text()
    assert "stage table failed: FileNotFoundError" in text
    assert "missing.json" in text
    assert "Traceback" in text
    assert not (tmp_path / "t.csv").exists()
