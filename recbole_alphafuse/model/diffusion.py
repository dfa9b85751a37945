"""Gaussian diffusion pieces of DreamRec (Yang et al., NeurIPS 2023): schedule, DDIM, guidance."""

import math

import torch
from torch import nn


class LinearSchedule(nn.Module):
    r"""Linear beta schedule :math:`\beta_t` from ``beta_start`` to ``beta_end`` over ``timesteps``.

    Timesteps are 0-based: :math:`\bar\alpha_t = \prod_{s \le t} (1 - \beta_s)`; "before the
    first step" (t = -1) has :math:`\bar\alpha = 1`.
    """

    def __init__(self, timesteps, beta_start=1e-4, beta_end=0.02):
        super().__init__()
        betas = torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)
        self.timesteps = timesteps
        # float64: near t = 0, 1 - alpha_bar is ~1e-4 and float32 would lose its digits.
        self.register_buffer("alphas_cumprod", torch.cumprod(1.0 - betas, dim=0), persistent=False)

    def alpha_bar(self, t):
        """:math:`\\bar\\alpha_t` (float64) for a tensor of timesteps, 1 where t < 0, shaped ``[..., 1]``."""
        values = self.alphas_cumprod[t.clamp_min(0)]
        return torch.where(t < 0, torch.ones_like(values), values).unsqueeze(-1)

    def q_sample(self, x0, t, noise):
        """Sample :math:`x_t \\sim q(x_t \\mid x_0)`."""
        alpha_bar = self.alpha_bar(t)
        return alpha_bar.sqrt().to(x0.dtype) * x0 + (1.0 - alpha_bar).sqrt().to(x0.dtype) * noise

    def ddim_step(self, x_t, x0_pred, t, t_prev, eta=0.0, noise=None):
        r"""One DDIM step from ``t`` to ``t_prev < t`` given the predicted clean sample.

        With ``eta = 0`` the step is deterministic; with ``eta = 1`` and ``t_prev = t - 1`` it
        has the mean and variance of the DDPM ancestral step :math:`q(x_{t-1} \mid x_t, x_0)`.
        """
        alpha_bar, alpha_bar_prev = self.alpha_bar(t), self.alpha_bar(t_prev)
        sigma = (
            eta * ((1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev)).sqrt()
        )
        # x_prev = sqrt(ab_prev) x0 + sqrt(1 - ab_prev - sigma^2) eps, eps recovered from x_t.
        eps_coef = (1 - alpha_bar_prev - sigma**2).clamp_min(0).sqrt() / (1 - alpha_bar).sqrt()
        x0_coef = alpha_bar_prev.sqrt() - eps_coef * alpha_bar.sqrt()
        x_prev = x0_coef.to(x_t.dtype) * x0_pred + eps_coef.to(x_t.dtype) * x_t
        if eta > 0:
            x_prev = x_prev + sigma.to(x_t.dtype) * noise
        return x_prev

    def sampling_timesteps(self, steps):
        """DDIM's sub-sequence: ``steps`` timesteps strided by ``timesteps / steps``, descending
        from ``timesteps - 1``; the step after the last one goes to t = -1, the clean sample."""
        stride = self.timesteps / steps
        return [int(round(stride * (i + 1))) - 1 for i in reversed(range(steps))]


def sinusoidal_embedding(t, dim):
    """Transformer-style sinusoidal embedding of integer timesteps: ``[len(t), dim]``."""
    half = dim // 2
    frequencies = torch.exp(
        -math.log(10000.0)
        * torch.arange(half, device=t.device, dtype=torch.float32)
        / max(half - 1, 1)
    )
    angles = t.float()[:, None] * frequencies[None, :]
    embedding = torch.cat([angles.sin(), angles.cos()], dim=-1)
    return nn.functional.pad(embedding, (0, dim - 2 * half))


def guided(conditional, unconditional, guidance_w):
    """Classifier-free guidance: :math:`(1 + w) f(x, c) - w f(x, \\varnothing)`."""
    return (1.0 + guidance_w) * conditional - guidance_w * unconditional
