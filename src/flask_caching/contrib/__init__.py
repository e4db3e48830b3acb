"""Backends that need a special runtime: :mod:`.uwsgicache` works only inside uWSGI."""
