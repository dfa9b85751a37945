"""The diffusion objectives on small tensors, then on the models of the slice."""

import math

import pytest
import torch
from conftest import FAST_CONFIG, build_model
from torch import nn

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.model.diffusion_loss import (
    centroid_negatives,
    cosine_error,
    preference_loss,
)
from recbole_alphafuse.model.loss import ItemSoftmax
from recbole_alphafuse.registry import get_trainer

DIFFUSION_CONFIG = {**FAST_CONFIG, "null_thres": None, "learning_rate": 0.003}


def test_cosine_error_by_hand():
    predicted = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    target = torch.tensor([[2.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    # cosines 1, 0, -1: errors 0, 1, 4
    assert cosine_error(predicted, target).item() == pytest.approx(5.0 / 3.0)


def test_cosine_error_ignores_the_scale_of_either_side():
    generator = torch.Generator().manual_seed(0)
    predicted, target = torch.randn(2, 5, 8, generator=generator)
    scales = torch.rand(5, 1, generator=generator) * 10 + 0.01
    base = cosine_error(predicted, target)
    assert torch.allclose(cosine_error(predicted * scales, target), base, atol=1e-6)
    assert torch.allclose(cosine_error(predicted, target / scales), base, atol=1e-6)


def test_centroid_negative_is_the_mean_of_the_other_rows():
    targets = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 9.0]])
    expected = torch.tensor([[4.0, 6.5], [3.0, 5.5], [2.0, 3.0]])
    assert torch.equal(centroid_negatives(targets), expected)


def test_preference_loss_by_hand():
    positive, negative = torch.tensor(0.3), torch.tensor(0.5)
    # -(1 - 0.4) log sigmoid(-5 (0.3 - 0.5)) + 0.4 * 0.3
    expected = -0.6 * math.log(1.0 / (1.0 + math.exp(-1.0))) + 0.12
    assert preference_loss(positive, negative, 5.0, 0.4).item() == pytest.approx(expected)


def test_preference_loss_rewards_a_worse_negative_reconstruction():
    positive = torch.tensor(0.3, requires_grad=True)
    negative = torch.tensor(0.5, requires_grad=True)
    preference_loss(positive, negative, 5.0, 0.4).backward()
    assert positive.grad > 0 and negative.grad < 0
    # lambda = 1 is the cosine error alone.
    assert preference_loss(positive, negative, 5.0, 1.0).item() == pytest.approx(0.3)


def x0_cross_entropy(predicted, items, targets, temperature, chunk_size=None):
    """The diffusion models' x0 ranking term over the table ``items``."""
    ranking = ItemSoftmax(len(items), chunk_size=chunk_size, cosine=True, temperature=temperature)
    return ranking(predicted, targets, nn.Embedding.from_pretrained(items))


@pytest.mark.parametrize("chunk_size", [None, 2])
def test_x0_cross_entropy_by_hand(chunk_size):
    items = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0]])  # row 0: [PAD], scores 0
    predicted = torch.tensor([[1.0, 1.0]])
    cosine = 1.0 / math.sqrt(2.0)
    logits = torch.tensor([0.0, cosine, cosine]) / 0.5
    expected = -torch.log_softmax(logits, dim=0)[2]
    loss = x0_cross_entropy(predicted, items, torch.tensor([2]), 0.5, chunk_size)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    # Blind to the scale of the prediction and of each item.
    rescaled = x0_cross_entropy(
        predicted * 7,
        items * torch.tensor([[1.0], [3.0], [0.1]]),
        torch.tensor([2]),
        0.5,
        chunk_size,
    )
    assert rescaled.item() == pytest.approx(loss.item(), rel=1e-6)


def mean_target_percentile(model, valid_data):
    """Over the validation users: the share of items ranked above the target (random: 0.5)."""
    model.eval()
    percentiles = []
    with torch.no_grad():
        for interaction, _, positive_u, positive_i in valid_data:
            scores = model.full_sort_predict(interaction).view(len(interaction), -1)
            scores[:, 0] = -torch.inf
            target = scores[positive_u, positive_i]
            above = (scores[positive_u] > target[:, None]).sum(dim=1)
            percentiles.append(above.float() / (model.n_items - 1))
    return torch.cat(percentiles).mean().item()


def build(slice_root, name, **overrides):
    return build_model(slice_root, name, DIFFUSION_CONFIG, **overrides)


def _one_batch(train_data):
    return next(iter(train_data))


def test_preferdiff_models_use_the_preference_objective_and_dreamrec_keeps_mse(slice_root):
    config, model, _, _ = build(slice_root, "AlphaFusePreferDiff")
    assert model.diffusion_loss == "preference" and config["preference_gamma"] == 5.0
    _, dreamrec, _, _ = build(slice_root, "AlphaFuseDreamRec")
    assert dreamrec.diffusion_loss == "mse"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"diffusion_loss": "l1"}, "diffusion_loss must be one of"),
        ({"preference_lambda": 1.5}, "preference_lambda must be between 0 and 1"),
        ({"x0_ce_weight": -1.0}, "x0_ce_weight must be >= 0"),
        ({"x0_ce_temperature": 0.0}, "x0_ce_temperature > 0"),
    ],
)
def test_bad_objective_settings_are_refused(slice_root, settings, message):
    with pytest.raises(AlphaFuseError, match=message):
        build(slice_root, "IDPreferDiff", **settings)


def test_preference_gradient_reaches_only_the_null_space_id_part(slice_root):
    _, model, train_data, _ = build(slice_root, "AlphaFusePreferDiff")
    model.train()
    model.calculate_loss(_one_batch(train_data)).backward()
    item_embedding = model.item_embedding
    assert not item_embedding.semantic.requires_grad
    id_grad = item_embedding.id_embedding.weight.grad
    assert id_grad is not None and id_grad[1:].abs().sum() > 0
    # [PAD] never trains.
    assert id_grad[0].abs().sum() == 0


def test_whitened_preferdiff_trains_the_network_but_no_item_vector(slice_root):
    _, model, train_data, _ = build(slice_root, "WhitenedPreferDiff")
    table = model.item_embedding.weight.clone()
    model.calculate_loss(_one_batch(train_data)).backward()
    assert model.denoiser.weight.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in model.item_embedding.parameters())
    assert torch.equal(model.item_embedding.weight, table)


def test_a_batch_of_one_row_is_scored_by_the_cosine_error_alone(slice_root):
    _, model, _, _ = build(slice_root, "IDPreferDiff", x0_ce_weight=0.0)
    x0 = model.item_embedding(torch.tensor([3]))
    condition = torch.randn(1, model.item_embedding.embedding_dim)
    torch.manual_seed(0)
    loss = model.denoising_loss(x0, condition, torch.tensor([3]))
    torch.manual_seed(0)
    t = torch.randint(0, model.schedule.timesteps, (1,))
    x_t = model.schedule.q_sample(x0, t, torch.randn_like(x0))
    assert torch.allclose(loss, cosine_error(model.denoise(x_t, t, condition), x0))


@pytest.mark.parametrize(
    ("name", "train_positions"),
    [("IDPreferDiff", "last"), ("IDPreferDiff", "all"), ("IDDreamRec", "all")],
)
def test_id_only_diffusion_learns_without_collapse(slice_root, workdir, name, train_positions):
    config, model, train_data, valid_data = build(slice_root, name, train_positions=train_positions)
    trainer = get_trainer(config["MODEL_TYPE"], name)(config, model)
    norms_before = model.item_embedding.weight[1:].norm(dim=-1)
    losses = [trainer._train_epoch(train_data, epoch) for epoch in range(4)]
    assert losses[-1] < losses[0], losses
    norms_after = model.item_embedding.weight[1:].norm(dim=-1)
    # MSE alone shrinks a trainable target table towards zero and then ranks at random.
    assert norms_after.mean() >= 0.5 * norms_before.mean(), (
        norms_before.mean(),
        norms_after.mean(),
    )
    # Targets ranked well above the middle of the item list, for the validation users.
    assert mean_target_percentile(model, valid_data) < 0.4
