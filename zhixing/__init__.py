"""zhixing: an asyncio-native order execution engine for China's A-share market.

One distribution, one top-level name. The repository keeps the design card's folders at its top
(``engine/``, ``algos/``, ``adapters/``, ``replay/``); installed, they are ``zhixing.engine``,
``zhixing.algos``, ``zhixing.adapters`` and ``zhixing.replay`` (``pyproject.toml`` maps them). From a
checkout (``PYTHONPATH`` at the repository, or an editable install), ``zhixing.checkout`` finds those four
names, and only those, in the repository's folders, so the same ``zhixing.*`` names find the same files.

The public face, what a strategy or a script uses (later issues extend it):

- ``build_engine``, ``EngineSettings``, ``Engine``: the composition root (``zhixing.assembly``);
- ``ParentOrder``, ``Side``: what to execute;
- ``ZhixingError`` and its tree (``ConfigError``, ``InputError``, ``ParameterError``): what can go wrong;
- for strategy scripts (``docs/API.md``): ``connect`` / ``connect_replay`` -> ``AsyncClient`` (asyncio) and
  ``Client`` (plain scripts: ``Client.connect`` / ``Client.replay``), with ``Cash``, ``Position``,
  ``Trade``, ``Order``, ``AlgoHandle``, ``Progress`` and ``OrderDenied`` (``zhixing.api``, ``zhixing.sync``).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

_here = Path(__file__).resolve().parent
if not (_here / "engine").is_dir():  # a checkout: engine/, algos/, ... sit beside zhixing/
    from zhixing.checkout import install

    install(_here.parent)

# The API is loaded on first use (PEP 562): importing ``zhixing.engine.units`` does not pull in the
# algorithms and the composition root, and the core keeps its import map (tests/test_composition_root.py).
_API = {
    "Engine": "zhixing.assembly",
    "EngineSettings": "zhixing.assembly",
    "build_engine": "zhixing.assembly",
    "Side": "zhixing.engine.enums",
    "ParentOrder": "zhixing.engine.parents",
    "ZhixingError": "zhixing.engine.errors",
    "ConfigError": "zhixing.engine.errors",
    "InputError": "zhixing.engine.errors",
    "ParameterError": "zhixing.engine.errors",
    "AlgoHandle": "zhixing.api",
    "AsyncClient": "zhixing.api",
    "Cash": "zhixing.api",
    "OrderDenied": "zhixing.api",
    "Position": "zhixing.api",
    "Progress": "zhixing.api",
    "Trade": "zhixing.api",
    "connect": "zhixing.api",
    "connect_replay": "zhixing.api",
    "Client": "zhixing.sync",
    "Order": "zhixing.engine.orders",
}
__all__ = [
    "AlgoHandle",
    "AsyncClient",
    "Cash",
    "Client",
    "ConfigError",
    "Engine",
    "EngineSettings",
    "InputError",
    "Order",
    "OrderDenied",
    "ParameterError",
    "ParentOrder",
    "Position",
    "Progress",
    "Side",
    "Trade",
    "ZhixingError",
    "build_engine",
    "connect",
    "connect_replay",
]

if TYPE_CHECKING:
    from zhixing.api import (
        AlgoHandle,
        AsyncClient,
        Cash,
        OrderDenied,
        Position,
        Progress,
        Trade,
        connect,
        connect_replay,
    )
    from zhixing.assembly import Engine, EngineSettings, build_engine
    from zhixing.engine.enums import Side
    from zhixing.engine.errors import ConfigError, InputError, ParameterError, ZhixingError
    from zhixing.engine.orders import Order
    from zhixing.engine.parents import ParentOrder
    from zhixing.sync import Client


def __getattr__(name: str) -> object:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'zhixing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
