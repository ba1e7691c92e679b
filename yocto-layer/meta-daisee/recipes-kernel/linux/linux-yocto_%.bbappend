# The gateway's kernel configuration (files/daisee.cfg).
FILESEXTRAPATHS:prepend := "${THISDIR}/files:"
SRC_URI:append = " file://daisee.cfg"
