"""The semantic-space decomposition of AlphaFuse (Hu et al., SIGIR 2025), in one function."""

from dataclasses import dataclass

import torch

from recbole_alphafuse import AlphaFuseError


@dataclass
class SemanticDecomposition:
    """What :func:`decompose_language_space` returns.

    Attributes:
        semantic: ``[n, k]`` frozen semantic coordinates of every input row, ``k = hidden_size``
            (or ``hidden_size - null_dim`` in cover mode).
        null_dim: the nullity ``d_n``: width of the trainable ID part.
        eigenvalues: all eigenvalues of the (scaled) covariance, descending.
        basis: ``[d, k]`` the kept eigenvectors (orthonormal columns).
        mean: ``[d]`` the (scaled) mean that was subtracted.
    """

    semantic: torch.Tensor
    null_dim: int
    eigenvalues: torch.Tensor
    basis: torch.Tensor
    mean: torch.Tensor


def decompose_language_space(
    embeddings,
    hidden_size,
    null_dim=None,
    null_thres=None,
    scale=1.0,
    weights=None,
    standardization=True,
    cover=False,
):
    r"""Split the language space into semantic-rich directions and a null space for ID vectors.

    Steps (AlphaFuse, section 3): scale the embeddings by ``scale``; centre them on their mean;
    eigendecompose their covariance :math:`C = U \operatorname{diag}(S) U^\top` (eigenvalues
    descending); take the nullity from ``null_dim`` or, if ``null_thres`` is given, as the number
    of eigenvalues ``<= null_thres``; keep the first ``hidden_size`` directions (``hidden_size -
    null_dim`` in cover mode, where the ID block is concatenated rather than added); with
    ``standardization`` divide each kept coordinate by :math:`\sqrt{S_i}` so each has unit variance.

    Args:
        embeddings: ``[n, d]`` language embeddings, one row per item (no padding row).
        hidden_size: width of the fused item embedding.
        null_dim: nullity when ``null_thres`` is None (0: no null space, e.g. whitening only).
        null_thres: eigenvalue threshold (on the scaled embeddings) that defines the nullity.
        scale: factor applied to the embeddings before everything else.
        weights: optional ``[n]`` non-negative item weights (e.g. interaction counts): the mean
            and covariance become weighted by ``weights / weights.sum()``; uniform if None.
        standardization: whiten the kept coordinates.
        cover: keep ``hidden_size - null_dim`` directions; the caller concatenates the ID block.

    Returns:
        SemanticDecomposition, computed in float64.
    """
    x = torch.as_tensor(embeddings, dtype=torch.float64) * scale
    n, dim = x.shape
    if hidden_size > dim:
        raise AlphaFuseError(
            f"hidden_size={hidden_size} exceeds the language embedding dimension {dim}: "
            f"set hidden_size <= {dim} or use a wider embedding model."
        )
    if weights is None:
        probs = torch.full((n,), 1.0 / n, dtype=torch.float64)
    else:
        probs = torch.as_tensor(weights, dtype=torch.float64)
        if probs.shape != (n,) or (probs < 0).any() or probs.sum() <= 0:
            raise AlphaFuseError(
                f"decomposition weights must be {n} non-negative numbers with a positive sum."
            )
        probs = probs / probs.sum()
    mean = probs @ x
    centred = x - mean
    covariance = centred.T @ (centred * probs[:, None])
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
    eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)

    if null_thres is not None:
        null_dim = int((eigenvalues <= null_thres).sum())
    if null_dim is None or not 0 <= null_dim < hidden_size:
        raise AlphaFuseError(
            f"the null space must have between 0 and hidden_size - 1 = {hidden_size - 1} "
            f"dimensions, got null_dim={null_dim}"
            + (f" from null_thres={null_thres}" if null_thres is not None else "")
            + ": lower null_dim / raise null_thres, or raise hidden_size."
        )

    kept = hidden_size - null_dim if cover else hidden_size
    basis = eigenvectors[:, :kept]
    semantic = centred @ basis
    if standardization:
        # Directions with (numerically) zero variance carry no signal; a floor keeps them finite.
        floor = eigenvalues[0].clamp_min(1e-300) * 1e-12
        semantic = semantic / eigenvalues[:kept].clamp_min(floor).sqrt()
    return SemanticDecomposition(semantic, null_dim, eigenvalues, basis, mean)


def whitened_language(language, width, scale=1.0):
    """``[n_items, width]`` float32 table of the whitened top-``width`` principal coordinates of
    the items' language vectors (row 0, [PAD], excluded from the statistics and kept zero), times
    ``scale``: the no-null-space case of :func:`decompose_language_space`."""
    table = torch.zeros(language.shape[0], width)
    table[1:] = decompose_language_space(language[1:], width, null_dim=0).semantic * scale
    return table
