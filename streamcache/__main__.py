"""``python -m streamcache``: the local tools (see ``streamcache.cli``)."""

import sys

from streamcache.cli import main

sys.exit(main())
