"""WSGI tools that know nothing of Roundup.

Each module here works for any PEP 3333 application and imports neither
Roundup nor anything from ``roundup_wsgi`` outside this package; page texts
are parameters (the glue passes Roundup's):

* :mod:`.types`: the shapes of ``environ``, ``start_response``, ``exc_info``
  and applications, for type hints;
* :mod:`.adapters`: write()-style WSGI 1, iterable WSGI 1 and WSGI 2
  (``app(environ) -> (status, headers, body)``) turned into each other;
  :mod:`.wsgi1call` holds one WSGI 1 call as a WSGI 2 response (the
  PEP 3333 checks, the ``"buffer"`` mode), :mod:`.greenletmode` and
  :mod:`.threadmode` the other two modes;
* :mod:`.firstchunk`: servers that send the status line only with the
  first body chunk (hypercorn);
* :mod:`.files`: a file, or a range of it, as a response body
  (``wsgi.file_wrapper`` or bounded blocks);
* :mod:`.encoding`: ``Accept-Encoding`` with q-values, media types
  compressed already;
* :mod:`.compressors`: gzip, brotli and zstd, of bytes at once or of a
  file as it is sent;
* :mod:`.variants`: compressed variants of files, kept while the files are
  unchanged;
* :mod:`.lru`: a thread-safe mapping bounded in bytes, least recently used
  evicted;
* :mod:`.responsecache`: whole responses kept while their files are
  unchanged;
* :mod:`.errorpages`: error pages rendered by webob;
* :mod:`.mount`: several applications under ``/<name>/`` with an index;
* :mod:`.proxy`: ``X-Forwarded-*`` honoured only from trusted proxies;
* :mod:`.requestid`: a request id from trusted proxies, or a new one;
* :mod:`.finish`: hooks run once when a response has ended;
* :mod:`.logformat`: the access-log line (Apache's combined format plus
  duration and trace id, or JSON), escaping, redaction;
* :mod:`.accesslog`: the access log, a finish hook writing those lines
  through :mod:`logging`.
"""
