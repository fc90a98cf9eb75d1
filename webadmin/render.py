"""Jinja2 rendering of the server-side pages (autoescape on for every template)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from vpop3d import __version__

TEMPLATES = Path(__file__).parent / "templates"


def human_size(size: int) -> str:
    """``13.1kB`` style sizes, as the Users grid shows them [L2409]."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}TB"  # pragma: no cover


def make_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["size"] = human_size
    env.globals["version"] = __version__
    return env


class Renderer:
    def __init__(self) -> None:
        self._env = make_environment()

    def page(self, name: str, **values: Any) -> bytes:
        return self._env.get_template(name).render(**values).encode("utf-8")
