"""The ``roundup-wsgi`` command line.

* :mod:`.command`: the argument parser, ``main()`` and the subcommands
  (``serve``, ``init``, ``check``, ``wsgi-script``);
* :mod:`.demo`: the demo tracker ``serve`` creates on first run;
* :mod:`.check`: the diagnostics behind ``roundup-wsgi check``;
* :mod:`.wsgi_script`: the mod_wsgi script behind ``roundup-wsgi wsgi-script``.
"""

from __future__ import annotations

from .command import CliError, main

__all__ = ["CliError", "main"]
