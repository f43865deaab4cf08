"""The ``zhixing`` command line: the composition root.

This package is the only part of ``engine`` that may import ``algos``, ``adapters`` and ``replay``: it
wires a store, an adapter, algorithms and a feed together. Each sub-command lives in its own module.
"""

from __future__ import annotations

import argparse
import signal
import sys
import traceback
from collections.abc import Sequence

from zhixing.engine.cli import (
    account_cmd,
    algos_cmd,
    calendar_cmd,
    chaos_cmd,
    config_cmd,
    declare_cmd,
    journal_cmd,
    ops_cmd,
    paper_cmd,
    portfolio_cmd,
    profile_cmd,
    replay_cmd,
    run_cmd,
    schedule_cmd,
    submit_cmd,
)
from zhixing.engine.errors import ZhixingError
from zhixing.engine.logs import configure_logging, install_secret_filter
from zhixing.engine.secrets import scrub
from zhixing.engine.stop import (
    EXIT_BAD_INPUT,
    EXIT_BUG,
    Stopped,
    install_process_stop,
    signal_exit_code,
    signal_name,
    uninstall_process_stop,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zhixing",
        description=(
            "Order execution engine for China A-shares: scheduled live runs through file orders, QMT or "
            "gm; execution algorithms; portfolio operations; a journal; replay and paper trading."
        ),
    )
    parser.add_argument("--log-level", default="warning", help="debug, info, warning (default), error")
    sub = parser.add_subparsers(dest="command", required=True)
    replay_cmd.add_parsers(sub)
    journal_cmd.add_parsers(sub)
    profile_cmd.add_parsers(sub)
    algos_cmd.add_parsers(sub)
    chaos_cmd.add_parsers(sub)
    portfolio_cmd.add_parsers(sub)
    paper_cmd.add_parsers(sub)
    config_cmd.add_parsers(sub)
    run_cmd.add_parsers(sub)
    schedule_cmd.add_parsers(sub)
    ops_cmd.add_parsers(sub)
    account_cmd.add_parsers(sub)
    calendar_cmd.add_parsers(sub)
    declare_cmd.add_parsers(sub)
    submit_cmd.add_parsers(sub)
    return parser


BUG_REPORT = "zhixing: internal error — please report it: see docs/OPERATIONS.md#reporting-a-bug"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. A ``ZhixingError`` (``ParameterError`` included) is the user's to fix: its message,
    exit 2. Any other exception (a bare ``ValueError`` too) is a bug: the traceback and where to report
    it, exit 70. Secrets registered so far are masked in the traceback as in the logs."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    install_secret_filter()
    install_process_stop()  # SIGINT/SIGTERM: the command unwinds, exits 128 + signal (engine/stop.py)
    try:
        result: int = args.handler(args)
    except ZhixingError as exc:  # bad input, config or parameters: a message, not a traceback
        print(f"zhixing: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # not one of ours: a bug, whatever its type
        print(scrub("".join(traceback.format_exception(exc))), end="", file=sys.stderr)
        print(BUG_REPORT, file=sys.stderr)
        return EXIT_BUG
    except KeyboardInterrupt as exc:  # Stopped (SIGTERM) or Ctrl-C: what was being done is not done
        signum = exc.signum if isinstance(exc, Stopped) else signal.SIGINT
        print(f"zhixing: stopped by {signal_name(signum)}", file=sys.stderr)
        return signal_exit_code(signum)
    finally:
        uninstall_process_stop()
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
