"""serve_static_file staying inside the static directories
(roundup_wsgi/patches/serve_static_file.py), with a real tracker's config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from roundup.cgi.client import NotFound

from roundup_wsgi.patches import serve_static_file


class Client:
    def __init__(self) -> None:
        self.served: list[str] = []

    def opendb(self, username: str) -> None:
        pass

    def send_error_to_admin(self, subject: str, html: str, txt: str) -> Any:
        pass

    def serve_static_file(self, file: str) -> Any:
        self.served.append(file)
        return "served"


def test_a_sibling_directory_is_404_the_static_directory_served(
    tracker: Any, tracker_home: Path
) -> None:
    templates = Path(tracker.config.TEMPLATES)
    sibling = templates.with_name(templates.name + "_private")
    sibling.mkdir()
    (sibling / "secret.txt").write_text("not for the web")
    client = Client()
    serve_static_file.install(client, tracker.config)
    with pytest.raises(NotFound):
        client.serve_static_file(f"../{sibling.name}/secret.txt")
    assert client.serve_static_file("style.css") == "served"
    assert client.served == ["style.css"]
    serve_static_file.remove(client)
    assert "serve_static_file" not in vars(client)
