"""The fine-tunable EfficientNet-Lite: which base a delta belongs to, and loading it on top."""

import pytest
import torch

from emostream.model.backbones import finetuned_image
from emostream.model.image_model import EfficientNetLite, delta_base, finetuned_image_net


@pytest.fixture(scope="module")
def lite1_delta(tmp_path_factory):
    """A Lite1 delta whose tuned stages differ from the package's weights."""
    torch.manual_seed(0)
    net = EfficientNetLite("efficientnet-lite1")
    with torch.no_grad():
        for p in net.parameters():
            if p.requires_grad:
                p.add_(0.01 * torch.randn_like(p))
    path = tmp_path_factory.mktemp("deltas") / "lite1.image-delta.safetensors"
    net.save_delta(path)
    return path, net.eval()


def test_a_delta_names_its_base_and_the_backbone_takes_the_bases_input_size(lite1_delta):
    path, _ = lite1_delta
    assert delta_base(path) == "efficientnet-lite1"
    backbone = finetuned_image("tuned-lite1", path)
    assert backbone.transform.crop == 240 and backbone.dim == 1280
    assert backbone.version.startswith("efficientnet-lite1-") and "+ft-" in backbone.version


def test_the_delta_loads_on_top_of_the_base(lite1_delta):
    path, tuned = lite1_delta
    x = torch.rand(2, 3, 240, 240) * 2 - 1
    with torch.no_grad():
        want = tuned(x)
        got = finetuned_image_net(path)(x)
        base = EfficientNetLite("efficientnet-lite1").eval()(x)
    assert got.shape == (2, 1280)
    assert torch.allclose(got, want, atol=0.05, rtol=0.02)  # the delta is stored in fp16
    assert not torch.allclose(got, base, atol=0.05)  # and it landed


def test_a_delta_of_another_base_is_refused(tmp_path):
    lite0 = tmp_path / "lite0.safetensors"
    EfficientNetLite("efficientnet-lite0").save_delta(lite0)
    with pytest.raises(ValueError, match="do not fit efficientnet-lite1"):
        EfficientNetLite("efficientnet-lite1").load_delta(lite0)


def test_a_base_without_a_split_is_refused():
    with pytest.raises(ValueError, match="no fine-tuning split"):
        EfficientNetLite("efficientnet-lite2")
