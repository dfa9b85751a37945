"""The semantic-space decomposition of AlphaFuse (Hu et al., SIGIR 2025), in one function."""

from dataclasses import dataclass

import torch

from recbole_alphafuse import AlphaFuseError

# Rows converted to float64 at a time: 4096 x 3072 x 8 bytes = 96 MiB for the widest common
# language embeddings, small next to the d x d covariance work per chunk.
DEFAULT_CHUNK_SIZE = 4096


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


def _row_chunks(n, chunk_size):
    """``(start, stop)`` bounds of consecutive row chunks covering ``range(n)``."""
    return [(start, min(start + chunk_size, n)) for start in range(0, n, chunk_size)]


def decompose_language_space(
    embeddings,
    hidden_size,
    null_dim=None,
    null_thres=None,
    scale=1.0,
    weights=None,
    standardization=True,
    cover=False,
    chunk_size=DEFAULT_CHUNK_SIZE,
    semantic_dtype=torch.float64,
):
    r"""Split the language space into semantic-rich directions and a null space for ID vectors.

    Steps (AlphaFuse, section 3): scale the embeddings by ``scale``; centre them on their mean;
    eigendecompose their covariance :math:`C = U \operatorname{diag}(S) U^\top` (eigenvalues
    descending); take the nullity from ``null_dim`` or, if ``null_thres`` is given, as the number
    of eigenvalues ``<= null_thres``; keep the first ``hidden_size`` directions (``hidden_size -
    null_dim`` in cover mode, where the ID block is concatenated rather than added); with
    ``standardization`` divide each kept coordinate by :math:`\sqrt{S_i}` so each has unit variance.

    The computation streams over chunks of ``chunk_size`` rows, so the ``[n, d]`` input is never
    copied to float64 as a whole: a first pass accumulates the (weighted) mean, a second the
    centred covariance (float64 accumulators; centring before accumulating avoids the
    cancellation of the "second moment minus outer(mean)" formula), and a third the semantic
    coordinates. Extra memory is O(d^2 + chunk_size x d + n x k). Everything, the
    eigendecomposition included, runs on the device of ``embeddings`` (the GPU for a CUDA tensor).

    Args:
        embeddings: ``[n, d]`` language embeddings, one row per item (no padding row): a tensor
            of any floating dtype, or anything ``torch.as_tensor`` accepts (e.g. a numpy array).
        hidden_size: width of the fused item embedding.
        null_dim: nullity when ``null_thres`` is None (0: no null space, e.g. whitening only).
        null_thres: eigenvalue threshold (on the scaled embeddings) that defines the nullity.
        scale: factor applied to the embeddings before everything else.
        weights: optional ``[n]`` non-negative item weights (e.g. interaction counts): the mean
            and covariance become weighted by ``weights / weights.sum()``; uniform if None.
        standardization: whiten the kept coordinates.
        semantic_dtype: dtype of the returned semantic coordinates, each chunk computed in
            float64 then stored in it (float32 halves the largest output at 10^6 items).
        cover: keep ``hidden_size - null_dim`` directions; the caller concatenates the ID block.
        chunk_size: rows converted to float64 at a time; larger is faster and uses more memory.

    Returns:
        SemanticDecomposition, computed in float64, on the device of ``embeddings``.
    """
    x = torch.as_tensor(embeddings)
    if x.ndim != 2 or x.shape[0] == 0:
        raise AlphaFuseError(
            f"the language embeddings must be a non-empty [n_items, dim] matrix, "
            f"got shape {tuple(x.shape)}: check the .itememb file."
        )
    n, dim = x.shape
    if hidden_size > dim:
        raise AlphaFuseError(
            f"hidden_size={hidden_size} exceeds the language embedding dimension {dim}: "
            f"set hidden_size <= {dim} or use a wider embedding model."
        )
    if null_thres is None:
        _check_null_dim(null_dim, hidden_size, null_thres)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise AlphaFuseError(f"chunk_size must be a positive integer, got {chunk_size!r}.")
    device = x.device
    if weights is None:
        probs = torch.full((n,), 1.0 / n, dtype=torch.float64, device=device)
    else:
        probs = torch.as_tensor(weights).to(device=device, dtype=torch.float64)
        if (
            probs.shape != (n,)
            or not torch.isfinite(probs).all()
            or (probs < 0).any()
            or (probs.sum() <= 0)
        ):
            raise AlphaFuseError(
                f"decomposition weights must be {n} non-negative numbers with a positive sum."
            )
        probs = probs / probs.sum()
    chunks = _row_chunks(n, chunk_size)

    def rows(start, stop):
        return x[start:stop].to(dtype=torch.float64) * scale

    mean = torch.zeros(dim, dtype=torch.float64, device=device)
    for start, stop in chunks:
        mean += probs[start:stop] @ rows(start, stop)
    covariance = torch.zeros(dim, dim, dtype=torch.float64, device=device)
    for start, stop in chunks:
        centred = rows(start, stop) - mean
        covariance += centred.T @ (centred * probs[start:stop, None])
    eigenvalues, eigenvectors = _eigh(covariance)
    eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)

    if null_thres is not None:
        null_dim = int((eigenvalues <= null_thres).sum())
        _check_null_dim(null_dim, hidden_size, null_thres)

    kept = hidden_size - null_dim if cover else hidden_size
    basis = eigenvectors[:, :kept].contiguous()
    if standardization:
        # Directions with (numerically) zero variance carry no signal; a floor keeps them finite.
        floor = eigenvalues[0].clamp_min(1e-300) * 1e-12
        projection = basis / eigenvalues[:kept].clamp_min(floor).sqrt()
    else:
        projection = basis
    semantic = torch.empty(n, kept, dtype=semantic_dtype, device=device)
    for start, stop in chunks:
        semantic[start:stop] = (rows(start, stop) - mean) @ projection
    return SemanticDecomposition(semantic, null_dim, eigenvalues, basis, mean)


def _eigh(covariance):
    """``torch.linalg.eigh``; on the CPU in one thread. The d x d eigendecomposition is cheap next
    to the N x d^2 covariance pass, but MKL's multi-threaded solver synchronises its threads
    thousands of times, which on cores busy with other work is far slower than one thread
    (benchmarks/results/decomposition-small.md)."""
    if covariance.device.type != "cpu" or torch.get_num_threads() == 1:
        return torch.linalg.eigh(covariance)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return torch.linalg.eigh(covariance)
    finally:
        torch.set_num_threads(threads)


def _check_null_dim(null_dim, hidden_size, null_thres):
    if null_dim is None or not 0 <= null_dim < hidden_size:
        raise AlphaFuseError(
            f"the null space must have between 0 and hidden_size - 1 = {hidden_size - 1} "
            f"dimensions, got null_dim={null_dim}"
            + (f" from null_thres={null_thres}" if null_thres is not None else "")
            + ": lower null_dim / raise null_thres, or raise hidden_size."
        )


def whitened_language(language, width, scale=1.0):
    """``[n_items, width]`` float32 table of the whitened top-``width`` principal coordinates of
    the items' language vectors (row 0, [PAD], excluded from the statistics and kept zero), times
    ``scale``: the no-null-space case of :func:`decompose_language_space`."""
    table = torch.zeros(language.shape[0], width)
    table[1:] = decompose_language_space(language[1:], width, null_dim=0).semantic * scale
    return table
