"""Canonical Huffman coding of integer symbols (NumPy only, used at model load time).

The compact model artefact (:mod:`astrot2.compress.artefact`) stores cluster indices and
quantised weights with this coder.  A stream is self-describing::

    uint16  alphabet size A
    uint8   max code length L
    uint32  number of symbols n
    A x uint8  code length of every symbol of the alphabet (0: unused)
    bytes   the codes, most significant bit first, zero-padded to a byte

Codes are canonical (assigned in order of length, then symbol), so the code lengths alone
define them, and a length-``L`` lookup table decodes without a tree.  Decoding is
vectorised: the symbol and code length starting at *every* bit position are read from the
table at once, and the chain of symbol starts is followed by pointer doubling
(``log2(n)`` gathers) instead of a Python loop over symbols.
"""

from __future__ import annotations

import heapq
import struct

import numpy as np

__all__ = ["MAX_CODE_LENGTH", "code_lengths", "decode", "encode"]

#: Longest code allowed (the decoder's table has 2**L entries).
MAX_CODE_LENGTH = 16
_HEADER = struct.Struct("<HBI")


def code_lengths(counts: np.ndarray, max_length: int = MAX_CODE_LENGTH) -> np.ndarray:
    """Huffman code lengths for symbol counts, limited to ``max_length`` bits.

    Parameters
    ----------
    counts : array-like of int, shape (n_alphabet,)
        Occurrences of each symbol (0 for unused symbols).
    max_length : int
        If the optimal code is longer, the counts are flattened (halved towards 1) until
        it fits; the code stays prefix-free and complete.

    Returns
    -------
    ndarray of uint8, shape (n_alphabet,)
        0 for unused symbols; a single used symbol gets a 1-bit code.
    """
    counts = np.asarray(counts, dtype=np.int64)
    used = np.flatnonzero(counts > 0)
    lengths = np.zeros(len(counts), dtype=np.uint8)
    if len(used) == 0:
        return lengths
    if len(used) == 1:
        lengths[used] = 1
        return lengths
    if len(used) > 2 ** max_length:
        raise ValueError(f"{len(used)} symbols cannot be coded in {max_length} bits")
    weights = counts[used].copy()
    while True:
        # heap of (weight, tie-breaker, symbols under this node)
        heap = [(int(w), i, [i]) for i, w in enumerate(weights)]
        heapq.heapify(heap)
        depth = np.zeros(len(used), dtype=np.int64)
        tie = len(heap)
        while len(heap) > 1:
            w1, _, s1 = heapq.heappop(heap)
            w2, _, s2 = heapq.heappop(heap)
            merged = s1 + s2
            depth[merged] += 1
            heapq.heappush(heap, (w1 + w2, tie, merged))
            tie += 1
        if depth.max() <= max_length:
            lengths[used] = depth
            return lengths
        weights = (weights + 1) // 2  # flatten the distribution and try again


def _canonical(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symbols in canonical order and their codes (as integers)."""
    symbols = np.flatnonzero(lengths)
    order = np.lexsort((symbols, lengths[symbols]))
    symbols = symbols[order]
    lens = lengths[symbols].astype(np.int64)
    codes = np.zeros(len(symbols), dtype=np.int64)
    code = 0
    for i in range(1, len(symbols)):
        code = (code + 1) << int(lens[i] - lens[i - 1])
        codes[i] = code
    return symbols, codes


def encode(symbols: np.ndarray, n_alphabet: int | None = None) -> bytes:
    """Huffman-code non-negative integer symbols into a self-describing byte string.

    Parameters
    ----------
    symbols : array-like of int, shape (n,)
        Values in ``[0, n_alphabet)``.
    n_alphabet : int, optional
        Alphabet size (default ``max(symbols) + 1``), at most 65535.
    """
    symbols = np.asarray(symbols, dtype=np.int64).ravel()
    if symbols.size and symbols.min() < 0:
        raise ValueError("Huffman symbols must be non-negative")
    n_alphabet = int(symbols.max()) + 1 if n_alphabet is None and symbols.size else \
        (n_alphabet or 1)
    if n_alphabet > 0xFFFF or (symbols.size and symbols.max() >= n_alphabet):
        raise ValueError(f"alphabet of {n_alphabet} symbols is not in [max(symbols) + 1, "
                         "65535]")
    lengths = code_lengths(np.bincount(symbols, minlength=n_alphabet))
    max_len = int(lengths.max()) if symbols.size else 0
    order, codes = _canonical(lengths)
    code_of = np.zeros(n_alphabet, dtype=np.int64)
    code_of[order] = codes
    lens = lengths[symbols].astype(np.int64)
    vals = code_of[symbols]
    starts = np.cumsum(lens) - lens
    bits = np.zeros(int(lens.sum()), dtype=np.uint8)
    for j in range(max_len):  # bit j (from the most significant) of every code
        has = lens > j
        bits[starts[has] + j] = (vals[has] >> (lens[has] - 1 - j)) & 1
    return (_HEADER.pack(n_alphabet, max_len, len(symbols)) + lengths.tobytes()
            + np.packbits(bits).tobytes())


def decode(data: bytes | memoryview) -> np.ndarray:
    """Decode a stream of :func:`encode`: the symbols, int64 array of shape (n,).

    Raises
    ------
    ValueError
        If the stream is truncated or inconsistent.
    """
    data = memoryview(data)
    if len(data) < _HEADER.size:
        raise ValueError("Huffman stream shorter than its header")
    n_alphabet, max_len, n = _HEADER.unpack_from(data)
    body = _HEADER.size + n_alphabet
    if len(data) < body or max_len > MAX_CODE_LENGTH:
        raise ValueError("Huffman stream header is corrupt")
    lengths = np.frombuffer(data[_HEADER.size:body], dtype=np.uint8)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if lengths.max() != max_len or max_len == 0:
        raise ValueError("Huffman code lengths are inconsistent")
    if (2.0 ** -lengths[lengths > 0].astype(np.float64)).sum() > 1.0:
        raise ValueError("Huffman code lengths are not a prefix code")
    symbols, _ = _canonical(lengths)
    lens = lengths[symbols].astype(np.int64)
    reps = 2 ** (max_len - lens)
    table_sym = np.repeat(symbols, reps)
    table_len = np.repeat(lens, reps)
    pad = 2 ** max_len - len(table_sym)  # incomplete code (single symbol): invalid slots
    table_sym = np.concatenate([table_sym, np.zeros(pad, dtype=table_sym.dtype)])
    table_len = np.concatenate([table_len, np.zeros(pad, dtype=np.int64)]).astype(np.intp)
    raw = np.frombuffer(data[body:], dtype=np.uint8)
    n_bits = 8 * len(raw)
    padded = np.concatenate([raw, np.zeros(4, dtype=np.uint8)]).astype(np.uint32)
    # 32-bit big-endian word starting at every byte; the code at bit p is in word[p >> 3]
    word = (padded[:-3] << 24) | (padded[1:-2] << 16) | (padded[2:-1] << 8) | padded[3:]
    pos = np.arange(n_bits, dtype=np.uint32)
    window = ((word[pos >> 3] >> (32 - max_len - (pos & 7))) & (2 ** max_len - 1)) \
        .astype(np.intp)
    step = table_len[window]
    # next symbol start from every bit position; n_bits is an absorbing sentinel
    jump = np.minimum(pos.astype(np.intp) + np.where(step > 0, step, n_bits + 1), n_bits)
    jump = np.append(jump, n_bits)
    starts = np.zeros(1, dtype=np.intp)
    while len(starts) < n:  # pointer doubling: starts of the first 2**k symbols
        starts = np.concatenate([starts, jump[starts]])
        if len(starts) < n:
            jump = jump[jump]
    starts = starts[:n]
    if starts[-1] >= n_bits or step[starts].min() == 0 or \
            starts[-1] + step[starts[-1]] > n_bits:
        raise ValueError("Huffman stream is truncated or corrupt")
    return table_sym[window[starts]].astype(np.int64)
