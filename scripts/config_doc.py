"""Writes docs/configuration.md from the Settings declarations: run after adding a setting."""

from __future__ import annotations

from pathlib import Path

from burnbox.settings import describe

HEAD = """# Configuration

Every setting has a default that works on a laptop. Set them as environment variables,
in a `.env` file in the working directory (or the file named by `--env-file`), or as
flags to `burnbox serve` (`BURNBOX_SMTP_LISTEN` is `--smtp-listen`). Flags win over the
environment, which wins over the file. A bad value stops burnbox at start with an error
that names the key; an unknown `BURNBOX_*` variable is an error too (it is usually a
typo). `BURNBOX_URL` and `BURNBOX_TOKEN` are read by the client commands
(`burnbox inbox`, `wait`, `msg`), not by the server.

Sizes take `k`, `KiB`, `M`, `MiB`, `G`, `GiB` (or none: bytes); durations take `ms`, `s`,
`m`, `h`, `d` (or none: seconds).

| Setting | Default | What it does |
| --- | --- | --- |
"""


def main() -> None:
    rows = [f"| `{key}` | `{default or '(empty)'}` | {text} |" for key, default, text in describe()]
    target = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
    target.write_text(HEAD + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
