"""Sphinx extension of the roundup-wsgi docs.

* ``.. roundup-options::`` writes the options table of
  :data:`roundup_wsgi.options.OPTIONS` (name, type, default, environment
  variable, ``serve`` flag, help), so the Configuration page cannot drift
  from the code;
* ``.. roundup-api-modules:: PACKAGE`` writes an ``automodule`` entry for
  every module of PACKAGE, so a module added there is documented;
* a reference through a module that re-exports a name
  (``roundup_wsgi.options.Settings``) resolves to the name's entry;
* when the documents have been read, every name of ``roundup_wsgi.__all__``,
  ``roundup_wsgi.wsgi.__all__`` (where it exists) and of each
  ``roundup_wsgi.wsgi`` module's ``__all__`` must have an API entry, else a
  warning (an error under ``-W``).

:func:`option_rows` and :func:`options_table` need no Sphinx, so the tests
can call them.
"""

from __future__ import annotations

import enum
import importlib
import pkgutil
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from roundup_wsgi.options import OPTIONS, Option

#: The columns of the options table.
COLUMNS = (
    "Option",
    "Type",
    "Default",
    "Environment variable",
    "serve flag",
    "Keyword of",
    "Help",
)


def type_text(hint: Any) -> str:
    """How a value of ``hint`` is written, e.g. ``boolean`` or ``auto, buffer``."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        kinds = [type_text(arg) for arg in args if arg is not type(None)]
        text = " or ".join(kinds)
        return text + " or none" if type(None) in args else text
    if origin is typing.Literal:
        return "one of " + ", ".join(f"``{value}``" for value in args)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "one of " + ", ".join(f"``{member.value}``" for member in hint)
    if hint is bool:
        return "boolean"
    if hint is int:
        return "integer"
    if hint is float:
        return "number"
    if hint is str:
        return "text"
    if hint is dict or origin is dict:
        return "``key=value`` pairs or a JSON object"
    if hint in (list, tuple) or origin in (list, tuple):
        return "list (commas or spaces)"
    return str(hint)


def default_text(option: Option) -> str:
    """The default as a configuration would write it, with units for sizes."""
    value = option.default
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "``true``" if value else "``false``"
    if isinstance(value, int) and value >= 1024 * 1024 and value % (1024 * 1024) == 0:
        return f"``{value}`` ({value // (1024 * 1024)} MiB)"
    if isinstance(value, float) and value.is_integer():
        return f"``{int(value)}``"
    return f"``{value}``"


def option_rows(options: Iterable[Option] = OPTIONS) -> list[tuple[str, ...]]:
    """One row of reStructuredText cells per option, in :data:`COLUMNS` order."""
    rows = []
    for option in options:
        flag = f"``{option.cli_flag}``" if option.cli_flag else "(none)"
        if option.cli_flag and option.hint is bool:
            flag += f", ``--no-{option.cli_flag[2:]}``"
        takers = "``make_app``"
        if option.scope == "dispatcher":
            takers = "``RequestDispatcher``, " + takers
        rows.append(
            (
                f"``{option.name}``",
                type_text(option.hint),
                default_text(option),
                f"``{option.variable}``",
                flag,
                takers,
                option.help[:1].upper() + option.help[1:] + ".",
            )
        )
    return rows


def options_table(options: Iterable[Option] = OPTIONS) -> list[str]:
    """The options as a ``list-table``, one line per item."""
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 16 12 11 18 13 12 28",
        "",
    ]
    for row in [COLUMNS, *option_rows(options)]:
        for index, cell in enumerate(row):
            lines.append(("   * - " if index == 0 else "     - ") + cell)
    return lines


def public_names() -> dict[str, list[str]]:
    """``{module: [name, ...]}``: the names that must have an API entry."""
    import roundup_wsgi
    import roundup_wsgi.wsgi

    names = {"roundup_wsgi": list(roundup_wsgi.__all__)}
    names["roundup_wsgi.wsgi"] = list(getattr(roundup_wsgi.wsgi, "__all__", ()))
    for module in submodules("roundup_wsgi.wsgi"):
        names[module] = list(getattr(importlib.import_module(module), "__all__", ()))
    return names


def submodules(package: str) -> list[str]:
    """The modules of ``package``, sorted (subpackages' modules included)."""
    found = importlib.import_module(package)
    return sorted(
        info.name
        for info in pkgutil.walk_packages(found.__path__, package + ".")
        if not info.name.rsplit(".", 1)[-1].startswith("_")
    )


def modules_shown(package: str, exclude: Iterable[str] = ()) -> list[str]:
    """:func:`submodules` of ``package`` but those of ``exclude`` (modules
    or packages, with their modules)."""
    skipped = tuple(exclude)
    below = tuple(name + "." for name in skipped)
    return [
        module
        for module in submodules(package)
        if module not in skipped and not module.startswith(below)
    ]


def api_entry(module: str) -> list[str]:
    """A titled ``automodule`` entry for ``module``."""
    title = f"``{module}``"
    return [
        title,
        "-" * len(title),
        "",
        f".. automodule:: {module}",
        "   :members:",
        "",
    ]


def map_entry(module: str) -> list[str]:
    """A ``py:module`` target for ``module`` and its docstring's first paragraph."""
    doc = importlib.import_module(module).__doc__ or ""
    summary = doc.strip().split("\n\n")[0].replace("\n", " ")
    return [f"``{module}``", f"   .. py:module:: {module}", "", f"   {summary}", ""]


def missing_entries(documented: set[str]) -> list[str]:
    """Public names with no API entry, as ``module.name``.

    A name counts as documented under the module that exports it or under
    the module that defines it (``roundup_wsgi.RequestDispatcher`` or
    ``roundup_wsgi.dispatcher.RequestDispatcher``).
    """
    missing = []
    for module_name, names in public_names().items():
        module = importlib.import_module(module_name)
        for name in names:
            candidates = {f"{module_name}.{name}"}
            value = getattr(module, name, None)
            home = getattr(value, "__module__", None)
            qualname = getattr(value, "__qualname__", None)
            if isinstance(home, str) and isinstance(qualname, str):
                candidates.add(f"{home}.{qualname}")
            if not candidates & documented and not _documented_elsewhere(
                name, value, documented
            ):
                missing.append(f"{module_name}.{name}")
    return missing


def _documented_elsewhere(name: str, value: Any, documented: set[str]) -> bool:
    """Whether ``value`` is documented as ``name`` of another module.

    A module that re-exports a name (``roundup_wsgi.wsgi.adapters.WSGIApp``
    from ``roundup_wsgi.wsgi.types``) needs no entry of its own.
    """
    return documented_as(name, value, documented) is not None


def documented_as(name: str, value: Any, documented: set[str]) -> str | None:
    """The documented ``module.name`` whose value is ``value``, if any."""
    for full in sorted(documented):
        module_name, _, last = full.rpartition(".")
        if last != name or not module_name:
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if getattr(module, name, None) is value:
            return full
    return None


def reexport_target(target: str, documented: set[str]) -> str | None:
    """Where a reference through a re-exporting module resolves:
    ``roundup_wsgi.options.Settings.replace`` to
    ``roundup_wsgi.settings.Settings.replace`` (None: nowhere)."""
    parts = target.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        name, rest = parts[cut], parts[cut + 1 :]
        if not hasattr(module, name):
            return None
        found = documented_as(name, getattr(module, name), documented)
        return None if found is None else ".".join([found, *rest])
    return None


def _directives() -> dict[str, type]:
    """The directives by name (made here: Sphinx is imported only to build)."""
    from docutils import nodes
    from docutils.statemachine import StringList
    from sphinx.util.docutils import SphinxDirective
    from sphinx.util.nodes import nested_parse_with_titles

    class _Generated(SphinxDirective):
        def lines(self) -> list[str]:
            raise NotImplementedError

        def run(self) -> list[Any]:
            container = nodes.section()
            container.document = self.state.document
            source = self.get_source_info()[0]
            content = StringList(self.lines(), source=source)
            nested_parse_with_titles(self.state, content, container)
            return list(container.children)

    class OptionsDirective(_Generated):
        def lines(self) -> list[str]:
            return options_table()

    class _PerModule(_Generated):
        """Lines for each module of the package argument, ``:exclude:``
        modules (and packages) left out."""

        required_arguments = 1
        option_spec: ClassVar[dict[str, Any]] = {"exclude": str.split}
        entry: ClassVar[Callable[[str], list[str]]]

        def lines(self) -> list[str]:
            exclude = self.options.get("exclude", ())
            modules = modules_shown(self.arguments[0], exclude)
            return [line for module in modules for line in type(self).entry(module)]

    class ApiModulesDirective(_PerModule):
        entry = api_entry

    class ModuleMapDirective(_PerModule):
        entry = map_entry

    return {
        "roundup-options": OptionsDirective,
        "roundup-module-map": ModuleMapDirective,
        "roundup-api-modules": ApiModulesDirective,
    }


def _resolve_reexport(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """Sphinx's ``missing-reference`` handler: :func:`reexport_target`."""
    if node.get("refdomain") != "py":
        return None
    domain = env.get_domain("py")
    target = reexport_target(node["reftarget"], set(domain.objects))
    if target is None or target == node["reftarget"]:
        return None
    return domain.resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], target, node, contnode
    )


def _check_api(app: Any, env: Any) -> None:
    """Sphinx's ``env-check-consistency`` handler: :func:`missing_entries`."""
    from sphinx.util import logging as sphinx_logging

    logger = sphinx_logging.getLogger(__name__)
    for name in missing_entries(set(env.get_domain("py").objects)):
        logger.warning("public name %s has no API entry (docs/api.rst)", name)


def setup(app: Any) -> dict[str, Any]:
    """Register the directives and the API check with Sphinx."""
    for name, directive in _directives().items():
        app.add_directive(name, directive)
    app.connect("env-check-consistency", _check_api)
    app.connect("missing-reference", _resolve_reexport)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
