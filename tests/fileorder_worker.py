"""Helper process for the two-process file-order test: drops orders through ``OrderFileWriter``.

Usage: ``python tests/fileorder_worker.py INPUT_DIR LEDGER_PATH ACCOUNT PREFIX COUNT SHARED``. Waits for
one line on stdin (so two workers start together), then writes ``COUNT`` orders with sids
``<PREFIX><i>`` and tries ``SHARED`` sids ``SHARED<i>`` that the other worker tries too (the ledger lets
exactly one of them through). Prints one line: ``written=<n> refused=<n>``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from zhixing.adapters.fileorder.writer import OrderFileWriter, SidLedger
from zhixing.engine.clock import LiveClock
from zhixing.engine.errors import BrokerError


def main(argv: list[str]) -> int:
    input_dir, ledger_path, account, prefix = Path(argv[1]), Path(argv[2]), argv[3], argv[4]
    count, shared = int(argv[5]), int(argv[6])
    writer = OrderFileWriter(input_dir, SidLedger(ledger_path), LiveClock())
    sys.stdin.readline()  # the start signal
    sids = [f"{prefix}{i:05d}" for i in range(count)]
    contested = [f"SHARED{i:04d}" for i in range(shared)]
    # interleave the contested sids with our own so both workers race for them mid-run
    step = max(1, count // max(1, shared))
    plan: list[str] = []
    for i, sid in enumerate(sids):
        plan.append(sid)
        if i % step == 0 and contested:
            plan.append(contested.pop(0))
    plan.extend(contested)
    written = refused = 0
    for sid in plan:
        try:
            writer.drop_order((sid, account, "SHSE.600103", 100, 1, 1, "2.60", "worker"))
            written += 1
        except BrokerError:
            refused += 1
    writer.ledger.close()
    print(f"written={written} refused={refused}", flush=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(main(sys.argv))
