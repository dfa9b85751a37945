"""DreamRec as a backbone over any item-embedding strategy."""

import torch
from recbole.utils import InputType
from torch import nn

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.data.windows import TRAIN_POSITIONS
from recbole_alphafuse.model.diffusion import (
    LinearSchedule,
    guided,
    sinusoidal_embedding,
)
from recbole_alphafuse.model.diffusion_loss import (
    DIFFUSION_LOSSES,
    centroid_negatives,
    cosine_error,
    preference_loss,
)
from recbole_alphafuse.model.loss import ItemSoftmax
from recbole_alphafuse.model.sasrec_backbone import SASRecBackbone
from recbole_alphafuse.model.sequence_encoder import recbole_init

SAMPLING_SCHEDULES = ("strided", "reference")


class DreamRecBackbone(SASRecBackbone):
    r"""DreamRec (Yang et al., "Generate What You Prefer", NeurIPS 2023) with a pluggable item embedding.

    The history is encoded by the SASRec encoder (last position) into a condition; a denoiser
    predicts the clean embedding of the next item from (noisy embedding, timestep embedding,
    condition) on a linear beta schedule, the condition replaced by a learned "none" vector with
    probability ``cfg_dropout`` (classifier-free guidance). ``diffusion_loss`` scores the
    prediction (:mod:`~recbole_alphafuse.model.diffusion_loss`): ``mse`` (DreamRec's) or
    ``preference`` (PreferDiff's cosine error and in-batch preference term, with
    ``preference_gamma`` and ``preference_lambda``), plus ``x0_ce_weight`` times a ranking term
    on the prediction (cross-entropy over all items). ``train_positions``: ``last`` trains
    RecBole's rows (the condition at each history's last item); ``all`` trains windows, one
    diffusion target at every position, the condition being that position's state. To rank,
    DDIM generates an item embedding in ``sampling_steps`` steps with guidance weight
    ``guidance_w``, and every item is scored by its dot product with it. Sampling noise is seeded
    from ``seed`` and the batch, so evaluation is reproducible.
    """

    input_type = InputType.POINTWISE
    supported_train_positions = TRAIN_POSITIONS

    # SASRec-backbone keys with no meaning here: the loss is the denoiser's (diffusion_loss).
    inapplicable_keys = ("loss_type", "temperature", "neg_ratio", "n_negatives", "gbce_t")

    def __init__(self, config, dataset):
        ignored = [key for key in self.inapplicable_keys if key in config.external_config_dict]
        if ignored:
            raise AlphaFuseError(
                f"{self.__class__.__name__} trains its denoiser with diffusion_loss: {ignored} do "
                "not apply to it; leave them out of its settings."
            )
        self.diffusion_loss = config["diffusion_loss"]
        if self.diffusion_loss not in DIFFUSION_LOSSES:
            raise AlphaFuseError(
                f"diffusion_loss must be one of {list(DIFFUSION_LOSSES)}, "
                f"got '{self.diffusion_loss}'."
            )
        self.x0_ce_weight = config["x0_ce_weight"]
        self.x0_ce_temperature = config["x0_ce_temperature"]
        if self.x0_ce_weight < 0 or self.x0_ce_temperature <= 0:
            raise AlphaFuseError(
                f"x0_ce_weight must be >= 0 (0 turns the ranking term off) and x0_ce_temperature "
                f"> 0, got {self.x0_ce_weight} and {self.x0_ce_temperature}."
            )
        self.x0_ranking = ItemSoftmax(
            dataset.item_num,
            chunk_size=config["ce_chunk_size"],
            n_negatives=config["x0_ce_negatives"],
            cosine=True,
            temperature=self.x0_ce_temperature,
        )
        self.preference_gamma = config["preference_gamma"]
        self.preference_lambda = config["preference_lambda"]
        if not 0.0 <= self.preference_lambda <= 1.0:
            raise AlphaFuseError(
                f"preference_lambda must be between 0 and 1, got {self.preference_lambda}."
            )
        super().__init__(config, dataset)
        self.cfg_dropout = config["cfg_dropout"]
        self.guidance_w = config["guidance_w"]
        self.sampling_steps = config["sampling_steps"]
        self.sampling_eta = config["sampling_eta"]
        self.sampling_schedule = config["sampling_schedule"]
        self.seed = config["seed"]
        if not 0 < self.sampling_steps <= config["timesteps"]:
            raise AlphaFuseError(
                f"sampling_steps must be between 1 and timesteps={config['timesteps']}, "
                f"got {self.sampling_steps}."
            )
        if self.sampling_schedule not in SAMPLING_SCHEDULES:
            raise AlphaFuseError(
                f"sampling_schedule must be one of {list(SAMPLING_SCHEDULES)}, "
                f"got '{self.sampling_schedule}'."
            )
        # The diffusion space is the item space (wider than the encoder for dual-view models).
        hidden = self.item_embedding.embedding_dim
        self.schedule = LinearSchedule(
            config["timesteps"], config["beta_start"], config["beta_end"]
        )
        self.none_condition = nn.Parameter(torch.empty(hidden).normal_(0.0, self.initializer_range))
        self.timestep_embedding_size = config["timestep_embedding_size"] or hidden
        step_hidden = int(config["timestep_mlp_factor"] * hidden)
        self.step_mlp = nn.Sequential(
            nn.Linear(self.timestep_embedding_size, step_hidden),
            nn.GELU(),
            nn.Linear(step_hidden, hidden),
        )
        self.denoiser = nn.Linear(3 * hidden, hidden)
        if config["encoder"] == "recbole":
            # RecBole's initialisation; the reference network keeps PyTorch's defaults.
            for module in (self.step_mlp, self.denoiser):
                module.apply(lambda layer: recbole_init(layer, self.initializer_range))

    def build_loss(self, config):
        # The denoiser's objective is computed in denoising_loss, not by a next-item loss.
        return None

    def denoise(self, x_t, t, condition):
        step = self.step_mlp(sinusoidal_embedding(t, self.timestep_embedding_size))
        return self.denoiser(torch.cat([x_t, step, condition], dim=-1))

    def denoising_loss(self, x0, condition, pos_items):
        """The ``diffusion_loss`` of the denoiser's x0 prediction at one random timestep per row,
        plus ``x0_ce_weight`` times its ranking of ``pos_items`` among all items."""
        t = torch.randint(0, self.schedule.timesteps, (len(x0),), device=x0.device)
        predicted = self.denoise(self.schedule.q_sample(x0, t, torch.randn_like(x0)), t, condition)
        loss = self.reconstruction_loss(predicted, x0, t, condition)
        if self.x0_ce_weight:
            ranking = self.x0_ranking(predicted, pos_items, self.item_embedding)
            loss = loss + self.x0_ce_weight * ranking
        return loss

    def reconstruction_loss(self, predicted, x0, t, condition):
        """DreamRec's MSE, or PreferDiff's cosine error and preference term (its negative
        denoised at the same timestep ``t`` under the same condition)."""
        if self.diffusion_loss == "mse":
            return nn.functional.mse_loss(predicted, x0)
        positive = cosine_error(predicted, x0)
        if len(x0) < 2:
            # No other target in the batch to contrast with.
            return positive
        negative_x0 = centroid_negatives(x0)
        negative_t = self.schedule.q_sample(negative_x0, t, torch.randn_like(x0))
        negative = cosine_error(self.denoise(negative_t, t, condition), negative_x0)
        return preference_loss(positive, negative, self.preference_gamma, self.preference_lambda)

    def calculate_loss(self, interaction):
        condition, pos_items = self.training_states(interaction)
        dropped = torch.rand(len(condition), 1, device=condition.device) < self.cfg_dropout
        condition = torch.where(dropped, self.none_condition.expand_as(condition), condition)
        loss = self.denoising_loss(self.item_embedding(pos_items), condition, pos_items)
        return loss + self.item_embedding.auxiliary_loss(pos_items)

    def sampling_plan(self):
        """The DDIM timesteps (alpha-bar indices, descending) and the timestep given to the
        denoiser at each.

        ``strided``: ``sampling_steps`` steps strided by ``timesteps / sampling_steps``, the
        denoiser told the same timestep. ``reference``: the AlphaFuse authors' sampler: those
        steps and one more at t = 0 (``sampling_steps + 1`` denoiser calls), the denoiser told the
        timestep one above each alpha-bar index but the last (2000, 1900, ..., 100, 0 for T = 2000
        and 20 steps), as their indexing does.
        """
        steps = self.schedule.sampling_timesteps(self.sampling_steps)
        if self.sampling_schedule == "strided":
            return steps, steps
        return steps + [0], [t + 1 for t in steps] + [0]

    @torch.no_grad()
    def generate(self, condition, generator=None):
        """DDIM sampling of the next item's embedding for each condition row, all rows at once."""
        batch = len(condition)
        x = torch.randn(condition.shape, generator=generator, device=condition.device)
        both = torch.cat([condition, self.none_condition.expand_as(condition)])
        steps, model_steps = self.sampling_plan()
        for t, t_prev, model_t in zip(steps, steps[1:] + [-1], model_steps):
            t_batch = torch.full((2 * batch,), t, device=x.device)
            conditional, unconditional = self.denoise(
                x.repeat(2, 1), torch.full_like(t_batch, model_t), both
            ).split(batch)
            x0_pred = guided(conditional, unconditional, self.guidance_w)
            noise = None
            if self.sampling_eta > 0:
                noise = torch.randn(x.shape, generator=generator, device=x.device)
            x = self.schedule.ddim_step(
                x,
                x0_pred,
                t_batch[:batch],
                torch.full_like(t_batch[:batch], t_prev),
                self.sampling_eta,
                noise,
            )
        return x

    def full_sort_query(self, interaction):
        """The generated item embedding that every item is scored against (see
        :mod:`recbole_alphafuse.ranking`)."""
        return self._generate_for(interaction)

    def _generate_for(self, interaction):
        condition = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        # Seeded by the batch's first user so that a reloaded model ranks exactly the same.
        generator = torch.Generator(device=condition.device)
        generator.manual_seed(self.seed * 1_000_003 + int(interaction[self.USER_ID][0]))
        return self.generate(condition, generator)

    def predict(self, interaction):
        generated = self._generate_for(interaction)
        return (generated * self.item_embedding(interaction[self.ITEM_ID])).sum(dim=-1)

    def full_sort_predict(self, interaction):
        return self.full_sort_query(interaction) @ self.item_embedding.weight.T
