"""Read AFHQ (Animal Faces-HQ) as its authors ship it: train/ and val/ folders of cat, dog and wild.

Layout under ``raw_dir`` (the archive's top folder ``afhq/`` may be kept):

    train/cat/flickr_cat_000002.jpg ...   train/dog/ ...   train/wild/ ...
    val/cat/flickr_cat_000008.jpg ...     val/dog/ ...     val/wild/ ...

AFHQ has no test split. The official val folder becomes the test split,
and val is carved from the train folder with the seed: the first n_val
readable files of the seeded train permutation, then train takes up to
n_train_max of the files after them. Classes: cat 0, dog 1, wild 2.
"""

import logging
from pathlib import Path
from typing import Any

from neurosql.data.images import DatasetError
from neurosql.data.imageset import ImageSettings, Item, Layout, prepare_images, require_dir, scan_class_folders

log = logging.getLogger(__name__)

CLASSES = ["cat", "dog", "wild"]
FOLDER_POOLS = {"train": "train", "val": "test"}
WHAT = "AFHQ (the archive from the StarGAN v2 repository, with train/ and val/)"


def find_root(raw_dir: Path) -> Path:
    """Return the folder holding train/ and val/: raw_dir itself or raw_dir/afhq."""
    root = raw_dir
    if not any((raw_dir / folder).is_dir() for folder in FOLDER_POOLS) and (raw_dir / "afhq").is_dir():
        root = raw_dir / "afhq"
    missing = [name for name in FOLDER_POOLS if not (root / name).is_dir()]
    if missing:
        raise DatasetError(
            f"AFHQ folder {root} lacks {', '.join(f'{m}/' for m in missing)}: expected train/ and val/, "
            "each with cat/, dog/ and wild/. Unpack the AFHQ archive unchanged into it"
        )
    return root


def find_afhq(raw_dir: Path, name: str = "afhq") -> Layout:
    """List the AFHQ files under raw_dir."""
    raw_dir = require_dir(Path(raw_dir), WHAT)
    root = find_root(raw_dir)
    items: list[Item] = []
    ignored: list[str] = []
    for folder, pool in FOLDER_POOLS.items():
        found, skipped = scan_class_folders(root / folder, CLASSES, raw_dir)
        ignored += skipped
        for label, cls in enumerate(CLASSES):
            items += [Item(path, str(path.relative_to(raw_dir)), label, pool) for path in found[cls]]

    # Everything else at the top of root (a README, other folders) is recorded, not read.
    ignored += sorted(str(p.relative_to(raw_dir)) for p in root.iterdir() if p.name not in FOLDER_POOLS)
    if root != raw_dir:
        ignored += sorted(str(p.relative_to(raw_dir)) for p in raw_dir.iterdir() if p != root)
    return Layout(
        name=name,
        kind="afhq",
        raw_dir=raw_dir,
        items=sorted(items, key=lambda item: item.rel),
        classes=CLASSES,
        description=f"AFHQ folders {root.relative_to(raw_dir) / 'train'} and {root.relative_to(raw_dir) / 'val'} with {CLASSES}",
        split_rules={
            "train": "train/ folder after the carved val files, capped at n_train_max by seeded draw",
            "val": "carved from the train/ folder: first n_val readable files of the seeded permutation",
            "test": "the official val/ folder (AFHQ has no test split), capped at n_test by seeded draw (null: all)",
        },
        ignored=sorted(ignored),
        carve_val_from_train=True,
    )


def prepare_afhq(cfg: dict[str, Any], out_npz: Path, out_manifest: Path) -> dict[str, Any]:
    """Prepare AFHQ from a ``datasets.<name>`` section; return the manifest."""
    settings = ImageSettings.from_config(cfg)
    layout = find_afhq(Path(cfg["raw_dir"]), cfg.get("name", "afhq"))
    return prepare_images(layout, settings, out_npz, out_manifest)
