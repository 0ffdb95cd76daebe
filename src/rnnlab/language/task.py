"""Language modeling as a task: next-token cross-entropy with stateful truncated BPTT.

The token stream of each split is cut into ``B`` contiguous streams and read in windows of
``train.seq_len`` rows (:mod:`rnnlab.language.windows`; ``rnnlab.data.text`` has the layout
diagrams). The hidden state
of one window is the initial state of the next, detached from the graph (truncated BPTT);
it starts from zeros at the beginning of every epoch (:meth:`LanguageTask.initial_state`)
and the trainer keeps it in checkpoints, so a run resumed mid-epoch continues with it::

    epoch e:  state = None (zeros)
              window 0 (rows 0..L-1) --model--> loss_0, state_0 --detach-->
              window 1 (rows L..2L-1) --model--> loss_1, state_1 --detach--> ...

Config::

    [task]
    name = "language"

    [data]
    corpus = "ptb"           # a named corpus (ptb, ptb-char, tinyshakespeare) ...
    # path = "my-corpus/"    # ... or a directory with train/valid/test files, or one raw file
    # level = "word"         # word | char | char-spaced (default: the corpus's own, else word)
    eval_batch_size = 10     # streams of the validation split
    test_batch_size = 1      # streams of the test split (default: eval_batch_size)

    [train]
    seq_len = 20             # BPTT window length
    batch_size = 20          # training streams

Metrics on ``valid`` and ``test``: ``loss`` (mean cross-entropy per target token, nats), and
``perplexity = exp(loss)`` at word level or ``bits_per_character = loss / ln 2`` at the
character levels. Evaluation carries the state over the whole split, so the window length
does not change the result; the batch size does a little (each stream starts from zeros and
the tail that does not fill a row is dropped), which is why the literature evaluates the
test split with 1 stream.

Model: :class:`rnnlab.language.model.LanguageModel`, its recurrent stack built from
``[model]`` by :func:`rnnlab.models.stack.build_recurrent`. ``[model]`` gives the cell,
sizes, the
dropout between layers (also the default input and output dropout, as in Zaremba et al.
2014, who drop every non-recurrent connection) and ``init_range`` (every weight uniform in
``[-r, r]``, biases included, as in the classic PTB recipes). Options of a language model
that the shared ``[model]`` section has no key for live in ``[data]``: ``tie_weights``,
``input_dropout``, ``output_dropout``, ``embedding_dropout``, ``variational_dropout``,
``hidden_dropout``, ``last_hidden_size`` and the activation regularizers ``ar_alpha`` and
``tar_beta`` (AWD-LSTM, Merity et al. 2017; see :mod:`rnnlab.language.regularization`).

Run directory: :meth:`LanguageTask.prepare_run_dir` writes the vocabulary to
``<run>/vocab.json`` and, when a run is resumed, refuses a vocabulary that differs from the
saved one. :func:`rnnlab.language.run.load_run` rebuilds a trained model and its
vocabulary for inference.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from rnnlab.config import DataConfig, ExperimentConfig, Probability
from rnnlab.data.text import BPTTBatches, Corpus, Vocabulary, load_corpus
from rnnlab.data.text.wikitext import is_wikitext, locate_wikitext
from rnnlab.errors import ConfigError, DataError, RunDirError
from rnnlab.language.model import LanguageModel, detach_state
from rnnlab.language.model import evaluate as evaluate_windows
from rnnlab.language.regularization import activation_penalty
from rnnlab.language.windows import EvalWindows, TrainWindows
from rnnlab.tasks.base import DataSpec, Task, TaskData, move_to, register_task

VOCAB_FILE = "vocab.json"


class LanguageData(DataConfig):
    """``[data]`` of the language task.

    Attributes:
        corpus: a named corpus of ``rnnlab.data.datasets`` (``ptb``, ``ptb-char``,
            ``tinyshakespeare``), found under ``root``, ``$RNNLAB_DATA`` or the cache; or
            ``wikitext-2`` / ``wikitext-103``, a folder ``<root>/wikitext-2/`` with
            ``wiki.train.tokens`` etc. that you download yourself
            (:mod:`rnnlab.data.text.wikitext`).
        path: instead of ``corpus``, a directory with one file per split (``train.txt``,
            ``ptb.valid.txt``...) or one raw text file cut by ``split``.
        root: the data root to look for ``corpus`` in.
        level: ``word``, ``char`` or ``char-spaced`` (``rnnlab.data.text``); default: the
            named corpus's level, else ``word``.
        min_freq, max_size: vocabulary limits (built from the train split).
        split: train / valid / test fractions of a raw file.
        eval_batch_size: streams of the validation split.
        test_batch_size: streams of the test split (default ``eval_batch_size``).
        eval_seq_len: window length for evaluation (default ``train.seq_len``).
        vary_seq_len: AWD-LSTM's randomly varied training window lengths around
            ``train.seq_len`` (a fixed number of windows per epoch).
        scale_lr_by_length: the learning rate of each training window is multiplied by
            ``L / train.seq_len`` (its length over the nominal one), so that a short window
            moves the weights less, as AWD-LSTM does with ``vary_seq_len``; the scaling is
            applied to the rate after clipping, not to the gradients.
        loss_reduction: ``mean`` minimizes the mean cross-entropy per target token;
            ``sum_over_time`` minimizes its sum over the ``L`` steps of a window, averaged over
            the streams (``L`` times the mean), the convention of Zaremba et al.'s code and
            TensorFlow's PTB tutorial, under which their learning rate 1 and clipping norm 5
            hold. (With ``mean`` the same training takes lr 20 and clipping 0.25, the
            settings of pytorch/examples.) The logged training loss is per token either way.
        tie_weights: the decoder shares the embedding matrix.
        input_dropout, output_dropout: dropout on the embeddings and on the top layer's
            outputs (default ``model.dropout``).
        embedding_dropout: probability of dropping a whole word type in a batch.
        variational_dropout: input and output dropout (and ``hidden_dropout``) use one mask
            per window over time (AWD-LSTM's locked dropout).
        hidden_dropout: dropout between the recurrent layers applied by the language model
            (AWD-LSTM's ``dropouth``): the stack is then built one layer at a time
            (:class:`~rnnlab.language.layered.LayeredStack`) and ``model.dropout`` is unused.
        last_hidden_size: width of the last recurrent layer (built layer by layer). With
            ``tie_weights`` set it to ``model.embedding_size`` so that the tied decoder needs
            no projection (AWD-LSTM: 1150, 1150, 400 with embeddings of 400).
        ar_alpha: activation regularization, ``alpha * mean(h_drop ** 2)`` of the top layer's
            dropped outputs, added to the training loss (AWD-LSTM: 2).
        tar_beta: temporal activation regularization, ``beta * mean((h_t - h_{t-1}) ** 2)``
            of the top layer's outputs before dropout (AWD-LSTM: 1).
    """

    corpus: str | None = None
    path: str | None = None
    root: str | None = None
    level: Literal["word", "char", "char-spaced"] | None = None
    min_freq: int = Field(default=1, ge=1)
    max_size: int | None = Field(default=None, ge=2)
    split: tuple[float, float, float] = (0.9, 0.05, 0.05)
    eval_batch_size: int = Field(default=10, gt=0)
    test_batch_size: int | None = Field(default=None, gt=0)
    eval_seq_len: int | None = Field(default=None, gt=0)
    vary_seq_len: bool = False
    scale_lr_by_length: bool = False
    loss_reduction: Literal["mean", "sum_over_time"] = "mean"
    tie_weights: bool = False
    input_dropout: Probability | None = None
    output_dropout: Probability | None = None
    embedding_dropout: Probability = 0.0
    variational_dropout: bool = False
    hidden_dropout: Probability | None = None
    last_hidden_size: int | None = Field(default=None, gt=0)
    ar_alpha: float = Field(default=0.0, ge=0.0)
    tar_beta: float = Field(default=0.0, ge=0.0)


@register_task("language")
class LanguageTask(Task):
    """Next-token prediction over a word or character corpus, stateful truncated BPTT."""

    Data = LanguageData
    unit = "tokens"

    def __init__(self, config: ExperimentConfig) -> None:
        super().__init__(config)
        self.vocab: Vocabulary | None = None
        self._train: TrainWindows | None = None

    # ------------------------------------------------------------------------- settings

    def check_config(self) -> None:
        data: LanguageData = self.data_config
        if (data.corpus is None) == (data.path is None):
            raise ConfigError(
                "task 'language' needs exactly one of data.corpus (a named corpus such as "
                f"'ptb') and data.path (a directory or text file); got corpus={data.corpus!r}, "
                f"path={data.path!r}"
            )
        if self.config.train.seq_len is None:
            raise ConfigError(
                "train.seq_len is required by task 'language' (the BPTT window length, e.g. 35)"
            )
        model = self.config.model
        if model.bidirectional:
            raise ConfigError(
                "model.bidirectional=true cannot predict the next token (it would see it); "
                "task 'language' needs a unidirectional model"
            )
        data_layered = data.hidden_dropout is not None or data.last_hidden_size is not None
        if data_layered and model.proj_size:
            raise ConfigError(
                f"data.hidden_dropout / data.last_hidden_size build the stack layer by layer, "
                f"which cannot use model.proj_size={model.proj_size}; set model.proj_size = 0"
            )
        if model.input_projection is not None:
            raise ConfigError(
                "model.input_projection is for real-valued inputs; task 'language' embeds "
                "tokens (use model.embedding_size)"
            )

    @property
    def level(self) -> str:
        """The token level: ``data.level``, else the named corpus's, else ``word``."""
        data: LanguageData = self.data_config
        if data.level is not None:
            return data.level
        if is_wikitext(data.corpus):
            return "word"
        if data.corpus is not None:
            from rnnlab.data import datasets

            return str(datasets.get_spec(data.corpus).options.get("level", "word"))
        return "word"

    # ----------------------------------------------------------------------------- data

    def load_corpus(self, vocab: Vocabulary | None = None) -> Corpus:
        """Read the configured corpus (with ``vocab``, or a vocabulary built from train)."""
        data: LanguageData = self.data_config
        if is_wikitext(data.corpus):
            location = locate_wikitext(str(data.corpus), data.root)
        elif data.corpus is not None:
            from rnnlab.data import datasets

            spec = datasets.get_spec(data.corpus)
            if "level" not in spec.options:
                raise ConfigError(
                    f"data.corpus={data.corpus!r} is not a text corpus ({spec.task}); "
                    "text corpora: ptb, ptb-char, tinyshakespeare, wikitext-2, wikitext-103"
                )
            location = datasets.locate(data.corpus, data.root)
        else:
            location = Path(os.path.expanduser(str(data.path)))
        try:
            return load_corpus(
                location,
                self.level,  # type: ignore[arg-type]
                vocab=vocab,
                min_freq=data.min_freq,
                max_size=data.max_size,
                split=data.split,
            )
        except DataError:
            raise
        except ValueError as error:
            raise ConfigError(f"data: {error}") from None

    def build_data(self) -> TaskData:
        data: LanguageData = self.data_config
        train_cfg = self.config.train
        corpus = self.load_corpus(self.vocab)
        self.vocab = corpus.vocab
        seq_len = int(train_cfg.seq_len or 0)
        eval_len = data.eval_seq_len or seq_len
        test_batch = data.test_batch_size or data.eval_batch_size
        train = TrainWindows(
            self._windows(
                corpus.train,
                "train",
                train_cfg.batch_size,
                seq_len,
                vary=data.vary_seq_len,
                seed=train_cfg.seed,
                setting="train.batch_size",
            )
        )
        valid = EvalWindows(self._windows(corpus.valid, "valid", data.eval_batch_size, eval_len))
        test = (
            EvalWindows(self._windows(corpus.test, "test", test_batch, eval_len))
            if corpus.test.numel()
            else None
        )
        self._train = train
        spec = DataSpec(vocab_size=len(corpus.vocab), num_classes=len(corpus.vocab))
        spec.extra["level"] = corpus.vocab.level
        return TaskData(train=train, valid=valid, test=test, spec=spec)

    @staticmethod
    def _windows(
        tokens: Tensor,
        split: str,
        batch_size: int,
        seq_len: int,
        *,
        vary: bool = False,
        seed: int = 0,
        setting: str = "",
    ) -> BPTTBatches:
        if tokens.numel() < 2 * batch_size:
            name = setting or (
                "data.test_batch_size" if split == "test" else "data.eval_batch_size"
            )
            raise DataError(
                f"the {split} split has {tokens.numel()} tokens, too few for {name}="
                f"{batch_size} streams of at least 2 tokens each; lower {name}"
            )
        return BPTTBatches(tokens, batch_size, seq_len, vary=vary, seed=seed)

    # ---------------------------------------------------------------------------- model

    def build_model(self, spec: DataSpec) -> nn.Module:
        cfg = self.config.model
        data: LanguageData = self.data_config
        if spec.vocab_size is None:
            raise ValueError("task 'language' needs spec.vocab_size")
        return LanguageModel(
            spec.vocab_size,
            cfg.embedding_size or cfg.hidden_size,
            cfg,  # the stack: rnnlab.models.stack.build_recurrent, time-major
            input_dropout=cfg.dropout if data.input_dropout is None else data.input_dropout,
            output_dropout=cfg.dropout if data.output_dropout is None else data.output_dropout,
            embedding_dropout=data.embedding_dropout,
            variational=data.variational_dropout,
            hidden_dropout=data.hidden_dropout,
            last_hidden_size=data.last_hidden_size,
            tie_weights=data.tie_weights,
            init_range=cfg.init_range if cfg.init_range is not None else 0.1,
            recurrent_init_range=cfg.init_range,
        )

    # ------------------------------------------------------------------------ stepping

    def to_device(self, batch: Any, device: torch.device) -> Any:
        """Move a batch; the first call also moves the training streams to ``device``.

        Later training windows are then slices of the streams already there, with no copy
        per step (on a GPU, two small host-to-device copies per step saved).
        """
        source = self._train.source if self._train is not None else None
        if source is not None and source.streams.device != device:
            source.streams = source.streams.to(device)
        return move_to(batch, device)

    def lr_factor(self, batch: Any) -> float:
        """The learning-rate factor of a training window: ``L / train.seq_len`` with
        ``data.scale_lr_by_length``, else 1 (the trainer multiplies the scheduled rate)."""
        if not self.data_config.scale_lr_by_length:
            return 1.0
        return float(batch[0].shape[0]) / float(self.config.train.seq_len or 1)

    def initial_state(self) -> Any:
        """``None``: every epoch starts from zero states."""
        return None

    def step(
        self, model: nn.Module, batch: Any, state: Any
    ) -> tuple[Tensor, Any, dict[str, float | Tensor]]:
        inputs, targets = batch  # (L, B), (L, B)
        data: LanguageData = self.data_config
        inner = getattr(model, "module", model)  # the LanguageModel inside a DDP wrapper
        core = inner if isinstance(inner, LanguageModel) else None
        regularize = bool(data.ar_alpha or data.tar_beta)
        if core is not None:
            core.record_activations = regularize
        logits, new_state = model(inputs, state)  # (L, B, V)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))
        metrics: dict[str, float | Tensor] = {"count": float(targets.numel())}
        if regularize and core is not None and core.activations is not None:
            raw, dropped = core.activations
            core.activations = None
            metrics["loss"] = loss.detach()  # the logged loss stays the cross-entropy
            loss = loss + activation_penalty(raw, dropped, data.ar_alpha, data.tar_beta)
        if data.loss_reduction == "sum_over_time":
            metrics["loss"] = metrics.get("loss", loss.detach())  # logged per token
            loss = loss * inputs.shape[0]  # summed over the L steps, mean over streams
        return loss, detach_state(new_state), metrics

    def metrics(self, loss: float) -> dict[str, float]:
        """``loss`` and ``perplexity`` (word level) or ``bits_per_character``."""
        if self.level == "word":
            return {"loss": loss, "perplexity": math.exp(min(loss, 700.0))}
        return {"loss": loss, "bits_per_character": loss / math.log(2.0)}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, loader: Iterable[Any]) -> dict[str, float]:
        if not isinstance(model, LanguageModel):
            raise TypeError(
                f"task 'language' evaluates a LanguageModel, got {type(model).__name__}"
            )
        return self.metrics(evaluate_windows(model, loader).loss)

    # ---------------------------------------------------------------------- run files

    def prepare_run_dir(self, run_dir: str | os.PathLike[str], resume: bool = False) -> None:
        """Write ``<run>/vocab.json``, or check it against this task's vocabulary.

        Call after :meth:`build_data`. A resumed run (or any run directory that already holds
        a vocabulary) must use the same vocabulary as before: token ids index the embedding
        and decoder rows, so another vocabulary would silently scramble the model.

        Raises:
            DataError: the saved vocabulary differs (the message says where first).
            RunDirError: ``build_data`` was not called yet.
        """
        if self.vocab is None:
            raise RunDirError("prepare_run_dir needs build_data() to have run first")
        path = Path(run_dir) / VOCAB_FILE
        if path.is_file():
            check_vocabulary(read_vocabulary(path), self.vocab, str(path))
            return
        if resume:
            return  # a run written before vocab.json existed: nothing to compare against
        path.parent.mkdir(parents=True, exist_ok=True)
        self.vocab.save(path)


def read_vocabulary(path: str | os.PathLike[str]) -> Vocabulary:
    """A saved vocabulary; a malformed file is a :class:`DataError` naming it."""
    try:
        return Vocabulary.load(path)
    except DataError:
        raise
    except ValueError as error:
        raise DataError(str(error)) from None


def check_vocabulary(saved: Vocabulary, current: Vocabulary, source: str) -> None:
    """Raise :class:`DataError` when ``current`` differs from ``saved`` (read from ``source``)."""
    if saved == current:
        return
    if saved.level != current.level:
        detail = f"level {saved.level!r} there, {current.level!r} now"
    elif len(saved) != len(current):
        detail = f"{len(saved)} tokens there, {len(current)} now"
    else:
        pairs = zip(saved.tokens, current.tokens, strict=True)
        index = next(i for i, (a, b) in enumerate(pairs) if a != b)
        detail = f"id {index} is {saved.tokens[index]!r} there, {current.tokens[index]!r} now"
    raise DataError(
        f"vocabulary mismatch: {source} differs from the vocabulary of the configured corpus "
        f"({detail}); use the corpus and data.min_freq/max_size the run was trained with"
    )
