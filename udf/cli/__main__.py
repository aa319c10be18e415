"""``python -m udf.cli``: the ``s1ndvi`` command line."""

import sys

from udf.cli import main

sys.exit(main())
