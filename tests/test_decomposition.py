"""The semantic-space decomposition: exact properties on small matrices."""

import numpy as np
import pytest
import torch

from recbole_alphafuse import AlphaFuseError
from recbole_alphafuse.model.decomposition import decompose_language_space, whitened_language


@pytest.fixture
def embeddings():
    rng = np.random.default_rng(0)
    # Anisotropic, like language embeddings: a few strong directions, a long weak tail.
    mixing = rng.normal(size=(12, 12)) * np.logspace(0, -2, 12)[:, None]
    return torch.from_numpy(rng.normal(size=(200, 12)) @ mixing + 3.0)


def covariance(x, probs=None):
    probs = torch.full((len(x),), 1.0 / len(x), dtype=x.dtype) if probs is None else probs
    centred = x - probs @ x
    return centred.T @ (centred * probs[:, None])


def test_kept_basis_is_orthonormal_and_sorted(embeddings):
    result = decompose_language_space(embeddings, hidden_size=8, null_dim=3)
    assert result.basis.shape == (12, 8)
    assert torch.allclose(
        result.basis.T @ result.basis, torch.eye(8, dtype=torch.float64), atol=1e-10
    )
    assert (result.eigenvalues[:-1] >= result.eigenvalues[1:]).all()
    expected = np.sort(np.linalg.eigvalsh(np.cov(embeddings.numpy().T, bias=True)))[::-1]
    assert np.allclose(result.eigenvalues.numpy(), expected)


def test_whitened_coordinates_have_identity_covariance(embeddings):
    result = decompose_language_space(embeddings, hidden_size=8, null_dim=3)
    assert result.semantic.shape == (200, 8)
    assert torch.allclose(result.semantic.mean(0), torch.zeros(8, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(covariance(result.semantic), torch.eye(8, dtype=torch.float64), atol=1e-8)


def test_without_standardization_coordinates_keep_their_eigenvalues(embeddings):
    result = decompose_language_space(embeddings, hidden_size=8, null_dim=3, standardization=False)
    assert torch.allclose(
        covariance(result.semantic), torch.diag(result.eigenvalues[:8]), atol=1e-8
    )


def test_scale_multiplies_eigenvalues_and_leaves_whitened_part_unchanged(embeddings):
    plain = decompose_language_space(embeddings, hidden_size=8, null_dim=3)
    scaled = decompose_language_space(embeddings, hidden_size=8, null_dim=3, scale=40.0)
    assert torch.allclose(scaled.eigenvalues, plain.eigenvalues * 1600.0)
    assert torch.allclose(scaled.mean, plain.mean * 40.0)
    # Eigenvectors are defined up to sign: compare coordinates up to a per-column sign.
    signs = torch.sign((scaled.semantic * plain.semantic).sum(0))
    assert torch.allclose(scaled.semantic, plain.semantic * signs, atol=1e-8)


def test_nullity_from_threshold_counts_small_eigenvalues(embeddings):
    eigenvalues = decompose_language_space(embeddings, hidden_size=12, null_dim=1).eigenvalues
    threshold = float((eigenvalues[6] + eigenvalues[7]) / 2)  # five eigenvalues below it
    result = decompose_language_space(embeddings, hidden_size=12, null_thres=threshold, null_dim=2)
    assert result.null_dim == 5
    assert result.null_dim == int((eigenvalues <= threshold).sum())


def test_nullity_from_dim(embeddings):
    assert decompose_language_space(embeddings, hidden_size=8, null_dim=3).null_dim == 3
    assert decompose_language_space(embeddings, hidden_size=8, null_dim=0).null_dim == 0


def test_cover_mode_keeps_hidden_minus_null_directions(embeddings):
    result = decompose_language_space(embeddings, hidden_size=8, null_dim=3, cover=True)
    assert result.semantic.shape == (200, 5)
    assert result.basis.shape == (12, 5)
    assert torch.allclose(covariance(result.semantic), torch.eye(5, dtype=torch.float64), atol=1e-8)


def test_popularity_weighting_centres_and_whitens_under_the_weights(embeddings):
    counts = torch.arange(1, 201, dtype=torch.float64) ** 2
    probs = counts / counts.sum()
    result = decompose_language_space(embeddings, hidden_size=8, null_dim=3, weights=counts)
    assert torch.allclose(result.mean, probs @ embeddings)
    assert torch.allclose(probs @ result.semantic, torch.zeros(8, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(
        covariance(result.semantic, probs), torch.eye(8, dtype=torch.float64), atol=1e-8
    )
    uniform = decompose_language_space(embeddings, hidden_size=8, null_dim=3)
    assert not torch.allclose(result.eigenvalues, uniform.eigenvalues)


def test_rank_deficient_input_stays_finite():
    low_rank = torch.randn(20, 3, dtype=torch.float64) @ torch.randn(3, 10, dtype=torch.float64)
    result = decompose_language_space(low_rank, hidden_size=10, null_dim=4)
    assert torch.isfinite(result.semantic).all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"hidden_size": 16, "null_dim": 4}, "exceeds the language embedding dimension 12"),
        ({"hidden_size": 8, "null_dim": 8}, "null_dim=8"),
        ({"hidden_size": 8, "null_dim": -1}, "null_dim=-1"),
        ({"hidden_size": 8, "null_thres": 1e9}, "null_thres=1000000000.0"),
        ({"hidden_size": 8, "null_dim": 2, "weights": torch.zeros(200)}, "positive sum"),
    ],
)
def test_bad_settings_are_refused(embeddings, kwargs, message):
    with pytest.raises(AlphaFuseError, match=message):
        decompose_language_space(embeddings, **kwargs)


def test_whitened_language_keeps_padding_zero_and_scales_unit_variance(embeddings):
    language = torch.cat([torch.zeros(1, 12, dtype=torch.float64), embeddings])
    table = whitened_language(language, 5, scale=0.5)
    assert table.shape == (201, 5) and table.dtype == torch.float32
    assert torch.count_nonzero(table[0]) == 0
    rows = table[1:].double()
    assert torch.allclose(covariance(rows), 0.25 * torch.eye(5, dtype=torch.float64), atol=1e-5)
