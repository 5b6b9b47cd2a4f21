"""Build and run the container image of deploy/container/ with podman.

This machine kind has no Docker daemon and no registry images: podman runs
as root with ``runc`` (crun fails on hybrid cgroups), explicit ulimits (the
defaults need CAP_SYS_RESOURCE) and host networking, all set here, in the
tests' own ``containers.conf`` and command lines, never in the Containerfile.
The base image is a Debian bookworm ``debootstrap --variant=minbase`` from
apt's own mirror, imported once a month (cached in podman's storage); the
wheels come from a wheelhouse that the host's pip downloads (so this
machine's pip configuration and index apply), checked against the hashes of
deploy/container/requirements.txt.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from .system import require_program

REPO = Path(__file__).resolve().parents[2]
CONTAINER_DIR = REPO / "deploy" / "container"
RUNC = "/usr/sbin/runc"
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]
CACHE = (
    Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    / "roundup-wsgi-tests"
)
INSTALL_HINT = "apt-get install podman runc debootstrap podman-compose"

CONTAINERS_CONF = f"""\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
netns = "host"

[engine]
runtime = "runc"

[engine.runtimes]
runc = ["{RUNC}"]
"""


class Podman:
    """The ``podman`` command with this machine's settings."""

    def __init__(self, podman: str, conf: Path) -> None:
        self.podman = podman
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}

    def command(self, *args: str) -> list[str]:
        """The argv of ``podman ARGS`` with the runtime given."""
        return [self.podman, "--runtime", RUNC, *args]

    def __call__(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 600,
        input: bytes | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``podman ARGS``; return the finished process (text output)."""
        result = subprocess.run(
            self.command(*args),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            input=input.decode() if input is not None else None,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"podman {' '.join(args)}: exit {result.returncode}\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def exists(self, image: str) -> bool:
        """True when podman's storage holds *image*."""
        return self("image", "exists", image, check=False).returncode == 0

    @contextlib.contextmanager
    def container(self, *run_args: str) -> Iterator[str]:
        """``podman run -d RUN_ARGS``; yield the container id; remove it (by
        id) afterwards, even when the test fails."""
        result = self("run", "-d", *ULIMITS, "--network", "host", *run_args)
        cid = result.stdout.strip().splitlines()[-1]
        try:
            yield cid
        finally:
            self("rm", "-f", "-t", "0", cid, check=False)

    def wait_healthy(self, cid: str, timeout: float = 60) -> float:
        """Run the image's HEALTHCHECK until it passes; return the seconds waited.

        :raises AssertionError: not healthy in time (the container's log).
        """
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self("healthcheck", "run", cid, check=False).returncode == 0:
                return time.monotonic() - start
            state = self("inspect", "--format", "{{.State.Status}}", cid, check=False)
            if state.stdout.strip() not in ("running", "created", ""):
                break
            time.sleep(0.1)
        logs = self("logs", cid, check=False)
        raise AssertionError(
            f"{cid} not healthy:\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}"
        )


def podman_or_skip(directory: Path) -> Podman:
    """The :class:`Podman` for this machine (skipped or, under CI, failed when
    podman, runc or debootstrap is missing)."""
    podman = require_program("podman", INSTALL_HINT)
    require_program("runc", INSTALL_HINT, RUNC)
    require_program("debootstrap", INSTALL_HINT)
    conf = directory / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    return Podman(podman, conf)


def debian_mirror() -> str:
    """The Debian mirror apt uses here (deb822 ``.sources`` or ``sources.list``)."""
    paths = [
        Path("/etc/apt/sources.list"),
        *sorted(Path("/etc/apt/sources.list.d").glob("*")),
    ]
    for path in paths:
        with contextlib.suppress(OSError):
            text = path.read_text()
            for stanza in re.split(r"\n\s*\n", text):
                uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
                suites = re.search(r"^Suites:.*\bbookworm\b", stanza, re.M)
                if (
                    uris
                    and suites
                    and not uris.group(1).rstrip("/").endswith("-security")
                ):
                    return uris.group(1)
            line = re.search(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s", text, re.M)
            if line:
                return line.group(1)
    return "http://deb.debian.org/debian"


def base_image(podman: Podman) -> str:
    """A bookworm minbase image with python3 (built once a month, cached)."""
    tag = f"localhost/roundup-wsgi-base:bookworm-{datetime.date.today():%Y-%m}"
    if podman.exists(tag):
        return tag
    debootstrap = require_program("debootstrap", INSTALL_HINT)
    with tempfile.TemporaryDirectory(prefix="roundup-wsgi-base-") as tmp:
        root = Path(tmp) / "root"
        include = "--include=python3,python3-venv,ca-certificates"
        argv = [debootstrap, "--variant=minbase", include, "bookworm", str(root)]
        subprocess.run([*argv, debian_mirror()], check=True, capture_output=True)
        for junk in (
            "var/cache/apt",
            "var/lib/apt/lists",
            "usr/share/doc",
            "usr/share/man",
        ):
            shutil.rmtree(root / junk, ignore_errors=True)
        tar = subprocess.Popen(
            ["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE
        )
        imported = subprocess.run(
            podman.command("import", "-", tag),
            stdin=tar.stdout,
            env=podman.env,
            capture_output=True,
            check=False,
        )
        tar.wait()
        assert imported.returncode == 0, imported.stderr
    return tag


def wheelhouse() -> Path:
    """The hash-checked downloads of the two lock files, by the host's pip
    (cached by the locks' content)."""
    locks = [
        CONTAINER_DIR / "requirements.txt",
        CONTAINER_DIR / "build-requirements.txt",
    ]
    key = hashlib.sha256(b"".join(p.read_bytes() for p in locks)).hexdigest()[:16]
    target = CACHE / f"wheelhouse-{key}"
    if not (target / "done").exists():
        shutil.rmtree(target, ignore_errors=True)
        argv = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
        argv += ["--require-hashes", "--dest", str(target)]
        for lock in locks:
            argv += ["-r", str(lock)]
        subprocess.run(argv, check=True, capture_output=True)
        (target / "done").write_text("")
    return target


def source_key(paths: Sequence[Path]) -> str:
    """A hash of the files under *paths* (what the image is built from)."""
    digest = hashlib.sha256()
    for path in paths:
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for file in files:
            if file.is_file() and "__pycache__" not in file.parts:
                digest.update(str(file.relative_to(REPO)).encode() + file.read_bytes())
    return digest.hexdigest()[:16]


def build_image(podman: Podman) -> str:
    """Build deploy/container/Containerfile on :func:`base_image`; return the tag.

    The tag holds a hash of the sources, so an unchanged tree reuses the image.
    """
    base = base_image(podman)
    # what the Containerfile copies (not compose.yaml: no rebuild for it)
    sources = [
        CONTAINER_DIR / name
        for name in (
            "Containerfile",
            "requirements.txt",
            "build-requirements.txt",
            "entrypoint.py",
            "healthcheck.py",
        )
    ]
    sources += [
        REPO / "deploy" / "gunicorn.conf.py",
        REPO / "roundup_wsgi",
    ]
    sources += [REPO / name for name in ("setup.cfg", "pyproject.toml", "README.rst")]
    tag = f"localhost/roundup-wsgi:test-{source_key(sources)}"
    if podman.exists(tag):
        return tag
    wheels = wheelhouse()
    podman(
        "build", *ULIMITS, "--network", "host", "--format", "docker",
        "--build-arg", f"BASE_IMAGE={base}",
        "--volume", f"{wheels}:/wheelhouse:ro",
        "--build-arg", "PIP_OPTIONS=--no-index --find-links /wheelhouse",
        "--file", str(CONTAINER_DIR / "Containerfile"), "--tag", tag, str(REPO),
        timeout=900,
    )  # fmt: skip
    return tag
