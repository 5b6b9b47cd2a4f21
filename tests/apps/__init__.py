"""Small WSGI applications that the tests serve in real servers."""
