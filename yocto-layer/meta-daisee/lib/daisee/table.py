"""image/layout's tables and layout.env as data, for the recipes (tree.py) and yocto-layer/update."""


def rows(filename):
    """FILENAME's lines that are neither blank nor comments, split into columns."""
    with open(filename) as table:
        return [line.split() for line in table if line.strip() and not line.lstrip().startswith("#")]


def value(filename, key):
    """The value of KEY in FILENAME, a file of KEY=value lines such as layout.env; None if absent."""
    for (line,) in rows(filename):
        name, _, found = line.partition("=")
        if name == key:
            return found
    return None
