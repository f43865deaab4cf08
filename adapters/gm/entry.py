"""The strategy module ``gm.api.run(filename="adapters/gm/entry.py", ...)`` imports.

gm looks these functions up by name on the module it imports and calls them on its own thread. Each
one forwards to the installed ``adapters.gm.bridge.GmBridge``; with none installed it does nothing
(a bridge installed later recovers the state by querying). No engine code runs here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zhixing.adapters.gm.bridge import installed


def init(context: object) -> None:
    """gm calls this once after connecting; zhixing needs nothing from it."""
    del context


def on_order_status(context: object, order: Mapping[str, Any]) -> None:
    if (bridge := installed()) is not None:
        bridge.on_order_status(order)


def on_execution_report(context: object, execrpt: Mapping[str, Any]) -> None:
    if (bridge := installed()) is not None:
        bridge.on_execution_report(execrpt)


def on_tick(context: object, tick: Mapping[str, Any]) -> None:
    if (bridge := installed()) is not None:
        bridge.on_tick(tick)


def on_trade_data_connected(context: object) -> None:
    if (bridge := installed()) is not None:
        bridge.on_trade_data_connected()


def on_trade_data_disconnected(context: object) -> None:
    if (bridge := installed()) is not None:
        bridge.on_trade_data_disconnected()


def on_account_status(context: object, account: Mapping[str, Any]) -> None:
    if (bridge := installed()) is not None:
        bridge.on_account_status(account)


def on_error(context: object, code: object, info: object) -> None:
    if (bridge := installed()) is not None:
        bridge.on_error(code, info)
