"""The top-level API: every name in ``rnnlab.__all__`` resolves, the command forms are the
documented functions of their domains, and ``import rnnlab`` stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import rnnlab


@pytest.mark.parametrize("name", sorted(rnnlab.__all__))
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(rnnlab, name) is not None


@pytest.mark.parametrize(
    ("name", "module"),
    [
        ("compare", "rnnlab.analysis.comparison.workflow"),
        ("diagnose", "rnnlab.analysis.diagnose"),
        ("tune", "rnnlab.tuning.search"),
        ("generate", "rnnlab.language.run"),
        ("forecast", "rnnlab.forecasting.predict"),
        ("recognize", "rnnlab.speech.recognize"),
        ("load", "rnnlab.serving.load"),
    ],
)
def test_the_commands_python_forms_come_from_their_wings(name: str, module: str) -> None:
    function = getattr(rnnlab, name)
    assert callable(function) and function.__module__ == module and function.__doc__


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        rnnlab.nope  # noqa: B018


def test_import_rnnlab_does_not_load_optuna_matplotlib_or_pandas() -> None:
    code = (
        "import sys, rnnlab\n"
        "print(sorted(m for m in ('optuna', 'matplotlib', 'pandas') if m in sys.modules))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert shown.strip() == "[]"
