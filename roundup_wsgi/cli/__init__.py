"""The ``roundup-wsgi`` command line.

* :mod:`.command`: ``main()`` and the subcommands ``init``, ``check`` and
  ``wsgi-script``;
* :mod:`.arguments`: the argument parser, a function per subcommand;
* :mod:`.argtypes`: the arguments' defaults and argparse value types;
* :mod:`.option_flags`: ``serve``'s flag of each option of
  :data:`roundup_wsgi.options.OPTIONS`;
* :mod:`.serve`: ``serve``, one tracker, several or the demo, on waitress;
* :mod:`.targets`: the tracker(s) ``serve`` serves, checked against where
  they are served;
* :mod:`.server`: the waitress server, bound and stopped gracefully;
* :mod:`.demo`: the demo tracker ``serve`` creates on first run;
* :mod:`.demo_data`: the demo's users and sample issues, and their seeding;
* :mod:`.check`: the diagnostics behind ``roundup-wsgi check``, in order;
* :mod:`.check_config`: config.ini, required options, ``[tracker] web``;
* :mod:`.check_tracker`: the tracker opens, its template utils, its backend;
* :mod:`.check_permissions`: the serving user reads the home, writes db/;
* :mod:`.check_cluster`: ``check --cluster``, several hosts behind a balancer;
* :mod:`.findings`: a check's result, and how ``check`` prints them;
* :mod:`.wsgi_script`: the mod_wsgi script behind ``roundup-wsgi wsgi-script``;
* :mod:`.output`: errors, notes and warnings as the command prints them.
"""

from __future__ import annotations

from .command import CliError, main

__all__ = ["CliError", "main"]
