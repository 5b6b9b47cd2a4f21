"""Trackers whose ``extensions/`` register template utils of the same names.

:func:`add_banner_utils` gives a tracker home an extension registering
``utils.banner`` (``registerUtilMethod``) and ``utils.motto``
(``registerUtil``), both answering with the tracker's name, optionally
``utils.only_<name>`` too, and a template ``issue.banner.html`` that shows
them: ``GET issue?@template=banner`` renders one line per util,
``banner=...``, ``motto=...``, ``only=...`` (``absent`` when the tracker
has no ``only_*`` util of that name), which :func:`parse_banner_page` reads.
The extension also sets an attribute on the tracker's ``Client`` class
(:data:`CLIENT_MARK`), a class Roundup shares between trackers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from roundup import instance

__all__ = [
    "BANNER_PAGES",
    "CLIENT_MARK",
    "NEEDS_UTIL_METHODS",
    "add_banner_utils",
    "add_bugs_and_support",
    "parse_banner_page",
]

#: Skips a test on Roundup 2.4, whose ``Tracker`` has no
#: ``registerUtilMethod`` (Roundup 2.5 added it).
NEEDS_UTIL_METHODS = pytest.mark.skipif(
    not hasattr(instance.Tracker, "registerUtilMethod"),
    reason="Roundup 2.4 has no registerUtilMethod (added in 2.5)",
)

#: The ``Client`` class attribute the extension sets to the tracker's name.
CLIENT_MARK = "test_tracker_mark"

_EXTENSION = """
def banner(self):
    return "banner of {name}"


def motto():
    return "motto of {name}"


def only(self):
    return "only {name}"


def init(instance):
    instance.registerUtilMethod("banner", banner)
    instance.registerUtil("motto", motto)
    if {only!r}:
        instance.registerUtilMethod("only_{name}", only)
    setattr(instance.Client, "{mark}", "{name}")
"""

_TEMPLATE = """<pre>
banner=<tal:x replace="python:utils.banner()"/>
motto=<tal:x replace="python:utils.motto()"/>
only=<tal:x replace="python:getattr(utils, 'only_{other}', lambda: 'absent')()"/>
client=<tal:x replace="python:getattr(request.client, '{mark}', 'none')"/>
</pre>
"""


def add_banner_utils(
    home: Path, name: str, *, only: bool, other: str, interfaces: bool = True
) -> Path:
    """Install the banner extension and template in the tracker at ``home``.

    :param name: the name the utils answer with (e.g. ``"bugs"``).
    :param only: also register ``utils.only_<name>``.
    :param other: the ``only_<other>`` util the template looks for (the
        name whose ``only_*`` util may or may not exist in this tracker).
    :param interfaces: keep the tracker's ``interfaces.py``; without it the
        tracker uses Roundup's own ``Client`` class, shared by all trackers.
    :returns: ``home``.
    """
    if not interfaces:
        (home / "interfaces.py").unlink(missing_ok=True)
    extensions = home / "extensions"
    extensions.mkdir(exist_ok=True)
    (extensions / "banner_utils.py").write_text(
        _EXTENSION.format(name=name, only=only, mark=CLIENT_MARK)
    )
    (home / "html" / "issue.banner.html").write_text(
        _TEMPLATE.format(other=other, mark=CLIENT_MARK)
    )
    return home


#: What :func:`parse_banner_page` reads from each tracker's banner page, for
#: the trackers :func:`add_bugs_and_support` makes.
BANNER_PAGES: dict[str, dict[str, str]] = {
    "bugs": {
        "banner": "banner of bugs",
        "motto": "motto of bugs",
        "only": "only bugs",
        "client": "bugs",
    },
    "support": {
        "banner": "banner of support",
        "motto": "motto of support",
        "only": "absent",
        "client": "support",
    },
}


def add_bugs_and_support(make_home: Callable[[str], Path]) -> dict[str, Path]:
    """Two trackers with banner utils: ``bugs`` (registers ``only_bugs`` too;
    its interfaces.py defines a ``Client``) and ``support`` (no interfaces.py:
    Roundup's own ``Client``).

    :param make_home: makes a fresh tracker home for a name (``"bugs"``,
        ``"support"``) and returns its path.
    :returns: ``{"bugs": home, "support": home}``, in that order.
    """
    return {
        name: add_banner_utils(
            make_home(name), name, only=only, other="bugs", interfaces=only
        )
        for name, only in (("bugs", True), ("support", False))
    }


def parse_banner_page(text: str) -> dict[str, str]:
    """``{"banner": ..., "motto": ..., "only": ..., "client": ...}`` from a
    page of the banner template."""
    return dict(re.findall(r"^(banner|motto|only|client)=(.*)$", text, re.M))
