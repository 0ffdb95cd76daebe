"""Claims: ablation groups over shipped recipes, and their runs.

A claim is a named set of variants of one base (a recipe plus overrides), each trained with
the study's seeds and a fixed budget, and compared with the group's first variant (the
reference). In a study file::

    [bases.ptb]                       # a named base: a recipe and overrides over it
    recipe = "ptb-small"
    model = { hidden_size = 128, num_layers = 1 }
    train = { eval_every_steps = 100 }

    [[claims]]
    name = "ptb-dropout"              # the runs are named <name>-<variant>-s<seed>
    title = "Dropout"                 # the report's heading
    claim = "dropout improves generalization"
    base = "ptb"
    domain = "PTB"                    # "on PTB, ..."
    metric = "perplexity"             # compared on the valid split (split = "test" also)
    train_eval_batches = 40           # also score the first 40 training batches: the gap
    budget = { max_steps = 400 }      # over the study's [budget]

    [[claims.variants]]               # the first variant is the reference
    name = "no dropout"
    set = { model = { dropout = 0.0 } }

    [[claims.variants]]
    name = "dropout 0.5"
    set = { model = { dropout = 0.5 } }
    expect = "lower"                  # lower | higher | similar (than the reference)

A claim with ``kind = "sweep"`` varies dotted settings over a grid instead
(``sweep = { "train.lr" = [0.5, 1.0], "train.seq_len" = [10, 35] }``) and is shown as
curves: the metric against the first setting, a line per value of the second, a panel per
value of the third. Runs whose configs are identical (the reference of several claims) are
trained once and shared (:attr:`~rnnlab.analysis.comparison.expansion.RunSpec.same_as`).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rnnlab import config as config_mod
from rnnlab.errors import ConfigError

Expectation = Literal["lower", "higher", "similar"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClaimBase(_Strict):
    """``[bases.<name>]``: a shipped recipe (or TOML path) and sections over it."""

    recipe: str
    task: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)
    model: dict[str, Any] = Field(default_factory=dict)
    train: dict[str, Any] = Field(default_factory=dict)


class Variant(_Strict):
    """``[[claims.variants]]``: one arm of a claim.

    Attributes:
        name: shown in the table and sentences (``"dropout 0.5"``).
        set: sections merged over the base (``{ model = { dropout = 0.5 } }``).
        expect: what the claim says this variant does to the metric against the reference:
            ``lower``, ``higher`` or ``similar``; ``None`` for the reference.
    """

    name: str = Field(min_length=1)
    set: dict[str, dict[str, Any]] = Field(default_factory=dict)
    expect: Expectation | None = None


class ClaimBudget(_Strict):
    """A claim's own ``max_steps`` / ``seconds`` (over the study's ``[budget]``)."""

    max_steps: int | None = Field(default=None, gt=0)
    seconds: float | None = Field(default=None, gt=0)


class Claim(_Strict):
    """``[[claims]]``: a named set of variants over one base (see the module docstring).

    Attributes:
        name: the group's name, the prefix of its run ids.
        title: the report's heading; default the name.
        claim: the claim in words.
        base: a ``[bases]`` name.
        domain: the data set named in the sentences (``PTB``).
        metric: the compared metric (``perplexity``, ``accuracy``, ``mse``).
        split: ``valid`` (the best validation value, the checkpoint that is tested) or
            ``test``.
        tolerance: for ``expect = "similar"``: the largest relative difference that still
            counts as similar (0.05: within 5 %).
        train_eval_batches: also score the best checkpoint on the first N training batches
            (in eval mode), for the train-valid gap; 0 skips it.
        seeds: the group's seeds (default the study's).
        budget: the group's budget over the study's.
        kind: ``ablation`` (variants) or ``sweep`` (a grid of dotted settings).
        variants: the arms; the first is the reference.
        sweep: for ``kind = "sweep"``: dotted setting -> values (at most three settings).
    """

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    title: str = ""
    claim: str = ""
    base: str
    domain: str = ""
    metric: str
    split: Literal["valid", "test"] = "valid"
    tolerance: float = Field(default=0.05, ge=0)
    train_eval_batches: int = Field(default=0, ge=0)
    seeds: list[int] | None = None
    budget: ClaimBudget = Field(default_factory=ClaimBudget)
    kind: Literal["ablation", "sweep"] = "ablation"
    variants: list[Variant] = Field(default_factory=list)
    sweep: dict[str, list[Any]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> Claim:
        if self.kind == "ablation" and len(self.variants) < 2:
            raise ValueError(f"claim {self.name!r}: give at least two [[claims.variants]]")
        if self.kind == "sweep":
            if not 1 <= len(self.sweep) <= 3 or any(not v for v in self.sweep.values()):
                raise ValueError(
                    f"claim {self.name!r}: a sweep varies one to three dotted settings, "
                    "each with at least one value"
                )
            bad = [k for k in self.sweep if k.count(".") != 1]
            if bad:
                raise ValueError(
                    f"claim {self.name!r}: sweep keys are 'section.key' (got {bad[0]!r})"
                )
        names = [v.name for v in self.arms()]
        if len(set(names)) != len(names):
            raise ValueError(f"claim {self.name!r}: two variants share a name")
        return self

    def arms(self) -> list[Variant]:
        """The variants; for a sweep, one per grid point (named ``lr=0.5 seq_len=10``)."""
        if self.kind == "ablation":
            return list(self.variants)
        keys = list(self.sweep)
        arms = []
        for combo in itertools.product(*(self.sweep[k] for k in keys)):
            sets: dict[str, dict[str, Any]] = {}
            for key, value in zip(keys, combo, strict=True):
                section, name = key.split(".")
                sets.setdefault(section, {})[name] = value
            label = " ".join(
                f"{k.split('.')[1]}={v:g}" if isinstance(v, float) else f"{k.split('.')[1]}={v}"
                for k, v in zip(keys, combo, strict=True)
            )
            arms.append(Variant(name=label, set=sets))
        return arms


def merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` merged in, tables recursively (neither is changed)."""
    out = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in base.items()}
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def base_config(base: ClaimBase, name: str) -> dict[str, Any]:
    """The raw experiment config of ``[bases.<name>]``: its recipe with its sections over it.

    Raises:
        ConfigError: an unknown recipe (names the base).
    """
    try:
        text, source = config_mod.resolve_source(base.recipe)
    except ConfigError as error:
        raise ConfigError(f"bases.{name}.recipe: {error}") from None
    raw = config_mod.parse_toml(text, source)
    sections = {k: getattr(base, k) for k in ("task", "data", "model", "train")}
    return merge(raw, {k: v for k, v in sections.items() if v})


def config_key(raw: Mapping[str, Any]) -> str:
    """A canonical text of a run's config without its output section: equal keys, equal
    runs (shared between claims)."""
    return json.dumps({k: v for k, v in raw.items() if k != "output"}, sort_keys=True)
