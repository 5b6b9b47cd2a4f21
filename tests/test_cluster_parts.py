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

from benchmarks.cluster import (  # noqa: E402
    ClusterRow,
    machine_busy_seconds,
    parse_args,
    render,
    scaling_efficiency,
)


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


def row(hosts: int, rate: float, path: str = "/issue1") -> ClusterRow:
    """A measurement of 10 s on 2 cores: PostgreSQL 2 s, HAProxy 1 s, each
    host 4 s / hosts, wrk 0.5 s, the machine busy 16 s."""
    cpu = {"PostgreSQL": 2.0, "HAProxy": 1.0, "wrk": 0.5}
    cpu.update({f"app{n + 1}": 4.0 / hosts for n in range(hosts)})
    return ClusterRow(
        path, hosts, rate, 40.0, 90.0, 0, int(rate * 10), 10.0, 2, cpu, 16.0
    )


def test_benchmark_options() -> None:
    args = parse_args([])
    assert (args.seconds, args.hosts, args.connections) == (10, [1, 2, 3], 8)
    args = parse_args(["--seconds", "3", "--hosts", "3, 1,1", "--connections", "4"])
    assert (args.seconds, args.hosts, args.connections) == (3, [1, 3], 4)


@pytest.mark.parametrize(
    "argv",
    [
        ["--hosts", "4"],
        ["--hosts", "0,1"],
        ["--hosts", "one"],
        ["--hosts", ","],
        ["--seconds", "0"],
        ["--connections", "-2"],
        ["--issues", "x"],
    ],
)
def test_benchmark_rejects_bad_options(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert argv[0] in capsys.readouterr().err


def test_scaling_efficiency() -> None:
    assert scaling_efficiency({1: 100.0, 2: 150.0, 3: 240.0}) == {
        1: 1.0,
        2: 0.75,
        3: 0.8,
    }
    # Without a 1-host rate there is nothing to compare with.
    assert scaling_efficiency({2: 150.0}) == {2: None}
    assert scaling_efficiency({1: 0.0, 2: 5.0}) == {1: None, 2: None}


def test_machine_busy_seconds() -> None:
    ticks = os.sysconf("SC_CLK_TCK")
    # user nice system idle iowait irq softirq steal guest guest_nice
    stat = f"cpu  {ticks * 3} 0 {ticks} {ticks * 50} {ticks * 7} 0 {ticks} 0 0 0\n"
    stat += "cpu0 1 2 3 4 5 6 7 8 9 10\n"
    assert machine_busy_seconds(stat) == 5.0
    assert machine_busy_seconds() > 0
    with pytest.raises(ValueError, match="/proc/stat"):
        machine_busy_seconds("intr 1 2 3\n")


def test_cpu_shares_of_a_row() -> None:
    measured = row(2, 100.0)
    assert measured.share(2.0) == 0.1  # 2 CPU s of 2 cores x 10 s
    assert measured.other_s == 16.0 - 2.0 - 1.0 - 0.5 - 4.0


@pytest.mark.parametrize("rows", [1, 3])
def test_benchmark_table(rows: int) -> None:
    measured = [row(n, 10.0 * n) for n in range(1, rows + 1)]
    efficiency = scaling_efficiency({r.hosts: r.rate for r in measured})
    for r in measured:
        r.efficiency = efficiency[r.hosts]
    lines = render(measured).splitlines()
    assert lines[0].split()[:4] == ["page", "hosts", "req/s", "eff."]
    assert len(lines) == rows + 2
    header = lines[0].split()
    assert header.count("%") == 5 + rows  # PG, HAProxy, app1..N, wrk, other, idle
    first = lines[2].split()
    # /issue1, 1 host, 10 req/s, eff 1.00, p50, p99, 0 errors, PG 10%, HAProxy 5%,
    # app1 20%, (app2, app3 "-"), wrk 2%, other 42%, idle 20%, app 40 ms/req,
    # PG 20 ms/req.
    assert first[:10] == [
        "/issue1",
        "1",
        "10.0",
        "1.00",
        "40",
        "90",
        "0",
        "10",
        "5",
        "20",
    ]
    assert first[-5:] == ["2", "42", "20", "40.0", "20.0"]
    assert first[10:-5] == ["-"] * (rows - 1)
