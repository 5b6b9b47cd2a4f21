"""Tests of roundup_wsgi.patches: a package, so its modules (test_targets, test_security...) do not clash with same-named ones in tests/cli/ and tests/scenarios/."""
