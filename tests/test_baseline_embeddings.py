"""The baselines' item-embedding strategies on small tensors."""

import pytest
import torch

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.model.decomposition import decompose_language_space
from recbole_alphafuse.model.item_embedding import (
    AlphaFuseItemEmbedding,
    LLMESRItemEmbedding,
    LLMInitItemEmbedding,
    MoRecItemEmbedding,
    RLMRecItemEmbedding,
    UniSRecItemEmbedding,
    WhitenRecItemEmbedding,
)
from recbole_alphafuse.model.item_embedding.adapter import MoEAdapter


@pytest.fixture
def language():
    torch.manual_seed(0)
    table = torch.randn(31, 12) * torch.logspace(0, -1, 12) + 0.5
    table[0] = 0.0
    return table


@pytest.mark.parametrize(
    "strategy",
    [
        lambda lang: MoRecItemEmbedding(lang, 8),
        lambda lang: WhitenRecItemEmbedding(lang, 8),
        lambda lang: UniSRecItemEmbedding(lang, 8, n_experts=3),
    ],
)
def test_adapters_train_only_the_adapter_and_keep_padding_zero(language, strategy):
    embedding = strategy(language)
    ids = torch.tensor([[0, 4, 7], [3, 0, 30]])
    assert torch.allclose(embedding(ids), embedding.weight[ids], atol=1e-6)
    assert (
        torch.count_nonzero(embedding.weight[0]) == 0
        and torch.count_nonzero(embedding(ids)[0, 0]) == 0
    )
    assert all(name.startswith("adapter.") for name, _ in embedding.named_parameters())
    embedding.weight.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in embedding.parameters())


def test_whitenrec_adapts_whitened_vectors(language):
    whitened = WhitenRecItemEmbedding(language, 8).language[1:].double()
    centred = whitened - whitened.mean(0)
    assert torch.allclose(
        centred.T @ centred / len(centred), torch.eye(12, dtype=torch.float64), atol=1e-4
    )
    assert torch.equal(MoRecItemEmbedding(language, 8).language, language)


def test_identical_experts_reduce_to_one_parametric_whitening(language):
    adapter = MoEAdapter(12, 5, n_experts=4)
    with torch.no_grad():
        adapter.bias.copy_(torch.randn(12).expand(4, 12))
        adapter.proj.copy_(torch.randn(12, 5).expand(4, 12, 5))
    x = language[1:]
    assert torch.allclose(adapter(x), (x - adapter.bias[0]) @ adapter.proj[0], atol=1e-5)


def test_llminit_starts_from_the_scaled_whitened_pca_and_trains(language):
    embedding = LLMInitItemEmbedding(language, 6, semantic_scale=0.125)
    expected = decompose_language_space(language[1:], 6, null_dim=0).semantic * 0.125
    assert torch.allclose(embedding.weight[1:], expected.float(), atol=1e-6)
    assert torch.count_nonzero(embedding.weight[0]) == 0
    assert embedding.embedding.weight.requires_grad


@pytest.mark.parametrize("variant", ["con", "gen"])
def test_rlmrec_alignment_loss_trains_ids_and_mlp(language, variant):
    embedding = RLMRecItemEmbedding(
        language, 8, variant=variant, beta=0.1, temperature=0.2, initializer_range=0.02
    )
    loss = embedding.auxiliary_loss(torch.tensor([0, 3, 3, 9, 17]))
    assert loss > 0
    loss.backward()
    assert embedding.embedding.weight.grad[[3, 9, 17]].abs().sum() > 0
    assert torch.count_nonzero(embedding.embedding.weight.grad[0]) == 0
    assert all(p.grad is not None for p in embedding.mlp.parameters())


def test_rlmrec_unknown_variant_and_other_strategies_add_no_loss(language):
    with pytest.raises(AlphaFuseError, match="rlm_variant must be one of"):
        RLMRecItemEmbedding(
            language, 8, variant="both", beta=0.1, temperature=0.2, initializer_range=0.02
        )
    alphafuse = AlphaFuseItemEmbedding(
        language,
        8,
        null_dim=2,
        null_thres=None,
        language_scale=1.0,
        standardization=True,
        cover=False,
        semantic_scale=1.0,
        id_init="normal",
        id_init_std=0.02,
        train_semantic_scale=False,
    )
    assert alphafuse.auxiliary_loss(torch.tensor([1, 2])) == 0.0


def test_dual_view_concatenates_an_id_view_and_an_adapted_language_view(language):
    embedding = LLMESRItemEmbedding(language, 8, semantic_scale=0.125, beta=0.1, temperature=0.2)
    ids = torch.tensor([[0, 5, 9]])
    id_view, semantic_view = embedding.views(ids)
    assert id_view.shape == semantic_view.shape == (1, 3, 4)
    assert torch.equal(embedding(ids), torch.cat([id_view, semantic_view], -1))
    assert torch.allclose(embedding.weight[ids], embedding(ids), atol=1e-6)
    assert torch.count_nonzero(embedding.weight[0]) == 0
    expected = decompose_language_space(language[1:], 4, null_dim=0).semantic * 0.125
    assert torch.allclose(embedding.id_view.weight[1:], expected.float(), atol=1e-6)
    loss = embedding.auxiliary_loss(torch.tensor([3, 5, 9, 9]))
    loss.backward()
    assert loss > 0 and embedding.id_view.weight.grad[[3, 5, 9]].abs().sum() > 0
    assert all(p.grad is not None for p in embedding.adapter.parameters())
