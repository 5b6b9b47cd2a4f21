"""Roundup's next release (2.7): nothing we write makes it warn.

Roundup after 2.6.0 always caches the tracker and gives a ``FutureWarning``
for any ``cache_tracker`` feature flag.  The deployment files
``roundup-wsgi`` writes (``wsgi-script``, ``deploy/``) set no such flag, and
the application they build raises no ``FutureWarning`` on any Roundup.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import roundup_wsgi.app
from roundup_wsgi.cli.wsgi_script import wsgi_script

#: The deploy recipes shipped in the repository.
DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def test_no_deploy_recipe_sets_cache_tracker() -> None:
    recipes = [path for path in DEPLOY.iterdir() if path.is_file()]
    assert recipes
    for path in recipes:
        assert "cache_tracker" not in path.read_text(), path


@pytest.mark.parametrize(
    "target", ["/srv/roundup/bugs", {"bugs": "/srv/bugs", "support": "/srv/s"}]
)
def test_wsgi_script_sets_no_feature_flag(target: str | dict[str, str]) -> None:
    script = wsgi_script(target)
    assert "cache_tracker" not in script
    assert "FEATURE_FLAGS" not in script


def test_the_wsgi_script_builds_its_application_without_future_warnings(
    tracker_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("ROUNDUP_TRACKER_HOME", "ROUNDUP_TRACKERS"):
        # setenv first, so the variable the script sets is removed afterwards.
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setattr(
        roundup_wsgi.app, "application", roundup_wsgi.app.LazyApplication()
    )
    namespace: dict[str, object] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        exec(compile(wsgi_script(str(tracker_home)), "roundup.wsgi", "exec"), namespace)
    assert callable(namespace["application"])
