"""Interop harness: released Flask-Caching 2.5.1 and ours on one real store.

``tests/test_interop.py`` drives it. Each side runs :mod:`interop.app` in a worker
subprocess under its own interpreter (``.venv-released`` or ``.venv``), so the same
app, with the same module and function names, runs once on each implementation.
``codec``, ``app`` and ``worker`` run inside those subprocesses (stdlib, Flask and
flask_caching only); ``venv`` and ``harness`` run in pytest.
"""
