"""``python -m roundup_wsgi``: the ``roundup-wsgi`` command (roundup_wsgi.cli)."""

from roundup_wsgi.cli import main

raise SystemExit(main())
