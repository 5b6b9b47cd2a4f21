"""``roundup-wsgi check``'s checks of the tracker itself: it opens
(schema, detectors, extensions), registers each template util name once,
and its database is initialised and opens."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from ..tracker import INITIALISED, NOT_INITIALISED, database_state
from .findings import Finding
from .output import one_line

__all__ = ["UtilRegistry", "backend_finding", "open_tracker"]


class UtilRegistry:
    """Where each template util name was registered, while a tracker opens.

    Roundup 2.4-2.6 let a later ``registerUtil``/``registerUtilMethod`` of
    a name replace the earlier one without a word; Roundup's development
    line (2.7) refuses to open such a tracker (``ValueError``).  The tracker
    is opened with the registrations recorded; a name registered again is
    noted with both places (file:line of the calls) and not passed on, so
    the check behaves the same on every Roundup.
    """

    #: The ``Tracker`` methods that register a template util.
    METHODS = ("registerUtil", "registerUtilMethod")

    def __init__(self) -> None:
        #: name -> "file:line" of its first registration.
        self.first: dict[str, str] = {}
        #: (name, first place, second place) of each duplicate.
        self.duplicates: list[tuple[str, str, str]] = []

    def open(self, path: str) -> Any:
        """Open the tracker at ``path`` (optimised: extensions run once),
        recording its util registrations."""
        from ..isolation import tracker_class

        base = tracker_class()
        attributes = {
            method: self._recording(getattr(base, method), method)
            for method in self.METHODS
            if hasattr(base, method)  # Roundup 2.4 has no registerUtilMethod
        }
        recording = type("Tracker", (base,), attributes)
        return recording(path, optimize=1)

    def _recording(self, register: Callable[..., Any], method: str) -> Any:
        def recorded(tracker: Any, name: str, function: Any) -> None:
            caller = sys._getframe(1)
            place = f"{caller.f_code.co_filename}:{caller.f_lineno}"
            first = self.first.get(name)
            if first is not None:
                self.duplicates.append((name, first, place))
                return
            self.first[name] = place
            register(tracker, name, function)

        recorded.__name__ = method
        return recorded

    def finding(self, path: str) -> Finding:
        """The ``template utils`` finding: failed if a name was registered
        twice (both places named, relative to the tracker home)."""
        if not self.duplicates:
            return Finding(
                "template utils",
                True,
                f"{len(self.first)} registered by extensions, no name twice",
            )

        def here(place: str) -> str:
            filename, _, line = place.rpartition(":")
            if filename.startswith(path + os.sep):
                filename = os.path.relpath(filename, path)
            return f"{filename}:{line}"

        found = "; ".join(
            f"utils.{name} is registered in {here(first)} and again in {here(second)}"
            for name, first, second in self.duplicates
        )
        return Finding(
            "template utils",
            False,
            found + " (Roundup 2.4-2.6 keep the last one loaded; "
            "Roundup 2.7 refuses to open the tracker)",
            "rename or remove one of the two registrations",
        )


def open_tracker(path: str, registry: UtilRegistry) -> tuple[Any, Finding]:
    """Open the tracker at ``path`` with ``registry`` recording its utils.

    :returns: ``(tracker, finding)``: Roundup's tracker instance (None when
        it does not open) and the ``tracker opens`` finding.
    """
    try:
        tracker = registry.open(path)
    except Exception as exc:
        return None, Finding(
            "tracker opens",
            False,
            f"Roundup cannot open the tracker: {type(exc).__name__}: {one_line(exc)}",
            "fix the error in the file it names (schema.py, detectors/, "
            "extensions/, interfaces.py), then run the check again",
        )
    return tracker, Finding(
        "tracker opens", True, "schema, detectors and extensions load"
    )


def backend_finding(tracker: Any, path: str, backend: str) -> Finding:
    """The ``backend`` finding: the tracker's database is initialised and
    opens (``backend`` names it in the messages)."""
    server = backend in ("postgresql", "mysql")
    server_hint = (
        "check rdbms_host, rdbms_port, rdbms_name, rdbms_user and "
        "rdbms_password in the [rdbms] section of config.ini, and that the "
        "database server runs and accepts this user"
    )
    initialise = f"run 'roundup-admin -i {path} initialise'"
    try:
        # Found without opening it: Roundup's backends create a missing
        # database (or schema) on open.
        state, detail = database_state(tracker.config)
        if state == NOT_INITIALISED:
            return Finding(
                "backend",
                False,
                f"the {backend} database of this tracker is not initialised ({detail})",
                initialise,
            )
        if state != INITIALISED and not tracker.exists():
            if server:  # Roundup cannot tell "unreachable" from "missing"
                return Finding(
                    "backend",
                    False,
                    f"the {backend} database cannot be reached or does not exist",
                    f"{server_hint}; if it is reachable, {initialise}",
                )
            return Finding(
                "backend",
                False,
                f"the {backend} database of this tracker is not initialised",
                initialise,
            )
        db = tracker.open("admin")
        try:
            users = len(db.user.list())
        finally:
            db.close()
    except Exception as exc:
        hint = (
            server_hint
            if server
            else "check the database files in the db directory and the "
            "schema.py and detectors the error names"
        )
        return Finding(
            "backend",
            False,
            f"the {backend} database cannot be opened: {one_line(exc)}",
            hint,
        )
    return Finding("backend", True, f"{backend} database opens ({users} users)")
