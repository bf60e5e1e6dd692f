"""Decode image files and convert them to uint8 arrays of one size and channel count.

Every image goes through the same steps: decode fully with Pillow, convert
its mode, crop the centered square of its shorter side, and resize that
square to ``resolution`` x ``resolution`` with Pillow's bicubic filter.
Pillow widens the filter's support when downscaling, so it antialiases.
Conversions by mode:

- ``1``, ``L``: grayscale as stored; ``1`` maps to 0/255.
- ``LA``, ``RGBA``, ``PA`` and ``P`` with a transparent color: alpha is
  composited over black (value * alpha / 255), the background of MRI slices.
- ``P``: the palette is applied. ``CMYK`` and ``YCbCr``: Pillow's own
  conversion to RGB, with no ICC color management; for CMYK, Pillow 13
  computes R = (255 - C) * (255 - K) / 255, and likewise G and B.
- ``I;16`` (and ``I;16B``/``I;16L``, and ``I`` with values in 0..65535):
  16-bit values map linearly onto 0..255 as round(value / 257).
- RGB to one channel uses Pillow's ITU-R 601-2 luma
  (L = 0.299 R + 0.587 G + 0.114 B); one channel to RGB repeats it.

Any other mode (``F``, ``I`` with negative values, ``LAB``, ``HSV``) raises
UnreadableImageError. An image whose shorter side is below ``resolution``
raises ImageTooSmallError unless ``upscale_small`` is set.
"""

import hashlib
import logging
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
RESAMPLE = Image.Resampling.BICUBIC


class DatasetError(ValueError):
    """Raw data the prepare stage cannot use; the message names the path and the fix."""


class UnreadableImageError(DatasetError):
    """An image file that cannot be decoded, or whose mode has no documented conversion."""

    def __init__(self, path: Path, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(
            f"{path}: {reason}. Download or unpack this file again, remove it, "
            "or set skip_unreadable: true for this dataset in params.yaml to skip it (the manifest lists skipped files)"
        )


class ImageTooSmallError(DatasetError):
    """An image whose shorter side is below the target resolution."""


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_image_file(path: Path) -> bool:
    """Return whether a path names a visible file with an image suffix."""
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES


def list_folder(folder: Path) -> tuple[list[Path], list[Path]]:
    """Return (image files, other entries) directly inside ``folder``, each sorted by name.

    Other entries are hidden files, files with a non-image suffix and
    subfolders; callers record them as ignored so nothing is dropped unseen.
    """
    images, others = [], []
    for entry in sorted(Path(folder).iterdir()):
        (images if is_image_file(entry) else others).append(entry)
    return images, others


def open_image(path: Path) -> Image.Image:
    """Decode an image file completely, raising UnreadableImageError for corrupt or truncated data."""
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # Pillow would then fill a truncated image with gray instead of failing.
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set; unset it so truncated files are detected")
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except Image.DecompressionBombError as error:
        raise UnreadableImageError(path, f"image is too large to decode safely ({error})") from error
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error) as error:
        raise UnreadableImageError(path, f"corrupt or truncated image file ({error})") from error


def _has_transparency(image: Image.Image) -> bool:
    return "transparency" in image.info or image.mode == "PA"


def _composite_over_black(image: Image.Image, color_mode: str) -> Image.Image:
    """Multiply the color bands by alpha / 255, which is compositing over a black background."""
    alpha = image.getchannel("A")
    background = Image.new(color_mode, image.size, 0)
    background.paste(image.convert(color_mode), mask=alpha)
    return background


def convert_mode(image: Image.Image, channels: int, path: Path) -> np.ndarray:
    """Convert a decoded image to a uint8 (H, W, channels) array by the module's mode rules."""
    mode = image.mode
    if mode in ("P", "PA"):
        mode = "RGBA" if _has_transparency(image) else "RGB"
        image = image.convert(mode)

    if mode in ("I",) + SIXTEEN_BIT_MODES:
        values = np.asarray(image).astype(np.int64)
        if values.min() < 0 or values.max() > 65535:
            raise UnreadableImageError(
                path, f"32-bit integer image with values {values.min()}..{values.max()} outside 0..65535 has no defined scaling"
            )
        image, mode = Image.fromarray(np.rint(values / 257.0).astype(np.uint8), mode="L"), "L"
    elif mode == "1":
        image, mode = image.convert("L"), "L"
    elif mode == "LA":
        image, mode = _composite_over_black(image, "L"), "L"
    elif mode == "RGBA":
        image, mode = _composite_over_black(image, "RGB"), "RGB"
    elif mode in ("CMYK", "YCbCr", "RGBX"):
        image, mode = image.convert("RGB"), "RGB"
    elif mode not in ("L", "RGB"):
        raise UnreadableImageError(
            path, f"image mode {mode!r} has no defined conversion (supported: 1, L, LA, P, PA, RGB, RGBA, CMYK, YCbCr, I;16)"
        )

    # Channel count last, so every source mode reaches the target by one rule.
    if channels == 1 and mode == "RGB":
        image = image.convert("L")
    elif channels == 3 and mode == "L":
        image = image.convert("RGB")
    array = np.asarray(image, dtype=np.uint8)
    return array[:, :, None] if array.ndim == 2 else array


def center_crop_resize(array: np.ndarray, resolution: int, path: Path, upscale_small: bool = False) -> tuple[np.ndarray, bool]:
    """Crop the centered square of the shorter side and resize it to resolution; return (array, upscaled).

    The crop's offset is floor((long - short) / 2). Raises ImageTooSmallError
    when the shorter side is below resolution and upscale_small is false.
    """
    height, width = array.shape[:2]
    side = min(height, width)
    upscaled = side < resolution
    if upscaled and not upscale_small:
        raise ImageTooSmallError(
            f"{path}: image is {width}x{height}, smaller than the {resolution}x{resolution} target. "
            "Remove the file, lower the dataset's resolution, or set upscale_small: true in params.yaml "
            "to upsample it (the manifest lists upsampled files)"
        )

    top, left = (height - side) // 2, (width - side) // 2
    square = array[top : top + side, left : left + side]
    if side == resolution:
        return np.ascontiguousarray(square), False

    # Resize each channel as an 8-bit plane, so one and three channels take the same path.
    planes = [
        np.asarray(Image.fromarray(square[:, :, c], mode="L").resize((resolution, resolution), RESAMPLE))
        for c in range(square.shape[2])
    ]
    return np.stack(planes, axis=-1), upscaled


def load_image(path: Path, resolution: int, channels: int, upscale_small: bool = False) -> tuple[np.ndarray, bool]:
    """Decode, convert, center-crop and resize one file; return ((channels, R, R) uint8, upscaled)."""
    image = open_image(path)
    array = convert_mode(image, channels, path)
    resized, upscaled = center_crop_resize(array, resolution, path, upscale_small)
    return np.ascontiguousarray(resized.transpose(2, 0, 1)), upscaled
