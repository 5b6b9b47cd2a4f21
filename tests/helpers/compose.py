"""deploy/container/compose.yaml run with podman-compose on this machine.

The stack runs with ``-f compose.yaml -f tests/containers/compose-host-network.yaml``:
host networking on loopback (each service on its own 127.0.0.1 port, from
the environment) and the test's secret files.  No registry image is pulled:
the app image is :func:`helpers.container.build_image`'s and PostgreSQL is
:func:`postgres_image`, built on the same debootstrap base with Debian's
``postgresql-15`` (cached by the sources' hash).

Debian 12's podman-compose 1.0.3 adds ``--net PROJECT_default`` to every
container, even one with ``network_mode: host``, and podman refuses both
("cannot set multiple networks"); :data:`SHIM` runs podman-compose with
that addition dropped for such services (what later podman-compose
releases do), and creates no project network.  Everything the stack
creates is removed by ID (:meth:`Compose.remove`), found by the project's
label.
"""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

from .container import REPO, ULIMITS, Podman, base_image, source_key
from .system import require_program

__all__ = ["COMPOSE_FILES", "Compose", "postgres_image", "write_secrets"]

TEST_CONTAINERS = REPO / "tests" / "containers"
COMPOSE_FILES = (
    REPO / "deploy" / "container" / "compose.yaml",
    TEST_CONTAINERS / "compose-host-network.yaml",
)
PROJECT_LABEL = "io.podman.compose.project"

#: podman-compose with ``network_mode`` services left off the project network.
SHIM = """\
import sys
import podman_compose as pc

net_args, assert_nets = pc.get_net_args, pc.assert_cnt_nets
pc.get_net_args = lambda c, cnt: [] if cnt.get("network_mode") else net_args(c, cnt)
pc.assert_cnt_nets = lambda c, cnt: cnt.get("network_mode") or assert_nets(c, cnt)
sys.argv[0] = "podman-compose"
sys.exit(pc.main())
"""


def postgres_image(podman: Podman) -> str:
    """tests/containers/postgres.Containerfile built on the debootstrap base
    (apt inside the build reaches Debian's mirror like debootstrap did);
    return the tag, which holds a hash of the sources and the base."""
    base = base_image(podman)
    sources = [
        TEST_CONTAINERS / "postgres.Containerfile",
        TEST_CONTAINERS / "postgres-entrypoint.sh",
    ]
    key = source_key(sources)
    tag = f"localhost/roundup-wsgi-test-postgres:{base.rsplit(':', 1)[1]}-{key}"
    if podman.exists(tag):
        return tag
    podman(
        "build", *ULIMITS, "--network", "host", "--format", "docker",
        "--build-arg", f"BASE_IMAGE={base}",
        "--file", str(sources[0]), "--tag", tag, str(TEST_CONTAINERS),
        timeout=900,
    )  # fmt: skip
    return tag


class Compose:
    """One compose project (a unique name) of :data:`COMPOSE_FILES`.

    :param podman: podman with this machine's settings (its environment).
    :param variables: the compose files' variables (ports, images, secrets).
    """

    def __init__(self, podman: Podman, variables: dict[str, str]) -> None:
        compose = require_program("podman-compose", "apt-get install podman-compose")
        with open(compose, encoding="utf-8") as script:
            shebang = script.readline()
        self.python = shebang[2:].strip() if shebang.startswith("#!") else "python3"
        self.podman = podman
        self.project = f"rwtest{secrets.token_hex(4)}"
        self.env = {**podman.env, **variables}

    def __call__(self, *args: str, timeout: float = 300) -> str:
        """Run ``podman-compose -p PROJECT -f ... ARGS``; return its output.

        :raises AssertionError: it exited non-zero (its output).
        """
        argv = [self.python, "-c", SHIM, "-p", self.project]
        for file in COMPOSE_FILES:
            argv += ["-f", str(file)]
        result = subprocess.run(
            [*argv, *args],
            env=self.env,
            cwd=COMPOSE_FILES[0].parent,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        output = result.stdout + result.stderr
        if result.returncode != 0:
            raise AssertionError(f"podman-compose {' '.join(args)}: {output[-4000:]}")
        return output

    def container(self, service: str) -> str:
        """The ID of *service*'s (only) container.

        :raises AssertionError: there is not exactly one.
        """
        ids = self._ids("ps", "-a", "-q", "--filter", f"label={PROJECT_LABEL}=")
        found = [
            cid
            for cid in ids
            if self.podman(
                "inspect", "--format",
                '{{index .Config.Labels "com.docker.compose.service"}}', cid,
            ).stdout.strip() == service
        ]  # fmt: skip
        assert len(found) == 1, (service, found)
        return found[0]

    def _ids(self, *args: str) -> list[str]:
        """The output lines of ``podman ARGS`` with the project appended to the
        last (label) argument."""
        result = self.podman(*args[:-1], args[-1] + self.project, check=False)
        return result.stdout.split()

    def remove(self) -> None:
        """Remove the project's containers and volumes, by ID (name for
        volumes), whatever state they are in."""
        label = f"label={PROJECT_LABEL}="
        containers = self._ids("ps", "-a", "-q", "--filter", label)
        if containers:
            self.podman("rm", "-f", "-t", "0", *containers, check=False)
        volumes = self._ids("volume", "ls", "-q", "--filter", label)
        if volumes:
            self.podman("volume", "rm", "-f", *volumes, check=False)
        networks = self._ids("network", "ls", "-q", "--filter", label)
        if networks:
            self.podman("network", "rm", "-f", *networks, check=False)


def write_secrets(directory: Path) -> dict[str, str]:
    """Make the stack's three secret files in *directory* (readable by the
    containers' users); return them by name."""
    directory.mkdir(parents=True, exist_ok=True)
    values = {
        "admin_password": secrets.token_urlsafe(16),
        "db_password": secrets.token_urlsafe(16),
        "secret_key": secrets.token_urlsafe(32),
    }
    for name, value in values.items():
        path = directory / name
        path.write_text(value + "\n")
        path.chmod(0o644)
    return values
