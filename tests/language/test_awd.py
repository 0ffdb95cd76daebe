"""AWD-LSTM regularization of the language model: locked and embedding dropout, the stack built
layer by layer (locked dropout between layers, a last layer of the embedding's width), AR/TAR."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from tests.language.helpers import make, write_corpus

from rnnlab.config import ModelConfig
from rnnlab.errors import ConfigError
from rnnlab.language.layered import LayeredStack
from rnnlab.language.model import LanguageModel
from rnnlab.language.regularization import (
    activation_penalty,
    drop_embedding_rows,
    locked_dropout,
)
from rnnlab.tasks.base import DataSpec


def test_locked_dropout_uses_one_mask_per_sequence_over_time() -> None:
    torch.manual_seed(0)
    x = torch.ones(9, 4, 50)
    y = locked_dropout(x, 0.5, training=True)
    assert torch.equal(y, y[:1].expand_as(y))  # the same at every step
    assert set(y.unique().tolist()) == {0.0, 2.0}  # kept units scaled by 1 / (1 - p)
    assert not torch.equal(y[0, 0], y[0, 1])  # sequences draw their own masks
    assert locked_dropout(x, 0.5, training=False) is x
    batch_first = locked_dropout(torch.ones(4, 9, 50), 0.5, training=True, time_dim=1)
    assert torch.equal(batch_first, batch_first[:, :1].expand_as(batch_first))


def test_locked_dropout_keeps_the_mean() -> None:
    torch.manual_seed(1)
    y = locked_dropout(torch.ones(3, 400, 500), 0.3, training=True)
    assert abs(float(y.mean()) - 1.0) < 0.01


def test_embedding_dropout_drops_whole_rows_and_rescales() -> None:
    torch.manual_seed(0)
    weight = torch.randn(200, 6)
    dropped = drop_embedding_rows(weight, 0.25, training=True)
    zero_rows = (dropped == 0).all(dim=1)
    assert 20 < int(zero_rows.sum()) < 80  # about a quarter
    kept = ~zero_rows
    torch.testing.assert_close(dropped[kept], weight[kept] / 0.75)
    assert drop_embedding_rows(weight, 0.25, training=False) is weight


def test_embedding_dropout_in_the_model_drops_a_word_everywhere() -> None:
    torch.manual_seed(3)
    model = LanguageModel(30, 4, "lstm", hidden_size=5, embedding_dropout=0.5)
    tokens = torch.arange(30).repeat(2, 1).T.contiguous()  # every word at two positions
    model.train()
    embedded = model.embed(tokens)  # (30, 2, 4)
    zero = (embedded == 0).all(dim=-1)
    assert zero.any() and not zero.all()
    assert torch.equal(zero[:, 0], zero[:, 1])  # a word dropped in one place is dropped in all
    model.eval()
    assert torch.equal(model.embed(tokens), F.embedding(tokens, model.embedding.weight))


def test_activation_penalty_values_on_a_small_case() -> None:
    raw = torch.tensor([[[1.0, 2.0]], [[3.0, 5.0]], [[0.0, 1.0]]])  # (T=3, B=1, H=2)
    dropped = torch.tensor([[[2.0, 0.0]], [[6.0, 0.0]], [[0.0, 2.0]]])
    ar = (4 + 0 + 36 + 0 + 0 + 4) / 6  # mean of dropped ** 2
    tar = ((3 - 1) ** 2 + (5 - 2) ** 2 + (0 - 3) ** 2 + (1 - 5) ** 2) / 4
    assert activation_penalty(raw, dropped, 2.0, 0.0).item() == pytest.approx(2 * ar)
    assert activation_penalty(raw, dropped, 0.0, 1.0).item() == pytest.approx(tar)
    both = activation_penalty(raw, dropped, 2.0, 1.0).item()
    assert both == pytest.approx(2 * ar + tar)
    batch_first = activation_penalty(raw.transpose(0, 1), dropped.transpose(0, 1), 0, 1, time_dim=1)
    assert batch_first.item() == pytest.approx(tar)


def test_activation_penalty_and_locked_dropout_gradcheck() -> None:
    raw = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    dropped = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)

    def penalty(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return activation_penalty(a, b, 0.7, 1.3)

    assert torch.autograd.gradcheck(penalty, (raw, dropped))

    def locked(x: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(5)  # the same mask at every call of gradcheck
        return locked_dropout(x, 0.4, training=True)

    assert torch.autograd.gradcheck(locked, (raw,))


def _config(**extra: object) -> ModelConfig:
    return ModelConfig(cell="lstm", hidden_size=6, num_layers=2, **extra)  # type: ignore[arg-type]


def test_layered_stack_matches_the_fused_stack_with_the_same_weights() -> None:
    torch.manual_seed(0)
    fused = torch.nn.LSTM(4, 6, num_layers=2)
    stack = LayeredStack(_config(), 4, dropout=0.0).eval()
    with torch.no_grad():
        for index, layer in enumerate(stack.layers):
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(layer, f"{kind}_l0").copy_(getattr(fused, f"{kind}_l{index}"))
    x = torch.randn(7, 3, 4)
    expected, (h, c) = fused(x)
    out, state = stack(x)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(torch.cat([state[0], state[2]]), h)
    torch.testing.assert_close(torch.cat([state[1], state[3]]), c)
    # Carrying the flat state over two halves gives the same as one pass.
    first, carried = stack(x[:3])
    second, _ = stack(x[3:], carried)
    torch.testing.assert_close(torch.cat([first, second]), expected)


def test_layered_stack_drops_the_same_units_between_layers_at_every_step() -> None:
    torch.manual_seed(0)
    stack = LayeredStack(_config(), 4, dropout=0.5, locked=True).train()
    seen: list[torch.Tensor] = []
    stack.layers[1].register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    stack(torch.randn(8, 3, 4))
    zeros = seen[0] == 0  # (T, B, H): the dropped units of layer 1's output
    assert zeros.any()
    assert torch.equal(zeros, zeros[:1].expand_as(zeros))
    stack.eval()
    seen.clear()
    stack(torch.randn(8, 3, 4))
    assert not (seen[0] == 0).any()


def test_tied_model_with_a_last_layer_of_the_embedding_size_needs_no_projection() -> None:
    model = LanguageModel(
        50, 4, _config(weight_drop=0.5), hidden_dropout=0.3, last_hidden_size=4,
        variational=True, tie_weights=True,
    )  # fmt: skip
    assert model.projection is None
    assert model.decoder.weight is model.embedding.weight
    assert isinstance(model.recurrent, LayeredStack)
    assert model.recurrent.sizes == [6, 4]
    assert model.recurrent.layers[0].weight_drop == 0.5
    logits, state = model(torch.randint(50, (5, 2)))
    assert logits.shape == (5, 2, 50) and len(state) == 4


def test_the_task_adds_ar_and_tar_to_the_loss_and_logs_the_cross_entropy(
    tmp_path: Path,
) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    task = make(corpus, "data.ar_alpha=2.0", "data.tar_beta=1.0", "model.dropout=0.0")
    data = task.build_data()
    model = task.build_model(data.spec)
    assert isinstance(model, LanguageModel)
    model.train()
    inputs, targets = next(iter(data.train))
    loss, _, metrics = task.step(model, (inputs, targets), None)
    logits, _ = model(inputs)  # no dropout: the same forward again
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    raw, _ = model.recurrent(model.embed(inputs))
    expected = ce + 2.0 * raw.pow(2).mean() + 1.0 * (raw[1:] - raw[:-1]).pow(2).mean()
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(metrics["loss"], ce.detach())
    plain = make(corpus, "model.dropout=0.0")
    plain_loss, _, plain_metrics = plain.step(model, (inputs, targets), None)
    torch.testing.assert_close(plain_loss, ce)  # no regularizer: nothing added
    assert "loss" not in plain_metrics


def test_the_task_builds_the_layered_stack_and_refuses_proj_size(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    task = make(
        corpus, "model.num_layers=3", "data.hidden_dropout=0.2", "data.last_hidden_size=8",
        "data.tie_weights=true", "data.variational_dropout=true",
    )  # fmt: skip
    task.check_config()
    data = task.build_data()
    model = task.build_model(DataSpec(vocab_size=data.spec.vocab_size))
    assert isinstance(model, LanguageModel) and model.projection is None
    assert isinstance(model.recurrent, LayeredStack)
    assert model.recurrent.sizes == [16, 16, 8] and model.recurrent.locked
    with pytest.raises(ConfigError, match="proj_size"):
        make(corpus, "data.last_hidden_size=8", "model.proj_size=4")


def test_varied_windows_scale_the_learning_rate_by_their_length(tmp_path: Path) -> None:
    from rnnlab import api
    from rnnlab.training import read_metrics

    corpus = write_corpus(tmp_path / "corpus")
    overrides = [
        "data.vary_seq_len=true", "data.scale_lr_by_length=true", "train.optimizer=sgd",
        "train.lr=0.5", "train.log_every_steps=1", "train.num_threads=1",
    ]  # fmt: skip
    task = make(corpus, *overrides)
    plan = [length for _, length in task.build_data().train.plan(0)]  # type: ignore[attr-defined]
    assert len(set(plan)) > 1, "the windows do not vary: the test checks nothing"
    api.train(task.config, run_dir=tmp_path / "run", quiet=None)
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    rates = [r["lr"] for r in records if r.get("kind") == "train"]
    assert rates == pytest.approx([0.5 * length / 5 for length in plan])
