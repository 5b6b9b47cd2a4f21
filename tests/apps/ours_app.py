"""roundup-wsgi's ``application``, bound as a module attribute.

``roundup_wsgi.app`` builds ``application`` on first attribute access (PEP
562 module ``__getattr__``).  hypercorn looks the callable up with
``eval(name, vars(module))``, which never calls a module's ``__getattr__``,
so it cannot load ``roundup_wsgi.app:application``; it loads
``ours_app:application`` (as it would the script ``roundup-wsgi wsgi-script``
writes, saved as a ``.py`` file).
"""

from __future__ import annotations

from roundup_wsgi.app import application

__all__ = ["application"]
