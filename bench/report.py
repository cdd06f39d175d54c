"""How every benchmark reports: a table on stdout and the same figures as JSON."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def emit(figures: dict, path: str) -> None:
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(figures, indent=2, ensure_ascii=False))
    sys.stdout.flush()
    os._exit(0)  # temporalio/sdk-python#300: the interpreter can crash at exit after a client was used
