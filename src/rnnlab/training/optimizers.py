"""The optimizer named by ``train.optimizer``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rnnlab.config import ExperimentConfig
from rnnlab.training.averaging import NTASGD


def build_optimizer(
    params: Sequence[nn.Parameter], config: ExperimentConfig
) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov), Adam, AdamW or NT-ASGD from ``config.train``."""
    train = config.train
    if train.optimizer == "nt-asgd":
        return NTASGD(params, lr=train.lr, nonmono=train.nonmono, weight_decay=train.weight_decay)
    if train.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=train.lr,
            momentum=train.momentum,
            nesterov=train.nesterov,
            weight_decay=train.weight_decay,
        )
    cls = torch.optim.Adam if train.optimizer == "adam" else torch.optim.AdamW
    return cls(
        params, lr=train.lr, betas=train.betas, eps=train.eps, weight_decay=train.weight_decay
    )
