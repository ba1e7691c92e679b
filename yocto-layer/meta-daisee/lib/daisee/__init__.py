# The gateway repository's files as BitBake reads them (tree.py).
BBIMPORTS = ["tree"]
