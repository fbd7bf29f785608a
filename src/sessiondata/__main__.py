"""``python -m sessiondata``: the command line (see `sessiondata._cli`)."""

from ._cli import main

raise SystemExit(main())
