"""NT-ASGD (train.optimizer = "nt-asgd"): the non-monotone trigger, the running average,
evaluation and best.pt with the averaged weights, and exact resume with the average state."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from tests.language.helpers import base_config, write_corpus

from rnnlab import api
from rnnlab.errors import ConfigError, TrainingInterrupted
from rnnlab.training import Callback, load_checkpoint
from rnnlab.training.averaging import NTASGD, averaged, observe_validation

NT = [
    "train.optimizer=nt-asgd",
    "train.lr=3.0",
    "train.nonmono=1",
    "train.epochs=3",
    "train.eval_every_steps=3",
    "train.checkpoint_every=4",
    "train.num_threads=1",
    "train.deterministic=true",
    "model.dropout=0.2",
    "data.embedding_dropout=0.1",
]


def test_the_trigger_is_awd_lstms_non_monotone_rule() -> None:
    w = torch.nn.Parameter(torch.zeros(1))
    opt = NTASGD([w], lr=0.1, nonmono=2)
    # Worse than the best of the checks before the last two: 4.5 > min(5, 4).
    assert [opt.observe(v) for v in (5.0, 4.0, 3.0, 3.5, 4.5)] == [False] * 4 + [True]
    assert opt.averaging and not opt.observe(9.0)  # switches once
    assert not opt.observe(float("nan")) and opt.param_groups[0]["nt_history"][-1] == 9.0
    late = NTASGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, nonmono=2)
    assert not any(late.observe(v) for v in (5.0, 4.0, 4.9, 4.8))  # 4.8 < min(5)
    assert not observe_validation(torch.optim.SGD([w], lr=0.1), 1.0)  # other optimizers: no-op
    with pytest.raises(ValueError, match="nonmono"):
        NTASGD([w], lr=0.1, nonmono=0)


def test_the_average_is_the_mean_of_the_weights_since_the_switch() -> None:
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(3))
    opt = NTASGD([w], lr=0.1, nonmono=1)
    target = torch.tensor([1.0, -2.0, 0.5])

    def step() -> None:
        opt.zero_grad()
        ((w - target) ** 2).sum().backward()
        opt.step()

    step()
    opt.observe(1.0)
    opt.observe(0.5)
    assert not opt.averaging
    step()
    assert opt.observe(2.0)
    snapshots = [w.detach().clone()]
    for _ in range(4):
        step()
        snapshots.append(w.detach().clone())
    expected = torch.stack(snapshots).mean(0)
    torch.testing.assert_close(opt.state[w]["average"], expected)
    raw = w.detach().clone()
    with averaged(opt):
        torch.testing.assert_close(w.detach(), expected)
    assert torch.equal(w.detach(), raw)  # the raw weights are back

    # The optimizer state holds everything: a fresh one continues identically.
    again = torch.nn.Parameter(raw.clone())
    clone = NTASGD([again], lr=0.1, nonmono=1)
    clone.load_state_dict(opt.state_dict())
    assert clone.averaging and clone.param_groups[0]["nt_count"] == 5
    for optimizer, param in ((opt, w), (clone, again)):
        optimizer.zero_grad()
        ((param - target) ** 2).sum().backward()
        optimizer.step()
    assert torch.equal(opt.state[w]["average"], clone.state[again]["average"])


class InterruptAt(Callback):
    """Send this process SIGINT after step ``at`` (the trainer stops after that step)."""

    name = "interrupt_at"

    def __init__(self, at: int) -> None:
        self.at = at

    def on_step_end(self, trainer: Any, info: Any) -> None:
        if info.step == self.at:
            os.kill(os.getpid(), signal.SIGINT)


def _opt_state(path: Path) -> dict[str, Any]:
    return load_checkpoint(path)["optimizer"]


# The AWD-LSTM form too: a stack built layer by layer (its flat state carried over the
# resume), locked dropout between layers, a last layer of the embedding's width, AR/TAR.
AWD = [
    "model.num_layers=2",
    "data.hidden_dropout=0.2",
    "data.last_hidden_size=8",
    "data.tie_weights=true",
    "data.variational_dropout=true",
    "data.ar_alpha=2.0",
    "data.tar_beta=1.0",
]


@pytest.mark.parametrize("extra", [[], AWD], ids=["fused", "awd"])
def test_nt_asgd_evaluates_averaged_weights_and_resumes_exactly(
    tmp_path: Path, extra: list[str]
) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    config = base_config(corpus, *NT, *extra)
    ref = api.train(config, run_dir=tmp_path / "ref", quiet=None)
    assert ref.status == "completed"
    last = load_checkpoint(tmp_path / "ref" / "checkpoints" / "last.pt")
    head = last["optimizer"]["param_groups"][0]
    assert head["nt_averaging"], "the trigger never fired: the test checks nothing"
    # best.pt holds the averaged weights of its evaluation; last.pt the raw ones it trains on.
    best = load_checkpoint(tmp_path / "ref" / "checkpoints" / "best.pt")
    assert best["optimizer"]["param_groups"][0]["nt_averaging"], "best.pt predates the switch"
    names = [name for name, _ in _named(config)]
    for index, name in enumerate(names):
        assert torch.equal(best["model"][name], best["optimizer"]["state"][index]["average"])
    index = names.index("decoder.bias")
    assert not torch.equal(
        last["model"]["decoder.bias"], last["optimizer"]["state"][index]["average"]
    )

    run = tmp_path / "killed"
    with pytest.raises(TrainingInterrupted):
        api.train(config, run_dir=run, quiet=None, callbacks=[InterruptAt(11)])
    assert 11 <= int(load_checkpoint(run / "checkpoints" / "last.pt")["step"]) < ref.step
    resumed = api.train(resume=run, quiet=None)
    assert resumed.status == "completed"
    mine = load_checkpoint(run / "checkpoints" / "last.pt")
    for name, tensor in last["model"].items():
        assert torch.equal(tensor, mine["model"][name]), name
    for index, state in last["optimizer"]["state"].items():
        assert torch.equal(state["average"], mine["optimizer"]["state"][index]["average"])
    assert mine["optimizer"]["param_groups"][0]["nt_history"] == head["nt_history"]
    assert resumed.test == ref.test


def _named(config: Any) -> list[tuple[str, torch.Tensor]]:
    from rnnlab.tasks import TASKS

    task = TASKS.get("language")(config)
    data = task.build_data()
    return list(task.build_model(data.spec).named_parameters())


def test_nt_asgd_needs_a_lower_is_better_monitor(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    with pytest.raises(ConfigError, match="nt-asgd"):
        api.train(
            base_config(corpus, *NT, "train.monitor_mode=max"),
            run_dir=tmp_path / "r",
            quiet=None,
        )
