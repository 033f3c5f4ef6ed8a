"""Limits on rendering one reminder message, and the checks the sandbox (sandbox.py) makes.

Every render has a `Budget` (steps, a deadline, a size limit) in a context variable; the checks
here refuse operations that would break it before they run: products and powers that grow past
MAX_NUMBER_DIGITS, repeats (`'x' * n`), widths and paddings, `join`, `replace` and format strings
whose result would pass `RenderLimits.chars`.
"""

from __future__ import annotations

import inspect
import re
import string
import time
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from functools import wraps
from typing import Any

from jinja2 import TemplateRuntimeError

# Python's own limit for turning an int into text is 4,300 digits; no letter needs a number of
# more than 1,000 digits, and products and powers are refused before they grow past it.
MAX_NUMBER_DIGITS = 1000
MAX_NUMBER_BITS = 3322  # 1,000 decimal digits: 1000 × log2(10), rounded up
# A template file longer than this is refused before it is compiled.
MAX_TEMPLATE_CHARS = 100_000


@dataclass(frozen=True)
class RenderLimits:
    """Limits on rendering one message. The defaults leave a wide margin for an account with
    thousands of invoices (a few thousand steps, some hundred thousand characters) while a
    runaway template stops within about a second."""

    steps: int = 1_000_000  # loop iterations, calls and filters
    chars: int = 1_000_000  # characters of the text, and size of any value a template builds
    seconds: float = 2.0  # wall clock


DEFAULT_LIMITS = RenderLimits()


class TemplateLimitError(TemplateRuntimeError):
    """A template broke one of the render limits; the message names the limit."""


class Budget:
    """What one render has used so far; LimitedEnvironment.render_limited sets it in BUDGET."""

    __slots__ = ("limits", "steps", "deadline")

    def __init__(self, limits: RenderLimits):
        self.limits, self.steps = limits, 0
        self.deadline = time.monotonic() + limits.seconds

    def tick(self) -> None:
        self.steps += 1
        if self.steps > self.limits.steps:
            raise TemplateLimitError(
                f"more than {self.limits.steps:,} steps (loop iterations, calls and filters): "
                "the limit per message"
            )
        self.check_time()

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateLimitError(
                f"rendering took more than {self.limits.seconds:g} s: the limit per message"
            )

    def check_size(self, size: int, what: str) -> None:
        if size > self.limits.chars:
            raise TemplateLimitError(
                f"{what} would be more than {self.limits.chars:,} characters: the limit per message"
            )


BUDGET: ContextVar[Budget | None] = ContextVar("credo_template_budget", default=None)


def current_budget() -> Budget:
    budget = BUDGET.get()
    if budget is None:  # fail closed: every render goes through render_limited
        raise TemplateLimitError("templates render only through LimitedEnvironment.render_limited")
    return budget


def value_size(value: Any, cap: int) -> int:
    """Roughly how many characters `value` prints as: strings by length, containers by their
    items, an item held twice counted twice. Stops counting once past `cap`, so it costs at most
    about `cap` steps however the value was built."""
    total, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        elif isinstance(item, Mapping):
            total += len(item) + 1
            if total <= cap:
                stack.extend(item.keys())
                stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += len(item) + 1
            if total <= cap:
                stack.extend(item)
        elif isinstance(item, range):
            total += len(item)
        else:
            total += 1
        if total > cap:
            break
    return total


def _size(value: Any) -> int:
    return value_size(value, current_budget().limits.chars)


def as_text(value: Any) -> str:
    """`value` as text, refusing first when the text would be too large."""
    if not isinstance(value, str):
        current_budget().check_size(_size(value), "a text")
        value = str(value)
    return value


# ---- checks before operations that can build far more than they are given ---------------------


def _check_repeat(seq: Any, times: Any) -> None:
    if isinstance(times, int) and isinstance(seq, str | list | tuple):
        current_budget().check_size(_size(seq) * max(times, 0), "a repeated value ('*')")


def _check_bits(bits: int, what: str) -> None:
    if bits > MAX_NUMBER_BITS:
        raise TemplateLimitError(
            f"{what} would have more than {MAX_NUMBER_DIGITS:,} digits: the limit per number"
        )


def check_binop(operator: str, left: Any, right: Any) -> None:
    both_int = isinstance(left, int) and isinstance(right, int)
    if operator == "*":
        if both_int:
            _check_bits(left.bit_length() + right.bit_length(), "a product")
        _check_repeat(left, right)
        _check_repeat(right, left)
    elif operator == "**" and both_int and right > 0 and abs(left) > 1:
        _check_bits(left.bit_length() * right, "a power")
    elif operator == "+" and type(left) is type(right) and isinstance(left, str | list | tuple):
        current_budget().check_size(_size(left) + _size(right), "a sum ('+')")
    elif operator == "%" and isinstance(left, str):
        _check_percent_format(left, right)


_PERCENT_FIELD = re.compile(r"%(?:\([^)]*\))?[#0 +\-]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?([a-zA-Z%])")


def _check_percent_format(fmt: str, args: Any) -> None:
    """`fmt % args` (the `%` operator, the `format` filter) within the size limit."""
    fields, widest = 0, 0
    for width, precision, kind in _PERCENT_FIELD.findall(fmt):
        if "*" in (width, precision):
            raise TemplateLimitError("'*' widths in % formats are not allowed")
        widest = max(widest, int(width or 0), int(precision or 0))
        fields += kind != "%"
    current_budget().check_size(len(fmt) + fields * (widest + _size(args)), "a formatted text")


def _check_str_format(fmt: str, args: Any) -> None:
    """`fmt.format(...)` within the size limit; widths taken from arguments are refused."""
    fields, widest = 0, 0
    for _literal, field, spec, _conversion in string.Formatter().parse(fmt):
        if field is None:
            continue
        if spec and "{" in spec:
            raise TemplateLimitError("widths taken from arguments ('{:{}}') are not allowed")
        widest = max([widest, *(int(n) for n in re.findall(r"\d+", spec or ""))])
        fields += 1
    current_budget().check_size(len(fmt) + fields * (widest + _size(args)), "a formatted text")


def _check_replace(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    text, old, new = as_text(text), as_text(old), as_text(new)
    found = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    growth = found * max(len(new) - len(old), 0)
    current_budget().check_size(len(text) + growth, "a replaced text")


def _materialise(items: Iterable[Any]) -> list[Any]:
    items = list(items)
    current_budget().check_size(_size(items), "a list")
    return items


def _check_join(items: list[Any], separator: Any) -> None:
    size = _size(items) + len(items) * len(as_text(separator))
    current_budget().check_size(size, "a joined text")


def _check_width(width: Any, what: str) -> None:
    limit = current_budget().limits.chars
    if isinstance(width, int) and width > limit:
        raise TemplateLimitError(f"{what} {width:,} is more than {limit:,}: the limit per message")


def _check_lines(text: Any, per_line: int, what: str) -> None:
    text = as_text(text)
    current_budget().check_size(len(text) + (text.count("\n") + 1) * per_line, what)


# Filters that can build far more than they are given, with the check each needs; a check gets
# the filter's bound arguments and may replace one (a generator read to check it).
def _join_filter(a: dict[str, Any]) -> None:
    a["value"] = _materialise(a["value"])
    _check_join(a["value"], a["d"])


def _indent_filter(a: dict[str, Any]) -> None:
    width = a["width"]  # spaces, or the text to indent with
    per_line = width if isinstance(width, int) else len(as_text(width))
    _check_lines(a["s"], per_line, "an indented text")


def _wordwrap_filter(a: dict[str, Any]) -> None:
    text = as_text(a["s"])  # at worst a line break after every character
    size = len(text) + (len(text) + 1) * len(as_text(a["wrapstring"] or "\n"))
    current_budget().check_size(size, "a wrapped text")


def _sum_filter(a: dict[str, Any]) -> None:
    if isinstance(a["start"], str | list | tuple):
        raise TemplateLimitError("sum adds numbers only")


_FILTER_CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "center": lambda a: _check_width(a["width"], "a width of"),
    "indent": _indent_filter,
    "wordwrap": _wordwrap_filter,
    "batch": lambda a: _check_width(a["linecount"], "a batch size of"),
    "slice": lambda a: _check_width(a["slices"], "a slice count of"),
    "format": lambda a: _check_percent_format(as_text(a["value"]), a["args"] or a["kwargs"]),
    "join": _join_filter,
    "replace": lambda a: _check_replace(a["s"], a["old"], a["new"], a["count"]),
    "sum": _sum_filter,
}


def check_str_method(text: str, name: str, args: tuple, kwargs: dict) -> tuple:
    """Checks before calling a str method; returns the arguments to call it with."""
    if name in ("center", "ljust", "rjust", "zfill") and args:
        _check_width(args[0], "a width of")
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(size, int):
            current_budget().check_size(len(text) + text.count("\t") * size, "a text")
    elif name == "replace" and len(args) >= 2:
        _check_replace(text, *args[:3])
    elif name == "join" and args:
        args = (_materialise(args[0]), *args[1:])
        _check_join(args[0], text)
    elif name in ("format", "format_map"):
        _check_str_format(text, (args, kwargs))
    return args


def checked(value: Any) -> Any:
    """`value` if it is within the size limit (generators and other lazy values pass)."""
    if isinstance(value, str | list | tuple | dict | set | frozenset):
        current_budget().check_size(_size(value), "a value")
    return value


def guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Jinja filter `func` counting a step per call, its result within the size limit, and,
    when it is one that can build far more than it is given, checked before it runs."""
    check = _FILTER_CHECKS.get(name)
    signature, leading = None, 0
    if check is not None:
        # Jinja passes a filter marked pass_context/pass_eval_context/pass_environment that
        # first, before the value; the checks see the filter's own arguments only.
        leading = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0
        params = list(inspect.signature(func).parameters.values())
        if params and params[0].name in ("context", "eval_ctx", "environment"):
            params = params[1:]
        signature = inspect.Signature(params)

    @wraps(func)  # keeps Jinja's pass_context/pass_environment marks
    def guarded(*args: Any, **kwargs: Any) -> Any:
        current_budget().tick()
        if signature is not None and check is not None:
            bound = signature.bind(*args[leading:], **kwargs)
            bound.apply_defaults()
            check(bound.arguments)
            args, kwargs = (*args[:leading], *bound.args), bound.kwargs
        return checked(func(*args, **kwargs))

    return guarded
