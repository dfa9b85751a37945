"""The plugin's training step against the AlphaFuse authors' own, from the same weights.

    python -m recbole_alphafuse export alphafuse --dataset Office-cold --output /tmp/office-cold-af
    python benchmarks/parity/official_step_parity.py --official PATH/TO/AlphaFuse \
        --data /tmp/office-cold-af --dataset Office-cold --steps 40 \
        --out benchmarks/results/parity-office-cold-steps.md

``--official`` is a checkout of the authors' code (github Hugo-Chinn/AlphaFuse), imported as it
is. Their SASRec ``AlphaFuse`` model is built on the export with the flags of their README's
SASRec runs (hidden 128, null_dim 64, language scale 40, N(0, 1) ID init) and the plugin's
``AlphaFuseSASRec`` on ``--dataset`` with ``properties/AlphaFuseSASRec-paper.yaml``; their
weights (frozen semantic table included) are copied into the plugin's model, and both take
``--steps`` Adam steps (their optimiser settings; the plugin's built by RecBole's Trainer) on the
same batches of their training file, in order, with the same 64 InfoNCE negatives per example
and dropout off, so that any difference is one of arithmetic. Reported: the largest loss
difference over the steps and the largest parameter difference after them, for two starts:

- ``initial LayerNorms``: both at PyTorch's initialisation (weight 1, bias 0);
- ``LayerNorm biases moved``: the same small random offset added to every LayerNorm bias of
  both, as after any optimiser step. The authors' attention zeroes every query whose vector sums
  to exactly 0; a LayerNorm output at bias 0 has mean 0, so some of theirs do at the first step
  (the plugin masks by the history instead). The offset shows the rest of the step alone.

Then dropout: with the recipe's 0.1, the training loss of both models on the first batch over
``--draws`` dropout draws each (same weights and negatives), as mean and standard deviation.

Results page: benchmarks/results/parity.md.
"""

import argparse
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.parity.official_parity import check_inputs
from benchmarks.report import write_report
from recbole_alphafuse.benchmark.report import machine

PAPER_RECIPE = "properties/AlphaFuseSASRec-paper.yaml"
README_SETTINGS = dict(
    hidden_dim=128,
    null_dim=64,
    null_thres=None,
    language_embs_scale=40,
    ID_embs_init_type="normal",
    item_frequency_flag=False,
    standardization=True,
    cover=False,
    num_heads=1,
)
BATCH, NEGATIVES, TEMPERATURE = 256, 64, 0.07


def official_model(official, data, dropout):
    sys.path.insert(0, str(official))
    from models.backbone_SASRec import AlphaFuse

    (vectors,) = data.glob("*_emb.pickle")
    return AlphaFuse(
        torch.device("cpu"),
        language_embs_path=str(data),
        language_model_type=vectors.name[: -len("_emb.pickle")],
        dropout_rate=dropout,
        **README_SETTINGS,
    )


def plugin_model(dataset_name, dropout):
    from recbole.data import data_preparation

    from recbole_alphafuse.config import Config
    from recbole_alphafuse.quick_start import create_dataset
    from recbole_alphafuse.registry import get_model

    settings = {
        "hidden_dropout_prob": dropout,
        "attn_dropout_prob": dropout,
        "show_progress": False,
    }
    argv, sys.argv = sys.argv, sys.argv[:1]  # RecBole's Config reads --key=value from argv
    try:
        config = Config("AlphaFuseSASRec", dataset_name, [PAPER_RECIPE], settings)
    finally:
        sys.argv = argv
    train_data, _, _ = data_preparation(config, create_dataset(config))
    return config, get_model("AlphaFuseSASRec")(config, train_data._dataset)


def copy_weights(theirs, ours):
    """Their parameters into the plugin's modules; returns the semantic tables' largest
    difference before their table replaces the plugin's."""
    n = theirs.item_num
    table, encoder = ours.item_embedding, ours.sequence_encoder
    block = encoder.blocks[0]
    same_modules = [
        (block.query_norm, theirs.ln_1),
        (block.query, theirs.mh_attn.linear_q),
        (block.key, theirs.mh_attn.linear_k),
        (block.value, theirs.mh_attn.linear_v),
        (block.feed_forward_input_norm, theirs.ln_2),
        (block.feed_forward_norm, theirs.feed_forward.layer_norm),
        (encoder.final_norm, theirs.ln_3),
    ]
    with torch.no_grad():
        their_semantic = theirs.item_embeddings.language_embeddings.weight[:n]
        # Eigenvector signs are arbitrary: align each column before comparing.
        signs = torch.sign((their_semantic * table.semantic[1:]).sum(0))
        semantic_gap = (their_semantic - signs * table.semantic[1:]).abs().max().item()
        table.semantic[1:] = their_semantic
        table.id_embedding.weight[1:] = theirs.item_embeddings.ID_embeddings.weight[:n]
        encoder.position_embedding.weight.copy_(theirs.positional_embeddings.weight)
        for mine, their in same_modules:
            mine.weight.copy_(their.weight)
            mine.bias.copy_(their.bias)
        for mine, their in ((block.feed_forward[0], theirs.feed_forward.w_1),
                            (block.feed_forward[2], theirs.feed_forward.w_2)):  # fmt: skip
            mine.weight.copy_(their.weight[..., 0])  # a 1x1 convolution is a linear map
            mine.bias.copy_(their.bias)
    return semantic_gap


def parameter_gaps(theirs, ours):
    n = theirs.item_num
    encoder = ours.sequence_encoder
    pairs = {
        "ID table": (ours.item_embedding.id_embedding.weight[1:], theirs.item_embeddings.ID_embeddings.weight[:n]),
        "positions": (encoder.position_embedding.weight, theirs.positional_embeddings.weight),
        "W_q": (encoder.blocks[0].query.weight, theirs.mh_attn.linear_q.weight),
        "final LayerNorm": (encoder.final_norm.weight, theirs.ln_3.weight),
    }  # fmt: skip
    return {name: (a - b).abs().max().item() for name, (a, b) in pairs.items()}


def recbole_batch(seq, target, item_num):
    """Their left-padded histories (padding id ``item_num``) as RecBole's right-padded rows."""
    from recbole.data.interaction import Interaction

    lengths = (seq != item_num).sum(1)
    item_seq = torch.zeros_like(seq)
    for row, length in enumerate(lengths.tolist()):
        item_seq[row, :length] = seq[row, seq.shape[1] - length :] + 1
    return Interaction({"item_id_list": item_seq, "item_length": lengths, "item_id": target + 1})


def paired_models(official, data, dataset_name, dropout, move_layer_norm_biases):
    """Both models with the authors' weights; returns (config, theirs, ours, semantic gap)."""
    torch.manual_seed(2020)
    theirs = official_model(official, data, dropout)
    config, ours = plugin_model(dataset_name, dropout)
    semantic_gap = copy_weights(theirs, ours)
    if move_layer_norm_biases:
        offsets = torch.Generator().manual_seed(1)
        their_norms = [m for m in theirs.modules() if isinstance(m, torch.nn.LayerNorm)]
        with torch.no_grad():
            for norm in their_norms:
                norm.bias.add_(0.05 * torch.randn(norm.bias.shape, generator=offsets))
        copy_weights(theirs, ours)
    return config, theirs, ours, semantic_gap


def batch(train, step, item_num, draws):
    """Step ``step``'s examples of their training file and negatives that are never the target."""
    rows = train.iloc[step * BATCH : (step + 1) * BATCH]
    seq = torch.tensor(np.stack(rows["seq"].values))
    target = torch.tensor(rows["next"].values)
    negatives = torch.randint(0, item_num - 1, (len(seq), NEGATIVES), generator=draws)
    return seq, target, negatives + (negatives >= target[:, None]).long()


def losses(theirs, ours, seq, target, negatives):
    """Both InfoNCE losses on one batch, with the same negatives."""
    import recbole_alphafuse.model.loss as plugin_loss

    with mock.patch("torch.randint", return_value=negatives):
        their_loss = theirs.calculate_infonce_loss(seq, target, NEGATIVES, TEMPERATURE)
    with mock.patch.object(plugin_loss, "uniform_negatives", return_value=negatives + 1):
        our_loss = ours.calculate_loss(recbole_batch(seq, target, theirs.item_num))
    return their_loss, our_loss


def compare(official, data, dataset_name, steps, move_layer_norm_biases):
    from recbole.trainer import Trainer

    config, theirs, ours, semantic_gap = paired_models(
        official, data, dataset_name, 0.0, move_layer_norm_biases
    )
    theirs.eval()
    ours.eval()  # dropout off; gradients still flow
    their_optimizer = torch.optim.Adam(theirs.parameters(), lr=1e-3, eps=1e-8, weight_decay=1e-6)
    our_optimizer = Trainer(config, ours).optimizer
    train = pd.read_pickle(data / "train_data.df")
    draws = torch.Generator().manual_seed(2)
    loss_gap = 0.0
    for step in range(steps):
        their_optimizer.zero_grad()
        our_optimizer.zero_grad()
        their_loss, our_loss = losses(theirs, ours, *batch(train, step, theirs.item_num, draws))
        their_loss.backward()
        our_loss.backward()
        their_optimizer.step()
        our_optimizer.step()
        loss_gap = max(loss_gap, abs(their_loss.item() - our_loss.item()))
    return semantic_gap, loss_gap, parameter_gaps(theirs, ours)


def dropout_distributions(official, data, dataset_name, draws):
    """Training-mode losses on the first batch over ``draws`` dropout draws each, dropout 0.1 as
    in the recipe. The masks cannot be matched element by element (their histories are padded
    on the left, RecBole's on the right), so the two distributions are compared."""
    _, theirs, ours, _ = paired_models(official, data, dataset_name, 0.1, True)
    theirs.train()
    ours.train()
    seq, target, negatives = batch(
        pd.read_pickle(data / "train_data.df"), 0, theirs.item_num, torch.Generator().manual_seed(2)
    )
    samples = []
    with torch.no_grad():
        for draw in range(draws):
            torch.manual_seed(draw)
            samples.append([loss.item() for loss in losses(theirs, ours, seq, target, negatives)])
    return torch.tensor(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="the authors' code")
    parser.add_argument("--data", type=Path, required=True, help="an `export alphafuse` folder")
    parser.add_argument(
        "--dataset", required=True, help="the plugin's dataset it was exported from"
    )
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--draws", type=int, default=300, help="dropout draws per model")
    parser.add_argument("--out", required=True, help="the markdown table to write")
    args = parser.parse_args()
    check_inputs(args.official, "models/backbone_SASRec.py", args.data)
    lines = [
        f"# One training step at a time: the authors' AlphaFuse SASRec and the plugin's, `{args.dataset}`",
        "",
        f"Machine: {machine()}. Command: `python benchmarks/parity/official_step_parity.py "
        + " ".join(sys.argv[1:])
        + "`.",
        "",
        f"{args.steps} Adam steps of {BATCH} examples, {NEGATIVES} shared InfoNCE negatives, dropout off.",
        "",
        "| start | semantic tables before copying | largest loss difference | ID table | positions | W_q | final LayerNorm |",
        "|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for label, move in (("initial LayerNorms", False), ("LayerNorm biases moved", True)):
        semantic_gap, loss_gap, gaps = compare(
            args.official, args.data, args.dataset, args.steps, move
        )
        cells = " | ".join(f"{value:.1e}" for value in gaps.values())
        lines.append(f"| {label} | {semantic_gap:.1e} | {loss_gap:.1e} | {cells} |")
    samples = dropout_distributions(args.official, args.data, args.dataset, args.draws)
    mean, std = samples.mean(0), samples.std(0)
    z = (mean[0] - mean[1]) / (std.square().sum() / args.draws).sqrt()
    lines += [
        "",
        f"Dropout 0.1 (the recipe's), LayerNorm biases moved, the first batch: the training loss over "
        f"{args.draws} dropout draws per model, mean ± standard deviation: the authors' "
        f"{mean[0]:.5f} ± {std[0]:.5f}, the plugin's {mean[1]:.5f} ± {std[1]:.5f} "
        f"(difference {z:.2f} standard errors).",
    ]
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
