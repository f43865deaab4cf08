"""A script's orders and algorithms through the journal's command channel (``engine.control``).

While ``zhixing run`` holds the account (the instance lock), a script's ``zhixing.connect`` cannot open a
second engine; it queues ``submit_order``, ``start_parent`` and ``cancel_order`` commands in the journal's
``control_commands`` table instead, and the running engine applies them. The channel is the journal file:
local, the same on Windows, open only to the OS users who may write that file, never on the network.

This module is the payload side: each command's ``arg`` is one JSON object, bounded (``MAX_ARG_CHARS``,
only the known fields, each of its type), parsed into what the engine needs or refused with
``InputError`` (recorded as the command's result; the engine goes on). Each command's result is one JSON
object (``result_json``): ``{"ok": true, ...}`` with the client order id and status or the parent id, or
``{"ok": false, "code": ..., "text": ...}``.

Idempotent by construction: the order's tag is ``api:<command id>`` and the parent's id
``api-<command id>``, so a command applied again after a crash (before its done mark was committed) finds
what it made the first time and sends nothing new.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from zhixing.engine.enums import OrderType, Side, order_type_named
from zhixing.engine.errors import InputError, ParameterError
from zhixing.engine.units import price_from_yuan

MAX_ARG_CHARS = 4096
"""A command's payload at most (characters): an order or a parent is a few hundred."""
MAX_PARAMS = 32
MAX_TEXT = 64
"""A symbol, an algorithm's name, a parameter's name or value, a tag: at most this many characters."""

ORDER_FIELDS = frozenset({"symbol", "side", "quantity", "value", "price", "order_type", "tag"})
PARENT_FIELDS = frozenset(
    {"symbol", "side", "quantity", "algo", "params", "start_ns", "end_ns", "window_s", "limit"}
)
MAX_WINDOW_S = 24 * 3600


def order_tag(command_id: int) -> str:
    return f"api:{command_id}"


def parent_id_of(command_id: int) -> str:
    return f"api-{command_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRequest:
    symbol: str
    side: Side
    quantity: int  # shares asked for, before the lot grid (the engine sizes: ``order_quantity``)
    value: int  # milli-yuan asked for instead of ``quantity`` (0: none): ``value // price`` shares
    price: int  # milli-yuan: the limit, or a market order's protection price (0: none)
    order_type: OrderType
    tag: str  # the script's own label, kept after the command's tag


@dataclass(frozen=True, slots=True, kw_only=True)
class ParentRequest:
    symbol: str
    side: Side
    quantity: int
    algo: str
    params: dict[str, str]
    start_ns: int  # 0: now
    end_ns: int  # 0: ``window_ns`` after the engine's now
    window_ns: int
    limit_price: int


def _object(arg: str, allowed: frozenset[str], command: str) -> dict[str, Any]:
    if len(arg) > MAX_ARG_CHARS:
        raise InputError(
            f"{command} payload is {len(arg)} characters, more than {MAX_ARG_CHARS}", field="arg"
        )
    try:
        value = json.loads(arg)
    except json.JSONDecodeError as exc:
        raise InputError(f"{command} payload is not JSON: {exc}", field="arg") from None
    if not isinstance(value, dict):
        raise InputError(f"{command} payload must be a JSON object", field="arg")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise InputError(f"{command} payload has unknown fields {unknown}", field=unknown[0])
    return value


def _text(value: dict[str, Any], key: str, *, required: bool = True, default: str = "") -> str:
    raw = value.get(key)
    if raw is None:
        if required:
            raise InputError(f"missing {key!r}", field=key)
        return default
    if not isinstance(raw, str) or len(raw) > MAX_TEXT:
        raise InputError(f"{key!r} must be text of at most {MAX_TEXT} characters, got {raw!r:.80}", field=key)
    return raw.strip()


def _int(value: dict[str, Any], key: str, *, default: int | None = None, positive: bool = False) -> int:
    raw = value.get(key)
    if raw is None:
        raw = default
    if raw is None:
        raise InputError(f"missing {key!r}", field=key)
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise InputError(f"{key!r} must be an integer, got {raw!r:.80}", field=key)
    if raw < 0 or (positive and raw == 0):
        raise InputError(f"{key!r} must be {'> 0' if positive else '>= 0'}, got {raw}", field=key)
    return raw


def _side(value: dict[str, Any]) -> Side:
    text = _text(value, "side").upper()
    try:
        return Side(text)
    except ValueError:
        raise InputError(f"'side' must be BUY or SELL, got {text!r}", field="side") from None


def _yuan(value: dict[str, Any], key: str) -> int:
    """A price in yuan, given as text (exact) or a number; absent or null: 0."""
    raw = value.get(key)
    if raw is None:
        return 0
    if isinstance(raw, bool) or not isinstance(raw, int | float | str) or len(str(raw)) > MAX_TEXT:
        raise InputError(f"{key!r} must be a price in yuan, got {raw!r:.80}", field=key)
    try:
        price = price_from_yuan(raw)
    except (ArithmeticError, ValueError):
        raise InputError(f"{key!r} must be a price in yuan, got {raw!r:.80}", field=key) from None
    if price < 0:
        raise InputError(f"{key!r} must be >= 0, got {raw}", field=key)
    return price


def parse_order(arg: str) -> OrderRequest:
    """``submit_order``'s payload: ``{symbol, side, quantity | value (yuan), price (yuan), order_type,
    tag}``."""
    value = _object(arg, ORDER_FIELDS, "submit_order")
    try:
        kind = order_type_named(_text(value, "order_type", required=False, default="limit"))
    except ParameterError as exc:
        raise InputError(str(exc), field="order_type") from None
    price = _yuan(value, "price")
    if kind is OrderType.LIMIT and price <= 0:
        raise InputError("a limit order needs 'price' > 0 (yuan)", field="price")
    quantity = _int(value, "quantity", default=0)
    worth = _yuan(value, "value")
    if bool(quantity) == bool(worth):
        raise InputError("give one of 'quantity' and 'value' (> 0)", field="quantity")
    if worth and price <= 0:
        raise InputError("'value' needs 'price' (yuan) to size the order", field="price")
    return OrderRequest(
        symbol=_text(value, "symbol"),
        side=_side(value),
        quantity=quantity,
        value=worth,
        price=price,
        order_type=kind,
        tag=_text(value, "tag", required=False),
    )


def parse_parent(arg: str) -> ParentRequest:
    """``start_parent``'s payload: ``{symbol, side, quantity, algo, params, start_ns, end_ns | window_s,
    limit}`` (``params``: the algorithm's own, name -> text; ``window_s``: the window's length from the
    engine's now, for a script that does not know the engine's clock; ``limit``: yuan, absent for none)."""
    value = _object(arg, PARENT_FIELDS, "start_parent")
    params = value.get("params") or {}
    if not isinstance(params, dict) or len(params) > MAX_PARAMS:
        raise InputError(f"'params' must be an object of at most {MAX_PARAMS} entries", field="params")
    text: dict[str, str] = {}
    for key, item in params.items():
        if len(key) > MAX_TEXT or isinstance(item, dict | list) or len(str(item)) > MAX_TEXT:
            raise InputError(f"'params' entry {key!r:.80} is not a short name -> value", field="params")
        text[key] = str(item)
    start_ns = _int(value, "start_ns", default=0)
    end_ns = _int(value, "end_ns", default=0)
    window_s = _int(value, "window_s", default=0)
    if bool(end_ns) == bool(window_s):
        raise InputError("give one of 'end_ns' and 'window_s' (> 0)", field="end_ns")
    if window_s > MAX_WINDOW_S:
        raise InputError(f"'window_s' {window_s} is more than a day", field="window_s")
    if start_ns and end_ns and end_ns <= start_ns:
        raise InputError(f"'end_ns' {end_ns} is not after 'start_ns' {start_ns}", field="end_ns")
    return ParentRequest(
        symbol=_text(value, "symbol"),
        side=_side(value),
        quantity=_int(value, "quantity", positive=True),
        algo=_text(value, "algo", required=False, default="twap"),
        params=text,
        start_ns=start_ns,
        end_ns=end_ns,
        window_ns=window_s * 1_000_000_000,
        limit_price=_yuan(value, "limit"),
    )


def result_json(ok: bool, **fields: object) -> str:
    """A command's recorded result (see the module docstring)."""
    return json.dumps({"ok": ok, **fields}, sort_keys=True, separators=(",", ":"))


def refused(code: str, text: str) -> str:
    return result_json(False, code=code, text=text)
