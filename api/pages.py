"""HTML pages of the API (the monitoring dashboard): Jinja2 templates and the page's own static files.

The page's script and style are hand-written files in `api/static`, served by the API itself with a
content hash in their URL: no CDN, no bundler, nothing fetched from the internet at run time.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from domain.thai_time import english_datetime, thai_datetime

HERE = Path(__file__).parent
STATIC = HERE / "static"
STATIC_FILES = {"dashboard.js": "text/javascript; charset=utf-8", "dashboard.css": "text/css; charset=utf-8"}
# The page loads only its own files; the live feed and the JSON come from the same origin.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


@lru_cache
def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), undefined=StrictUndefined,
                      autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["thai"] = thai_datetime
    env.filters["english"] = english_datetime
    env.globals["static_url"] = static_url
    return env


def render_page(template: str, **context) -> str:
    return _env().get_template(template).render(**context)


@lru_cache
def static_file(name: str) -> tuple[bytes, str]:
    data = (STATIC / name).read_bytes()
    return data, hashlib.sha256(data).hexdigest()[:12]


def static_url(name: str) -> str:
    return f"/dashboard/static/{name}?v={static_file(name)[1]}"


def script_json(text: str) -> str:
    """JSON text to embed in `<script type="application/json">`: nothing in it can close the element."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
