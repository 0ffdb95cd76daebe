"""The embedded Reber grammar (Fahlman 1991; Hochreiter and Schmidhuber 1997).

:func:`embedded_reber` generates strings encoded for next-symbol prediction, with the one
long-range dependency marked (:class:`ReberBatch`); :func:`is_reber` and
:func:`is_embedded_reber` check strings.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from torch import Tensor

REBER_SYMBOLS = "BTSXPVE"
"""The alphabet of the Reber grammars, in the order of the one-hot channels."""

# The Reber grammar as a finite automaton: state -> {symbol: next state}. State 0 expects the
# opening B; state 7 has read the closing E. Examples: BTXSE, BPVVE, BTSSXXTVVE, BPTVPSE.
#
#   0 -B-> 1 -T-> 2 (S loops) -X-> 4 -S-> 6 -E-> 7
#          1 -P-> 3 (T loops) -V-> 5 -V-> 6
#                 4 -X-> 3          5 -P-> 4
_REBER: dict[int, dict[str, int]] = {
    0: {"B": 1},
    1: {"T": 2, "P": 3},
    2: {"S": 2, "X": 4},
    3: {"T": 3, "V": 5},
    4: {"X": 3, "S": 6},
    5: {"P": 4, "V": 6},
    6: {"E": 7},
    7: {},
}
_REBER_ACCEPT = 7

# Embedded grammar: B, then T or P, then a Reber string, then the same T or P, then E. A state
# is (phase, inner Reber state, branch symbol).
_State = tuple[str, int, str]


def _embedded_transitions(state: _State) -> dict[str, _State]:
    phase, inner, branch = state
    if phase == "start":
        return {"B": ("choice", 0, "")}
    if phase == "choice":
        return {b: ("inner", 0, b) for b in "TP"}
    if phase == "inner":
        moves: dict[str, _State] = {s: ("inner", nxt, branch) for s, nxt in _REBER[inner].items()}
        if inner == _REBER_ACCEPT:
            return {branch: ("close", 0, branch)}
        return moves
    if phase == "close":
        return {"E": ("accept", 0, branch)}
    return {}


def _allowed_next_sets(string: str) -> list[str] | None:
    """Allowed next symbols after each prefix ``string[:k+1]``, or ``None`` if invalid."""
    state: _State = ("start", 0, "")
    allowed: list[str] = []
    for symbol in string:
        moves = _embedded_transitions(state)
        if symbol not in moves:
            return None
        state = moves[symbol]
        allowed.append("".join(sorted(_embedded_transitions(state), key=REBER_SYMBOLS.index)))
    return allowed if state[0] == "accept" else None


def is_reber(string: str) -> bool:
    """Whether ``string`` belongs to the Reber grammar (e.g. ``"BTSSXXTVVE"``).

    Example:
        >>> is_reber("BPVVE"), is_reber("BPVE")
        (True, False)
    """
    state = 0
    for symbol in string:
        if symbol not in _REBER[state]:
            return False
        state = _REBER[state][symbol]
    return state == _REBER_ACCEPT


def is_embedded_reber(string: str) -> bool:
    """Whether ``string`` belongs to the embedded Reber grammar: ``B (T|P) reber (same T|P) E``.

    Example:
        >>> is_embedded_reber("BTBPVVETE"), is_embedded_reber("BTBPVVEPE")
        (True, False)
    """
    return _allowed_next_sets(string) is not None


def _sample_embedded(rng: random.Random) -> str:
    state: _State = ("start", 0, "")
    out = []
    while state[0] != "accept":
        moves = _embedded_transitions(state)
        symbol = rng.choice(sorted(moves))
        out.append(symbol)
        state = moves[symbol]
    return "".join(out)


@dataclass(frozen=True)
class ReberBatch:
    """Embedded Reber strings encoded for next-symbol prediction (batch first, padded).

    Step ``t`` of sequence ``b`` reads symbol ``t`` of the string and predicts symbol
    ``t + 1``; a string of ``n`` symbols gives ``n - 1`` steps (its ``length``).

    Attributes:
        inputs: one-hot symbols ``(N, T_max, 7)`` in the order of :data:`REBER_SYMBOLS`;
            zeros past each length.
        next_symbol: index of the actual next symbol ``(N, T_max)``, ``-100`` past each length
            (``ignore_index`` of ``torch.nn.functional.cross_entropy``).
        allowed: multi-hot set of the symbols the grammar allows next ``(N, T_max, 7)``; the
            classic target (Fahlman 1991), zeros past each length.
        lengths: steps per sequence ``(N,)``.
        long_range: ``(N, T_max)`` boolean, true at the one step per sequence whose next symbol
            is the repeated T/P (``string[-2]``, which must equal ``string[1]``): the input
            there is the closing E of the inner string, and only memory of ``string[1]``
            predicts the target.
        strings: the generated strings.
    """

    inputs: Tensor
    next_symbol: Tensor
    allowed: Tensor
    lengths: Tensor
    long_range: Tensor
    strings: tuple[str, ...]


def embedded_reber(num_samples: int, seed: int, *, max_length: int | None = None) -> ReberBatch:
    """Generate strings of the embedded Reber grammar, encoded for next-symbol prediction.

    The Reber grammar (Reber 1967) is the automaton in this module (``B``, then ``T`` or
    ``P``, loops on ``S`` / ``T``, ..., ``E``); every branch is taken with probability 1/2. The
    embedded grammar wraps a Reber string as ``B T <reber> T E`` or ``B P <reber> P E``, so the
    second-to-last symbol repeats the second one across the whole inner string (Fahlman 1991;
    Hochreiter and Schmidhuber 1997). Lengths vary (9 symbols at least, about 12 on average).

    Targets, both given: ``allowed`` is the set of grammatical next symbols, the classic target
    (a prediction is correct when the symbol it ranks first is in the set, or, with sigmoid
    outputs, when exactly the allowed symbols pass 0.5); ``next_symbol`` is the symbol that
    actually follows, for cross-entropy training. On every step but two the allowed set is the
    whole truth a model can know. The two exceptions: the step after the first ``B`` (T or P
    with probability 1/2 each, unpredictable) and the ``long_range`` step, where the next
    symbol is determined but only by memory. Baselines: a model that knows the inner grammar
    but forgets the branch ranks the right symbol first at the long-range step with
    probability 1/2, so its long-range accuracy is 0.5; on all other steps it can score 1.

    Args:
        num_samples: number of strings ``N``.
        seed: seeds a ``random.Random``; the same seed gives the same strings.
        max_length: if given, strings longer than this many symbols are redrawn (at least 9).

    Returns:
        A :class:`ReberBatch`; pass ``batch.lengths`` as the layers' ``lengths=``.

    Example:
        >>> batch = embedded_reber(3, seed=0)
        >>> all(is_embedded_reber(s) for s in batch.strings)
        True
        >>> batch.inputs.shape[-1], int(batch.long_range.sum())
        (7, 3)
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if max_length is not None and max_length < 9:
        raise ValueError(
            f"max_length must be >= 9 (the shortest string, BTBTXSETE), got {max_length}"
        )
    rng = random.Random(seed)
    strings: list[str] = []
    while len(strings) < num_samples:
        string = _sample_embedded(rng)
        if max_length is None or len(string) <= max_length:
            strings.append(string)
    steps = max(len(s) for s in strings) - 1
    channels = len(REBER_SYMBOLS)
    inputs = torch.zeros(num_samples, steps, channels)  # (N, T_max, 7)
    next_symbol = torch.full((num_samples, steps), -100, dtype=torch.long)  # (N, T_max)
    allowed = torch.zeros(num_samples, steps, channels)  # (N, T_max, 7)
    long_range = torch.zeros(num_samples, steps, dtype=torch.bool)  # (N, T_max)
    lengths = torch.tensor([len(s) - 1 for s in strings], dtype=torch.long)
    for b, string in enumerate(strings):
        sets = _allowed_next_sets(string)
        if sets is None:  # the sampler follows the automaton, so this cannot happen
            raise RuntimeError(f"generated an invalid embedded Reber string {string!r}")
        codes = [REBER_SYMBOLS.index(s) for s in string]
        for t in range(len(string) - 1):
            inputs[b, t, codes[t]] = 1.0
            next_symbol[b, t] = codes[t + 1]
            for s in sets[t]:
                allowed[b, t, REBER_SYMBOLS.index(s)] = 1.0
        long_range[b, len(string) - 3] = True
    return ReberBatch(inputs, next_symbol, allowed, lengths, long_range, tuple(strings))
