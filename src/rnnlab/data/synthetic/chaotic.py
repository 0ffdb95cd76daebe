"""The Mackey-Glass series (Mackey and Glass 1977): chaotic, from a delay differential equation.

With the standard ``tau = 17`` it is the classic chaotic-forecasting benchmark; cut it into
training pairs with :func:`~rnnlab.data.synthetic.forecast_pairs.prediction_windows`.
"""

from __future__ import annotations

import random

import torch
from torch import Tensor


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
