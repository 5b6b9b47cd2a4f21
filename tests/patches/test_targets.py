"""The patches' targets: which patches each supported Roundup takes, and
that none of their targets vanished or changed signature
(roundup_wsgi/patches/targets.py, roundup_wsgi/patches/__init__.py)."""

from __future__ import annotations

import inspect

import pytest
from roundup.cgi.actions import LoginAction

from roundup_wsgi import patches
from roundup_wsgi.patches import Patch, targets
from roundup_wsgi.patches.targets import Target, changed, find


def roundup_line() -> str:
    """The supported Roundup installed, told by its objects (the snapshot's
    version string still says 2.6.0)."""
    from roundup.cgi.client import Client
    from roundup.cgi.wsgi_handler import RequestDispatcher
    from roundup.security import Role

    if not hasattr(Role, "hasPermission"):
        return "2.4"
    if not hasattr(RequestDispatcher, "preload"):
        return "snapshot"
    return "2.6" if hasattr(Client, "reauth") else "2.5"


ALL = [
    "pythonexpr",
    "verify_password",
    "tracker_classes",
    "sqlite_sharing",
    "security",
    "getnode",
    "fire_auditors",
    "client_errors",
    "database_errors",
    "storefile",
    "db_close",
    "serve_static_file",
]

#: The patches each supported Roundup takes, in install order.
EXPECTED = {
    # No Role.hasPermission (the memo's second pass) and no PostgreSQL
    # getnode (nor allow_abort) in 2.4.
    "2.4": [name for name in ALL if name not in ("security", "getnode")],
    "2.5": ALL,
    "2.6": ALL,
    "snapshot": ALL,
}


def test_the_installed_roundup_takes_its_expected_patches() -> None:
    assert patches.applicable() == EXPECTED[roundup_line()]


def test_no_target_of_an_applicable_patch_vanished_or_changed() -> None:
    assert patches.changed_targets() == {}


def test_the_registry_holds_every_patch_module_once_in_order() -> None:
    assert [patch.name for patch in patches.REGISTRY] == ALL
    for patch in patches.REGISTRY:
        assert isinstance(patch, Patch)
        assert patch.module.__name__ == f"roundup_wsgi.patches.{patch.name}"
        assert patch.scope in ("process", "tracker", "database", "request")
        assert patch.module.TARGETS
        assert all(isinstance(t, Target) for t in patch.module.TARGETS)
        doc = patch.module.__doc__ or ""
        assert "Roundup 2." in doc, f"{patch.name} names no Roundup version"
    assert patches.find("security").module is patches.security
    with pytest.raises(KeyError, match="no patch 'nope'"):
        patches.find("nope")


def test_changed_names_a_missing_target_and_a_new_signature() -> None:
    assert find("roundup.cgi.actions:LoginAction.verifyPassword") is (
        LoginAction.verifyPassword
    )
    assert find("roundup.cgi.actions:LoginAction.noSuchMethod") is None
    assert find("no_such_module_here:Thing") is None
    assert changed(Target("roundup.cgi.actions:LoginAction.nope", "(self)")) == (
        "missing"
    )
    written_for = Target("roundup.cgi.actions:LoginAction.verifyPassword", "(self)")
    now = str(inspect.signature(LoginAction.verifyPassword))
    assert changed(written_for) == f"signature {now}"
    assert changed(written_for._replace(signature=now)) is None


def test_an_inherited_attribute_is_not_the_target() -> None:
    # A class that only inherits the method no longer defines the target:
    # the patch would replace something else.
    assert targets.find("roundup.cgi.actions:LoginAction.handle") is not None
    assert hasattr(LoginAction, "execute")  # Action's
    assert find("roundup.cgi.actions:LoginAction.execute") is None


def test_an_older_signature_the_patch_was_checked_against_fits() -> None:
    now = str(inspect.signature(LoginAction.verifyPassword))
    target = Target("roundup.cgi.actions:LoginAction.verifyPassword", "(self)", (now,))
    assert changed(target) is None
