"""Generated sequence tasks with known difficulty, deterministic given a seed.

Every generator takes a seed (the same seed gives the same data) and documents the score of
the baseline a model without memory reaches, so a study can say whether a cell beat it.

- :func:`adding_problem` (Hochreiter and Schmidhuber 1997; Le et al. 2015): each input is ``T``
  steps of two features, a value ``u_t ~ U(0, 1)`` and a marker that is 1 at exactly two steps
  (one in the first half, one in the second) and 0 elsewhere. The target is the sum of the two
  marked values, so it follows a triangular distribution on ``[0, 2]`` with mean 1 and
  variance 1/6: a model that always predicts the mean scores MSE ``1/6 ~ 0.167``.
- :func:`copy_memory` (Arjovsky et al. 2016): remember 10 symbols over ``T`` steps; the
  memoryless baseline has cross-entropy ``10 log(8) / (T + 20)``.
- :func:`embedded_reber` (Fahlman 1991; Hochreiter and Schmidhuber 1997): next-symbol
  prediction on strings of the embedded Reber grammar, with the one long-range dependency
  marked; :func:`is_reber` and :func:`is_embedded_reber` check strings.
- :func:`mackey_glass` (Mackey and Glass 1977): the chaotic delay-differential series with
  ``tau = 17``, and :func:`prediction_windows` to cut one-step or multi-step forecasting pairs.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch
from torch import Tensor

ADDING_MEAN_PREDICTOR_MSE = 1.0 / 6.0


def adding_problem(num_samples: int, length: int, seed: int) -> tuple[Tensor, Tensor]:
    """Generate the adding problem.

    Args:
        num_samples: number of sequences ``N``.
        length: sequence length ``T`` (at least 2).
        seed: the generator seed; the same seed gives the same data.

    Returns:
        ``inputs`` of shape ``(N, T, 2)`` and ``targets`` of shape ``(N, 1)``.

    Example:
        >>> x, y = adding_problem(4, 50, seed=0)
        >>> x.shape, y.shape
        (torch.Size([4, 50, 2]), torch.Size([4, 1]))
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if length < 2:
        raise ValueError(f"length must be >= 2 for two markers, got {length}")
    gen = torch.Generator().manual_seed(seed)
    values = torch.rand(num_samples, length, generator=gen)  # (N, T)
    half = length // 2
    first = torch.randint(0, half, (num_samples,), generator=gen)  # (N,)
    second = torch.randint(half, length, (num_samples,), generator=gen)  # (N,)
    markers = torch.zeros(num_samples, length)
    rows = torch.arange(num_samples)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    inputs = torch.stack([values, markers], dim=-1)  # (N, T, 2)
    targets = (values[rows, first] + values[rows, second]).unsqueeze(1)  # (N, 1)
    return inputs, targets


# --------------------------------------------------------------------------- copy memory

COPY_MEMORY_LENGTH = 10
COPY_ALPHABET_SIZE = 8
COPY_BLANK = 0


def copy_memory_delimiter(alphabet_size: int = COPY_ALPHABET_SIZE) -> int:
    """The delimiter token of :func:`copy_memory`: ``alphabet_size + 1`` (9 by default)."""
    return alphabet_size + 1


def copy_memory_vocabulary_size(alphabet_size: int = COPY_ALPHABET_SIZE) -> int:
    """Number of token kinds in :func:`copy_memory`: blank, the symbols, the delimiter."""
    return alphabet_size + 2


def copy_memory(
    num_samples: int,
    length: int,
    seed: int,
    *,
    memory_length: int = COPY_MEMORY_LENGTH,
    alphabet_size: int = COPY_ALPHABET_SIZE,
) -> tuple[Tensor, Tensor]:
    """Generate the copy-memory task (Arjovsky, Shah and Bengio 2016).

    Tokens: ``0`` is the blank, ``1..alphabet_size`` are the symbols, ``alphabet_size + 1``
    is the delimiter. With ``M = memory_length`` (10) and ``K = alphabet_size`` (8), each
    sequence has ``T + 2M`` steps::

        input:   s_1 .. s_M   0 .. 0 (T - 1 blanks)   :   0 .. 0 (M blanks)
        target:  0 ..................... 0 (T + M blanks)   s_1 .. s_M

    with ``s_i`` uniform on the ``K`` symbols, independently. The delimiter ``:`` sits at
    step ``M + T - 1``, so ``T`` steps separate each symbol from the step it must be recalled
    at. The memoryless baseline predicts a blank for the first ``T + M`` steps and the uniform
    distribution over the symbols for the last ``M``: its cross-entropy per step is
    ``M log(K) / (T + 2M)`` (:func:`copy_memory_baseline_cross_entropy`), its accuracy per step
    ``(T + M + M / K) / (T + 2M)`` and its accuracy on the ``M`` recalled steps ``1 / K``
    (:func:`copy_memory_baseline_accuracy`).

    Args:
        num_samples: number of sequences ``N``.
        length: the delay ``T`` (at least 1).
        seed: the generator seed; the same seed gives the same data.
        memory_length: number of symbols to remember ``M``.
        alphabet_size: number of distinct symbols ``K`` (at least 2).

    Returns:
        ``inputs`` and ``targets``, both integer tokens of shape ``(N, T + 2M)``.

    Example:
        >>> x, y = copy_memory(2, 5, seed=0)
        >>> x.shape, y.shape
        (torch.Size([2, 25]), torch.Size([2, 25]))
        >>> bool((y[:, -10:] == x[:, :10]).all())
        True
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if length < 1:
        raise ValueError(f"length (the delay T) must be >= 1, got {length}")
    if memory_length < 1:
        raise ValueError(f"memory_length must be >= 1, got {memory_length}")
    if alphabet_size < 2:
        raise ValueError(f"alphabet_size must be >= 2, got {alphabet_size}")
    gen = torch.Generator().manual_seed(seed)
    steps = length + 2 * memory_length
    symbols = torch.randint(1, alphabet_size + 1, (num_samples, memory_length), generator=gen)
    inputs = torch.full((num_samples, steps), COPY_BLANK, dtype=torch.long)  # (N, T + 2M)
    inputs[:, :memory_length] = symbols
    inputs[:, memory_length + length - 1] = copy_memory_delimiter(alphabet_size)
    targets = torch.full((num_samples, steps), COPY_BLANK, dtype=torch.long)  # (N, T + 2M)
    targets[:, -memory_length:] = symbols
    return inputs, targets


def copy_memory_baseline_cross_entropy(
    length: int,
    *,
    memory_length: int = COPY_MEMORY_LENGTH,
    alphabet_size: int = COPY_ALPHABET_SIZE,
) -> float:
    """Cross-entropy per step (nats) of the memoryless baseline: ``M log(K) / (T + 2M)``.

    Example:
        >>> round(copy_memory_baseline_cross_entropy(100), 4)
        0.1733
    """
    if length < 1:
        raise ValueError(f"length (the delay T) must be >= 1, got {length}")
    return memory_length * math.log(alphabet_size) / (length + 2 * memory_length)


def copy_memory_baseline_accuracy(
    length: int,
    *,
    memory_length: int = COPY_MEMORY_LENGTH,
    alphabet_size: int = COPY_ALPHABET_SIZE,
    recall_only: bool = False,
) -> float:
    """Expected accuracy of the memoryless baseline (blanks, then a guessed symbol).

    Args:
        length: the delay ``T``.
        memory_length: ``M``.
        alphabet_size: ``K``.
        recall_only: score only the ``M`` recall steps (``1 / K``) instead of all
            ``T + 2M`` steps (``(T + M + M / K) / (T + 2M)``).
    """
    if length < 1:
        raise ValueError(f"length (the delay T) must be >= 1, got {length}")
    if recall_only:
        return 1.0 / alphabet_size
    steps = length + 2 * memory_length
    return (length + memory_length + memory_length / alphabet_size) / steps


# --------------------------------------------------------------------------- embedded Reber

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


# --------------------------------------------------------------------------- Mackey-Glass


def mackey_glass(
    length: int,
    *,
    seed: int | None = None,
    tau: float = 17.0,
    beta: float = 0.2,
    gamma: float = 0.1,
    n: float = 10.0,
    dt: float = 0.1,
    sample_every: float = 1.0,
    discard: int = 500,
    x0: float = 1.2,
) -> Tensor:
    r"""The Mackey-Glass series, sampled every ``sample_every`` time units.

    Integrates the delay differential equation (Mackey and Glass 1977)

    .. math::
        \frac{dx}{dt} = \beta \frac{x(t - \tau)}{1 + x(t - \tau)^n} - \gamma x(t)

    with fourth-order Runge-Kutta on a fine step ``dt`` (the delayed value at a half step is the
    mean of its two grid neighbours), then keeps one value every ``sample_every``. With the
    standard ``tau = 17, beta = 0.2, gamma = 0.1, n = 10`` the series is chaotic: aperiodic
    but bounded (about 0.4 to 1.35) and quasi-periodic, with a dominant period near 50 time
    units. The history on ``[-tau, 0]`` is ``x0`` (1.2, the classic choice); with a ``seed`` each
    history point gets uniform noise in ``[-0.1, 0.1]``, so different seeds give different
    trajectories. The first ``discard`` samples (the transient) are dropped. Baseline for
    forecasting: the mean predictor has normalized RMSE 1 (see :func:`prediction_windows`).

    Args:
        length: number of samples returned.
        seed: ``None`` for the classic constant history, an integer for a perturbed one.
        tau, beta, gamma, n: the equation's parameters.
        dt: integration step; ``tau`` and ``sample_every`` must be whole multiples of it.
        sample_every: time between returned samples.
        discard: samples dropped at the start.
        x0: value of the history.

    Returns:
        The series, float32 of shape ``(length,)``.

    Example:
        >>> x = mackey_glass(300)
        >>> x.shape, bool(0.1 < x.min() and x.max() < 1.5)
        (torch.Size([300]), True)
    """
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    if discard < 0:
        raise ValueError(f"discard must be >= 0, got {discard}")
    if dt <= 0 or tau <= 0 or sample_every <= 0:
        raise ValueError(f"dt, tau and sample_every must be > 0, got {dt}, {tau}, {sample_every}")
    delay = round(tau / dt)
    every = round(sample_every / dt)
    if abs(delay * dt - tau) > 1e-9 * tau or abs(every * dt - sample_every) > 1e-9 * sample_every:
        raise ValueError(
            f"tau={tau} and sample_every={sample_every} must be whole multiples of dt={dt}"
        )
    rng = random.Random(seed)
    noise = 0.0 if seed is None else 0.1
    history = [x0 + noise * (2.0 * rng.random() - 1.0) for _ in range(delay + 1)]

    def slope(x: float, x_lag: float) -> float:
        return beta * x_lag / (1.0 + x_lag**n) - gamma * x

    xs = history  # xs[k] is x at time (k - delay) * dt
    samples = []
    total = (discard + length) * every
    for k in range(delay, delay + total):
        x, lag, lag_next = xs[k], xs[k - delay], xs[k - delay + 1]
        lag_mid = 0.5 * (lag + lag_next)
        k1 = slope(x, lag)
        k2 = slope(x + 0.5 * dt * k1, lag_mid)
        k3 = slope(x + 0.5 * dt * k2, lag_mid)
        k4 = slope(x + dt * k3, lag_next)
        xs.append(x + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4))
        if (k + 1 - delay) % every == 0:
            samples.append(xs[-1])
    return torch.tensor(samples[discard:], dtype=torch.float32)


def prediction_windows(
    series: Tensor, window: int, horizon: int = 1, stride: int = 1
) -> tuple[Tensor, Tensor]:
    """Cut a series into (past window, next ``horizon`` values) forecasting pairs.

    Pair ``k`` reads ``series[k*stride : k*stride + window]`` and predicts the ``horizon``
    values that follow; ``horizon=1`` is one-step prediction. A mean predictor scores
    normalized RMSE 1; repeating the last input value is the persistence baseline.

    Args:
        series: ``(T,)`` or ``(T, F)``.
        window: steps the model reads.
        horizon: steps it predicts.
        stride: shift between consecutive pairs.

    Returns:
        ``inputs`` of shape ``(N, window, F)`` (``F = 1`` for a 1-D series) and ``targets`` of
        shape ``(N, horizon)`` for a 1-D series, ``(N, horizon, F)`` otherwise, with
        ``N = (T - window - horizon) // stride + 1``.

    Example:
        >>> x, y = prediction_windows(torch.arange(10.0), window=4, horizon=2, stride=2)
        >>> x.shape, y.shape, y[0].tolist()
        (torch.Size([3, 4, 1]), torch.Size([3, 2]), [4.0, 5.0])
    """
    if series.dim() not in (1, 2):
        raise ValueError(f"series must be (T,) or (T, F), got shape {tuple(series.shape)}")
    for name, value in (("window", window), ("horizon", horizon), ("stride", stride)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    steps = series.shape[0]
    if steps < window + horizon:
        raise ValueError(
            f"series of {steps} steps is shorter than window + horizon = {window + horizon}"
        )
    data = series.unsqueeze(-1) if series.dim() == 1 else series  # (T, F)
    pairs = data.unfold(0, window + horizon, stride)  # (N, F, window + horizon)
    pairs = pairs.permute(0, 2, 1)  # (N, window + horizon, F)
    inputs = pairs[:, :window].contiguous()  # (N, window, F)
    targets = pairs[:, window:].contiguous()  # (N, horizon, F)
    if series.dim() == 1:
        targets = targets.squeeze(-1)  # (N, horizon)
    return inputs, targets
