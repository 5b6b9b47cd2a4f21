"""Each tracker's own ``TemplatingUtils``, ``Client`` and ``MailGW``.

Replaces, on one ``roundup.instance.Tracker``, the attributes
``TemplatingUtils``, ``Client`` and ``MailGW`` by subclasses of their own
(named as the originals), right after ``Tracker.load_interfaces`` and
before ``extensions/`` run (:mod:`roundup_wsgi.isolation` calls it from
there).  Roundup 2.4 to the 2.7 snapshot share these classes between all
trackers of a process: ``registerUtilMethod`` sets the method on the
class in 2.4-2.6 (the last tracker loaded wins), and an extension that
sets an attribute on ``instance.Client`` or ``MailGW`` changes every
tracker.  The 2.7 snapshot keeps util methods per instance; the
subclasses do no harm there.
"""

from __future__ import annotations

from .roundup_types import TrackerLike
from .targets import Target

__all__ = ["ISOLATED_CLASSES", "TARGETS", "install", "installed", "remove"]

TARGETS = (Target("roundup.instance:Tracker.load_interfaces", "(self)"),)

#: The tracker attributes holding classes Roundup shares between trackers.
ISOLATED_CLASSES = ("TemplatingUtils", "Client", "MailGW")

#: Names the subclasses' tracker home (for debugging, and :func:`installed`).
MARK = "_roundup_wsgi_tracker_home"


def install(tracker: TrackerLike) -> None:
    """Replace ``tracker``'s shared classes by subclasses of their own.

    :param tracker: a ``roundup.instance.Tracker`` whose
        ``load_interfaces`` has run, before its ``extensions/`` run.
    """
    for name in ISOLATED_CLASSES:
        base = getattr(tracker, name, None)
        if not isinstance(base, type):
            continue
        own = type(
            base.__name__,
            (base,),
            {
                "__module__": base.__module__,
                "__qualname__": base.__qualname__,
                "__doc__": base.__doc__,
                MARK: tracker.tracker_home,
            },
        )
        setattr(tracker, name, own)


def installed(tracker: TrackerLike) -> bool:
    """True if ``tracker``'s ``Client`` is a subclass :func:`install` made."""
    return MARK in vars(tracker.Client)


def remove(tracker: TrackerLike) -> None:
    """Give ``tracker`` the shared classes back (tests)."""
    for name in ISOLATED_CLASSES:
        own = getattr(tracker, name, None)
        if isinstance(own, type) and MARK in vars(own):
            setattr(tracker, name, own.__mro__[1])
