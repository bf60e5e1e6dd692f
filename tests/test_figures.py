"""Figures: each file opens, carries its panel count, and reruns give identical pixels."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neurosql import figures


def _samples(path: Path, method: str, backbone: str, latent: int, n: int = 16, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    np.savez(
        path,
        images=rng.integers(0, 256, (n, 1, 28, 28), dtype=np.uint8),
        method=np.array(method),
        backbone=np.array(backbone),
        dataset=np.array("mnist"),
        latent_dim=np.array(latent),
    )
    return path


def _metrics(path: Path, method: str, latent: int, seed: int, value: float) -> Path:
    path.write_text(
        json.dumps(
            {"dataset": "mnist", "backbone": "convnet", "method": method, "latent_dim": latent, "seed": seed,
             "mode": "sampled_z", "fid_proxy": value, "kid": value / 10, "lpips": None, "ssim": 1 - value / 10}
        )
    )
    return path


def _codes(path: Path, method: str, latent: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    np.savez(path, codes=rng.normal(size=(300, latent)), labels=rng.integers(0, 10, 300),
             method=np.array(method), latent_dim=np.array(latent))
    return path


def _check(paths: list[Path], panels: int) -> None:
    png, pdf = paths
    with Image.open(png) as image:
        image.load()
        assert image.info["Panels"] == str(panels)
        assert "Software" not in image.info
    assert pdf.read_bytes().startswith(b"%PDF")


def _outs(tmp_path: Path, name: str) -> list[Path]:
    return [tmp_path / f"{name}.png", tmp_path / f"{name}.pdf"]


def test_backbone_grid_panels(tmp_path):
    samples = [
        _samples(tmp_path / f"{m}_{b}.npz", m, b, 16, seed=i)
        for i, (m, b) in enumerate([(m, b) for m in ("neurosql", "vae", "gan") for b in ("convnet", "resnet")])
    ]
    outs = _outs(tmp_path, "grid")
    assert figures.method_backbone_grid(samples, outs, n_images=9) == 6
    _check(outs, 6)


def test_backbone_grid_too_few_images(tmp_path):
    samples = [_samples(tmp_path / "a.npz", "neurosql", "convnet", 2, n=4)]
    with pytest.raises(ValueError, match="needs 9"):
        figures.method_backbone_grid(samples, _outs(tmp_path, "grid"), n_images=9)


def test_class_grid_panels(tmp_path):
    paths = []
    for i, method in enumerate(("neurosql", "vae", "gan")):
        path = tmp_path / f"{method}.npz"
        np.savez(path, images=np.full((10, 8, 1, 28, 28), 40 * i, dtype=np.uint8), counts=np.full(10, 8),
                 method=np.array(method), latent_dim=np.array(3), label_scheme=np.array("latent_knn"))
        paths.append(path)
    outs = _outs(tmp_path, "classes")
    assert figures.class_grid(paths, outs) == 3
    _check(outs, 3)


def test_latent_figure_panels(tmp_path):
    codes = [_codes(tmp_path / f"{m}{d}.npz", m, d) for m in ("neurosql", "vae") for d in (2, 3, 8)]
    outs = _outs(tmp_path, "latent")
    # The 8-D codes are not drawn: 2 methods x latent dimensions 2 and 3.
    assert figures.latent_figure(codes, outs) == 4
    _check(outs, 4)


def test_metric_plot_panels(tmp_path):
    paths = [
        _metrics(tmp_path / f"{m}_{d}_{s}.json", m, d, s, 1.0 + d / 10 + s / 100)
        for m in ("neurosql", "vae") for d in (2, 4, 8) for s in (1, 2)
    ]
    paths.append(_metrics(tmp_path / "ddpm.json", "ddpm", 0, 1, 2.0))
    outs = _outs(tmp_path, "metrics")
    assert figures.metric_plot(paths, outs) == 4
    _check(outs, 4)


def test_training_curves_panels(tmp_path):
    paths = []
    for cell in ("neurosql_z2_s11", "vae_z2_s11", "neurosql_z3_s11", "ddpm_z0_s11"):
        folder = tmp_path / cell
        folder.mkdir()
        (folder / "history.csv").write_text("epoch,val_loss\n0,0.9\n1,0.7\n2,0.6\n")
        paths.append(folder / "history.csv")
    outs = _outs(tmp_path, "training")
    assert figures.training_curves(paths, outs) == 3
    _check(outs, 3)


def test_rerun_gives_same_bytes(tmp_path):
    codes = [_codes(tmp_path / f"{m}{d}.npz", m, d) for m in ("neurosql", "vae") for d in (2, 3)]
    first, second = _outs(tmp_path, "a"), _outs(tmp_path, "b")
    figures.latent_figure(codes, first)
    figures.latent_figure(codes, second)
    assert first[0].read_bytes() == second[0].read_bytes()
    assert first[1].read_bytes() == second[1].read_bytes()


def test_tile_images_layout():
    images = np.arange(5, dtype=np.uint8).reshape(5, 1, 1, 1)
    mosaic = figures.tile_images(images, columns=2)
    np.testing.assert_array_equal(mosaic, [[0, 1], [2, 3], [4, 0]])


def test_unknown_format(tmp_path):
    codes = [_codes(tmp_path / "n.npz", "neurosql", 2)]
    with pytest.raises(ValueError, match="unsupported figure format"):
        figures.latent_figure(codes, [tmp_path / "x.svg"])
