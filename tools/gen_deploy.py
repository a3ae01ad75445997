"""Write the files of clusterset/deploy that come from code (CRDs, the ClusterSet namespace, the hub's roles).

Run after changing a CRD or a role, and commit the result (tests/deploy fails while they differ):

    .venv/bin/python tools/gen_deploy.py
"""

from __future__ import annotations

from pathlib import Path

from clusterset.deploy import BASES
from clusterset.deploy.generated import generated_files


def main() -> None:
    for name, text in generated_files().items():
        path = Path(BASES) / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
