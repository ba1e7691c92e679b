# For recipes that take files from the gateway's repository: `file://image/...` and
# `file://agent/...` name that tree's files (the same files image/build uses, not copies), and
# unpack with `;subdir=gateway` into S, where image/layout.sh finds them. Their licence is the
# repository's.
HOMEPAGE = "https://github.com/daisee/gateway"
BUGTRACKER = "https://github.com/daisee/gateway/issues"
LICENSE = "Apache-2.0"
LIC_FILES_CHKSUM = "file://LICENSE;md5=3b83ef96387f14655fc854ddc3c6bd57"

PV = "${@daisee.tree.version(d)}"
# nooelint: oelint.vars.fileextrapaths, oelint.vars.outofcontext - the recipes' files are the repository's, not the layer's
FILESEXTRAPATHS:prepend := "${DAISEE_TOP}:"
SRC_URI = "file://LICENSE;subdir=gateway"
S = "${UNPACKDIR}/gateway"
