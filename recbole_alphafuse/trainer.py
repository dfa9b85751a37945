"""Checkpoint loading for RecBole trainers on torch >= 2.6.

RecBole checkpoints pickle the Config, which torch's default ``weights_only=True`` refuses. The
files loaded here are the ones this run (or the user) saved under ``checkpoint_dir``, so they
are trusted and loaded in full.
"""

import torch


def load_checkpoint(model_file, device="cpu"):
    """Load a RecBole checkpoint written by this plugin's runs."""
    return torch.load(model_file, map_location=device, weights_only=False)


class TrustedCheckpointMixin:
    """Put in front of a RecBole trainer class: reloads the best checkpoint with the full pickle."""

    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        if eval_data and load_best_model:
            checkpoint_file = model_file or self.saved_model_file
            checkpoint = load_checkpoint(checkpoint_file, self.device)
            self.model.load_state_dict(checkpoint["state_dict"])
            self.model.load_other_parameter(checkpoint.get("other_parameter"))
            self.logger.info(f"Loading model structure and parameters from {checkpoint_file}")
        return super().evaluate(eval_data, load_best_model=False, show_progress=show_progress)
