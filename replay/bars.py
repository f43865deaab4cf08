"""1-minute bar files -> one normalised pandas frame (volume profiles, demos).

Two schemas are recognised from the header (see ``replay/sample_data/README.md``):

- **OHLCV** ``symbol, trade_date, bar_end, open, high, low, close, volume, amount``: bars labelled by
  their END time (09:31 … 11:30, 13:01 … 15:00), volume in shares.
- **TDX fenshi** ``symbol, trade_date, bar_start_raw, bar_end, price, volume_lots``: TDX labels a minute by
  its START (``bar_start_raw`` 09:30 … 14:59); the shared files already carry ``bar_end`` = start + 1 min
  (checked on load). Volume is in lots of 100 shares; ``price`` is the minute's last price.

The result has the columns ``OUTPUT_COLUMNS``:

- ``symbol`` (str), ``trade_date`` (``datetime.date``), ``bar_end`` (tz-aware ``Asia/Shanghai``);
- ``minute_of_session`` (int64 0..239): the continuous-session minute the bar ENDS in. A bar ending
  09:31 is 0, 11:30 is 119, 13:01 is 120, 15:00 is 239;
- ``volume`` (int64 shares; fenshi lots x 100); ``close`` (int64 milli-yuan: OHLCV ``close`` or fenshi
  ``price``).

Rules for bars outside the continuous session:

- A bar ending at or before 09:30 (the 09:25 opening-auction print) is **folded** into minute 0: its
  volume is added to the 09:31 bar. Both schemas already count the auction in their first bar.
- Bars ending 11:31 … 13:00 (lunch) or after 15:00 (STAR/ChiNext after-hours fixed-price trading) are
  **dropped**.
- Closing auction: TDX puts the 15:00 closing-auction volume in its "14:59" minute. That minute ends at
  15:00, so it is minute 239, the same minute that holds the auction in the OHLCV files (their 15:00 bar).
  It is kept there as is: minute 239 = the closing auction in both schemas, and minutes 237 and 238
  (the 14:57-15:00 call period) are normally 0.

Rows are sorted by symbol, then time, within each file; folders are concatenated in file-name order.
Errors are ``InputError`` naming the file, the row (file line number, header = row 1) and the field.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from zhixing.engine.errors import InputError
from zhixing.engine.units import NS_PER_MINUTE, PRICE_SCALE
from zhixing.replay.data import (
    CHINA_UTC_OFFSET_NS,
    FIRST_DATA_ROW,
    HEADER_ROW,
    NS_PER_DAY,
    csv_files,
    parse_iso_ns,
    raise_first,
    read_csv_or_raise,
    read_header,
)

OHLCV_COLUMNS = ("symbol", "trade_date", "bar_end", "open", "high", "low", "close", "volume", "amount")
FENSHI_COLUMNS = ("symbol", "trade_date", "bar_start_raw", "bar_end", "price", "volume_lots")
OUTPUT_COLUMNS = ("symbol", "trade_date", "bar_end", "minute_of_session", "volume", "close")
SESSION_MINUTES = 240
TIMEZONE = "Asia/Shanghai"

_MORNING_FIRST_END = 9 * 60 + 31  # minute of day of the first morning bar end (09:31)
_MORNING_LAST_END = 11 * 60 + 30
_AFTERNOON_FIRST_END = 13 * 60 + 1
_AFTERNOON_LAST_END = 15 * 60
_PRE_OPEN = -1  # folded into minute 0
_OUTSIDE = -2  # dropped


def minute_of_session(minute_of_day: NDArray[np.int64]) -> NDArray[np.int64]:
    """Continuous-session minute index (0..239) of bars ending at ``minute_of_day`` (China time).

    Bars ending at or before 09:30 map to -1 (pre-open, folded into 0 by the loader); bars ending in the
    lunch break or after 15:00 map to -2 (dropped).
    """
    morning = (minute_of_day >= _MORNING_FIRST_END) & (minute_of_day <= _MORNING_LAST_END)
    afternoon = (minute_of_day >= _AFTERNOON_FIRST_END) & (minute_of_day <= _AFTERNOON_LAST_END)
    result = np.full(minute_of_day.shape, _OUTSIDE, dtype=np.int64)
    result[minute_of_day < _MORNING_FIRST_END] = _PRE_OPEN
    result[morning] = minute_of_day[morning] - _MORNING_FIRST_END
    result[afternoon] = minute_of_day[afternoon] - _AFTERNOON_FIRST_END + SESSION_MINUTES // 2
    return result


def _detect_schema(header: list[str], path: Path) -> str:
    if set(FENSHI_COLUMNS) <= set(header):
        return "fenshi"
    if set(OHLCV_COLUMNS) <= set(header):
        return "ohlcv"
    message = f"unknown 1-minute bar schema; columns found: {', '.join(header)}"
    raise InputError(message, path=str(path), row=HEADER_ROW)


def _whole(path: Path, values: NDArray[np.float64], field: str) -> NDArray[np.int64]:
    raise_first(path, np.isnan(values), [field], "missing value")
    raise_first(path, values < 0, [field], "negative value")
    raise_first(path, np.isinf(values) | (values != np.rint(values)), [field], "not a whole number")
    return np.rint(values).astype(np.int64)


def _load_file(path: Path) -> pd.DataFrame:
    header = read_header(path)
    schema = _detect_schema(header, path)
    price_col, volume_col = ("price", "volume_lots") if schema == "fenshi" else ("close", "volume")
    text_cols = ["symbol", "trade_date", "bar_end"] + (["bar_start_raw"] if schema == "fenshi" else [])
    dtypes: dict[str, type] = {c: str for c in text_cols} | {price_col: np.float64, volume_col: np.float64}
    frame = read_csv_or_raise(path, dtypes, [*text_cols, price_col, volume_col])
    if len(frame) == 0:
        raise InputError("no data rows (header only)", path=str(path), row=FIRST_DATA_ROW)

    symbols = frame["symbol"].str.strip()
    raise_first(path, (symbols.isna() | (symbols == "")).to_numpy(), ["symbol"], "missing value")
    date_text = frame["trade_date"].str.strip()
    date_values = pd.to_datetime(date_text, format="%Y-%m-%d", errors="coerce")
    raise_first(path, date_values.isna().to_numpy(), ["trade_date"], "missing or not a YYYY-MM-DD date")
    end_ns = parse_iso_ns(frame["bar_end"], path, "bar_end")
    local_ns = end_ns + CHINA_UTC_OFFSET_NS
    raise_first(path, local_ns % NS_PER_MINUTE != 0, ["bar_end"], "bar_end is not on a whole minute")
    day_ns = date_values.to_numpy(dtype="datetime64[ns]").view(np.int64)
    raise_first(
        path, local_ns // NS_PER_DAY != day_ns // NS_PER_DAY, ["bar_end"], "bar_end not on trade_date"
    )
    minute_of_day = (local_ns % NS_PER_DAY) // NS_PER_MINUTE
    if schema == "fenshi":
        raw = frame["bar_start_raw"].str.replace(":", "", regex=False).str.strip()
        start = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        start_minute = (start // 100) * 60 + start % 100
        mismatch = np.isnan(start) | (start_minute + 1 != minute_of_day)
        raise_first(path, mismatch, ["bar_start_raw"], "bar_start_raw + 1 minute != bar_end")

    prices = frame[price_col].to_numpy(dtype=np.float64)
    raise_first(path, np.isnan(prices) | np.isinf(prices), [price_col], "missing value")
    raise_first(path, prices < 0, [price_col], "negative value")
    volume = _whole(path, frame[volume_col].to_numpy(dtype=np.float64), volume_col)
    minute = minute_of_session(minute_of_day)
    result = pd.DataFrame(
        {
            "symbol": symbols.to_numpy(dtype=object),
            "_day": day_ns,
            "_end_ns": end_ns,
            "_row": np.arange(len(frame), dtype=np.int64),
            "minute_of_session": minute,
            "volume": volume * (100 if schema == "fenshi" else 1),
            "close": np.rint(prices * PRICE_SCALE).astype(np.int64),
        }
    )
    result = result[minute != _OUTSIDE]
    return _finish(path, result.sort_values(["symbol", "_end_ns"], kind="stable"))


def _finish(path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    """Fold pre-open bars into minute 0, reject duplicate minutes, build the output columns."""
    pre_open = frame["minute_of_session"].to_numpy() == _PRE_OPEN
    regular = frame[~pre_open]
    duplicated = regular[["symbol", "_end_ns"]].duplicated().to_numpy()
    if duplicated.any():
        row = int(regular["_row"].to_numpy()[np.argmax(duplicated)])
        raise InputError("duplicate bar", path=str(path), row=row + FIRST_DATA_ROW, field="bar_end")
    if pre_open.any():
        frame = frame.assign(minute_of_session=np.where(pre_open, 0, frame["minute_of_session"].to_numpy()))
        frame = frame.groupby(["symbol", "_day", "minute_of_session"], sort=False, as_index=False).agg(
            volume=("volume", "sum"), close=("close", "last")
        )
    end_ns = frame["_day"].to_numpy() - CHINA_UTC_OFFSET_NS
    end_ns += (frame["minute_of_session"].to_numpy() + _MORNING_FIRST_END) * NS_PER_MINUTE
    end_ns += np.where(frame["minute_of_session"].to_numpy() >= SESSION_MINUTES // 2, 90 * NS_PER_MINUTE, 0)
    days = frame["_day"].to_numpy()
    uniq, inverse = np.unique(days, return_inverse=True)
    dates = np.array(
        [dt.date(1970, 1, 1) + dt.timedelta(days=int(d // NS_PER_DAY)) for d in uniq], dtype=object
    )
    return pd.DataFrame(
        {
            "symbol": frame["symbol"].to_numpy(dtype=object),
            "trade_date": dates[inverse] if len(days) else np.array([], dtype=object),
            "bar_end": pd.DatetimeIndex(end_ns.view("datetime64[ns]"))
            .tz_localize("UTC")
            .tz_convert(TIMEZONE),
            "minute_of_session": frame["minute_of_session"].to_numpy(dtype=np.int64),
            "volume": frame["volume"].to_numpy(dtype=np.int64),
            "close": frame["close"].to_numpy(dtype=np.int64),
        }
    )


def load_minute_bars(path: str | Path) -> pd.DataFrame:
    """Load a 1-minute bar file (OHLCV or TDX fenshi), or every ``*.csv`` / ``*.csv.gz`` in a folder
    (concatenated in file-name order), into the normalised frame described in the module docstring."""
    frames = [_load_file(file) for file in csv_files(Path(path))]
    non_empty = [f for f in frames if len(f)]
    if len(non_empty) <= 1:
        return (non_empty or frames)[0]
    return pd.concat(non_empty, ignore_index=True)
