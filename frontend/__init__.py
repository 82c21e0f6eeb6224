"""The browser side: chat page (chat/), admin page (admin/), embeddable widget (widget/) and their shared modules
(shared/). Plain ES modules and CSS, no build step; a Python package only so that wheels carry the files
(pyproject's package-data) and the server finds them beside this file however ragtune is installed."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent
