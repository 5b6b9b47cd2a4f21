"""Trackers in one process never see each other's code.

Roundup opens a tracker as a :class:`roundup.instance.Tracker`.  Most of
what a tracker's ``extensions/`` register lives on that instance
(``registerAction`` in ``actions``/``cgi_actions``, ``registerUtil`` in
``templating_utils``), but Roundup 2.4-2.6 share three classes between all
trackers of a process, taken in ``Tracker.load_interfaces`` from the
tracker's ``interfaces.py`` or, without one, from Roundup itself:

* ``TemplatingUtils`` (``roundup.cgi.templating.TemplatingUtils``):
  ``registerUtilMethod`` sets the method *on the class*, so the last tracker
  loaded wins for every tracker (``utils.banner()`` renders another
  tracker's banner), and a class attribute also hides another tracker's
  ``registerUtil`` function of the same name;
* ``Client`` (``roundup.cgi.client.Client``): an extension that sets an
  attribute on ``instance.Client`` (its ``actions`` table, a CSP, a method)
  changes every tracker;
* ``MailGW`` (``roundup.mailgw.MailGW``), likewise.

:func:`open_tracker` opens a tracker whose three classes are subclasses of
its own (:mod:`roundup_wsgi.patches.tracker_classes`), made before
``extensions/`` run: what one tracker sets on them is
invisible to the others, while everything they inherit (Roundup's methods,
the tracker's ``interfaces.py`` overrides) is unchanged.  Roundup's
development line (2.7) keeps util methods per instance and so needs no help
there; the subclasses do no harm.

Not isolated:

* Python's module cache.  Modules a tracker imports from its ``lib/`` or
  ``extensions/`` directory are kept in ``sys.modules`` by name, so two
  trackers with a ``lib/helpers.py`` each share the first one loaded; give
  such modules names of their own.
* Roundup's REST API: routes added with ``roundup.rest.Routing.route`` and
  attributes set on ``roundup.rest.RestfulInstance`` (Roundup's documented
  ways to extend it from ``interfaces.py``) change module-level classes
  that Roundup's ``Client`` uses directly.  :func:`open_tracker` notices a
  tracker doing so and, once a process has opened two trackers, logs a
  warning naming it (logger ``roundup_wsgi``): serve it in a process of
  its own.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from .patches import tracker_classes

__all__ = [
    "ISOLATED_CLASSES",
    "isolate",
    "open_tracker",
    "shared_rest_changes",
    "tracker_class",
]

logger = logging.getLogger("roundup_wsgi")

#: The tracker attributes holding classes Roundup 2.4-2.6 share between
#: trackers; each tracker gets its own subclass of each.
ISOLATED_CLASSES = tracker_classes.ISOLATED_CLASSES

#: The :class:`roundup.instance.Tracker` subclass, made on first use.
_TRACKER_CLASS: type | None = None

#: Tracker homes opened in this process, and what each changed of Roundup's
#: REST classes (:func:`shared_rest_changes`); guarded by ``_LOCK``.
_OPENED: dict[str, list[str]] = {}
_WARNED: set[str] = set()
_LOCK = threading.Lock()


def isolate(tracker: Any) -> None:
    """Replace ``tracker``'s shared classes (:data:`ISOLATED_CLASSES`) by
    subclasses of their own (:mod:`roundup_wsgi.patches.tracker_classes`).

    :param tracker: a :class:`roundup.instance.Tracker` whose
        ``load_interfaces`` has run, before its ``extensions/`` run.
    """
    tracker_classes.install(tracker)


def tracker_class() -> type:
    """The :class:`roundup.instance.Tracker` subclass whose ``load_interfaces``
    ends with :func:`isolate`.  ``Tracker.__init__`` calls ``load_interfaces``
    before it runs ``extensions/`` (Roundup 2.4 to the 2.7 development line),
    so what they register lands on the tracker's own classes."""
    global _TRACKER_CLASS
    if _TRACKER_CLASS is None:
        from roundup.instance import Tracker

        def load_interfaces(self: Any) -> None:
            Tracker.load_interfaces(self)
            isolate(self)

        _TRACKER_CLASS = type(
            "Tracker",
            (Tracker,),
            {
                "__module__": __name__,
                "__doc__": "A Roundup tracker with classes of its own "
                "(roundup_wsgi.isolation).",
                "load_interfaces": load_interfaces,
            },
        )
    return _TRACKER_CLASS


def _rest_state() -> dict[str, object]:
    """What trackers change of ``roundup.rest``: ``RestfulInstance``'s
    attributes and ``Routing``'s routes (pattern and method -> function)."""
    from roundup import rest

    state: dict[str, object] = {
        f"RestfulInstance.{name}": value
        for name, value in vars(rest.RestfulInstance).items()
    }
    routes = getattr(rest.Routing, "_Routing__route_map", None)
    if isinstance(routes, dict):
        for pattern, entry in list(routes.items()):
            functions = entry[1] if isinstance(entry, tuple) else {}
            for method, function in dict(functions).items():
                state[f"route {method} {pattern}"] = function
    return state


def shared_rest_changes(before: dict[str, object]) -> list[str]:
    """The names (``RestfulInstance.NAME``, ``route METHOD PATTERN``) whose
    value differs from ``before``, a :func:`_rest_state` taken earlier."""
    after = _rest_state()
    return sorted(
        name
        for name in set(before) | set(after)
        if before.get(name, _MISSING) is not after.get(name, _MISSING)
    )


_MISSING = object()


def _note_opened(home: str, changed: list[str]) -> None:
    """Record ``home`` and warn (once per tracker) when a process serving
    several trackers has one that changes Roundup's shared REST classes."""
    with _LOCK:
        known = _OPENED.setdefault(home, [])
        for name in changed:
            if name not in known:
                known.append(name)
        if len(_OPENED) < 2:
            return
        for tracker, names in _OPENED.items():
            if not names or tracker in _WARNED:
                continue
            _WARNED.add(tracker)
            shown = ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")
            logger.warning(
                "tracker %s changes Roundup's REST classes (%s), which every "
                "tracker of this process shares: serve it in a process of "
                "its own",
                tracker,
                shown,
            )


def open_tracker(home: str, optimize: bool = True) -> Any:
    """Open the tracker at ``home`` as ``roundup.instance.open`` does, with
    classes of its own (:func:`isolate`).

    :param home: the tracker home (absolute path).
    :param optimize: Roundup's optimisation: templates compiled, schema,
        detectors and extensions loaded once.
    :raises roundup.instance.TrackerError: an old-style tracker (``dbinit.py``),
        which Roundup refuses since 2.0, or an extension failing to import.
    :raises Exception: whatever the tracker's code raises while loading.
    """
    from roundup.instance import TrackerError

    if os.path.exists(os.path.join(home, "dbinit.py")):
        # As roundup.instance.open: Roundup 2.0 dropped dbinit.py trackers.
        raise TrackerError(
            "Old style trackers using dbinit.py are not supported after release 2.0"
        )
    before = _rest_state()
    tracker = tracker_class()(home, optimize=int(optimize))
    _note_opened(os.path.abspath(home), shared_rest_changes(before))
    return tracker
