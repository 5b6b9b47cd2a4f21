"""WSGI tools that know nothing of Roundup.

Each module here works for any PEP 3333 application and imports neither
Roundup nor anything from ``roundup_wsgi`` outside this package:

* :mod:`.types`: the shapes of ``environ``, ``start_response``, ``exc_info``
  and applications, for type hints;
* :mod:`.adapters`: write()-style WSGI 1, iterable WSGI 1 and WSGI 2
  (``app(environ) -> (status, headers, body)``) turned into each other;
* :mod:`.files`: a file, or a range of it, as a response body
  (``wsgi.file_wrapper`` or bounded blocks);
* :mod:`.encoding`: ``Accept-Encoding`` with q-values, compression of a
  file as it is sent, a cache of compressed variants;
* :mod:`.errorpages`: the error pages the dispatcher writes itself;
* :mod:`.mount`: several applications under ``/<name>/``;
* :mod:`.proxy`: ``X-Forwarded-*`` honoured only from trusted proxies.
"""
