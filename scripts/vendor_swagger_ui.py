"""Copy Swagger UI's browser assets from npm's ``swagger-ui-dist`` into the package.

``/docs`` serves these files itself, so the API reference renders with no network. Run
``make swagger-ui`` (or this script with ``--version X.Y.Z``) to take a newer release; it needs
``npm`` and the npm registry, nothing else, and rewrites ``server/static/swagger-ui/``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

TARGET = Path(__file__).resolve().parent.parent / "src/tokenward/server/static/swagger-ui"
DEFAULT_VERSION = "5.35.0"
# What /docs needs, and the licence texts that must travel with it.
FILES = (
    "swagger-ui-bundle.js",
    "swagger-ui-bundle.js.LICENSE.txt",
    "swagger-ui.css",
    "favicon-32x32.png",
    "LICENSE",
    "NOTICE",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--version", default=DEFAULT_VERSION, help="swagger-ui-dist version")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(  # noqa: S603 (a fixed command)
            ["npm", "pack", f"swagger-ui-dist@{args.version}", "--json", "--silent"],  # noqa: S607
            cwd=tmp,
            check=True,
            capture_output=True,
            text=True,
        )
        tarball = Path(tmp) / json.loads(out.stdout)[0]["filename"]
        with tarfile.open(tarball) as archive:
            archive.extractall(tmp, filter="data")
        package = Path(tmp) / "package"
        version = json.loads((package / "package.json").read_text())["version"]
        shutil.rmtree(TARGET, ignore_errors=True)
        TARGET.mkdir(parents=True)
        for name in FILES:
            shutil.copyfile(package / name, TARGET / name)
        (TARGET / "VERSION").write_text(f"swagger-ui-dist {version}\n")
    print(f"swagger-ui-dist {version} -> {TARGET}")


if __name__ == "__main__":
    main()
