# For recipes that take files from the gateway's repository: `file://image/...` and
# `file://agent/...` name that tree's files (the same files image/build uses, not copies), and
# unpack with `;subdir=gateway` into S, where image/layout.sh finds them.
FILESEXTRAPATHS:prepend = "${DAISEE_TOP}:"
S = "${UNPACKDIR}/gateway"
# The repository's version, the workspace's (Cargo.toml).
PV = "${@daisee.tree.version(d)}"
