"""``make demo``: run the main job on the real ZTF alerts bundled with the package."""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path

__all__ = ["demo_alerts_dir", "main"]


def demo_alerts_dir() -> Path:
    """Folder of the real ZTF alerts shipped with astrot2 (see its README for sources)."""
    return Path(str(resources.files("astrot2") / "demo_data" / "ztf"))


def main() -> int:
    """Read the bundled alerts and print what was ingested."""
    from astrot2.io import read_alerts

    batch = read_alerts(demo_alerts_dir())
    print(json.dumps(batch.summary(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
