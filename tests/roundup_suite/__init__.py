"""Roundup's own live-server suite run against roundup-wsgi (see plugin.py)."""
