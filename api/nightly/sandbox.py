"""The sandbox reminder templates render in: Jinja2's own sandbox plus hard limits per message.

Jinja2's ImmutableSandboxedEnvironment keeps templates away from Python internals and stops them
changing lists, dicts and sets (`invoices.append(...)`, `company.update(...)`); its `range`
refuses more than 100,000 items. On top of it, `LimitedEnvironment.render_limited` promises that
one message finishes quickly whatever the template says:

- steps: every loop iteration, call (macro, method, function) and filter counts; past
  `RenderLimits.steps` the render stops. Loops are counted because the code generator makes every
  `{% for %}` iterate through `guard_loop`.
- time: every step, operator and piece of output checks a wall-clock deadline. It is checked
  between steps rather than by a signal because messages are also rendered on the scheduler's
  worker thread, where SIGALRM cannot be used, and a signal would not interrupt a C-level
  operation anyway; the size limits below keep every single step small instead.
- size: the text, every piece of buffered text (macros, `{% set %}` blocks) and every value a
  template builds (strings, lists, dicts, `~`, `+`, `*`, `%`, filters, method results) stays within
  `RenderLimits.chars`; numbers within `MAX_NUMBER_DIGITS`. Operations that could build something
  far larger than their inputs (`'x' * n`, `n ** m`, width and padding arguments, `join`,
  `replace`, format strings) are refused before they run.
- recursion: a macro, include or extends that calls itself ends in Python's RecursionError,
  which the caller reports like any other failure.

The letters' own filters (`money`, `date`, `number`: api.nightly.locales) are guarded like
Jinja's. `namespace` (whose attributes a loop could grow without any of these checks) and
`lipsum` are not offered to templates.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from jinja2 import BaseLoader, Template, TemplateNotFound, nodes
from jinja2.compiler import CodeGenerator
from jinja2.environment import TemplateModule
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from api.nightly.limits import (
    BUDGET,
    DEFAULT_LIMITS,
    MAX_TEMPLATE_CHARS,
    Budget,
    RenderLimits,
    TemplateLimitError,
    as_text,
    check_binop,
    check_str_method,
    checked,
    current_budget,
    guard_filter,
)
from api.nightly.locales import FILTERS as LETTER_FILTERS


def _env_call(name: str, args: list[nodes.Expr], lineno: int) -> nodes.Call:
    target = nodes.EnvironmentAttribute(name, lineno=lineno)
    return nodes.Call(target, args, [], None, None, lineno=lineno)


class _Guards(NodeTransformer):
    """Routes loops, `~` and literal lists/tuples/dicts through the environment's guards."""

    def visit_For(self, node: nodes.For) -> nodes.For:
        node = self.generic_visit(node)
        node.iter = _env_call("guard_loop", [node.iter], node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Call:
        node = self.generic_visit(node)
        return _env_call("guard_concat", list(node.nodes), node.lineno)

    def _literal(self, node: nodes.Expr) -> nodes.Expr:
        node = self.generic_visit(node)
        if getattr(node, "ctx", "load") != "load":  # a target: {% for a, b in ... %}
            return node
        return _env_call("guard_value", [node], node.lineno)

    visit_List = visit_Tuple = visit_Dict = _literal


class _GuardedCodeGenerator(CodeGenerator):
    """Compiles templates with the guards: see _Guards, and text buffered (macros, `{% set %}`
    and `{% filter %}` blocks) into a buffer that keeps within the size and time limits."""

    def buffer(self, frame: Any) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.text_buffer()")

    def visit_Template(self, node: nodes.Template, frame: Any = None) -> None:
        node = _Guards().visit(node)
        node.set_environment(self.environment)
        super().visit_Template(node, frame)


class _TextBuffer(list):
    """Where a macro, a block or an imported template collects its text: refuses to grow past
    the size limit, and checks the deadline at every piece."""

    def __init__(self, budget: Budget):
        super().__init__()
        self.budget, self.size = budget, 0

    def append(self, text: str) -> None:
        self.size += len(text)
        self.budget.check_size(self.size, "a block of text")
        self.budget.check_time()
        super().append(text)

    def extend(self, texts: Iterable[str]) -> None:
        for text in texts:
            self.append(text)


class SizedDictLoader(BaseLoader):
    """Templates from {path: text} (a rule-set version's files), each compiled under its own
    path as its file name, so a traceback names the file; refuses texts longer than
    MAX_TEMPLATE_CHARS before Jinja compiles them."""

    def __init__(self, files: Mapping[str, str]):
        self.files = files

    def get_source(self, environment, template):  # noqa: ANN001, ANN201 - Jinja's signature
        source = self.files.get(template)
        if source is None:
            raise TemplateNotFound(template)
        if len(source) > MAX_TEMPLATE_CHARS:
            raise TemplateLimitError(
                f"{template} has more than {MAX_TEMPLATE_CHARS:,} characters: the limit per file"
            )
        return source, template, lambda: True

    def list_templates(self) -> list[str]:
        return sorted(self.files)


class _LimitedTemplate(Template):
    def make_module(self, vars=None, shared=False, locals=None):  # noqa: A002 - Jinja's names
        """`{% import %}` renders the imported template's text into a limited buffer."""
        context = self.new_context(vars, shared, locals)
        body = _TextBuffer(current_budget())
        body.extend(self.root_render_func(context))
        return TemplateModule(self, context, body)


class LimitedEnvironment(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox with the limits described in this module's docstring."""

    code_generator_class = _GuardedCodeGenerator
    template_class = _LimitedTemplate
    intercepted_binops = frozenset({"+", "*", "%", "**"})

    def __init__(self, limits: RenderLimits = DEFAULT_LIMITS, **options: Any):
        super().__init__(**options)
        self.limits = limits
        self.filters.update(LETTER_FILTERS)  # money, date, number: api.nightly.locales
        self.filters = {name: guard_filter(name, f) for name, f in self.filters.items()}
        for name in ("namespace", "lipsum"):
            self.globals.pop(name, None)

    def render_limited(self, name: str, context: dict[str, Any]) -> str:
        """The text of template `name`, or an exception: TemplateLimitError when a limit is
        broken (raised inside the template, so its traceback points at the template's line)."""
        budget = Budget(self.limits)
        token = BUDGET.set(budget)
        try:
            stream = self.get_template(name).generate(context)
            parts, size = [], 0
            try:
                for part in stream:
                    size += len(part)
                    try:
                        budget.check_size(size, "the text")
                        budget.check_time()
                    except TemplateLimitError as exc:
                        stream.throw(exc)  # raised where the template is, to name its line
                    parts.append(part)
            finally:
                stream.close()
            return "".join(parts)
        finally:
            BUDGET.reset(token)

    # -- what compiled templates and Jinja call ------------------------------------------

    def guard_loop(self, iterable: Iterable[Any]) -> Iterator[Any]:
        budget = current_budget()
        for item in iterable:
            budget.tick()
            yield item

    def text_buffer(self) -> _TextBuffer:
        return _TextBuffer(current_budget())

    def guard_value(self, value: Any) -> Any:
        return checked(value)

    def guard_concat(self, *parts: Any) -> str:
        budget, texts, size = current_budget(), [], 0
        for part in parts:
            text = as_text(part)
            size += len(text)
            budget.check_size(size, "a joined text ('~')")
            texts.append(text)
        return "".join(texts)

    def concat(self, parts: Iterable[str]) -> str:  # type: ignore[override]
        """Text joined by Jinja (a buffer, a block called as `self.name()`) within the limit."""
        if not isinstance(parts, _TextBuffer):
            buffer = _TextBuffer(current_budget())
            buffer.extend(parts)
            parts = buffer
        return "".join(parts)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        current_budget().tick()
        method = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format
        owner = getattr(method, "__self__", None)
        if isinstance(owner, str):
            args = check_str_method(owner, getattr(method, "__name__", ""), args, kwargs)
        return checked(super().call(__context, __obj, *args, **kwargs))

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        current_budget().check_time()
        check_binop(operator, left, right)
        return checked(super().call_binop(context, operator, left, right))
