import copy

import pytest
import torch
import yaml

from neurosql.backbones import BACKBONES, SUPPORTED_RESOLUTIONS, backbone_parameters, count_parameters
from neurosql.backbones.unet import UNet, match_width, unet_parameters
from neurosql.config import cell_config
from neurosql.models import build_paradigm
from neurosql.paradigms.ddpm import DDPM, ddim_timesteps, linear_betas
from neurosql.sampling import paired_codes, sampled_codes
from tests.conftest import ROOT, _merge, train_straight_and_resumed


def _ddpm(unet: torch.nn.Module, **overrides) -> DDPM:
    settings = {"timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02, "sample_steps": 100, "val_steps": 10}
    settings.update(overrides)
    return DDPM(unet, **settings)


def _paper_params(base_params: dict) -> dict:
    params = copy.deepcopy(base_params)
    _merge(params, yaml.safe_load((ROOT / "configs" / "paper-gpu.yaml").read_text()))
    return params


def test_linear_betas_closed_form():
    betas = linear_betas(1000, 1e-4, 0.02)
    assert betas[0].item() == pytest.approx(1e-4)
    assert betas[-1].item() == pytest.approx(0.02)
    assert (betas[1:] - betas[:-1]).allclose(torch.full((999,), (0.02 - 1e-4) / 999, dtype=torch.float64))


def test_alpha_bar_is_cumulative_product():
    model = _ddpm(UNet(1, 28, 4))
    expected = 1.0
    for t in range(5):
        expected *= 1.0 - (1e-4 + t * (0.02 - 1e-4) / 999)
    assert model.alpha_bar[4].item() == pytest.approx(expected, rel=1e-6)


def test_ddim_timesteps_span_schedule():
    steps = ddim_timesteps(1000, 100)
    assert len(steps) == 100
    assert steps[0] == 999
    assert steps[-1] == 0
    assert steps == sorted(steps, reverse=True)


def test_ddim_steps_out_of_range_rejected():
    with pytest.raises(ValueError, match="DDIM steps"):
        ddim_timesteps(1000, 1001)


@pytest.mark.parametrize("resolution", SUPPORTED_RESOLUTIONS)
@pytest.mark.parametrize("channels", [1, 3])
def test_unet_output_shape(resolution, channels):
    net = UNet(channels, resolution, 4)
    x = torch.randn(2, channels, resolution, resolution)
    assert net(x, torch.tensor([0, 999])).shape == x.shape


@pytest.mark.parametrize("resolution", SUPPORTED_RESOLUTIONS)
@pytest.mark.parametrize("backbone", sorted(BACKBONES))
@pytest.mark.parametrize("config", ["params", "paper-gpu"])
def test_unet_params_within_tolerance(base_params, config, backbone, resolution):
    params = base_params if config == "params" else _paper_params(base_params)
    width = params["backbones"][backbone]["width"]
    target = backbone_parameters(backbone, 2, 3, resolution, width)
    count = unet_parameters(3, resolution, match_width(target, 3, resolution))
    assert abs(count - target) <= 0.1 * target, (count, target)


def test_unet_meta_count_matches_built():
    assert unet_parameters(3, 64, 12) == count_parameters(UNet(3, 64, 12))


def test_ddpm_cell_matches_decoder_count(tiny_params):
    tiny_params["grid"]["mnist"]["latent_dims"] = [3, 2]
    paradigm = build_paradigm(cell_config(tiny_params, "mnist", "convnet", "ddpm", 0, 11), 16)
    decoder = build_paradigm(cell_config(tiny_params, "mnist", "convnet", "gan", 2, 11), 16).decoder
    assert abs(count_parameters(paradigm) - count_parameters(decoder)) <= 0.1 * count_parameters(decoder)


def test_unreachable_count_rejected():
    with pytest.raises(ValueError, match="no U-Net width"):
        match_width(100, 1, 28)


def test_sampler_recovers_point_mass():
    # For data that is one image x0, the exact noise predictor is
    # eps(x_t, t) = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t); DDIM must return x0.
    x0 = torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    model = _ddpm(UNet(1, 28, 4))

    class Oracle(torch.nn.Module):
        channels, resolution = 1, 28

        def forward(self, x, t):
            a = model.alpha_bar[t][:, None, None, None]
            return (x - a.sqrt() * x0) / (1 - a).sqrt()

    model.decoder = Oracle()
    out = model.sample(torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(1)), steps=20)
    assert torch.allclose(out, ((x0 + 1) / 2).expand(3, -1, -1, -1), atol=1e-4)


def test_train_step_loss_is_noise_mse():
    model = _ddpm(UNet(1, 28, 4))
    before = copy.deepcopy(model)
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    optim = {"generator": torch.optim.AdamW(model.decoder.parameters(), lr=1e-3)}
    stats = model.train_step(x, torch.arange(4), optim, torch.Generator().manual_seed(5), grad_clip=1.0)

    # Redraw t and the noise in the order train_step draws them.
    rng = torch.Generator().manual_seed(5)
    t = torch.randint(0, 1000, (4,), generator=rng)
    noise = torch.randn(x.shape, generator=rng)
    a = before.alpha_bar[t][:, None, None, None]
    x_t = a.sqrt() * (2 * x - 1) + (1 - a).sqrt() * noise
    with torch.no_grad():
        expected = ((before.decoder(x_t, t) - noise) ** 2).mean().item()
    assert stats["loss"] == pytest.approx(expected, rel=1e-5)


def test_generate_one_image_alone(tiny_params):
    paradigm = build_paradigm(cell_config(tiny_params, "mnist", "convnet", "ddpm", 0, 11), 16)
    paradigm.sample_steps = 3
    codes = sampled_codes(paradigm.latent_prior(), 4, paradigm.latent_dim, seed=0)
    batch = paradigm.generate(codes)
    alone = paradigm.generate(sampled_codes(paradigm.latent_prior(), 1, paradigm.latent_dim, seed=0, start=2))
    assert batch.shape == (4, 1, 28, 28)
    # Batch size changes the convolution kernels' summation order, hence the tolerance.
    assert torch.allclose(batch[2], alone[0], atol=1e-4)


def test_paired_codes_rejected(tiny_params):
    paradigm = build_paradigm(cell_config(tiny_params, "mnist", "convnet", "ddpm", 0, 11), 16)
    with pytest.raises(ValueError, match="paired_z"):
        paired_codes(paradigm, torch.zeros(2, 1, 28, 28), 2)


def test_resume_matches_uninterrupted(tiny_params, tiny_data, tmp_path, monkeypatch):
    tiny_params["ddpm"].update(sample_steps=2, val_steps=2)
    tiny_params["train"]["epochs"] = 3
    # One thread per job: two OpenMP threads on a busy 2-core machine run several times slower.
    tiny_params["runtime"]["threads"] = 1
    cfg = cell_config(tiny_params, "mnist", "convnet", "ddpm", 0, 11)

    reference, resumed = train_straight_and_resumed(cfg, tiny_data, tmp_path, monkeypatch)

    assert resumed["epochs_run"] == tiny_params["train"]["epochs"]
    for key, tensor in reference["state_dict"].items():
        assert torch.equal(tensor, resumed["state_dict"][key]), key
