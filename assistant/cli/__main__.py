"""`python -m assistant.cli ...`: the same as the `ragtune` script (tests and benches start servers this way)."""

import sys

from assistant.cli.main import main

sys.exit(main())
