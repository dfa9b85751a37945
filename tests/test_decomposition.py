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


def numpy_reference(embeddings, hidden_size, scale=1.0, weights=None, standardization=True):
    """The decomposition done the plain way: the whole matrix in float64, np.cov + np.linalg.eigh."""
    x = np.asarray(embeddings, dtype=np.float64) * scale
    mean = np.average(x, axis=0, weights=weights)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(x.T, bias=True, aweights=weights))
    eigenvalues, eigenvectors = eigenvalues[::-1], eigenvectors[:, ::-1]
    semantic = (x - mean) @ eigenvectors[:, :hidden_size]
    if standardization:
        semantic = semantic / np.sqrt(eigenvalues[:hidden_size])
    return eigenvalues, semantic, mean


@pytest.fixture
def float32_embeddings():
    rng = np.random.default_rng(1)
    # 203 rows (prime: no chunk size below divides it), 16 well-separated principal directions.
    mixing = rng.normal(size=(16, 16)) * np.logspace(0, -1.5, 16)[:, None]
    return (rng.normal(size=(203, 16)) @ mixing + 0.5).astype(np.float32)


def assert_same_up_to_column_sign(actual, expected, rtol):
    signs = np.sign((actual * expected).sum(0))
    np.testing.assert_allclose(
        actual * signs, expected, rtol=rtol, atol=rtol * np.abs(expected).max()
    )


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 203, 4096])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("standardization", [True, False])
def test_chunked_decomposition_matches_numpy_cov_and_eigh(
    float32_embeddings, chunk_size, weighted, standardization
):
    weights = np.arange(1, 204, dtype=np.float64) ** 1.5 if weighted else None
    eigenvalues, semantic, mean = numpy_reference(
        float32_embeddings, 10, scale=3.0, weights=weights, standardization=standardization
    )
    result = decompose_language_space(
        torch.from_numpy(float32_embeddings),
        hidden_size=10,
        null_dim=2,
        scale=3.0,
        weights=None if weights is None else torch.from_numpy(weights),
        standardization=standardization,
        chunk_size=chunk_size,
    )
    np.testing.assert_allclose(result.eigenvalues.numpy(), eigenvalues, rtol=1e-6)
    np.testing.assert_allclose(result.mean.numpy(), mean, rtol=1e-6, atol=1e-12)
    assert result.semantic.dtype == torch.float64
    assert_same_up_to_column_sign(result.semantic.numpy(), semantic, rtol=1e-6)


def test_chunk_size_does_not_change_the_result_beyond_rounding(float32_embeddings):
    whole = decompose_language_space(
        float32_embeddings, hidden_size=10, null_dim=2, chunk_size=10**6
    )
    for chunk_size in (1, 50):
        chunked = decompose_language_space(
            float32_embeddings, hidden_size=10, null_dim=2, chunk_size=chunk_size
        )
        assert torch.allclose(chunked.eigenvalues, whole.eigenvalues, rtol=1e-10, atol=1e-14)
        assert_same_up_to_column_sign(chunked.semantic.numpy(), whole.semantic.numpy(), rtol=1e-8)


def test_float32_semantic_coordinates_are_the_float64_ones_rounded(embeddings):
    exact = decompose_language_space(embeddings, 6, null_dim=2, chunk_size=7)
    rounded = decompose_language_space(
        embeddings, 6, null_dim=2, chunk_size=7, semantic_dtype=torch.float32
    )
    assert rounded.semantic.dtype == torch.float32
    assert torch.equal(rounded.semantic, exact.semantic.float())


def test_input_matrix_is_not_copied_to_float64_as_a_whole(float32_embeddings, monkeypatch):
    # Every float64 conversion of the input goes through chunks of at most chunk_size rows.
    x = torch.from_numpy(float32_embeddings)
    converted = []
    original_to = torch.Tensor.to

    def spying_to(self, *args, **kwargs):
        out = original_to(self, *args, **kwargs)
        if self.dtype == torch.float32 and out.dtype == torch.float64:
            converted.append(self.shape[0])
        return out

    monkeypatch.setattr(torch.Tensor, "to", spying_to)
    decompose_language_space(x, hidden_size=10, null_dim=2, chunk_size=32)
    assert converted and max(converted) <= 32


@pytest.mark.parametrize("chunk_size", [0, -3, 2.5, True])
def test_bad_chunk_size_is_refused(embeddings, chunk_size):
    with pytest.raises(AlphaFuseError, match="chunk_size must be a positive integer"):
        decompose_language_space(embeddings, hidden_size=8, null_dim=2, chunk_size=chunk_size)


@pytest.mark.parametrize("shape", [(0, 12), (12,)])
def test_empty_or_flat_embeddings_are_refused(shape):
    with pytest.raises(AlphaFuseError, match="non-empty \\[n_items, dim\\] matrix"):
        decompose_language_space(torch.zeros(shape), hidden_size=4, null_dim=1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_input_is_decomposed_on_the_gpu(float32_embeddings):
    result = decompose_language_space(
        torch.from_numpy(float32_embeddings).cuda(), hidden_size=10, null_dim=2, chunk_size=64
    )
    assert result.semantic.is_cuda and result.eigenvalues.is_cuda and result.basis.is_cuda
    eigenvalues, semantic, _ = numpy_reference(float32_embeddings, 10)
    np.testing.assert_allclose(result.eigenvalues.cpu().numpy(), eigenvalues, rtol=1e-6)
    assert_same_up_to_column_sign(result.semantic.cpu().numpy(), semantic, rtol=1e-6)
