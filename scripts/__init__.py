"""The checkout's scripts, importable as a package so that they run with `python -m`."""
