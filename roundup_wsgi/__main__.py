"""``python -m roundup_wsgi``: the ``roundup-wsgi`` command."""

from roundup_wsgi.cli import main

raise SystemExit(main())
