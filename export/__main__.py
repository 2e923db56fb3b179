"""`python -m export --model runs/x/model.keras --out exported/ ...` (see export/cli.py)."""

import sys

from export.cli import main

sys.exit(main())
