"""Write generated deployment files, or check (``--check``) that the committed ones match."""

from __future__ import annotations

from pathlib import Path


def write_or_check(files: dict[Path, str], argv: list[str], how: str) -> int:
    """Write every file, or with ``--check`` return 1 and name those that are stale."""
    if "--check" not in argv:
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return 0
    stale = [str(p) for p, text in files.items() if not p.exists() or p.read_text() != text]
    if stale:
        print(f"stale (run {how}): {', '.join(stale)}")
        return 1
    return 0
