"""Refreshes the HTML check's support data from npm `caniemail` (MIT): its
`data/caniemail.json` and LICENSE, copied into src/burnbox/qa/htmlcheck as they come.

    .venv/bin/python scripts/update_caniemail.py [version]   # default: latest
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

TARGET = Path(__file__).resolve().parent.parent / "src" / "burnbox" / "qa" / "htmlcheck"


def main(version: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        npm = shutil.which("npm")
        if npm is None:
            sys.exit("npm is needed to fetch the package")
        packed = subprocess.run(  # noqa: S603 - npm, with a version the operator typed
            [npm, "pack", f"caniemail@{version}", "--silent"],
            cwd=folder,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()[-1]
        with tarfile.open(Path(folder) / packed) as archive:
            archive.extractall(folder, filter="data")
        package = Path(folder) / "package"
        data = json.loads((package / "data" / "caniemail.json").read_text("utf-8"))
        if not data.get("data") or "nicenames" not in data:
            sys.exit("caniemail.json is not the shape the HTML check reads; nothing copied")
        shutil.copyfile(package / "data" / "caniemail.json", TARGET / "caniemail.json")
        shutil.copyfile(package / "LICENSE", TARGET / "caniemail-LICENSE")
        print(f"caniemail {packed}: {len(data['data'])} features, {data['last_update_date']}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "latest")
