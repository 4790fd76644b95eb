"""``python -m abm_markets`` is the ``abm-markets`` command."""

from abm_markets.cli import main

raise SystemExit(main())
