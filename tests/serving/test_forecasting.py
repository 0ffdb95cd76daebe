"""``rnnlab.load`` and the HTTP API for a forecasting run: ``/forecast`` from JSON rows, JSON
CSV text or a ``text/csv`` body gives ``rnnlab.forecast``'s table for the same rows; wrong
columns, bad cells and bad bodies are 4xx JSON naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from tests.forecasting.helpers import ROWS, recent, series, train_run
from tests.serving.helpers import at_once, error_of, post_json_text, served

import rnnlab
from rnnlab.serving import ForecastPredictor, RequestError


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_run(tmp_path_factory.mktemp("serve-forecast"), epochs=2)


@pytest.fixture(scope="module")
def predictor(run_dir: Path) -> ForecastPredictor:
    loaded = rnnlab.load(run_dir)
    assert isinstance(loaded, ForecastPredictor)
    return loaded


@pytest.fixture(scope="module")
def client(predictor: ForecastPredictor) -> Iterator[httpx.Client]:
    with served(predictor, max_body_bytes=16 * 1024) as http:
        yield http


def rows(
    end: int = ROWS, count: int = 30, frame: pd.DataFrame | None = None
) -> list[dict[str, Any]]:
    """Rows ``end - count .. end`` of the series as JSON objects (timestamps as text)."""
    part = (series() if frame is None else frame).iloc[end - count : end].copy()
    part["time"] = part["time"].astype(str)
    return list(part.to_dict(orient="records"))


def same_table(body: dict[str, Any], table: pd.DataFrame) -> None:
    assert body["columns"] == list(table.columns) == ["time", "y", "y_lower", "y_upper"]
    assert [row["time"] for row in body["rows"]] == [t.isoformat() for t in table["time"]]
    for name in ("y", "y_lower", "y_upper"):
        np.testing.assert_allclose([row[name] for row in body["rows"]], table[name], rtol=1e-12)


@pytest.fixture(scope="module")
def reference(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return rnnlab.forecast(run_dir, recent(tmp_path_factory.mktemp("recent")))


def test_load_gives_the_forecast_predictor(
    predictor: ForecastPredictor, reference: pd.DataFrame
) -> None:
    same_table(predictor.forecast(rows()), reference)
    described = predictor.describe()
    assert described["columns"] == ["y", "x"] and described["time_column"] is None
    with pytest.raises(RequestError, match="exactly one of") as caught:
        predictor.forecast()
    assert caught.value.field == "rows"


def test_health(client: httpx.Client) -> None:
    body = client.get("/health").json()
    assert body["task"] == "forecasting" and body["horizon"] == 5 and body["input_length"] == 20
    assert body["routes"] == ["/health", "/forecast"]


def test_json_rows_csv_text_and_a_csv_body_give_the_forecast_table(
    client: httpx.Client, reference: pd.DataFrame, tmp_path: Path
) -> None:
    csv_text = recent(tmp_path).read_text()
    for answer in (
        client.post("/forecast", json={"rows": rows()}),
        client.post("/forecast", json={"csv": csv_text}),
        client.post("/forecast", content=csv_text, headers={"content-type": "text/csv"}),
    ):
        assert answer.status_code == 200, answer.text
        same_table(answer.json(), reference)
        assert answer.json()["notices"] == []


def test_horizon_in_the_body_or_the_query(client: httpx.Client, reference: pd.DataFrame) -> None:
    body = client.post("/forecast", json={"rows": rows(), "horizon": 2}).json()
    assert body["horizon"] == 2 and len(body["rows"]) == 2
    np.testing.assert_allclose([r["y"] for r in body["rows"]], reference["y"][:2], rtol=1e-12)
    assert len(client.post("/forecast?horizon=3", json={"rows": rows()}).json()["rows"]) == 3
    assert "horizon must lie in [1, 5], got 6" in error_of(
        client.post("/forecast", json={"rows": rows(), "horizon": 6}), 422, "horizon"
    )
    error_of(client.post("/forecast?horizon=soon", json={"rows": rows()}), 422, "horizon")


def test_extra_columns_are_ignored_with_a_notice(client: httpx.Client) -> None:
    extra = [{**row, "comment": "ok"} for row in rows()]
    notices = client.post("/forecast", json={"rows": extra}).json()["notices"]
    assert notices and "ignored the columns ['comment']" in notices[0]


def test_wrong_columns_name_what_is_missing(client: httpx.Client) -> None:
    without_x = [{k: v for k, v in row.items() if k != "x"} for row in rows()]
    message = error_of(client.post("/forecast", json={"rows": without_x}), 422, "rows")
    assert "missing ['x']" in message and "the request rows" in message
    csv_text = "time,y\n2022-03-01 00:00:00,1.0\n"
    assert "missing ['x']" in error_of(client.post("/forecast", json={"csv": csv_text}), 422, "csv")


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"rows": "time,y"}, "rows", "valid array"),
        ({"rows": [1, 2]}, "rows.0", "Input should be an object"),
        ({"rows": []}, "rows", "rows is empty"),
        ({}, "rows", "exactly one of"),
        ({"rows": [{"time": "2022-03-01"}], "csv": "time"}, "rows", "exactly one of"),
        ({"csv": 5}, "csv", "valid string"),
        ({"csv": ""}, "csv", "cannot read the request CSV"),
        ({"rows": [{"time": "x"}], "when": 1}, "when", "Extra inputs"),
    ],
)
def test_bad_bodies_are_422_naming_the_field(
    client: httpx.Client, body: object, field: str, words: str
) -> None:
    assert words in error_of(client.post("/forecast", json=body), 422, field)


def test_bad_cells_and_too_few_rows_are_422(client: httpx.Client) -> None:
    bad = rows()
    bad[3]["y"] = "lots"
    assert "non-numeric value 'lots' in column 'y'" in error_of(
        client.post("/forecast", json={"rows": bad}), 422, "rows"
    )
    short = error_of(client.post("/forecast", json={"rows": rows(count=5)}), 422, "rows")
    assert "input_length=20" in short


def test_malformed_json_wrong_content_type_and_oversized_bodies(client: httpx.Client) -> None:
    assert "malformed JSON" in error_of(
        post_json_text(client, "/forecast", '{"rows": ['), 400, "body"
    )
    error_of(
        client.post("/forecast", content=b"\xff\xfe", headers={"content-type": "text/csv"}),
        400,
        "body",
    )
    error_of(
        client.post("/forecast", content=b"<xml/>", headers={"content-type": "application/xml"}),
        415,
        "body",
    )
    error_of(client.post("/forecast", json={"rows": rows(count=400)}), 413, None)


def test_concurrent_requests_are_all_answered_correctly(
    client: httpx.Client, predictor: ForecastPredictor
) -> None:
    ends = [ROWS - 8 * i for i in range(8)]

    def ask(i: int) -> dict[str, Any]:
        answer = client.post("/forecast", json={"rows": rows(end=ends[i])})
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    answers = at_once(ask, 8)
    for end, answer in zip(ends, answers, strict=True):
        assert answer == predictor.forecast(rows(end=end))
