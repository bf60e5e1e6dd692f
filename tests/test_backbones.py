import pytest
import torch

from neurosql.backbones import (
    BACKBONE_LABELS,
    BACKBONES,
    SUPPORTED_RESOLUTIONS,
    backbone_parameters,
    build_backbone,
    count_parameters,
)
from neurosql.backbones.resnet import ResNetDecoder
from neurosql.config import cell_config
from neurosql.models import build_paradigm

# Small widths keep the 128 px cases fast on a CPU.
SMALL_WIDTH = {"convnet": 8, "resnet": 4, "transformer": 16}


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("resolution", SUPPORTED_RESOLUTIONS)
@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_output_shape_and_range(name, resolution, channels):
    decoder = build_backbone(name, 5, channels, resolution, SMALL_WIDTH[name], seed=0)
    z = torch.randn(3, 5, generator=torch.Generator().manual_seed(1)) * 3
    images = decoder(z)
    assert images.shape == (3, channels, resolution, resolution)
    assert images.min() >= 0
    assert images.max() <= 1


def test_registry_names_and_labels():
    assert set(BACKBONES) == {"convnet", "resnet", "transformer"}
    assert set(BACKBONE_LABELS) == set(BACKBONES)
    assert BACKBONE_LABELS["transformer"] == "U-Net"


def test_convnet_count_closed_form():
    # Linear(2, 64*7*7), ConvT(64->32, 4x4), BN(32), ConvT(32->16, 4x4), BN(16), Conv(16->1, 3x3).
    expected = (2 * 3136 + 3136) + (64 * 32 * 16 + 32) + 64 + (32 * 16 * 16 + 16) + 32 + (16 * 9 + 1)
    assert count_parameters(build_backbone("convnet", 2, 1, 28, 16, seed=0)) == expected


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_meta_count_matches_built(name):
    built = build_backbone(name, 7, 3, 64, SMALL_WIDTH[name], seed=0)
    assert backbone_parameters(name, 7, 3, 64, SMALL_WIDTH[name]) == count_parameters(built)


def test_resnet_paper_width_channels():
    decoder = ResNetDecoder(8, 3, 64, width=64)
    outputs = [block.conv2.out_channels for block in decoder.blocks]
    assert outputs == [512, 256, 128, 64]
    assert [block.upsample for block in decoder.blocks] == [True, True, True, True]


def test_resnet_28px_upsamples_last_two():
    decoder = ResNetDecoder(8, 1, 28, width=4)
    assert [block.upsample for block in decoder.blocks] == [False, False, True, True]


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_same_seed_same_weights(name):
    a = build_backbone(name, 4, 1, 32, SMALL_WIDTH[name], seed=3).state_dict()
    b = build_backbone(name, 4, 1, 32, SMALL_WIDTH[name], seed=3).state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_initial_decoder_identical_across_methods(tiny_params, name):
    tiny_params["backbones"][name] = {"width": SMALL_WIDTH[name]}
    states = [
        build_paradigm(cell_config(tiny_params, "mnist", name, method, 3, 11), 16).decoder.state_dict()
        for method in ("neurosql", "vae", "gan")
    ]
    for other in states[1:]:
        assert states[0].keys() == other.keys()
        for key in states[0]:
            assert torch.equal(states[0][key], other[key]), key


def test_unknown_backbone_rejected():
    with pytest.raises(ValueError, match="unknown backbone 'mlp'"):
        build_backbone("mlp", 2, 1, 28, 8, seed=0)


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_unsupported_resolution_rejected(name):
    with pytest.raises(ValueError, match="unsupported resolution 48"):
        build_backbone(name, 2, 1, 48, SMALL_WIDTH[name], seed=0)


def test_transformer_width_needs_heads_divisor():
    with pytest.raises(ValueError, match="divisible by 4"):
        build_backbone("transformer", 2, 1, 28, 30, seed=0)
