"""``python -m ploutos_core.cli``: the same as the ``ploutos`` console script."""

import sys

from ploutos_core.cli.main import main

sys.exit(main())
