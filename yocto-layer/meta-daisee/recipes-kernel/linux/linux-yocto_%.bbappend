# The gateway's kernel configuration (files/daisee.cfg).
FILESEXTRAPATHS:prepend:daisee := "${THISDIR}/files:"
SRC_URI:append:daisee = " file://daisee.cfg"
