"""DreamRec's diffusion: schedule, DDIM, guidance on small tensors; the models on the slice."""

import numpy as np
import pytest
import torch
from conftest import FAST_CONFIG, build_model

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.model.diffusion import (
    LinearSchedule,
    guided,
    sinusoidal_embedding,
)
from recbole_alphafuse.registry import get_trainer

DIFFUSION_MODELS = ["IDDreamRec", "WhitenedDreamRec", "AlphaFuseDreamRec"]
# Small widths for 2 CPU cores: AlphaFuseDreamRec keeps 32 directions with a 16-wide ID part.
DIFFUSION_CONFIG = {**FAST_CONFIG, "null_thres": None, "learning_rate": 0.003}


def test_cumulative_alphas_match_closed_form():
    schedule = LinearSchedule(1000, 1e-4, 0.02)
    betas = np.linspace(1e-4, 0.02, 1000)
    assert np.allclose(
        schedule.alphas_cumprod.numpy(), np.exp(np.cumsum(np.log1p(-betas))), rtol=1e-5
    )
    t = torch.tensor([-1, 0, 999])
    assert torch.allclose(
        schedule.alpha_bar(t).squeeze(-1),
        torch.tensor([1.0, 1 - 1e-4, float(np.prod(1 - betas))], dtype=torch.float64),
    )


@pytest.mark.parametrize("step", [1, 10, 500, 999])
def test_ddim_with_eta_one_between_adjacent_steps_is_the_ddpm_step(step):
    schedule = LinearSchedule(1000, 1e-4, 0.02)
    torch.manual_seed(0)
    x_t, x0, noise = torch.randn(3, 4, 8, dtype=torch.float64).unbind(0)
    t, t_prev = torch.full((4,), step), torch.full((4,), step - 1)
    mean = schedule.ddim_step(x_t, x0, t, t_prev, eta=1.0, noise=torch.zeros_like(noise))
    sample = schedule.ddim_step(x_t, x0, t, t_prev, eta=1.0, noise=noise)

    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    alpha_bar = torch.cumprod(1 - betas, 0)
    ab_t, ab_prev = alpha_bar[step], alpha_bar[step - 1]
    beta_t = betas[step]
    ddpm_mean = (ab_prev.sqrt() * beta_t / (1 - ab_t)) * x0 + (
        (1 - beta_t).sqrt() * (1 - ab_prev) / (1 - ab_t)
    ) * x_t
    ddpm_var = beta_t * (1 - ab_prev) / (1 - ab_t)
    assert torch.allclose(mean, ddpm_mean, atol=1e-10)
    assert torch.allclose((sample - mean) / noise, ddpm_var.sqrt().expand_as(noise), rtol=1e-8)


def test_deterministic_ddim_lands_on_the_prediction_at_the_end():
    schedule = LinearSchedule(2000)
    x_t, x0 = torch.randn(2, 5, 4).unbind(0)
    last = schedule.ddim_step(x_t, x0, torch.full((5,), 99), torch.full((5,), -1), eta=0.0)
    assert torch.allclose(last, x0, atol=1e-6)


def test_sampling_timesteps_stride_down_from_the_last_step():
    schedule = LinearSchedule(2000)
    steps = schedule.sampling_timesteps(20)
    assert steps[0] == 1999 and steps[-1] == 99 and len(steps) == 20
    assert all(a - b == 100 for a, b in zip(steps, steps[1:]))
    assert schedule.sampling_timesteps(2000) == list(range(1999, -1, -1))


def test_guidance_weight_zero_is_the_conditional_prediction():
    conditional, unconditional = torch.randn(2, 3, 4).unbind(0)
    assert torch.equal(guided(conditional, unconditional, 0.0), conditional)
    assert torch.allclose(
        guided(conditional, unconditional, 5.0), 6 * conditional - 5 * unconditional
    )


def test_sinusoidal_embedding_separates_timesteps():
    embedding = sinusoidal_embedding(torch.tensor([0, 1, 2, 1999]), 9)
    assert embedding.shape == (4, 9)
    assert torch.cdist(embedding, embedding).fill_diagonal_(1.0).min() > 0.1


def build(slice_root, name, **overrides):
    return build_model(slice_root, name, DIFFUSION_CONFIG, **overrides)


@pytest.mark.parametrize("name", DIFFUSION_MODELS)
def test_training_loss_drops_and_scores_are_finite_and_seeded(name, slice_root, workdir):
    config, model, train_data, valid_data = build(slice_root, name)
    trainer = get_trainer(config["MODEL_TYPE"], name)(config, model)
    losses = [trainer._train_epoch(train_data, epoch) for epoch in range(4)]
    # A clear, steady drop (iDreamRec's targets are fixed, so it falls slowest).
    assert all(b < a for a, b in zip(losses, losses[1:])) and losses[-1] < 0.95 * losses[0], losses

    model.eval()
    batch = next(iter(valid_data))[0]
    scores = model.full_sort_predict(batch)
    assert scores.shape == (len(batch), model.n_items) and torch.isfinite(scores).all()
    assert torch.equal(scores, model.full_sort_predict(batch))


def test_guidance_weight_zero_samples_from_the_conditional_model(slice_root):
    _, model, _, valid_data = build(slice_root, "IDDreamRec", guidance_w=0.0)
    model.eval()
    batch = next(iter(valid_data))[0]
    condition = model.forward(batch[model.ITEM_SEQ], batch[model.ITEM_SEQ_LEN])
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(condition.shape, generator=generator)
    with torch.no_grad():
        steps = model.schedule.sampling_timesteps(model.sampling_steps)
        for t, t_prev in zip(steps, steps[1:] + [-1]):
            t_batch = torch.full((len(x),), t)
            x0 = model.denoise(x, t_batch, condition)
            x = model.schedule.ddim_step(x, x0, t_batch, torch.full_like(t_batch, t_prev))
    assert torch.allclose(model.generate(condition, torch.Generator().manual_seed(1)), x, atol=1e-5)


def test_sampling_steps_beyond_timesteps_are_refused(slice_root):
    with pytest.raises(AlphaFuseError, match="sampling_steps must be between 1 and timesteps=100"):
        build(slice_root, "IDDreamRec", timesteps=100, sampling_steps=200)


def test_sasrec_loss_keys_are_refused_on_diffusion_models(slice_root):
    with pytest.raises(AlphaFuseError, match=r"diffusion_loss: \[.loss_type.\] do not apply"):
        build(slice_root, "IDDreamRec", loss_type="BPR")


def test_reference_sampling_plan_is_the_authors_21_calls(slice_root):
    _, model, _, _ = build(
        slice_root, "IDDreamRec", sampling_schedule="reference", sampling_steps=20
    )
    steps, model_steps = model.sampling_plan()
    assert steps == [*range(1999, 0, -100), 0]
    assert model_steps == [*range(2000, 0, -100), 0]
    model.sampling_schedule = "strided"
    assert model.sampling_plan() == (list(range(1999, 0, -100)),) * 2


def test_reference_network_shapes_and_initialisation(slice_root):
    _, model, _, _ = build(
        slice_root,
        "AlphaFuseDreamRec",
        hidden_size=None,  # the language width (384): enough values to read a std from
        encoder="reference",
        train_positions="last",
        timestep_embedding_size=256,
        timestep_mlp_factor=1,
        initializer_range=1.0,
    )
    width = model.item_embedding.embedding_dim
    first, _, second = model.step_mlp
    assert (first.in_features, first.out_features, second.out_features) == (256, width, width)
    # PyTorch's default Linear init, not RecBole's normal(0, initializer_range).
    assert first.weight.abs().max() <= 1 / 256**0.5
    assert model.none_condition.std().item() == pytest.approx(1.0, abs=0.2)
