"""The user guide's "Custom Cache Backends" module (``the_app/custom.py``), as printed."""
