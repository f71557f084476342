"""A fusion model survives the trip through its safetensors file."""

import pytest
import torch

from emostream.model.checkpoint import load_checkpoint, save_checkpoint
from emostream.model.fusion import KINDS, FusionConfig, build


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_keeps_config_and_outputs(kind, tmp_path, make_batch):
    torch.manual_seed(1)
    config = FusionConfig(kind=kind, heads={"emotion": 6, "sentiment": 3}, hidden=64, pool="mean")
    model = build(config).eval()
    path = save_checkpoint(model, tmp_path / "m.safetensors", {"note": "x"})
    loaded, meta = load_checkpoint(path)
    assert loaded.config == config and meta == {"note": "x"}
    text, image, mask = make_batch("btib")
    a, b = model(text, image, mask).logits, loaded(text, image, mask).logits
    for head in a:  # stored as float16: close, not bit-equal
        torch.testing.assert_close(a[head].softmax(-1), b[head].softmax(-1), atol=2e-3, rtol=0)
    # and a second trip is exact
    again, _ = load_checkpoint(save_checkpoint(loaded, tmp_path / "n.safetensors"))
    for (k, v), (_, w) in zip(loaded.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(v, w), k


def test_refuses_foreign_files(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match="not an emostream"):
        load_checkpoint(tmp_path / "other.safetensors")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.safetensors")
