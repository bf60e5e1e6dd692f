"""Write small folder trees that mimic each dataset's published layout, for tests and smoke runs.

Generated images are seeded smooth patterns plus noise, so no two files are
byte-identical and JPEG sizes look like photos. ``write_oasis_mri`` uses
real MRI data: axial slices of the MNI152 T1 template that ships inside
nilearn's wheel (a test-only dependency), filed as a Kaggle OASIS tree.

Run ``python -m tests.fixtures KIND DEST`` (KIND: mnist, celeba, afhq,
oasis, oasis-mri) to write one tree by hand, e.g. for configs/tiny-oasis.yaml.
"""

import argparse
import functools
from pathlib import Path

import numpy as np
from PIL import Image

from neurosql.data.idx import write_idx
from neurosql.data.mnist import IDX_FILES

OASIS_CLASSES = ("Non Demented", "Very mild Dementia", "Mild Dementia", "Moderate Dementia")
AFHQ_CLASSES = ("cat", "dog", "wild")


def pattern(rng: np.random.Generator, width: int, height: int, channels: int = 3) -> np.ndarray:
    """Return a uint8 (height, width, channels) image: a random smooth field plus mild noise."""
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    planes = []
    for _ in range(channels):
        fx, fy, phase = rng.uniform(1, 4), rng.uniform(1, 4), rng.uniform(0, 2 * np.pi)
        planes.append(127 + 90 * np.sin(2 * np.pi * (fx * x + fy * y) + phase))
    image = np.stack(planes, axis=-1) + rng.normal(0, 12, (height, width, channels))
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def save(array: np.ndarray, path: Path) -> Path:
    """Save a (H, W, C) uint8 array as an image file (format from the suffix), creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    options = {"quality": 92} if path.suffix == ".jpg" else {}
    image.save(path, **options)
    return path


def write_mnist(folder: Path, n_train: int = 200, n_test: int = 80, seed: int = 0, gz: bool = True) -> dict[str, np.ndarray]:
    """Write the four standard IDX files (gzipped by default); return their arrays."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": (np.arange(n_test) % 10).astype(np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for part, name in IDX_FILES.items():
        write_idx(folder / (f"{name}.gz" if gz else name), arrays[part])
    return arrays


def write_celeba(folder: Path, n_train: int = 12, n_val: int = 4, n_test: int = 4, size: tuple[int, int] = (178, 218), seed: int = 0) -> dict[str, str]:
    """Write img_align_celeba/NNNNNN.jpg and list_eval_partition.txt; return {file name: split}.

    The default size is CelebA's aligned 178x218 (width x height).
    """
    rng = np.random.default_rng(seed)
    codes = ["0"] * n_train + ["1"] * n_val + ["2"] * n_test
    splits = {"0": "train", "1": "val", "2": "test"}
    lines, partition = [], {}
    for number, code in enumerate(codes, start=1):
        name = f"{number:06d}.jpg"
        save(pattern(rng, *size), folder / "img_align_celeba" / name)
        lines.append(f"{name} {code}")
        partition[name] = splits[code]
    (folder / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return partition


def write_afhq(folder: Path, n_train: int = 8, n_val: int = 3, size: int = 64, seed: int = 0) -> dict[str, int]:
    """Write train/ and val/ with cat/, dog/, wild/ of n_train and n_val images each; return counts per folder."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", n_train), ("val", n_val)):
        for cls in AFHQ_CLASSES:
            for k in range(count):
                source = "pixabay" if k % 3 == 2 else "flickr"
                save(pattern(rng, size, size), folder / split / cls / f"{source}_{cls}_{k * 7 + 2:06d}.jpg")
    return {"train": 3 * n_train, "val": 3 * n_val}


def oasis_name(subject: int, scan: int, slice_number: int) -> str:
    """Return a Kaggle OASIS file name, e.g. OAS1_0028_MR1_mpr-1_100.jpg."""
    return f"OAS1_{subject:04d}_MR1_mpr-{scan}_{slice_number}.jpg"


def subject_classes(subjects_per_class: tuple[int, ...]) -> list[tuple[int, str]]:
    """Return (subject number, class folder) pairs, numbering subjects from 1 across the classes."""
    pairs, number = [], 1
    for cls, count in zip(OASIS_CLASSES, subjects_per_class):
        for _ in range(count):
            pairs.append((number, cls))
            number += 1
    return pairs


def write_oasis(
    folder: Path, subjects_per_class: tuple[int, ...] = (8, 6, 4, 2), slices: int = 3, size: tuple[int, int] = (96, 48), seed: int = 0
) -> dict[str, str]:
    """Write Data/<class>/OAS1_xxxx_MR1_mpr-1_<slice>.jpg with generated grayscale images; return {file: subject}.

    The default size is twice as wide as high, like the Kaggle slices, so the center crop matters.
    """
    rng = np.random.default_rng(seed)
    subjects = {}
    for subject, cls in subject_classes(subjects_per_class):
        for k in range(slices):
            name = oasis_name(subject, 1, 100 + k)
            save(np.repeat(pattern(rng, *size, channels=1), 3, axis=2), folder / "Data" / cls / name)
            subjects[name] = f"OAS1_{subject:04d}"
    return subjects


@functools.lru_cache(maxsize=1)
def mni_axial_slices() -> tuple[np.ndarray, tuple[int, ...]]:
    """Return the MNI152 T1 template (1 mm, from nilearn's wheel) scaled to [0, 1] and its axial slices with brain."""
    from nilearn.datasets import load_mni152_template

    volume = np.asarray(load_mni152_template(resolution=1).get_fdata(), dtype=np.float64)
    volume = volume / volume.max()
    brain = [z for z in range(volume.shape[2]) if (volume[:, :, z] > 0.1).mean() > 0.05]
    return volume, tuple(brain)


def write_oasis_mri(
    folder: Path, subjects_per_class: tuple[int, ...] = (8, 6, 4, 2), slices: int = 10, canvas: tuple[int, int] = (496, 248)
) -> dict[str, str]:
    """Write a Kaggle OASIS tree of real MRI: axial slices of the MNI152 template; return {file: subject}.

    Each subject gets its own slices, brightness (0.8 to 1.0) and sideways
    shift, so no two files are copies. Slices are placed, anterior up, on a
    black canvas of width x height ``canvas`` and saved as RGB JPEG.
    """
    volume, brain = mni_axial_slices()
    pairs = subject_classes(subjects_per_class)
    width, height = canvas
    subjects = {}
    for order, (subject, cls) in enumerate(pairs):
        brightness = 0.8 + 0.2 * order / max(1, len(pairs) - 1)
        shift = order % 9 - 4
        for k in range(slices):
            z = brain[int((k + order / len(pairs)) * len(brain) / slices)]
            plane = np.flipud(volume[:, :, z].T) * brightness * 255
            image = np.zeros((height, width), dtype=np.float64)
            top, left = (height - plane.shape[0]) // 2, (width - plane.shape[1]) // 2 + shift
            image[top : top + plane.shape[0], left : left + plane.shape[1]] = plane
            rgb = np.repeat(np.clip(np.rint(image), 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
            name = oasis_name(subject, 1 + k % 4, z)
            save(rgb, folder / "Data" / cls / name)
            subjects[name] = f"OAS1_{subject:04d}"
    return subjects


WRITERS = {"mnist": write_mnist, "celeba": write_celeba, "afhq": write_afhq, "oasis": write_oasis, "oasis-mri": write_oasis_mri}


def main() -> None:
    """Write one fixture tree from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=sorted(WRITERS))
    parser.add_argument("dest", type=Path, help="folder to write the tree into")
    args = parser.parse_args()
    WRITERS[args.kind](args.dest)


if __name__ == "__main__":
    main()
