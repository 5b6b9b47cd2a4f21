"""The parts of the cluster test and benchmark that start nothing:
the HAProxy recipe rewritten for loopback (and accepted by ``haproxy -c``),
the HAProxy log reader, /proc readers, the benchmark's table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cluster import (
    HOST_ADDRESSES,
    AppHost,
    Balancer,
    cpu_seconds,
    free_port_on,
    process_tree,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # benchmarks/ is not installed, only run from here

from benchmarks.cluster import ClusterRow, render  # noqa: E402


def balancer(tmp_path: Path, haproxy: str = "haproxy") -> Balancer:
    hosts = [
        AppHost(f"app{n + 1}", address, 8123, tmp_path / "t", tmp_path / "hosts")
        for n, address in enumerate(HOST_ADDRESSES)
    ]
    return Balancer(haproxy, hosts, 8000, tmp_path / "haproxy")


def test_the_recipe_is_rewritten_for_loopback(tmp_path: Path) -> None:
    config = balancer(tmp_path).config()
    assert "    bind 127.0.0.1:8000\n" in config
    for n, address in enumerate(HOST_ADDRESSES):
        assert f"    server app{n + 1} {address}:8123\n" in config
    assert "10.0.0." not in config
    assert str(tmp_path / "haproxy" / "admin.sock") in config
    assert "log stdout format raw local0" in config
    # What the test relies on stays in the recipe.
    assert "uri /-/ready " in config
    assert "http-request disable-l7-retry if !safe_method" in config
    assert "X-Served-By" in config
    assert "    http-request set-header X-Request-ID %[unique-id]\n" in config
    assert '%{+Q}r %ID"\n' in config


def test_haproxy_accepts_the_rewritten_recipe(tmp_path: Path) -> None:
    from helpers.system import require_program

    haproxy = require_program("haproxy", "apt-get install haproxy")
    config = tmp_path / "haproxy.cfg"
    config.write_text(balancer(tmp_path, haproxy).config())
    checked = subprocess.run(
        [haproxy, "-c", "-f", str(config)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_failures_are_read_from_the_log(tmp_path: Path) -> None:
    ha = balancer(tmp_path)
    ha.work_dir.mkdir(parents=True, exist_ok=True)
    ha.log_file.write_text(
        "127.0.0.1:1 [30/Nov/2026:12:55:08.322] roundup roundup/app2 0/2/-1/-1/2 503 "
        '232 - - SC-- 14/14/12/1/+3 0/31 "POST / HTTP/1.1"\n'
        "[WARNING]  (1) : Server roundup/app2 is DOWN, reason: Layer4\n"
        "127.0.0.1:2 [30/Nov/2026:12:55:09.000] roundup roundup/app1 0/0/0/5/5 200 "
        '3294 - - ---- 5/5/0/0/0 0/0 "GET / HTTP/1.1"\n'
        "127.0.0.1:3 [30/Nov/2026:12:55:09.100] roundup roundup/app3 0/0/0/5/5 200 "
        '3294 - - CD-- 5/5/0/0/0 0/0 "GET /issue1 HTTP/1.1"\n'
        # the recipe's lines end with the request's id (%ID)
        "127.0.0.1:4 [30/Nov/2026:12:55:09.200] roundup roundup/app1 0/0/0/5/5 502 "
        '0 - - SH-- 5/5/0/0/0 0/0 "GET /issue2 HTTP/1.1" 7F000001:A1B2_7F000001:1F40'
        "_692D0B3D_0003:4D2\n"
        "127.0.0.1:5 [30/Nov/2026:12:55:09.300] roundup roundup/app1 0/0/0/5/5 200 "
        '3294 - - ---- 5/5/0/0/0 0/0 "GET /issue3 HTTP/1.1" 7F000001:A1B3_7F000001:1F40'
        "_692D0B3D_0004:4D2\n"
    )
    assert ha.failures() == [
        'app2 503 SC-- "POST / HTTP/1.1"',
        'app3 200 CD-- "GET /issue1 HTTP/1.1"',
        'app1 502 SH-- "GET /issue2 HTTP/1.1"',
    ]


def test_proc_readers() -> None:
    assert process_tree(os.getpid())[0] == os.getpid()
    assert cpu_seconds([os.getpid()]) > 0
    assert cpu_seconds([2**22 + 1]) == 0  # no such process: skipped


def test_a_port_free_on_every_host_address() -> None:
    import socket

    port = free_port_on(HOST_ADDRESSES)
    for address in HOST_ADDRESSES:
        with socket.socket() as sock:
            sock.bind((address, port))


@pytest.mark.parametrize("rows", [1, 4])
def test_benchmark_table(rows: int) -> None:
    table = render(
        [
            ClusterRow(
                f"{n} host(s), HAProxy", n, 10.0 * n, 1, 2, 0, 100, 9.5, 7.25, 0.5
            )
            for n in range(1, rows + 1)
        ]
    )
    lines = table.splitlines()
    assert lines[0].split()[:2] == ["setup", "req/s"]
    assert len(lines) == rows + 2
    assert "9.50" in lines[2]
    assert "7.25" in lines[2]
