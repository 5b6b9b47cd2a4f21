"""Tests of roundup_wsgi.patches.

A package, so that its modules (test_targets, test_security...) do not
clash with same-named ones in tests/cli/ and tests/scenarios/.
"""
