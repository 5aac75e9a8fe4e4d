"""Run the table, or part of it, and print the tally (``python -m fuzz.run [PREFIX]``).

Each (entry, mutation) case is classified by :func:`outcome.classify`; the
JSON lines on stdout are read back by the test, which runs this module in a
subprocess with ``faulthandler`` on so that a crash inside a kernel is a
failure too, not a dead test process.
"""

from __future__ import annotations

import collections
import faulthandler
import json
import sys
import warnings
from typing import Any

from .constructors import NONSENSE
from .entries import ENTRIES
from .entries_layers import LAYER_ENTRIES
from .entries_more import MORE_ENTRIES
from .mutations import MUTATIONS, base_input
from .outcome import _ours, classify

__all__ = ["main"]


def _option_case(call: Any, x: Any) -> tuple[str, str]:
    """A call with a bad option value: only a clean ValueError / TypeError passes."""
    try:
        call(x)
    except (ValueError, TypeError) as err:
        if not _ours(err):
            return "cryptic", f"{type(err).__name__}: {str(err)[:160]}"
        return "pass", str(err)[:160]
    except Exception as err:
        return "wrong-type", f"{type(err).__name__}: {str(err)[:160]}"
    return "accepted", "a bad option value was accepted"


def main(prefix: str = "") -> collections.Counter[str]:
    """Run every case whose entry name starts with ``prefix``; one JSON line per case."""
    faulthandler.enable()
    warnings.simplefilter("ignore")
    tally: collections.Counter[str] = collections.Counter()

    def report(entry: str, case: str, verdict: str, detail: str) -> None:
        tally[verdict] += 1
        record = {"entry": entry, "case": case, "verdict": verdict, "detail": detail}
        print(json.dumps(record), flush=True)

    for label, call in NONSENSE.items():
        if f"constructors.{label}".startswith(prefix):
            report("constructors", label, *_option_case(lambda _, call=call: call(), None))
    for entry in (*ENTRIES, *LAYER_ENTRIES, *MORE_ENTRIES):
        if not entry.name.startswith(prefix):
            continue
        for mutation in MUTATIONS:
            report(entry.name, mutation.name, *classify(entry, mutation))
        for label, call in entry.options.items():
            report(entry.name, f"option {label}", *_option_case(call, base_input(entry)))
    return tally


if __name__ == "__main__":
    counts = main(sys.argv[1] if len(sys.argv) > 1 else "")
    print(json.dumps({"tally": dict(counts)}), file=sys.stderr)
