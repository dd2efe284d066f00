"""Tests of medfuse.metrics (a package so that module names like test_report stay unique)."""
