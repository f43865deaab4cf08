"""zhixing core: events, bus, clocks, orders, order manager, store, market rules, account.

Nothing in this package (except ``engine.cli``, the composition root) imports ``algos``, ``adapters``
or ``replay``.
"""
