"""``python -m mnemolog`` is the ``mnemolog`` command."""

import sys

from mnemolog.adapters.cli import main

sys.exit(main())
