"""``python -m tools.ops``: the operators' command line (``--help`` lists the commands)."""

from __future__ import annotations

from tools.ops.cli import main
from tools.ops.cli_logging import configure_cli_logging

configure_cli_logging()
raise SystemExit(main())
