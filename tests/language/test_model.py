"""LanguageModel: shapes, tying, dropouts, init, truncated BPTT state, perplexity, overfitting."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rnnlab.config import ModelConfig
from rnnlab.data.text import BPTTBatches, Vocabulary, tokenize
from rnnlab.errors import ConfigError
from rnnlab.language.model import LanguageModel, detach_state, evaluate
from rnnlab.nn import LSTM


def test_shapes_time_and_batch_first() -> None:
    torch.manual_seed(0)
    model = LanguageModel(50, 12, "gru", hidden_size=20, num_layers=2)
    logits, state = model(torch.randint(50, (7, 3)))
    assert logits.shape == (7, 3, 50) and state.shape == (2, 3, 20)
    bf = LanguageModel(50, 12, "lstm", hidden_size=20, batch_first=True)
    logits, (h, _c) = bf(torch.randint(50, (3, 7)))
    assert logits.shape == (3, 7, 50) and h.shape == (1, 3, 20)


def test_tied_weights_share_the_embedding_and_project_when_sizes_differ() -> None:
    same = LanguageModel(30, 16, "lstm", hidden_size=16, tie_weights=True)
    assert same.decoder.weight is same.embedding.weight and same.projection is None
    other = LanguageModel(30, 16, "lstm", hidden_size=24, tie_weights=True)
    assert other.decoder.weight is other.embedding.weight
    assert other.projection is not None and other.projection.weight.shape == (16, 24)
    n_tied = sum(p.numel() for p in other.parameters())
    n_untied = sum(p.numel() for p in LanguageModel(30, 16, "lstm", hidden_size=24).parameters())
    assert n_untied - n_tied == 24 * 30 - 16 * 24  # decoder (30x24) replaced by projection


def test_init_range() -> None:
    model = LanguageModel(40, 8, "lstm", hidden_size=8, init_range=0.05, recurrent_init_range=0.1)
    assert model.embedding.weight.abs().max() <= 0.05
    assert model.decoder.weight.abs().max() <= 0.05
    assert torch.all(model.decoder.bias == 0)
    assert model.recurrent.weight_hh_l0.abs().max() <= 0.1
    assert model.recurrent.weight_hh_l0.abs().max() > 0.05  # recurrent range applied, not 0.05
    keep = LanguageModel(
        40, 8, "lstm", hidden_size=8, recurrent_init_range=0.1, forget_bias=1.0, layer_norm=True
    )
    assert torch.all(keep.recurrent.bias_ih_l0[8:16] == 1.0)
    assert torch.all(keep.recurrent.bias_hh_l0[8:16] == 0.0)
    assert torch.all(keep.recurrent.ln_ih_weight_l0 == 1.0)


def test_recurrent_given_as_module_class_or_name() -> None:
    layer = LSTM(10, 6, proj_size=4)
    model = LanguageModel(20, 10, layer)
    assert model.recurrent is layer and model.decoder.in_features == 4
    assert isinstance(LanguageModel(20, 10, nn.GRU, hidden_size=6).recurrent, nn.GRU)
    with pytest.raises(ConfigError, match="unknown cell 'lstn'"):
        LanguageModel(20, 10, "lstn", hidden_size=6)
    with pytest.raises(ValueError, match="bidirectional"):
        LanguageModel(20, 10, nn.LSTM(10, 6, bidirectional=True))
    with pytest.raises(ValueError, match="batch_first=True, the model False"):
        LanguageModel(20, 10, nn.LSTM(10, 6, batch_first=True))
    with pytest.raises(ValueError, match="hidden_size is required"):
        LanguageModel(20, 10, "gru")
    with pytest.raises(ValueError, match="embedding_dropout must be a probability"):
        LanguageModel(20, 10, "gru", hidden_size=4, embedding_dropout=1.0)
    with pytest.raises(ValueError, match="tokens must be 2-D int64"):
        LanguageModel(20, 10, "gru", hidden_size=4)(torch.zeros(3, 2))


def test_recurrent_given_as_a_model_section_is_the_same_stack_as_by_name() -> None:
    """A ``[model]`` section goes through ``build_recurrent``: the layers, parameter names and
    initial values are those of the same options given by name (old checkpoints load)."""
    section = ModelConfig(cell="lstm", hidden_size=12, num_layers=2, dropout=0.1, layer_norm=True)
    torch.manual_seed(0)
    by_name = LanguageModel(
        30, 8, "lstm", hidden_size=12, num_layers=2, dropout=0.1, layer_norm=True
    )
    torch.manual_seed(0)
    by_config = LanguageModel(30, 8, section)
    assert repr(by_config) == repr(by_name) and not by_config.recurrent.batch_first
    expected = by_name.state_dict()
    assert list(by_config.state_dict()) == list(expected)
    assert all(torch.equal(v, expected[k]) for k, v in by_config.state_dict().items())
    one = LanguageModel(30, 8, section, num_layers=1, dropout=0.0, batch_first=True)
    assert one.recurrent.num_layers == 1 and one.recurrent.batch_first
    with pytest.raises(ValueError, match="bidirectional"):
        LanguageModel(30, 8, ModelConfig(cell="gru", hidden_size=4, bidirectional=True))


def test_embedding_dropout_drops_whole_words() -> None:
    torch.manual_seed(1)
    model = LanguageModel(6, 5, "gru", hidden_size=4, embedding_dropout=0.5)
    tokens = torch.arange(6).repeat(20)[:, None]  # every word 20 times, (120, 1)
    embedded = model.embed(tokens)[:, 0]  # (120, 5)
    dropped = (embedded == 0).all(dim=-1).view(20, 6)  # (occurrence, word)
    # A word is dropped at all its occurrences or at none: one mask per word type.
    assert torch.all(dropped.all(dim=0) | ~dropped.any(dim=0))
    assert dropped.any() and not dropped.all()
    kept = ~dropped[0]
    assert torch.allclose(embedded[:6][kept], 2 * model.embedding.weight[kept])
    model.eval()
    assert torch.equal(model.embed(tokens), model.embedding(tokens))


def test_variational_dropout_reuses_one_mask_over_time() -> None:
    model = LanguageModel(6, 5, "gru", hidden_size=4, variational=True)
    x = torch.ones(9, 3, 5)
    out = model._dropout(x, 0.5)
    assert torch.equal(out, out[:1].expand_as(out))
    assert set(out.unique().tolist()) <= {0.0, 2.0}


def test_state_carried_and_detached_across_windows() -> None:
    torch.manual_seed(2)
    model = LanguageModel(11, 6, "lstm", hidden_size=8, num_layers=2).eval()
    data = torch.randint(11, (4 * 13,))
    batches = BPTTBatches(data, batch_size=4, bptt=5)  # windows of 5, 5, 2
    full, _ = model(batches.streams[:-1])  # (12, 4, 11): one pass over everything
    pieces, state = [], None
    for inputs, _ in batches:
        logits, state = model(inputs, state)
        pieces.append(logits)
        state = detach_state(state)
        assert all(s.grad_fn is None and not s.requires_grad for s in state)
    assert torch.allclose(torch.cat(pieces), full, atol=1e-6)
    # Gradients of a later window stop at the detached state (and reach it when not detached).
    model.train()
    first, second = list(batches)[:2]
    _, state = model(first.inputs)
    for cut, reaches in ((True, False), (False, True)):
        carried = detach_state(state) if cut else state
        logits, _ = model(second.inputs, carried)
        loss = F.cross_entropy(logits.reshape(-1, 11), second.targets.reshape(-1))
        (grad,) = torch.autograd.grad(loss, [state[0]], allow_unused=True, retain_graph=True)
        assert (grad is not None) == reaches
    assert detach_state(None) is None
    with pytest.raises(ValueError, match="state must be a tensor"):
        detach_state({"h": 1})


def test_perplexity_is_exp_of_mean_token_loss() -> None:
    torch.manual_seed(3)
    vocab = Vocabulary.build(tokenize("a b c a b d a c\n" * 3, "word"), level="word")
    data = vocab.encode(tokenize("a b c a b d a c\nb a d c\n" * 4, "word"))  # 56 tokens
    model = LanguageModel(len(vocab), 5, "rnn", hidden_size=7)
    batches = BPTTBatches(data, batch_size=3, bptt=4)  # 18 rows: windows 4, 4, 4, 4, 1
    score = evaluate(model, batches)
    model.eval()
    with torch.no_grad():
        logits, _ = model(batches.streams[:-1])
        losses = F.cross_entropy(
            logits.reshape(-1, len(vocab)), batches.streams[1:].reshape(-1), reduction="none"
        )
    assert [n for _, n in batches.schedule()] == [4, 4, 4, 4, 1]  # the short one weighs less
    assert score.tokens == losses.numel() == 17 * 3
    assert math.isclose(score.loss, float(losses.mean()), rel_tol=1e-5)
    assert math.isclose(score.perplexity, math.exp(float(losses.mean())), rel_tol=1e-5)
    assert math.isclose(score.bits_per_token, score.loss / math.log(2), rel_tol=1e-9)


def test_tiny_model_overfits_tiny_corpus() -> None:
    torch.manual_seed(4)
    text = "the quick brown fox jumps over the lazy dog. " * 8
    vocab = Vocabulary.build(tokenize(text, "char"), level="char")
    data = vocab.encode(tokenize(text, "char"))
    batches = BPTTBatches(data, batch_size=4, bptt=20)
    model = LanguageModel(len(vocab), 16, "lstm", hidden_size=64, tie_weights=False)
    start = evaluate(model, batches).perplexity
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(30):
        state = None
        for inputs, targets in batches:
            logits, state = model(inputs, state)
            state = detach_state(state)
            loss = F.cross_entropy(logits.reshape(-1, len(vocab)), targets.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
    end = evaluate(model, batches).perplexity
    assert start > 20  # about uniform over 29 symbols at the start
    assert end < 1.5, f"perplexity {end:.3f} after training"
