"""Regenerate docs/configuration.md's reference table from the config models.

Run: .venv/bin/python scripts/update_docs.py   (tests/test_config.py checks it is current)
"""

import re
import sys
from pathlib import Path

from gate.app_config import GateConfig
from gate.config.docs import config_reference

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
SECTION = re.compile(r"(<!-- BEGIN config-reference -->\n).*?(<!-- END config-reference -->)", re.S)


def with_reference(text: str) -> str:
    """`text` with the generated reference between its markers."""
    if not SECTION.search(text):
        raise SystemExit(f"{REFERENCE}: the config-reference markers are missing")
    return SECTION.sub(
        lambda m: m.group(1) + config_reference(GateConfig) + "\n" + m.group(2), text
    )


def main() -> int:
    REFERENCE.write_text(with_reference(REFERENCE.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
