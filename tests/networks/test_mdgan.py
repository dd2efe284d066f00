"""The multi-discriminator GAN: DenseNet generator and one discriminator per source."""

from __future__ import annotations

import doctest

import pytest
import torch

import medfuse.networks.mdgan as mdgan_module
from medfuse.losses import adversarial_loss
from medfuse.networks import MDGANGenerator, SourceDiscriminators


@pytest.mark.parametrize("dims", [2, 3])
def test_discriminators_score_patches(dims):
    d = SourceDiscriminators(dims, channels=4, num_layers=2)
    img = torch.rand((2, 1) + (16,) * dims)
    for score in (d.anatomical(img), d.functional(img)):
        assert score.shape[:2] == (2, 1) and score.dim() == dims + 2


def test_anatomical_discriminator_sees_structure_only():
    """It judges gradients: two constant images of different brightness look the same to it."""
    torch.manual_seed(0)
    d = SourceDiscriminators(2, channels=4, num_layers=2).eval()
    dark, bright = torch.full((1, 1, 16, 16), 0.1), torch.full((1, 1, 16, 16), 0.9)
    assert torch.allclose(d.anatomical(dark), d.anatomical(bright), atol=1e-5)
    assert not torch.allclose(d.functional(dark), d.functional(bright))


def test_one_adversarial_step_trains_both_players():
    torch.manual_seed(0)
    gen, disc = MDGANGenerator(features=(4, 8), growth=4, dense_layers=2), SourceDiscriminators(2, channels=4)
    a, b = torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32)
    fused = gen(torch.cat([a, b], 1))
    g_loss = adversarial_loss(disc.anatomical(fused), True, False) + adversarial_loss(disc.functional(fused), True, False)
    g_loss.backward()
    assert all(p.grad is not None for p in gen.parameters())
    disc.zero_grad()
    d_loss = adversarial_loss(disc.functional(b), True, True) + adversarial_loss(disc.functional(fused.detach()), False, True)
    d_loss.backward()
    assert all(p.grad is not None for p in disc.functional_net.parameters())


def test_bad_arguments():
    with pytest.raises(ValueError, match="growth"):
        MDGANGenerator(growth=0)
    with pytest.raises(ValueError, match="spatial_dims"):
        SourceDiscriminators(spatial_dims=1)


def test_docstring_examples():
    assert doctest.testmod(mdgan_module, raise_on_error=True).attempted >= 4
