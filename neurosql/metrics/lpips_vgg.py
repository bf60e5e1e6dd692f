"""LPIPS with the VGG16 backbone, loaded without lpips's own download.

The ``lpips`` package (0.1.4) ships its linear-layer weights, but its VGG16
trunk calls torchvision with ``pretrained=True``, which downloads
torchvision's ImageNet weights ``vgg16-397923af.pth`` (528 MiB). This module
builds the trunk with random weights, then copies the ImageNet convolution
weights into it from torch.hub's checkpoint cache
(``$TORCH_HOME/hub/checkpoints``), downloading the file first when it is
missing. When the file is neither cached nor downloadable, the metric is
reported as unavailable: load_lpips_vgg never returns a random trunk.
"""

import logging
import socket
import warnings
from pathlib import Path

import lpips
import torch
import torchvision

from neurosql.metrics.fid import to_rgb

log = logging.getLogger(__name__)

VGG16_URL = torchvision.models.VGG16_Weights.IMAGENET1K_V1.url
VGG16_FILENAME = VGG16_URL.rsplit("/", 1)[-1]  # vgg16-397923af.pth
# torch.hub's convention: the hex part of the file name is the SHA-256 prefix.
VGG16_HASH_PREFIX = VGG16_FILENAME.rsplit("-", 1)[-1].split(".")[0]


def vgg16_cache_path() -> Path:
    """Return where torch.hub caches the VGG16 ImageNet weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILENAME


def _download_vgg16(dst: Path, timeout_s: float) -> None:
    """Download the VGG16 weights to ``dst`` with torch.hub, checking the SHA-256 prefix.

    NOTE: socket.setdefaulttimeout bounds each connect and read, not the
    whole transfer or the DNS lookup, and it applies to the whole process
    while the download runs.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)
    try:
        torch.hub.download_url_to_file(VGG16_URL, str(dst), hash_prefix=VGG16_HASH_PREFIX, progress=False)
    finally:
        socket.setdefaulttimeout(previous)


def _features_to_lpips_keys(net: torch.nn.Module, features_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename torchvision ``features.<i>.<param>`` keys to lpips's ``slice<k>.<i>.<param>`` keys.

    lpips.pretrained_networks.vgg16 splits torchvision's vgg16().features into
    slice1..slice5, keeping each layer's index as its module name, so the
    mapping is read from the slices instead of hard-coding the split points.
    """
    slice_of_index = {}
    for slice_name, slice_module in net.named_children():
        for index in slice_module._modules:
            slice_of_index[index] = slice_name

    mapped = {}
    for key, tensor in features_state.items():
        prefix, index, param = key.split(".", 2)
        if prefix != "features":
            continue
        if index not in slice_of_index:
            continue  # layers after relu5_3 (the last max pool) have no parameters
        mapped[f"{slice_of_index[index]}.{index}.{param}"] = tensor
    return mapped


def _build_lpips_with_random_trunk() -> lpips.LPIPS:
    # pnet_rand=True stops lpips from asking torchvision to download the trunk,
    # whose random weights are overwritten by the caller.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pretrained.*", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*weight enum.*", category=UserWarning)
        return lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True, verbose=False)


def load_lpips_vgg(device: str | torch.device = "cpu", download_timeout_s: float = 10.0) -> lpips.LPIPS | None:
    """Build LPIPS (VGG) with torchvision's ImageNet VGG16 trunk, or return None when the weights are unavailable.

    The weights come from torch.hub's checkpoint cache, or are downloaded there
    when missing. When both fail, one warning names the file and the cache
    path, and None is returned.
    """
    path = vgg16_cache_path()
    if not path.is_file():
        log.info("%s not found at %s. Downloading it from %s", VGG16_FILENAME, path, VGG16_URL)
        try:
            _download_vgg16(path, download_timeout_s)
        except Exception as err:  # any network, HTTP or hash failure means "unavailable"
            log.warning(
                "LPIPS (VGG) is unavailable: the VGG16 ImageNet weights %s are not in the torch.hub "
                "cache %s and the download from %s failed (%s: %s). To enable LPIPS, put "
                "%s at %s (TORCH_HOME sets the cache root).",
                VGG16_FILENAME, path.parent, VGG16_URL, type(err).__name__, err, VGG16_FILENAME, path,
            )
            return None

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        log.warning(
            "LPIPS (VGG) is unavailable: failed to read %s (%s: %s). Replace it with torchvision's %s from %s.",
            path, type(err).__name__, err, VGG16_FILENAME, VGG16_URL,
        )
        return None

    model = _build_lpips_with_random_trunk()
    features_state = {key: value for key, value in state.items() if key.startswith("features.")}
    # strict=True raises when the file lacks a trunk layer or a shape differs.
    try:
        model.net.load_state_dict(_features_to_lpips_keys(model.net, features_state), strict=True)
    except RuntimeError as err:
        log.warning(
            "LPIPS (VGG) is unavailable: %s does not contain torchvision VGG16 weights (%s). Replace it with %s from %s.",
            path, err, VGG16_FILENAME, VGG16_URL,
        )
        return None

    log.info("Loaded LPIPS (VGG) with ImageNet trunk weights from %s", path)
    return model.to(device).eval()


def lpips_distance(model: lpips.LPIPS, real: torch.Tensor, fake: torch.Tensor, batch_size: int = 50) -> float:
    """Compute the mean LPIPS over image pairs (real[i], fake[i]) of (N, C, H, W) batches in [0, 1]."""
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must have the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}")
    if real.ndim != 4 or real.shape[1] not in (1, 3) or real.shape[0] == 0:
        raise ValueError(f"images must have shape (N >= 1, 1 or 3, H, W), got {tuple(real.shape)}")

    device = next(model.parameters()).device
    total = 0.0
    with torch.no_grad():
        for start in range(0, real.shape[0], batch_size):
            # lpips expects inputs in [-1, 1].
            x = to_rgb(real[start : start + batch_size]).float().to(device) * 2 - 1
            y = to_rgb(fake[start : start + batch_size]).float().to(device) * 2 - 1
            total += model(x, y).sum().item()
    return total / real.shape[0]
