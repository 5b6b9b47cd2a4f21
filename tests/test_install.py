"""Tests of roundup_wsgi.install: tracker homes made with Roundup's
``init.install`` and ``Tracker.init``, and the optional packages named."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

import pytest

from roundup_wsgi.install import (
    OPTIONAL_PACKAGES,
    MissingPackageError,
    create_tracker,
    list_templates,
    name_missing_package,
)


def test_create_tracker_refuses_bad_input_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown tracker template 'nosuch'"):
        create_tracker(tmp_path / "a", admin_password="x", template="nosuch")
    with pytest.raises(ValueError, match="unknown backend 'oracle'"):
        create_tracker(tmp_path / "a", admin_password="x", backend="oracle")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="exists and is not an empty"):
        create_tracker(busy, admin_password="x")
    assert [p.name for p in busy.iterdir()] == ["notes.txt"]
    assert not (tmp_path / "a").exists()


def test_list_templates_has_roundups_own() -> None:
    templates = list_templates()
    assert {"classic", "minimal"} <= set(templates)
    assert all(Path(path).is_dir() for path in templates.values())


def test_a_missing_optional_package_is_named_with_its_pip_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Creating (and opening) a tracker that needs a package not installed
    names the package and the pip command, and leaves no half-made home."""
    real_import = builtins.__import__

    def no_jinja2(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] == "jinja2":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_jinja2)
    home = tmp_path / "j2"
    with pytest.raises(MissingPackageError) as error:
        create_tracker(home, admin_password="x", template="jinja2")
    assert "needs the jinja2 package" in str(error.value)
    assert OPTIONAL_PACKAGES["jinja2"] in str(error.value)
    assert not home.exists()


def test_other_missing_modules_pass_through() -> None:
    error = ModuleNotFoundError("No module named 'nosuch'", name="nosuch")
    assert name_missing_package(error, "x") is None
    with pytest.raises(MissingPackageError, match=r"roundup-wsgi\[compression\]"):
        name_missing_package(ModuleNotFoundError(name="brotli"), "gzip")
