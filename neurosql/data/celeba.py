"""Read CelebA's aligned-and-cropped images with the official train/val/test partition.

Layout, as the CelebA project page ships it, under ``raw_dir``:

    img_align_celeba/000001.jpg ... 202599.jpg   (also accepted: Img/img_align_celeba/,
                                                   img_align_celeba/img_align_celeba/)
    list_eval_partition.txt                       (also accepted: Eval/list_eval_partition.txt,
                                                   or Kaggle's list_eval_partition.csv)

Each partition line is ``<file name> <0|1|2>`` (0 train, 1 val, 2 test); the
CSV form has the header ``image_id,partition``. Every listed file must exist
and every image file must be listed. Training is unconditional, so every
image gets class 0 ("face").
"""

import logging
from pathlib import Path
from typing import Any

from neurosql.data.images import DatasetError, list_folder
from neurosql.data.imageset import ImageSettings, Item, Layout, prepare_images, raise_problems, require_dir

log = logging.getLogger(__name__)

PARTITION_NAMES = ("list_eval_partition.txt", "Eval/list_eval_partition.txt", "list_eval_partition.csv")
IMAGE_DIRS = ("img_align_celeba", "Img/img_align_celeba")
PARTITION_CODES = {"0": "train", "1": "val", "2": "test"}
WHAT = "CelebA's aligned images (img_align_celeba) and list_eval_partition.txt from the CelebA project page"


def find_partition_file(raw_dir: Path) -> Path:
    """Return the partition file under raw_dir, raising DatasetError that lists the places searched."""
    for name in PARTITION_NAMES:
        if (raw_dir / name).is_file():
            return raw_dir / name
    searched = ", ".join(str(raw_dir / name) for name in PARTITION_NAMES)
    raise DatasetError(
        f"CelebA partition file not found (searched {searched}). Download list_eval_partition.txt from the "
        f"CelebA project page (folder Eval) and put it in {raw_dir}; the official train/val/test split comes from it"
    )


def find_image_dir(raw_dir: Path) -> Path:
    """Return the folder of aligned images, also inside the extra folder that some archives add."""
    for name in IMAGE_DIRS:
        folder = raw_dir / name
        if folder.is_dir():
            nested = folder / "img_align_celeba"
            return nested if nested.is_dir() else folder
    raise DatasetError(
        f"CelebA image folder not found: expected {raw_dir / IMAGE_DIRS[0]}/ (or {raw_dir / IMAGE_DIRS[1]}/). "
        "Unpack img_align_celeba.zip from the CelebA project page into that folder"
    )


def read_partition(path: Path) -> dict[str, str]:
    """Parse the partition file into {file name: split}, raising DatasetError with line numbers."""
    partition: dict[str, str] = {}
    problems = []
    lines = path.read_text().splitlines()
    is_csv = path.suffix == ".csv"
    for number, line in enumerate(lines, start=1):
        if not line.strip() or (is_csv and number == 1 and line.startswith("image_id")):
            continue
        fields = line.split(",") if is_csv else line.split()
        if len(fields) != 2 or fields[1].strip() not in PARTITION_CODES:
            problems.append(f"{path}:{number}: expected '<file name> <0|1|2>', got {line!r}")
            continue
        name, code = fields[0].strip(), fields[1].strip()
        if name in partition:
            problems.append(f"{path}:{number}: {name} is listed twice")
            continue
        partition[name] = PARTITION_CODES[code]
    raise_problems(problems, "invalid lines in the CelebA partition file", "Download list_eval_partition.txt again")
    if not partition:
        raise DatasetError(f"{path} lists no images; download list_eval_partition.txt again")
    return partition


def find_celeba(raw_dir: Path, name: str = "celeba") -> Layout:
    """List the CelebA files under raw_dir and match them to the partition file."""
    raw_dir = require_dir(Path(raw_dir), WHAT)
    partition_file = find_partition_file(raw_dir)
    image_dir = find_image_dir(raw_dir)
    partition = read_partition(partition_file)
    images, others = list_folder(image_dir)

    # Every listed file must exist and every image must be listed, so no file is used or dropped unseen.
    on_disk = {path.name: path for path in images}
    missing = sorted(set(partition) - set(on_disk))
    unlisted = sorted(set(on_disk) - set(partition))
    raise_problems(
        [f"{image_dir / n} is listed in {partition_file.name} but missing" for n in missing],
        "files of the CelebA partition are missing",
        f"Unpack the whole img_align_celeba archive into {image_dir}",
    )
    raise_problems(
        [f"{image_dir / n} is not listed in {partition_file}" for n in unlisted],
        "CelebA images have no official split",
        f"Remove these files from {image_dir}, or use the partition file that lists them",
    )

    prefix = image_dir.relative_to(raw_dir)
    items = [Item(on_disk[n], str(prefix / n), 0, partition[n]) for n in sorted(on_disk)]
    return Layout(
        name=name,
        kind="celeba",
        raw_dir=raw_dir,
        items=items,
        classes=["face"],
        description=f"CelebA aligned images in {prefix}/, official partition {partition_file.relative_to(raw_dir)}",
        split_rules={
            "train": "official partition 0, capped at n_train_max by seeded draw",
            "val": "official partition 1, capped at n_val by seeded draw",
            "test": "official partition 2, capped at n_test by seeded draw (null: all)",
        },
        metadata_files=[partition_file],
        ignored=[str(path.relative_to(raw_dir)) for path in others],
    )


def prepare_celeba(cfg: dict[str, Any], out_npz: Path, out_manifest: Path) -> dict[str, Any]:
    """Prepare CelebA from a ``datasets.<name>`` section; return the manifest."""
    settings = ImageSettings.from_config(cfg)
    layout = find_celeba(Path(cfg["raw_dir"]), cfg.get("name", "celeba"))
    return prepare_images(layout, settings, out_npz, out_manifest)
