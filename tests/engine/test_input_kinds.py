"""The one file-kind sniffer (``engine.input_kinds``) and every loader's refusal of a file of another kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from zhixing.adapters.fileorder import format as gm_format
from zhixing.engine.errors import InputError
from zhixing.engine.input_kinds import (
    GM_CANCEL_COLUMNS,
    GM_CANCEL_SUFFIX,
    GM_ORDER_COLUMNS,
    GM_ORDER_SUFFIX,
    FileKind,
    column_names,
    sniff,
)
from zhixing.engine.inputs import read_orders_file, read_positions_file
from zhixing.engine.market import load_status_file
from zhixing.engine.portfolio.targets import read_targets

GM_ORDER = "sid,account_id,symbol,volume,order_type,order_business(order_biz),price,comment"


def test_the_gm_columns_and_suffixes_are_the_adapters() -> None:
    assert set(GM_ORDER_COLUMNS) | {"comment"} <= column_names(gm_format.ORDER_HEADER)
    assert column_names(gm_format.ORDER_HEADER) - column_names(GM_ORDER.split(",")) == set()
    assert tuple(GM_CANCEL_COLUMNS) == gm_format.CANCEL_HEADER
    assert (GM_ORDER_SUFFIX, GM_CANCEL_SUFFIX) == (gm_format.ORDER_SUFFIX, gm_format.CANCEL_SUFFIX)


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        (GM_ORDER, FileKind.GM_ORDER),
        ("sid,account_id,symbol,volume,order_type,order_biz,price,comment", FileKind.GM_ORDER),
        ("\ufeffSID, Account_ID,symbol,volume,order_type,order_business,price", FileKind.GM_ORDER),
        ("sid,comment", FileKind.GM_CANCEL),
        ("sid", FileKind.GM_CANCEL),
        ("symbol,weight", FileKind.TARGETS),
        ("code,target_value,date", FileKind.TARGETS),
        ("symbol,volume", FileKind.TARGETS),
        ("symbol,side,quantity,algo,start,end", FileKind.ORDERS),
        ("symbol,quantity", FileKind.POSITIONS),
        ("symbol,status,from,to,listing_date", FileKind.STATUS),
        ("symbol,weight,quantity", FileKind.AMBIGUOUS),  # targets and positions: neither contains the other
        ("symbol,status,from,to,weight", FileKind.AMBIGUOUS),
        ("a,b,c", FileKind.UNKNOWN),
        ("sid,comment,extra", FileKind.UNKNOWN),
    ],
)
def test_a_header_is_one_kind_or_refused(header: str, kind: FileKind) -> None:
    assert sniff(header.split(",")).kind is kind


def test_a_gm_file_name_whose_header_says_otherwise_is_ambiguous() -> None:
    assert sniff(GM_ORDER.split(","), "x.order.csv").kind is FileKind.GM_ORDER
    assert sniff(["sid", "comment"], "x.cancel_order.csv").kind is FileKind.GM_CANCEL
    found = sniff(["symbol", "weight"], "20211201.order.csv")
    assert found.kind is FileKind.AMBIGUOUS
    assert "named like a 掘金 order file" in found.reason


def _file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_gm_order_file_read_as_targets_is_refused_naming_submit(tmp_path: Path) -> None:
    path = _file(tmp_path, "orders.csv", GM_ORDER + "\ns1,88001,SHSE.600000,5000,1,2,10.00,\n")
    with pytest.raises(InputError, match=r"this is a 掘金 order file .*use `zhixing submit") as caught:
        read_targets(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("read", "text", "words"),
    [
        (read_orders_file, "symbol,weight\n600000.SH,0.5\n", "this is a targets file"),
        (read_orders_file, GM_ORDER + "\ns1,88001,SHSE.600000,5000,1,2,10.00,\n", "zhixing submit"),
        (read_positions_file, "symbol,side,quantity\n600000.SH,buy,100\n", "this is an orders file"),
        (read_positions_file, "sid,comment\ns1,\n", "this is a 掘金 cancel file"),
        (load_status_file, "symbol,quantity\n600000.SH,100\n", "this is a positions file"),
        (read_targets, "symbol,side,quantity\n600000.SH,buy,100\n", "use `zhixing replay ORDERS`"),
        (read_targets, "symbol,weight,quantity\n600000.SH,0.1,100\n", "cannot tell what kind of file"),
    ],
)
def test_every_loader_refuses_another_kind(tmp_path: Path, read: object, text: str, words: str) -> None:
    path = _file(tmp_path, "input.csv", text)
    assert callable(read)
    with pytest.raises(InputError, match=r"input\.csv") as caught:
        read(path)
    assert words in str(caught.value)


def test_an_unknown_header_is_left_to_the_loaders_own_column_check(tmp_path: Path) -> None:
    path = _file(tmp_path, "input.csv", "ticker,amount\n600000.SH,100\n")
    with pytest.raises(InputError, match="missing column"):
        read_positions_file(path)
