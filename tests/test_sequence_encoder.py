"""The two history encoders of the SASRec backbone: the reference block's math on small tensors,
and the ID-only SASRec on the backbone against RecBole's own SASRec."""

import math

import pytest
import torch
from conftest import build_model
from recbole.model.sequential_recommender import SASRec
from torch import nn

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.model.sequence_encoder import (
    ReferenceBlock,
    ReferenceSASRecEncoder,
    build_sequence_encoder,
    in_length_groups,
)

CONFIG = {"n_layers": 1, "n_heads": 2, "hidden_dropout_prob": 0.0, "encoder": "reference"}


@pytest.fixture
def encoder():
    torch.manual_seed(0)
    return ReferenceSASRecEncoder(CONFIG, hidden_size=8, max_seq_length=5).eval()


def histories():
    """Two histories in RecBole's layout (items first, then padding 0): lengths 3 and 5."""
    return torch.tensor([[4, 7, 2, 0, 0], [1, 2, 3, 4, 5]])


def test_reference_magnitudes_at_init_are_pytorch_defaults(encoder):
    positions = encoder.position_embedding.weight
    assert positions.std().item() == pytest.approx(1.0, abs=0.35)  # normal(0, 1), not 0.02
    block = encoder.blocks[0]
    bound = 1 / math.sqrt(8)  # default Linear init: uniform(+-1/sqrt(fan_in))
    for linear in (block.query, block.key, block.value, *block.feed_forward[::2]):
        assert linear.weight.abs().max() <= bound and linear.weight.abs().max() > bound / 2
        assert linear.bias.abs().max() > 0
    for norm in (block.query_norm, block.feed_forward_input_norm, block.feed_forward_norm):
        assert torch.equal(norm.weight, torch.ones(8)) and torch.equal(norm.bias, torch.zeros(8))
    # The feed-forward is h -> h wide with a ReLU, and there is no output projection.
    assert [m.__class__ for m in block.feed_forward] == [nn.Linear, nn.ReLU, nn.Linear]
    assert block.feed_forward[0].out_features == 8
    assert not any(name.startswith("out") for name, _ in block.named_children())


def test_reference_state_is_causal_and_ignores_padding(encoder):
    items = torch.randn(2, 5, 8)
    states = encoder(items, histories())
    assert states.shape == (2, 5, 8)
    # A later item (or what stands in a padded slot) never changes earlier states.
    changed = items.clone()
    changed[1, 4] += 1.0
    changed[0, 3:] = torch.randn(2, 8)
    again = encoder(changed, histories())
    assert torch.allclose(again[1, :4], states[1, :4], atol=1e-6)
    assert torch.allclose(again[0, :3], states[0, :3], atol=1e-6)
    assert not torch.allclose(again[1, 4], states[1, 4])
    # Every padded position gives LayerNorm(0) = its bias.
    assert torch.allclose(states[0, 3:], encoder.final_norm.bias.expand(2, 8))


def test_reference_positions_count_back_from_the_newest_item(encoder):
    """The newest item takes the last position whatever the history length, as in the reference's
    left-padded histories: a history's last state is the same in a longer padded window."""
    items = torch.randn(1, 5, 8)
    short = encoder(items[:, :3], torch.tensor([[4, 7, 2]]))
    padded = encoder(items, torch.tensor([[4, 7, 2, 0, 0]]))
    assert torch.allclose(short[0, 2], padded[0, 2], atol=1e-6)


@pytest.mark.parametrize("encoder_name", ["recbole", "reference"])
@pytest.mark.parametrize("n_layers", [1, 2])
def test_last_state_is_the_full_forward_at_the_last_item(encoder_name, n_layers):
    """The backbone reads ``last_state``; the reference encoder computes its last block there
    only, which must give the state ``forward`` gives at each history's last real item."""
    torch.manual_seed(2)
    config = {
        **CONFIG,
        "encoder": encoder_name,
        "n_layers": n_layers,
        "inner_size": 16,
        "attn_dropout_prob": 0.0,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-12,
        "initializer_range": 0.02,
    }
    sequence_encoder = build_sequence_encoder(config, 8, 5).eval()
    items = torch.randn(2, 5, 8)
    last = sequence_encoder.last_state(items, histories())
    full = sequence_encoder(items, histories())
    assert last.shape == (2, 8)
    assert torch.allclose(last, torch.stack([full[0, 2], full[1, 4]]), atol=1e-6)


@pytest.mark.parametrize("encoder_name", ["recbole", "reference"])
def test_length_groups_give_the_whole_batch_states_and_gradients(encoder_name, monkeypatch):
    """Encoding histories in groups of similar length, cut after each group's longest, changes
    no state of a real position and no gradient."""
    torch.manual_seed(3)
    config = {
        **CONFIG,
        "encoder": encoder_name,
        "n_layers": 2,
        "inner_size": 16,
        "attn_dropout_prob": 0.0,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-12,
        "initializer_range": 0.02,
    }
    sequence_encoder = build_sequence_encoder(config, 8, 12).eval()
    monkeypatch.setattr("recbole_alphafuse.model.sequence_encoder.LENGTH_GROUP_ROWS", 3)
    lengths = torch.tensor([1, 12, 4, 7, 2, 9, 4, 1, 11, 5])
    item_seq = torch.where(
        torch.arange(12) < lengths[:, None], torch.randint(1, 30, (10, 12)), torch.tensor(0)
    )
    real = item_seq != 0
    results = []
    for grouped in (False, True):
        items = torch.randn(10, 12, 8, generator=torch.Generator().manual_seed(4))
        items.requires_grad_()
        if grouped:
            states = in_length_groups(sequence_encoder, items, item_seq)
            last = in_length_groups(sequence_encoder.last_state, items, item_seq, last_only=True)
        else:
            states = sequence_encoder(items, item_seq)
            last = sequence_encoder.last_state(items, item_seq)
        (states[real].square().sum() + last.sum()).backward()
        results.append((states[real], last, items.grad))
    for grouped, whole in zip(results[1], results[0]):
        assert torch.allclose(grouped, whole, atol=1e-5)


def test_reference_block_formula_by_hand():
    """One head: y = LN(z + W2 ReLU(W1 z)), z = LN(softmax(causal QK^T / sqrt(h)) V + LN(x))."""
    torch.manual_seed(1)
    block = ReferenceBlock(4, 1, 0.0).eval()
    x = torch.randn(1, 3, 4)
    allowed = torch.ones(3, 3, dtype=torch.bool).tril().unsqueeze(0)
    queries = nn.functional.layer_norm(x, (4,))
    scores = block.query(queries) @ block.key(x).transpose(-1, -2) / 2.0
    scores = scores.masked_fill(~allowed, float("-inf"))
    z = nn.functional.layer_norm(torch.softmax(scores, -1) @ block.value(x) + queries, (4,))
    expected = nn.functional.layer_norm(z + block.feed_forward(z), (4,))
    assert torch.allclose(block(x, allowed), expected, atol=1e-6)


def test_unknown_encoder_is_refused():
    with pytest.raises(AlphaFuseError, match="encoder must be one of"):
        build_sequence_encoder({**CONFIG, "encoder": "bert"}, 8, 5)


@pytest.mark.parametrize("encoder_name", ["recbole", "reference"])
def test_every_sasrec_backbone_model_trains_with_either_encoder(slice_root, encoder_name):
    for name in ("IDSASRec", "AlphaFuseSASRec"):
        _, model, train_data, _ = build_model(slice_root, name, encoder=encoder_name)
        batch = next(iter(train_data))
        loss = model.calculate_loss(batch)
        loss.backward()
        assert torch.isfinite(loss)
        assert model.sequence_encoder.position_embedding.weight.grad.abs().sum() > 0


def test_id_sasrec_has_recboles_sasrec_parameters_and_scores(slice_root):
    config, model, train_data, _ = build_model(slice_root, "IDSASRec", loss_type="CE")
    recbole_sasrec = SASRec(config, train_data._dataset)
    # RecBole's parameter names, one level deeper: sequence_encoder.*, item_embedding.embedding.
    recbole_names = {
        name: name.replace("sequence_encoder.", "").replace(
            "item_embedding.embedding.", "item_embedding."
        )
        for name in model.state_dict()
    }
    theirs = recbole_sasrec.state_dict()
    assert sorted(recbole_names.values()) == sorted(theirs)
    assert all(
        model.state_dict()[ours].shape == theirs[name].shape for ours, name in recbole_names.items()
    )
    # Same weights in, same scores and loss out ([PAD] row zeroed, as the backbone keeps it).
    with torch.no_grad():
        recbole_sasrec.item_embedding.weight[0].zero_()
    model.load_state_dict({ours: theirs[name] for ours, name in recbole_names.items()})
    model.eval(), recbole_sasrec.eval()
    batch = next(iter(train_data))
    assert torch.allclose(
        model.full_sort_predict(batch), recbole_sasrec.full_sort_predict(batch), atol=1e-5
    )
    assert torch.allclose(
        model.calculate_loss(batch), recbole_sasrec.calculate_loss(batch), atol=1e-5
    )
