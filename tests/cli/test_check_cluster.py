"""Tests of ``roundup-wsgi check --cluster``: the settings that break a
tracker served by several app hosts behind a load balancer
(roundup_wsgi.cli.check_cluster: cluster_checks, filesystem_type)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers.checks import TRACKER_CHECKS, by_check
from roundup.configuration import CoreConfig

from roundup_wsgi.cli.check import run_checks
from roundup_wsgi.cli.check_cluster import cluster_checks, filesystem_type
from roundup_wsgi.cli.command import main
from roundup_wsgi.cli.findings import Finding

BALANCER = "https://bugs.example/"


def files_finding(home: Path, mounts: str) -> Finding:
    """The ``"cluster files"`` finding for ``home`` (its own config, no
    balancer URL) with the mount table at ``mounts``."""
    findings = cluster_checks(CoreConfig(str(home)), str(home), None, mounts)
    return by_check(findings)["cluster files"]


def mount_table(tmp_path: Path, kind: str, point: str = "/") -> str:
    """A /proc/mounts-format file: ext4 at / and ``kind`` at ``point``."""
    table = tmp_path / "mounts"
    table.write_text(
        "/dev/sda1 / ext4 rw,relatime 0 0\n"
        "proc /proc proc rw 0 0\n"
        f"server:/export {point} {kind} rw,vers=4.2 0 0\n"
    )
    return str(table)


def configure(home: Path, **options: Any) -> Any:
    """Set config.ini options (Roundup's names, e.g. RDBMS_BACKEND) and
    return the re-read CoreConfig."""
    config = CoreConfig(str(home))
    for name, value in options.items():
        config[name] = value
    config.save(str(home / "config.ini"))
    return CoreConfig(str(home))


@pytest.fixture
def cluster_home(tracker_home: Path) -> Path:
    """The seeded tracker's config.ini set up as the recipe says:
    PostgreSQL on another machine, the native indexer, web = the balancer."""
    configure(
        tracker_home,
        RDBMS_BACKEND="postgresql",
        RDBMS_HOST="db.example",
        INDEXER="native",
        TRACKER_WEB=BALANCER,
    )
    return tracker_home


def test_the_recipes_settings_pass(cluster_home: Path, tmp_path: Path) -> None:
    db = cluster_home / "db"
    findings = list(
        cluster_checks(
            CoreConfig(str(cluster_home)),
            str(cluster_home),
            BALANCER,
            mount_table(tmp_path, "nfs4", str(cluster_home)),
        )
    )
    assert [f.check for f in findings] == [
        "cluster backend",
        "cluster database host",
        "cluster indexer",
        "cluster sessions",
        "cluster files",
        "tracker web",
    ]
    assert all(f.ok for f in findings), findings
    files = by_check(findings)["cluster files"].message
    assert f"{db / 'files'} is on nfs4 ({cluster_home}), shared storage" == files


@pytest.mark.parametrize("backend", ["sqlite", "anydbm"])
def test_a_backend_without_a_server_fails(tracker_home: Path, backend: str) -> None:
    config = configure(tracker_home, RDBMS_BACKEND=backend)
    found = by_check(list(cluster_checks(config, str(tracker_home), BALANCER)))
    assert found["cluster backend"].ok is False
    assert f"backend {backend}" in found["cluster backend"].message
    assert "backend = postgresql" in found["cluster backend"].fix
    assert "export" in found["cluster backend"].fix
    assert found["cluster sessions"].ok is False  # sessions in files too
    assert "cluster database host" not in found


@pytest.mark.parametrize("indexer", ["xapian", "whoosh", ""])
def test_a_host_local_indexer_fails(
    cluster_home: Path, indexer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = configure(cluster_home, INDEXER=indexer)
    finding = by_check(list(cluster_checks(config, str(cluster_home), BALANCER)))[
        "cluster indexer"
    ]
    assert finding.ok is False
    assert "'indexer = native' in the [main] section" in finding.fix
    assert "reindex" in finding.fix
    if indexer:
        assert f"indexer {indexer} keeps its index in files" in finding.message
    else:
        assert "indexer is not set" in finding.message


def test_native_fts_is_in_the_database(cluster_home: Path) -> None:
    config = configure(cluster_home, INDEXER="native-fts")
    finding = by_check(list(cluster_checks(config, str(cluster_home), BALANCER)))[
        "cluster indexer"
    ]
    assert finding.ok is True


def test_a_redis_session_database_fails(tracker_home: Path) -> None:
    # Roundup accepts redis only with sqlite/anydbm (its config refuses it
    # with postgresql), so that is where it can be found.
    config = CoreConfig(str(tracker_home))
    config["SESSIONDB_BACKEND"] = "redis"
    finding = by_check(list(cluster_checks(config, str(tracker_home), BALANCER)))[
        "cluster sessions"
    ]
    assert finding.ok is False
    assert "redis" in finding.message
    assert "[sessiondb]" in finding.fix


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", ""])
def test_a_database_on_loopback_is_a_warning(cluster_home: Path, host: str) -> None:
    config = configure(cluster_home, RDBMS_HOST=host)
    finding = by_check(list(cluster_checks(config, str(cluster_home), BALANCER)))[
        "cluster database host"
    ]
    assert finding.ok is None
    assert finding.warn
    assert "rdbms_host" in finding.fix


def test_files_on_a_local_filesystem_fail(cluster_home: Path, tmp_path: Path) -> None:
    table = mount_table(tmp_path, "nfs4", "/elsewhere")
    finding = files_finding(cluster_home, table)
    assert finding.ok is False
    assert "local ext4 filesystem (/)" in finding.message
    assert "NFS" in finding.fix


def test_an_unknown_filesystem_is_a_warning(cluster_home: Path, tmp_path: Path) -> None:
    table = mount_table(tmp_path, "fuse.sshfs", str(cluster_home))
    finding = files_finding(cluster_home, table)
    assert finding.ok is None
    assert finding.warn
    assert "fuse.sshfs" in finding.message


def test_no_mount_table_is_a_warning(cluster_home: Path, tmp_path: Path) -> None:
    missing = str(tmp_path / "no-mounts")
    finding = files_finding(cluster_home, missing)
    assert finding.ok is None
    assert finding.warn


def test_web_must_be_the_balancers_url(cluster_home: Path) -> None:
    config = CoreConfig(str(cluster_home))
    found = by_check(
        list(cluster_checks(config, str(cluster_home), "http://10.0.0.11:8080/"))
    )
    assert found["tracker web"].ok is False
    assert "(the balancer)" in found["tracker web"].message
    assert "set 'web = http://10.0.0.11:8080/'" in found["tracker web"].fix
    unset = by_check(list(cluster_checks(config, str(cluster_home), None)))
    assert unset["tracker web"].warn
    assert "balancer" in unset["tracker web"].message


def test_filesystem_type_takes_the_longest_mount_point(tmp_path: Path) -> None:
    table = tmp_path / "mounts"
    table.write_text(
        "/dev/sda1 / ext4 rw 0 0\n"
        "nas:/srv /srv nfs rw 0 0\n"
        "nas:/srv/roundup\\040trackers /srv/roundup\\040trackers nfs4 rw 0 0\n"
        "tmpfs /srv/roundup tmpfs rw 0 0\n"
    )
    assert filesystem_type("/srv/roundup trackers/bugs/db", str(table)) == (
        "/srv/roundup trackers",
        "nfs4",
    )
    assert filesystem_type("/srv/roundupx", str(table)) == ("/srv", "nfs")
    assert filesystem_type("/srv/roundup/x", str(table)) == ("/srv/roundup", "tmpfs")
    assert filesystem_type("/home", str(table)) == ("/", "ext4")
    assert filesystem_type("/home", str(tmp_path / "none")) is None


def test_filesystem_type_of_this_machine(tmp_path: Path) -> None:
    found = filesystem_type(str(tmp_path))
    if found is None:
        pytest.skip("no /proc/mounts here")
    assert found[0] == "/" or str(tmp_path).startswith(found[0])


def test_run_checks_adds_the_cluster_checks(tracker_home: Path) -> None:
    findings = run_checks(tracker_home, url="http://localhost/", cluster=True)
    names = [f.check for f in findings]
    count = len(TRACKER_CHECKS)
    assert names[:count] == TRACKER_CHECKS
    assert names[count:] == [
        "cluster backend",
        "cluster indexer",
        "cluster sessions",
        "cluster files",
        "tracker web",
    ]


def test_the_command_prints_failures_and_fixes(
    tracker_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["check", "--cluster", str(tracker_home), "--url", BALANCER])
    out = capsys.readouterr().out
    assert status == 1
    assert "FAIL  cluster backend: backend sqlite" in out
    assert "fix: move to PostgreSQL" in out
    assert "FAIL  tracker web:" in out
    assert "checks failed." in out


def test_the_command_prints_warnings(
    cluster_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(cluster_home, RDBMS_HOST="127.0.0.1", RDBMS_PORT=1)
    main(["check", "--cluster", str(cluster_home), "--url", BALANCER])
    out = capsys.readouterr().out
    assert "warn  cluster database host: rdbms_host = 127.0.0.1" in out
    assert "ok    cluster indexer: indexer native" in out
