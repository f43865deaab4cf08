"""The user's signal: decides what to hold and writes it as a targets file (symbol, weight of equity).

zhixing runs it at 09:00 in this folder; a non-zero exit, a timeout or an invalid targets file is
reported and nothing is traded from it.
"""

from pathlib import Path

TARGETS = {"600258.SH": 0.05, "600446.SH": 0.05}

lines = ["symbol,weight"] + [f"{symbol},{weight}" for symbol, weight in TARGETS.items()]
Path(__file__).with_name("targets.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
print(f"signal: {len(TARGETS)} names")
