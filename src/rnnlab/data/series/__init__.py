"""Time series for forecasting: load and check, split in time, scale, cut into windows.

One module per step:

- :mod:`~rnnlab.data.series.load`: CSV/Parquet to a checked :class:`TimeSeries` (roles of
  columns, missing values, sorting, frequency and gaps);
- :mod:`~rnnlab.data.series.grid`: missing timestamps as empty rows on a regular grid;
- :mod:`~rnnlab.data.series.calendar`: calendar features derived from the timestamps;
- :mod:`~rnnlab.data.series.split`: chronological splits by fraction, by date, and the ETT
  protocol of the long-horizon literature;
- :mod:`~rnnlab.data.series.scaling`: z-score / min-max fitted on training rows, JSON I/O;
- :mod:`~rnnlab.data.series.windows`: sliding windows as a torch ``Dataset`` and the
  split-scale-window recipe :func:`prepare_forecast_data`.

Example:
    >>> from rnnlab.data.series import load_series, ett_split, prepare_forecast_data
    >>> series = load_series("ETTh1.csv")  # doctest: +SKIP
    >>> data = prepare_forecast_data(series, ett_split(len(series)), 96, 96)  # doctest: +SKIP
    >>> len(data.train), len(data.valid), len(data.test)  # doctest: +SKIP
    (8449, 2785, 2785)
"""

from rnnlab.data.series.calendar import CALENDAR_FEATURES, calendar_features
from rnnlab.data.series.errors import SeriesError
from rnnlab.data.series.grid import GridRows, to_grid
from rnnlab.data.series.load import (
    SeriesReport,
    TimeSeries,
    load_series,
    numeric_column,
    series_from_frame,
)
from rnnlab.data.series.scaling import Scaler
from rnnlab.data.series.split import (
    Split,
    ett_rows_per_hour,
    ett_split,
    split_by_dates,
    split_by_fraction,
)
from rnnlab.data.series.windows import ForecastData, WindowDataset, prepare_forecast_data

__all__ = [
    "CALENDAR_FEATURES",
    "ForecastData",
    "GridRows",
    "Scaler",
    "SeriesError",
    "SeriesReport",
    "Split",
    "TimeSeries",
    "WindowDataset",
    "calendar_features",
    "ett_rows_per_hour",
    "ett_split",
    "load_series",
    "numeric_column",
    "prepare_forecast_data",
    "series_from_frame",
    "split_by_dates",
    "split_by_fraction",
    "to_grid",
]
