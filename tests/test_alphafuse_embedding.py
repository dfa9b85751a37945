"""The AlphaFuse item-embedding strategy: fusion layout, frozen part, gradients, padding."""

import pytest
import torch

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.model.item_embedding import AlphaFuseItemEmbedding


@pytest.fixture
def language():
    torch.manual_seed(0)
    table = torch.randn(41, 24) * torch.logspace(0, -1.5, 24)
    table[0] = 0.0  # [PAD]
    return table


def make(language, **kwargs):
    settings = {
        "hidden_size": 16,
        "null_dim": 6,
        "null_thres": None,
        "language_scale": 1.0,
        "standardization": True,
        "cover": False,
        "semantic_scale": 0.5,
        "id_init": "normal",
        "id_init_std": 0.02,
        "train_semantic_scale": False,
    }
    return AlphaFuseItemEmbedding(language, **{**settings, **kwargs})


def test_fused_layout_adds_ids_to_the_last_null_dim_coordinates(language):
    embedding = make(language)
    ids = torch.tensor([[1, 5, 0], [40, 2, 3]])
    fused = embedding(ids)
    assert fused.shape == (2, 3, 16)
    semantic = embedding.semantic[ids] * 0.5
    assert torch.equal(fused[..., :10], semantic[..., :10])
    assert torch.allclose(fused[..., 10:], semantic[..., 10:] + embedding.id_embedding(ids))
    assert torch.allclose(embedding.weight[ids], fused)


def test_cover_mode_concatenates_the_id_block(language):
    embedding = make(language, cover=True)
    assert embedding.semantic.shape == (41, 10)
    fused = embedding.weight
    assert fused.shape == (41, 16)
    assert torch.equal(fused[:, 10:], embedding.id_embedding.weight)


def test_semantic_scale_sets_the_std_of_each_whitened_coordinate(language):
    embedding = make(language, semantic_scale=0.125, id_init="zeros")
    std = embedding.weight[1:].std(dim=0, unbiased=False)
    assert torch.allclose(std, torch.full((16,), 0.125), atol=1e-5)
    unscaled = make(language, semantic_scale=1.0, id_init="zeros")
    assert torch.allclose(unscaled.weight, embedding.weight * 8, atol=1e-5)


def test_a_trained_semantic_scale_is_one_scalar_and_the_directions_stay_frozen(language):
    embedding = make(language, train_semantic_scale=True)
    names = [name for name, _ in embedding.named_parameters()]
    assert names == ["semantic_scale", "id_embedding.weight"]
    semantic_before = embedding.semantic.clone()
    optimizer = torch.optim.SGD(embedding.parameters(), lr=0.1)
    (embedding(torch.tensor([1, 2, 3])) ** 2).sum().backward()
    optimizer.step()
    assert embedding.semantic_scale.item() < 0.5  # shrinking it lowers the squared norm
    assert torch.equal(embedding.semantic, semantic_before)
    assert "semantic_scale" in embedding.state_dict()


def test_semantic_part_is_frozen_and_not_saved(language):
    embedding = make(language)
    assert not embedding.semantic.requires_grad
    assert [name for name, _ in embedding.named_parameters()] == ["id_embedding.weight"]
    assert set(embedding.state_dict()) == {"id_embedding.weight"}


def test_gradients_reach_only_the_id_part_and_padding_stays_zero(language):
    embedding = make(language)
    semantic_before = embedding.semantic.clone()
    optimizer = torch.optim.Adam(embedding.parameters(), lr=0.1, weight_decay=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        ids = torch.tensor([[0, 3, 7], [0, 0, 9]])
        (embedding(ids) ** 2).sum().add(embedding.weight.sum()).backward()
        assert embedding.id_embedding.weight.grad[[3, 7, 9]].abs().sum() > 0
        assert torch.count_nonzero(embedding.id_embedding.weight.grad[0]) == 0
        optimizer.step()
    assert torch.equal(embedding.semantic, semantic_before)
    assert torch.count_nonzero(embedding.weight[0]) == 0


@pytest.mark.parametrize("id_init", ["zeros", "normal", "xavier_normal", "xavier_uniform"])
def test_id_inits_keep_padding_zero(language, id_init):
    weight = make(language, id_init=id_init).id_embedding.weight
    assert torch.count_nonzero(weight[0]) == 0
    assert (torch.count_nonzero(weight[1:]) == 0) == (id_init == "zeros")


def test_null_space_from_threshold(language):
    embedding = make(language, hidden_size=24, null_dim=None, null_thres=0.05, language_scale=1.0)
    assert 0 < embedding.null_dim < 24
    assert embedding.id_embedding.weight.shape == (41, embedding.null_dim)


def test_empty_null_space_is_refused(language):
    with pytest.raises(AlphaFuseError, match="at least 1 dimension"):
        make(language, null_dim=0)
    with pytest.raises(AlphaFuseError, match="raise null_thres"):
        make(language, null_dim=None, null_thres=-1.0)


def test_unknown_id_init_is_refused(language):
    with pytest.raises(AlphaFuseError, match="id_init must be one of"):
        make(language, id_init="orthogonal")
