"""Task heads over every preset family and the CNN hybrid baseline: forward, backward, learning."""

from __future__ import annotations

import copy

import pytest
import torch

from model.cnn_baseline import CNNHybridBaseline
from model.collate import VLCollator
from model.heads import (ClassificationHead, RegressionHead, VLEncoder, build_task_model,
                         meta_target)
from pipelines.core.sample import Sample

from .conftest import draw_png

COLOURS = ("red", "blue")


def colour_samples(count: int = 8) -> list[Sample]:
    """Images whose class is their colour and whose regression target is their width / 100."""
    samples = []
    for i in range(count):
        colour = COLOURS[i % 2]
        width = 20 + 8 * i
        samples.append(Sample.create("images", f"{colour}-{i}", image=draw_png(colour, (width, 24)),
                                     text="what colour?",
                                     meta={"task": {"colour": colour, "width": width / 100}}))
    return samples


def _batch(processor, target):
    return VLCollator(processor, on_error="raise", target_fn=target)(colour_samples())


# Every family meets both heads and both fusions across these four cases.
@pytest.mark.parametrize("name,fusion,task", [
    ("tiny", "concat", "classification"), ("tiny", "attention", "regression"),
    ("tiny-siglip", "attention", "classification"), ("tiny-siglip", "concat", "regression")])
def test_heads_on_every_preset_family(tiny_models, name, fusion, task):
    vl_model, processor = tiny_models[name]
    encoder = VLEncoder(copy.deepcopy(vl_model), fusion=fusion)
    if task == "classification":
        model = build_task_model(encoder, "classification", num_classes=2)
        batch = _batch(processor, meta_target("task.colour", COLOURS))
        assert batch["targets"].tolist() == [0, 1] * 4
        out = model(batch)
        assert out.logits.shape == (8, 2)
        assert torch.allclose(ClassificationHead.probabilities(out.logits).sum(-1), torch.ones(8))
        expected = torch.nn.functional.cross_entropy(out.logits, batch["targets"])
        assert 0.0 <= out.metrics["accuracy"] <= 1.0
    else:
        model = build_task_model(encoder, "regression")
        batch = _batch(processor, meta_target("task.width"))
        out = model(batch)
        assert out.logits.shape == (8,) and batch["targets"].dtype == torch.float
        assert isinstance(model.head, RegressionHead)
        expected = ((out.logits - batch["targets"]) ** 2).mean()
    assert torch.isclose(out.loss, expected)
    assert encoder.representation_dim == (128 if fusion == "concat" else 64)
    out.loss.backward()
    assert model.head.linear.weight.grad.abs().sum() > 0
    aligner_grads = [p.grad for p in encoder.vl_model.model.aligner.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in aligner_grads)  # through the images


@pytest.mark.parametrize("fusion", ["concat", "attention"])
def test_cnn_baseline_learns_colour(tiny_models, fusion):
    torch.manual_seed(0)
    _, processor = tiny_models["tiny"]
    baseline = CNNHybridBaseline.for_processor(
        processor, fusion=fusion, high_res_channels=(8, 16), low_res_channels=(8,),
        hidden_size=32, text_layers=1, text_intermediate=64)
    model = build_task_model(baseline, "classification", num_classes=2)
    batch = _batch(processor, meta_target("task.colour", COLOURS))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(12):
        out = model(batch)
        first = first if first is not None else out.loss.item()
        optimiser.zero_grad()
        out.loss.backward()
        optimiser.step()
    assert out.loss.item() < first * 0.5
    assert model(batch).metrics["accuracy"] == 1.0


def test_cnn_baseline_text_only_and_siglip_processor(tiny_models):
    _, processor = tiny_models["tiny-siglip"]  # no high-res images: both encoders read low-res
    model = build_task_model(CNNHybridBaseline.for_processor(processor), "regression")
    batch = VLCollator(processor, target_fn=lambda s: 1.5)(
        [Sample.create("text", "t", text="only text"),
         Sample.create("images", "i", image=draw_png(), text="x")])
    out = model(batch)
    assert out.logits.shape == (2,) and torch.isfinite(out.loss)


def test_target_errors_skip_samples(tiny_models):
    _, processor = tiny_models["tiny"]
    collate = VLCollator(processor, target_fn=meta_target("task.colour", COLOURS))
    batch = collate(colour_samples(2) + [Sample.create("text", "n", text="no label")])
    assert batch["targets"].tolist() == [0, 1] and collate.skipped == {"KeyError": 1}
    with pytest.raises(ValueError):
        build_task_model(VLEncoder(tiny_models["tiny"][0]), "classification", num_classes=1)
