"""The gateway's repository, read by the layer's recipes at parse time.

Each reader marks the file it reads as a dependency of the recipe, so that BitBake parses the
recipe again when the file changes: image/'s layout data and the workspace are written once, in
the repository, and the layer follows them.
"""

import os
import re
import shlex

import bb.parse

from daisee import table


def path(d, relative):
    """The repository file RELATIVE, marked as a dependency of the recipe parsed."""
    full = os.path.join(d.getVar("DAISEE_TOP"), relative)
    bb.parse.mark_dependency(d, full)
    return full


def rows(d, relative):
    """The lines of RELATIVE that are neither blank nor comments, split into columns."""
    return table.rows(path(d, relative))


def layout(d, key):
    """The value of KEY in image/layout/layout.env."""
    found = table.value(path(d, "image/layout/layout.env"), key)
    if found is None:
        bb.fatal("image/layout/layout.env has no %s" % key)
    return found


def manifest(d, section, key):
    """The value of KEY in SECTION of image/layout/manifest.raucm.in, the bundles' manifest."""
    current = None
    for line in rows(d, "image/layout/manifest.raucm.in"):
        text = " ".join(line)
        if text.startswith("["):
            current = text.strip("[]")
        elif current == section and text.partition("=")[0] == key:
            return text.partition("=")[2]
    bb.fatal("image/layout/manifest.raucm.in has no %s in [%s]" % (key, section))


def version(d):
    """The workspace's version ([workspace.package] in Cargo.toml): the agent's, the OS's, the bundles'."""
    with open(path(d, "Cargo.toml")) as manifest_file:
        text = manifest_file.read()
    package = re.search(r"^\[workspace\.package\]$(.*?)^\[", text, re.M | re.S)
    found = package and re.search(r'^version\s*=\s*"([^"]+)"', package.group(1), re.M)
    if not found:
        bb.fatal("Cargo.toml has no version in [workspace.package]")
    return found.group(1)


def files_uri(d, route):
    """SRC_URI entries for the files image/layout/files installs on ROUTE's images."""
    sources = [row[0] for row in rows(d, "image/layout/files") if row[3] == route]
    return " ".join("file://%s;subdir=gateway" % source for source in sources)


def workspace_uri(d):
    """SRC_URI entries for the Cargo workspace: its manifest, lock file and member crates.

    A member with a DAISEE_CRATE_PARTS flag contributes those parts only (the ledger: its
    contracts/ holds npm's node_modules once the tests ran there).
    """
    with open(path(d, "Cargo.toml")) as manifest_file:
        members = re.search(r"^members\s*=\s*\[([^\]]*)\]", manifest_file.read(), re.M)
    if not members:
        bb.fatal("Cargo.toml has no workspace members")
    parts = ["Cargo.toml", "Cargo.lock"]
    for member in re.findall(r'"([^"]+)"', members.group(1)):
        listed = d.getVarFlag("DAISEE_CRATE_PARTS", member)
        parts += ["%s/%s" % (member, part) for part in listed.split()] if listed else [member]
    return " ".join("file://%s;subdir=gateway" % part for part in parts)


def sysusers(d):
    """agent/systemd/daisee.sysusers's lines as (type, name, id, comment, home, shell) tuples."""
    lines = []
    with open(path(d, "agent/systemd/daisee.sysusers")) as conf:
        for line in conf:
            if line.strip() and not line.lstrip().startswith("#"):
                fields = shlex.split(line)
                lines.append(tuple(fields + ["-"] * (6 - len(fields))))
    return lines


def useradd(d):
    """USERADD_PARAM for daisee.sysusers's users: their uid, primary group of the same id, comment,
    home, shell and the groups its `m` lines name."""
    lines = sysusers(d)
    params = []
    for kind, name, uid, comment, home, shell in lines:
        if kind != "u":
            continue
        groups = ",".join(line[2] for line in lines if line[0] == "m" and line[1] == name)
        params.append("--system --uid %s --gid %s --no-create-home --home-dir %s --shell %s "
                      "--comment '%s' --groups %s %s" % (uid, uid, home, shell, comment, groups, name))
    return "; ".join(params)


def groupadd(d):
    """GROUPADD_PARAM for daisee.sysusers's groups: each user's own, those with a fixed gid, and
    the device groups its `m` lines name (made when the image has none)."""
    lines = sysusers(d)
    fixed = [(line[1], line[2]) for line in lines if line[0] in ("u", "g")]
    named = [name for name, _ in fixed]
    members = [line[2] for line in lines if line[0] == "m" and line[2] not in named]
    return "; ".join(["--system --gid %s %s" % (gid, name) for name, gid in fixed]
                     + ["--system --force %s" % name for name in dict.fromkeys(members)])
