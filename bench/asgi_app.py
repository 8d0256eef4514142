"""tokenward's ASGI app built from the ``TOKENWARD_*`` environment, for ``bench/proxy.py`` to run
under another server (granian) against the same database as ``tokenward serve``:

    granian --interface asgi --loop uvloop asgi_app:app   (with bench/ on PYTHONPATH)
"""

from __future__ import annotations

from tokenward.cli.output import load_settings
from tokenward.server.app import create_app

app = create_app(load_settings())
