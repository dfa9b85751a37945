"""Safe checkpoint loading and exact resuming for RecBole trainers.

RecBole checkpoints pickle the Config, which torch's ``weights_only=True`` reader refuses. They
are read here by :func:`~recbole_alphafuse.safe_load.load_checkpoint`, which resolves only the
names a checkpoint holds (``trust_checkpoint: True`` reads any pickle, for files from a trusted
source).

RecBole saves a checkpoint only when the validation score improves, without the random number
generators' states, so resuming from it neither continues where a killed run stopped nor draws
the same batches and dropout masks. With ``save_last_checkpoint: True`` a trainer also writes
``<saved_model_file minus .pth>-last.pth`` at the start of every epoch: the model, optimizer and
early-stopping state after the previous epoch, the path of the best checkpoint, and the states
of torch's (CPU and CUDA), numpy's and python's generators and of the training dataloader's own
generator (its shuffling), and the state of the trainer's ``epoch_clock`` where it has one.
``resume_checkpoint`` on that file followed by ``fit`` replays the remaining epochs exactly as
the uninterrupted run would have.

:class:`DistributedMixin` makes RecBole's distributed training (one process per rank, see
``recbole_alphafuse.quick_start.run``) work on CPU processes as well as GPUs.
"""

import os
import random

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from recbole_alphafuse.files import written_atomically
from recbole_alphafuse.safe_load import load_checkpoint


def last_checkpoint_file(saved_model_file):
    """Where the per-epoch resume state of a run whose best model goes to ``saved_model_file``
    is written."""
    return str(saved_model_file).removesuffix(".pth") + "-last.pth"


def _rng_states():
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def _set_rng_states(states):
    torch.set_rng_state(states["torch"])
    if states["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])


class CheckpointMixin:
    """Put in front of a RecBole trainer class: reloads checkpoints with the safe reader, returns
    metrics as plain floats and, with ``save_last_checkpoint``, keeps a per-epoch state that
    resumes training exactly."""

    _saving = False
    _pending_rng = None
    epoch_clock = None  # an object with state() / restore(state), kept in the -last checkpoint

    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        if eval_data and load_best_model:
            if not self.config["single_spec"]:
                # Rank 0 alone writes the best checkpoint; the others wait until it is complete.
                torch.distributed.barrier()
            checkpoint_file = model_file or self.saved_model_file
            checkpoint = load_checkpoint(
                checkpoint_file, self.device, trust=self.config["trust_checkpoint"]
            )
            self.model.load_state_dict(checkpoint["state_dict"])
            self.model.load_other_parameter(checkpoint.get("other_parameter"))
            self.logger.info(f"Loading model structure and parameters from {checkpoint_file}")
        result = super().evaluate(eval_data, load_best_model=False, show_progress=show_progress)
        # RecBole's metrics are numpy scalars, which numpy 2 prints as np.float64(...).
        return None if result is None else type(result)((k, float(v)) for k, v in result.items())

    def fit(self, train_data, valid_data=None, verbose=True, saved=True, **kwargs):
        self._saving = saved
        return super().fit(train_data, valid_data, verbose=verbose, saved=saved, **kwargs)

    def _train_epoch(self, train_data, epoch_idx, *args, **kwargs):
        if self._pending_rng is not None:
            # First epoch after resume_checkpoint: the generators as the killed run had them.
            _set_rng_states(self._pending_rng)
            train_data.generator.set_state(self._pending_rng["train_data"])
            self._pending_rng = None
        if self._saving and self.config["save_last_checkpoint"]:
            self._save_last_checkpoint(train_data, epoch_idx)
        loss = super()._train_epoch(train_data, epoch_idx, *args, **kwargs)
        self._log_embedding_balance(epoch_idx)
        return loss

    def _log_embedding_balance(self, epoch_idx):
        """Strategies with a frozen and a trainable part log their mean row norms per epoch."""
        model = getattr(self.model, "module", self.model)
        part_norms = getattr(getattr(model, "item_embedding", None), "part_norms", None)
        if part_norms is not None:
            norms = ", ".join(f"{part} {value:.4f}" for part, value in part_norms().items())
            self.logger.info(f"epoch {epoch_idx} item embedding mean row norms: {norms}")

    def _save_last_checkpoint(self, train_data, epoch_idx):
        """The state after epoch ``epoch_idx - 1``, written to a temp file renamed into place."""
        if not self.config["single_spec"] and self.config["local_rank"] != 0:
            return
        state = {
            "config": self.config,
            "epoch": epoch_idx - 1,
            "cur_step": self.cur_step,
            "best_valid_score": self.best_valid_score,
            "best_valid_result": self.best_valid_result,
            "best_model_file": self.saved_model_file,
            "train_loss_dict": self.train_loss_dict,
            "state_dict": self.model.state_dict(),
            "other_parameter": self.model.other_parameter(),
            "optimizer": self.optimizer.state_dict(),
            "rng": {**_rng_states(), "train_data": train_data.generator.get_state()},
            "epoch_clock": self.epoch_clock.state() if self.epoch_clock else None,
        }
        with written_atomically(last_checkpoint_file(self.saved_model_file)) as f:
            torch.save(state, f, pickle_protocol=4)

    def resume_checkpoint(self, resume_file):
        """RecBole's ``resume_checkpoint`` with the safe reader; from a ``-last.pth`` file it also
        restores the best checkpoint's path, the best validation result and the generators."""
        checkpoint = load_checkpoint(
            resume_file, self.device, trust=self.config["trust_checkpoint"]
        )
        self.saved_model_file = checkpoint.get("best_model_file", str(resume_file))
        self.start_epoch = checkpoint["epoch"] + 1
        self.cur_step = checkpoint["cur_step"]
        self.best_valid_score = checkpoint["best_valid_score"]
        self.best_valid_result = checkpoint.get("best_valid_result", self.best_valid_result)
        self.train_loss_dict = checkpoint.get("train_loss_dict", self.train_loss_dict)
        if checkpoint["config"]["model"].lower() != self.config["model"].lower():
            self.logger.warning(
                "Architecture configuration given in config file is different from that of "
                "checkpoint. This may yield an exception while state_dict is being loaded."
            )
        self.model.load_state_dict(checkpoint["state_dict"])
        self.model.load_other_parameter(checkpoint.get("other_parameter"))
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self._pending_rng = checkpoint.get("rng")
        if self.epoch_clock and checkpoint.get("epoch_clock"):
            self.epoch_clock.restore(checkpoint["epoch_clock"])
        self.logger.info(f"Checkpoint loaded. Resume training from epoch {self.start_epoch}")


class DistributedMixin:
    """Put in front of a RecBole trainer: wraps the model in DistributedDataParallel in a way that
    also works on CPU processes (gloo) and agrees on one checkpoint path across the ranks.

    RecBole wraps the model with ``device_ids=[local_rank]``, which torch refuses for a CPU
    module, and with buffer broadcasting at every step, which would copy the frozen language
    tables (buffers computed identically on every rank from the same data) at every batch. Each
    rank also names its checkpoint by its own clock, so ranks could look for different files,
    and RecBole creates the checkpoint folder with a check-then-create that two ranks can race.
    """

    def __init__(self, config, model):
        distributed = not config["single_spec"]
        if distributed:
            os.makedirs(config["checkpoint_dir"], exist_ok=True)
        # Keep RecBole's constructor from wrapping the model itself; it is wrapped below.
        config["single_spec"] = True
        try:
            super().__init__(config, model)
        finally:
            config["single_spec"] = not distributed
        if not distributed:
            return
        on_gpu = self.device.type == "cuda"
        if on_gpu:
            self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self.distributed_model = DistributedDataParallel(
            self.model,
            device_ids=[config["local_rank"]] if on_gpu else None,
            broadcast_buffers=False,
        )
        agreed = [self.saved_model_file]
        torch.distributed.broadcast_object_list(agreed, src=0)
        self.saved_model_file = agreed[0]
