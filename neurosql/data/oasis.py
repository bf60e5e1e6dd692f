"""Read the Kaggle OASIS slice tree and split it by subject, so no subject spans two splits.

Layout of the Kaggle dataset "OASIS Alzheimer's Detection" (Ninad Aithal),
under ``raw_dir`` or ``raw_dir/Data/`` as the archive unpacks:

    Non Demented/OAS1_0001_MR1_mpr-1_100.jpg ...
    Very mild Dementia/ ...   Mild Dementia/ ...   Moderate Dementia/ ...

A file name carries the OASIS-1 subject id (``OAS1_0028``), the session
(``MR1``), the scan (``mpr-1``) and the axial slice number (``100``).
Classes follow the Clinical Dementia Rating order: Non Demented 0, Very mild
Dementia 1, Mild Dementia 2, Moderate Dementia 3 (folder names match
case-insensitively). Subjects are split 80/10/10 by default with the seed;
each split then draws up to its cap of slices from its own subjects.
"""

import logging
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from neurosql.data.images import DatasetError
from neurosql.data.imageset import ImageSettings, Item, Layout, prepare_images, raise_problems, require_dir, scan_class_folders
from neurosql.data.splits import SPLITS, split_groups

log = logging.getLogger(__name__)

CLASSES = ["Non Demented", "Very mild Dementia", "Mild Dementia", "Moderate Dementia"]
SUBJECT_PATTERN = re.compile(r"OAS\d_\d{4}", re.IGNORECASE)
SLICE_PATTERN = re.compile(r"_(\d+)\.[A-Za-z]+$")
DEFAULT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}
WHAT = "the Kaggle dataset \"OASIS Alzheimer's Detection\" by Ninad Aithal (folder Data/ with four class folders)"


def parse_name(name: str) -> tuple[str | None, int | None]:
    """Return (subject id in upper case, slice number) from a file name, None where absent."""
    subject = SUBJECT_PATTERN.search(name)
    slice_match = SLICE_PATTERN.search(name)
    return (subject.group(0).upper() if subject else None, int(slice_match.group(1)) if slice_match else None)


def find_root(raw_dir: Path) -> Path:
    """Return the folder holding the class folders: raw_dir, or raw_dir/Data when only that exists."""
    names = {p.name.lower() for p in raw_dir.iterdir() if p.is_dir()}
    if not names & {c.lower() for c in CLASSES} and (raw_dir / "Data").is_dir():
        return raw_dir / "Data"
    return raw_dir


def find_oasis(raw_dir: Path, name: str = "oasis") -> Layout:
    """List the OASIS slices under raw_dir with their class and subject."""
    raw_dir = require_dir(Path(raw_dir), WHAT)
    root = find_root(raw_dir)
    found, ignored = scan_class_folders(root, CLASSES, raw_dir)

    items: list[Item] = []
    problems: list[str] = []
    for label, cls in enumerate(CLASSES):
        for path in found[cls]:
            subject, slice_number = parse_name(path.name)
            if subject is None or slice_number is None:
                missing = "subject id (OAS1_xxxx)" if subject is None else "slice number (_<n> before the suffix)"
                problems.append(f"{path}: file name carries no {missing}")
                continue
            items.append(Item(path, str(path.relative_to(raw_dir)), label, "", subject))
    raise_problems(
        problems,
        "OASIS files cannot be assigned to a subject",
        "Rename them as the Kaggle tree does (e.g. OAS1_0028_MR1_mpr-1_100.jpg) or remove them; "
        "the subject-wise split needs the subject id and slice of every file",
    )

    if root != raw_dir:
        ignored += sorted(str(p.relative_to(raw_dir)) for p in raw_dir.iterdir() if p != root)
    return Layout(
        name=name,
        kind="oasis",
        raw_dir=raw_dir,
        items=sorted(items, key=lambda item: item.rel),
        classes=CLASSES,
        description=f"Kaggle OASIS slice tree in {root.relative_to(raw_dir)}/ with four class folders",
        split_rules={
            "train": "slices of the train subjects, capped at n_train_max by seeded draw",
            "val": "slices of the val subjects, capped at n_val by seeded draw (null: all)",
            "test": "slices of the test subjects, capped at n_test by seeded draw (null: all)",
        },
        ignored=sorted(ignored),
    )


def subject_pools(items: list[Item], excluded: set[int], fractions: dict[str, float], seed: int) -> tuple[dict[str, list[int]], dict[str, Any]]:
    """Split the subjects of the usable items and return (item indices per split, manifest entries)."""
    usable = [i for i in range(len(items)) if i not in excluded]
    try:
        groups = split_groups([items[i].group for i in usable], fractions, seed)
    except ValueError as error:
        raise DatasetError(f"cannot split OASIS subjects: {error}; add subjects or change subject_fractions") from error
    split_of = {subject: split for split, subjects in groups.items() for subject in subjects}
    pools = {split: [i for i in usable if split_of[items[i].group] == split] for split in SPLITS}

    # A subject filed under two classes is kept in one split but reported, since its label is ambiguous.
    classes_of: dict[str, set[int]] = defaultdict(set)
    for i in usable:
        classes_of[items[i].group].add(items[i].label)
    several = sorted(s for s, labels in classes_of.items() if len(labels) > 1)
    for subject in several:
        log.warning("subject %s has slices in several class folders: %s", subject, sorted(CLASSES[c] for c in classes_of[subject]))

    shared = sorted(set(groups["train"]) & set(groups["val"]) | set(groups["train"]) & set(groups["test"]) | set(groups["val"]) & set(groups["test"]))
    extra = {
        "subject_fractions": fractions,
        "subject_seed": seed,
        "subjects": groups,
        "subject_counts": {split: len(groups[split]) for split in SPLITS},
        "shared_subjects": shared,
        "subjects_in_several_classes": several,
    }
    return pools, extra


def prepare_oasis(cfg: dict[str, Any], out_npz: Path, out_manifest: Path) -> dict[str, Any]:
    """Prepare OASIS from a ``datasets.<name>`` section; return the manifest."""
    settings = ImageSettings.from_config(cfg)
    fractions = {split: float(value) for split, value in cfg.get("subject_fractions", DEFAULT_FRACTIONS).items()}
    layout = find_oasis(Path(cfg["raw_dir"]), cfg.get("name", "oasis"))
    return prepare_images(
        layout,
        settings,
        out_npz,
        out_manifest,
        assign_pools=lambda items, excluded: subject_pools(items, excluded, fractions, settings.seed),
    )
