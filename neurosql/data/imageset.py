"""Split, decode and store an image-folder dataset; the shared half of the CelebA, AFHQ and OASIS readers.

A reader lists the files of its published layout as Items (path, class
label, source pool, optional subject). This module then removes or rejects
duplicate files, draws each split from its pool with the seed, decodes only
the drawn files, and writes the prepared npz and its manifest. Val and test
are drawn before train, so changing ``n_train_max`` leaves them unchanged.
Every listed file ends up in exactly one manifest list: a split, "unused"
(not drawn because of a cap), "skipped" (unreadable, with skip_unreadable)
or "duplicate".
"""

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import PIL

from neurosql.data.images import DatasetError, UnreadableImageError, list_folder, load_image, sha256_file
from neurosql.data.splits import SPLITS
from neurosql.io import atomic_savez, atomic_write_json

log = logging.getLogger(__name__)

# Each split draws from its own random stream, so one split's size never shifts another's draw.
STREAMS = {"train": 0, "val": 1, "test": 2}
DUPLICATE_POLICIES = ("error", "drop")
MAX_LISTED = 10


@dataclass(frozen=True)
class Item:
    """One image file of a dataset."""

    path: Path
    rel: str  # path relative to the raw folder, as the manifest records it
    label: int
    pool: str  # official split or source folder the file came from
    group: str | None = None  # subject id, for datasets split by subject


@dataclass
class ImageSettings:
    """The prepare settings of one image dataset (a ``datasets.<name>`` section of params.yaml)."""

    resolution: int
    channels: int
    n_train_max: int
    n_val: int | None
    n_test: int | None
    seed: int
    skip_unreadable: bool = False
    upscale_small: bool = False
    duplicates: str = "error"

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> "ImageSettings":
        """Read and check the settings of a dataset section."""
        settings = cls(
            resolution=int(cfg["resolution"]),
            channels=int(cfg["channels"]),
            n_train_max=int(cfg["n_train_max"]),
            n_val=cfg.get("n_val"),
            n_test=cfg.get("n_test"),
            seed=int(cfg["split_seed"]),
            skip_unreadable=bool(cfg.get("skip_unreadable", False)),
            upscale_small=bool(cfg.get("upscale_small", False)),
            duplicates=cfg.get("duplicates", "error"),
        )
        if settings.channels not in (1, 3):
            raise DatasetError(f"channels must be 1 or 3, got {settings.channels}")
        if settings.resolution < 1 or settings.n_train_max < 1:
            raise DatasetError(f"resolution and n_train_max must be positive, got {settings.resolution}, {settings.n_train_max}")
        if settings.duplicates not in DUPLICATE_POLICIES:
            raise DatasetError(f"duplicates must be one of {DUPLICATE_POLICIES}, got {settings.duplicates!r}")
        return settings


@dataclass
class Layout:
    """The files, classes and split rules that a reader found under a raw folder."""

    name: str
    kind: str
    raw_dir: Path
    items: list[Item]
    classes: list[str]
    description: str
    split_rules: dict[str, str]
    metadata_files: list[Path] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    carve_val_from_train: bool = False


def require_dir(raw_dir: Path, what: str) -> Path:
    """Return raw_dir, or raise DatasetError naming what to unpack there when it is not a folder."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise DatasetError(
            f"raw data folder {raw_dir} does not exist. Download {what} and unpack it there "
            "(data/raw/README.md shows the expected layout), or point raw_dir in params.yaml at it"
        )
    return raw_dir


def raise_problems(problems: list[str], what: str, fix: str = "") -> None:
    """Raise one DatasetError listing the first problems and then the fix, if there are any problems."""
    if not problems:
        return
    shown = "\n  ".join(problems[:MAX_LISTED])
    more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
    raise DatasetError(f"{len(problems)} {what}:\n  {shown}{more}" + (f"\n{fix}" if fix else ""))


def scan_class_folders(root: Path, classes: list[str], raw_dir: Path) -> tuple[dict[str, list[Path]], list[str]]:
    """Return ({class: image files}, ignored paths relative to raw_dir) for one folder per class under root.

    Folder names match the class names case-insensitively. A missing, empty
    or unexpected class folder raises DatasetError naming it.
    """
    loose_images, entries = list_folder(root)
    folders = {entry.name.lower(): entry for entry in entries if entry.is_dir() and not entry.name.startswith(".")}
    ignored = [str(path.relative_to(raw_dir)) for path in loose_images]
    ignored += [str(entry.relative_to(raw_dir)) for entry in entries if entry not in folders.values()]

    missing = [name for name in classes if name.lower() not in folders]
    unexpected = sorted(f.name for key, f in folders.items() if key not in {c.lower() for c in classes})
    if missing or unexpected:
        raise DatasetError(
            f"{root}: expected one folder per class {classes}; missing {missing}, unexpected {unexpected}. "
            "Unpack the download unchanged (data/raw/README.md shows the layout), or move the unexpected folders out"
        )

    found: dict[str, list[Path]] = {}
    for name in classes:
        images, others = list_folder(folders[name.lower()])
        ignored += [str(path.relative_to(raw_dir)) for path in others]
        if not images:
            raise DatasetError(
                f"class folder {folders[name.lower()]} contains no image files. Unpack the download again "
                "or restore the missing images; an empty class would silently vanish from every split"
            )
        found[name] = images
    return found, ignored


def find_duplicates(items: list[Item], policy: str) -> tuple[set[int], list[dict], list[str]]:
    """Hash every file; return (indices of dropped copies, their records, per-item sha256).

    Files with equal bytes are copies. The first in sorted path order is kept.
    With policy "error", any copy raises DatasetError naming both files.
    """
    hashes = [sha256_file(item.path) for item in items]
    first: dict[str, int] = {}
    dropped: set[int] = set()
    records = []
    for index, digest in enumerate(hashes):
        if digest not in first:
            first[digest] = index
            continue
        dropped.add(index)
        records.append({"path": items[index].rel, "duplicate_of": items[first[digest]].rel, "sha256": digest})

    if records and policy == "error":
        raise_problems(
            [f"{r['path']} has the same bytes as {r['duplicate_of']}" for r in records],
            "duplicate image files (a copy could land in two splits)",
            "Remove the copies, or set duplicates: drop in params.yaml to keep the first and list the rest in the manifest",
        )
    for record in records:
        log.warning("dropping duplicate %s (same bytes as %s)", record["path"], record["duplicate_of"])
    return dropped, records, hashes


@dataclass
class _Decoded:
    """Decoded images of the files drawn so far, and what happened to the others."""

    images: dict[int, np.ndarray] = field(default_factory=dict)
    skipped: list[dict] = field(default_factory=list)
    upscaled: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _decode_until(items: list[Item], order: np.ndarray, n: int | None, settings: ImageSettings, state: _Decoded) -> tuple[list[int], int]:
    """Decode files in ``order`` until n are readable; return (chosen indices, positions consumed)."""
    chosen: list[int] = []
    position = 0
    while position < len(order) and (n is None or len(chosen) < n):
        index = int(order[position])
        position += 1
        try:
            image, upscaled = load_image(items[index].path, settings.resolution, settings.channels, settings.upscale_small)
        except UnreadableImageError as error:
            if not settings.skip_unreadable:
                state.problems.append(str(error))
                continue
            log.warning("skipping unreadable file %s: %s", items[index].path, error.reason)
            state.skipped.append({"path": items[index].rel, "reason": error.reason})
            continue
        except DatasetError as error:
            state.problems.append(str(error))
            continue
        if upscaled:
            log.warning("upsampled %s: it is smaller than %d px", items[index].path, settings.resolution)
            state.upscaled.append(items[index].rel)
        state.images[index] = image
        chosen.append(index)
    return chosen, position


def _request(settings: ImageSettings, split: str) -> int | None:
    return {"train": settings.n_train_max, "val": settings.n_val, "test": settings.n_test}[split]


def draw_splits(
    items: list[Item], pools: dict[str, list[int]], settings: ImageSettings, carve_val: bool
) -> tuple[dict[str, list[int]], _Decoded, dict[str, int]]:
    """Draw and decode every split; return (sorted indices per split, decode state, pool size per split)."""
    state = _Decoded()
    chosen: dict[str, list[int]] = {}
    pool_sizes: dict[str, int] = {}
    orders = {name: np.random.default_rng([settings.seed, STREAMS[name]]).permutation(np.asarray(pool, dtype=np.int64)) for name, pool in pools.items()}

    # Test, then val, then train; a carved val takes the first readable files of the train order.
    chosen["test"], _ = _decode_until(items, orders["test"], settings.n_test, settings, state)
    pool_sizes["test"] = len(orders["test"])
    if carve_val:
        if settings.n_val is None:
            raise DatasetError("n_val must be a number when val is carved from the train pool; null would leave no training images")
        chosen["val"], consumed = _decode_until(items, orders["train"], settings.n_val, settings, state)
        pool_sizes["val"] = len(orders["train"])
        train_order = orders["train"][consumed:]
    else:
        chosen["val"], _ = _decode_until(items, orders["val"], settings.n_val, settings, state)
        pool_sizes["val"] = len(orders["val"])
        train_order = orders["train"]
    chosen["train"], _ = _decode_until(items, train_order, settings.n_train_max, settings, state)
    pool_sizes["train"] = len(train_order)
    raise_problems(state.problems, "image files cannot be used")

    for split in SPLITS:
        requested = _request(settings, split)
        if not chosen[split]:
            raise DatasetError(f"the {split} split is empty: its pool contains {pool_sizes[split]} usable files; add images or change the split settings")
        if requested is not None and len(chosen[split]) < requested:
            log.warning("%s split has %d images, fewer than the %d requested (pool of %d)", split, len(chosen[split]), requested, pool_sizes[split])
    return {split: sorted(chosen[split]) for split in SPLITS}, state, pool_sizes


def content_sha256(arrays: dict[str, np.ndarray]) -> str:
    """Hash the arrays' names, dtypes, shapes and bytes, independently of the npz container."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}|{array.dtype.str}|{array.shape}\n".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _preprocessing(settings: ImageSettings) -> dict[str, Any]:
    return {
        "crop": "centered square of the shorter side, offset floor((long - short) / 2)",
        "resize": f"Pillow bicubic to {settings.resolution}x{settings.resolution}",
        "channels": settings.channels,
        "mode_conversions": "see neurosql/data/images.py: alpha over black, 16-bit value / 257, RGB to L by ITU-R 601-2 luma",
        "upscale_small": settings.upscale_small,
        "storage": "uint8 (N, C, H, W) in a compressed npz",
        "scaling": "neurosql.data.prepare.to_float divides by 255 at load time, giving [0, 1]",
        "pillow": PIL.__version__,
    }


def prepare_images(
    layout: Layout,
    settings: ImageSettings,
    out_npz: Path,
    out_manifest: Path,
    assign_pools: Callable[[list[Item], set[int]], tuple[dict[str, list[int]], dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """Split, decode and write one image dataset; return its manifest.

    ``assign_pools(items, excluded)`` maps the usable item indices to the
    train/val/test pools (or train/test when val is carved from train) and
    returns extra manifest entries; by default each item's ``pool`` is used.
    """
    items = layout.items
    for path in layout.ignored:
        log.warning("ignoring %s: not an image file (suffixes: jpg, jpeg, png, bmp, tif, tiff, webp)", path)

    dropped, duplicate_records, hashes = find_duplicates(items, settings.duplicates)
    if assign_pools is None:
        pools = {name: [i for i, item in enumerate(items) if item.pool == name and i not in dropped] for name in SPLITS}
        extra: dict[str, Any] = {}
    else:
        pools, extra = assign_pools(items, dropped)
    splits, state, pool_sizes = draw_splits(items, pools, settings, layout.carve_val_from_train)

    # Gather the arrays in ascending item order.
    arrays: dict[str, np.ndarray] = {}
    for split, indices in splits.items():
        arrays[f"{split}_images"] = np.stack([state.images[i] for i in indices])
        arrays[f"{split}_labels"] = np.array([items[i].label for i in indices], dtype=np.uint8)
        arrays[f"{split}_indices"] = np.array(indices, dtype=np.int64)

    skipped = {record["path"] for record in state.skipped}
    placed = {i for indices in splits.values() for i in indices}
    unused = [item.rel for i, item in enumerate(items) if i not in placed and i not in dropped and item.rel not in skipped]
    listing = hashlib.sha256("".join(f"{item.rel}\t{digest}\n" for item, digest in zip(items, hashes)).encode())

    manifest = {
        "dataset": layout.name,
        "kind": layout.kind,
        "raw_dir": str(layout.raw_dir),
        "layout": layout.description,
        "seed": settings.seed,
        "params": {key: getattr(settings, key) for key in settings.__dataclass_fields__},
        "classes": layout.classes,
        "split_rules": layout.split_rules,
        "sizes": {split: len(indices) for split, indices in splits.items()},
        "pool_sizes": pool_sizes,
        "class_counts": {split: np.bincount(arrays[f"{split}_labels"], minlength=len(layout.classes)).tolist() for split in SPLITS},
        "train_cap": {
            "n_train_max": settings.n_train_max,
            "pool": pool_sizes["train"],
            "drawn": len(splits["train"]),
            "sampling": f"first readable files of numpy default_rng([{settings.seed}, 0]).permutation(train pool)",
        },
        "items": {**{split: [items[i].rel for i in indices] for split, indices in splits.items()}, "unused": unused},
        "skipped_unreadable": state.skipped,
        "duplicates": duplicate_records,
        "upscaled": sorted(state.upscaled),
        "ignored_files": layout.ignored,
        "source_files": {
            "metadata": [{"path": str(path), "sha256": sha256_file(path)} for path in layout.metadata_files],
            "images": len(items),
            "images_listing_sha256": listing.hexdigest(),
        },
        "split_indices_sha256": {split: hashlib.sha256(arrays[f"{split}_indices"].astype("<i8").tobytes()).hexdigest() for split in SPLITS},
        "image_shape": list(arrays["train_images"].shape[1:]),
        "dtype": "uint8",
        "preprocessing": _preprocessing(settings),
        "content_sha256": content_sha256(arrays),
        **extra,
    }
    _write(arrays, manifest, Path(out_npz), Path(out_manifest))
    log.info(
        "%s: train %d, val %d, test %d images of shape %s; %d unused, %d skipped, %d duplicates",
        layout.name, *manifest["sizes"].values(), manifest["image_shape"], len(unused), len(state.skipped), len(duplicate_records),
    )
    return manifest


def _write(arrays: dict[str, np.ndarray], manifest: dict[str, Any], out_npz: Path, out_manifest: Path) -> None:
    """Write the npz, then the manifest; remove the npz if the manifest cannot be written."""
    atomic_savez(out_npz, **arrays)
    try:
        manifest["npz"] = out_npz.name  # the name only, so the manifest does not depend on the output folder
        manifest["npz_sha256"] = sha256_file(out_npz)
        atomic_write_json(out_manifest, manifest)
    except BaseException:
        out_npz.unlink(missing_ok=True)
        raise
