"""Command-line plumbing shared by the ``cso`` commands: exit codes, checked numbers, errors, JSON.

One exit-code scheme for every command (`EXIT_CODES`); usage errors and refusals are one
``PROG: error: ...`` line on stderr and, under ``--json``, an ``{"error", "reason"}`` object on
stdout too; JSON output never holds NaN or Infinity (`dumps`).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any, Callable, NoReturn, Optional, Sequence, Union

#: The exit codes of every ``cso`` command.
OK, NEGATIVE, USAGE, INTERNAL = 0, 1, 2, 3
EXIT_CODES = ("exit codes: 0 ok; 1 the answer is negative (no path, invalid topology or config "
              "file, a file that cannot be written); 2 usage (a bad option or value); 3 internal "
              "error (`cso --debug COMMAND ...` shows the traceback)")


class UsageError(Exception):
    """A bad option or value (exit 2); ``prog`` is the command that refuses it."""

    def __init__(self, message: str, prog: str = "cso"):
        super().__init__(message)
        self.message, self.prog = message, prog


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors raise `UsageError` instead of exiting (see `parse_args`).

    Its help ends with the exit codes.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("epilog", EXIT_CODES)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """Raise the usage error (argparse would print it and exit)."""
        raise UsageError(message, self.prog)


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, ±Infinity), however deep, replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """Strict JSON: non-finite numbers become null (``allow_nan=False`` as a safety net)."""
    return json.dumps(finite(value), allow_nan=False, **kwargs)


def fail(prog: str, message: str, code: int = USAGE, as_json: bool = False,
         error: str = "usage") -> int:
    """Report a refusal: one line on stderr, and a JSON object on stdout when ``as_json``.

    Returns ``code``, the exit code, so that callers may ``return fail(...)``.
    """
    reason = " ".join(str(message).split())
    if as_json:
        print(dumps({"error": error, "reason": reason}))
    print(f"{prog}: error: {reason}", file=sys.stderr)
    return code


def parse_args(parser: argparse.ArgumentParser,
               argv: Optional[Sequence[str]]) -> Union[argparse.Namespace, int]:
    """The parsed arguments, or the exit code when there is nothing to run (--help, usage error).

    A usage error is one line on stderr naming the option, with where to find the usage (and
    the JSON error under ``--json``).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return parser.parse_args(args)
    except SystemExit as stop:               # --help: argparse printed it
        return int(stop.code or 0)
    except UsageError as err:
        return fail(err.prog, f"{err.message} (usage: {err.prog} --help)", USAGE,
                    "--json" in args)


def number(kind: Callable[[str], Any] = float, low: Optional[float] = None,
           high: Optional[float] = None, above: Optional[float] = None,
           what: str = "") -> Callable[[str], Any]:
    """An argparse type: a finite ``kind`` (int or float) within the bounds given.

    ``low``/``high`` are inclusive, ``above`` exclusive; ``what`` describes the value in errors.
    """
    bounds = [f">= {low:g}" if low is not None else "", f"> {above:g}" if above is not None else "",
              f"<= {high:g}" if high is not None else ""]
    wanted = what or (f"{'an integer' if kind is int else 'a finite number'} "
                      f"{' and '.join(b for b in bounds if b)}").strip()

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected {wanted}, not {text!r}") from None
        if (not math.isfinite(value) or (low is not None and value < low)
                or (above is not None and value <= above) or (high is not None and value > high)):
            raise argparse.ArgumentTypeError(f"expected {wanted}, not {text!r}")
        return value
    convert.__name__ = wanted
    return convert


def listed(item: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    """An argparse type: a comma-separated, non-empty list of distinct ``item``s."""
    def convert(text: str) -> list[Any]:
        items = [part.strip() for part in text.split(",") if part.strip()]
        if not items:
            raise argparse.ArgumentTypeError("expected a comma-separated list, not an empty one")
        try:
            values = [item(part) for part in items]
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        twice = sorted({str(v) for v in values if values.count(v) > 1})
        if twice:   # a value given twice would be one series counted twice
            raise argparse.ArgumentTypeError(f"{', '.join(twice)} given more than once")
        return values
    return convert


#: Common argparse types.
POSITIVE_INT = number(int, low=1)
COUNT = number(int, low=0)
POSITIVE = number(float, above=0)
NON_NEGATIVE = number(float, low=0)
FRACTION = number(float, low=0, high=1, what="a number in [0, 1]")
