"""A tracker's own TemplatingUtils, Client and MailGW
(roundup_wsgi/patches/tracker_classes.py), on a real tracker."""

from __future__ import annotations

from typing import Any

from roundup_wsgi.patches import tracker_classes


def test_each_class_becomes_a_subclass_of_its_own_until_removed(tracker: Any) -> None:
    shared = {name: getattr(tracker, name) for name in tracker_classes.ISOLATED_CLASSES}
    assert not tracker_classes.installed(tracker)
    tracker_classes.install(tracker)
    assert tracker_classes.installed(tracker)
    for name, base in shared.items():
        own = getattr(tracker, name)
        assert own is not base
        assert own.__mro__[1] is base
        assert (own.__name__, own.__module__) == (base.__name__, base.__module__)
    # What the tracker sets on its own class is not on the shared one.
    tracker.Client.roundup_wsgi_test_only = True
    assert not hasattr(shared["Client"], "roundup_wsgi_test_only")
    tracker_classes.remove(tracker)
    assert {n: getattr(tracker, n) for n in shared} == shared
    assert not tracker_classes.installed(tracker)
