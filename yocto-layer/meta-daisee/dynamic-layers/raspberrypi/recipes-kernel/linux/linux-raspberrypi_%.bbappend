# The gateway's kernel configuration, shared with linux-yocto's append, and the Pi's own.
FILESEXTRAPATHS:prepend:daisee := "${THISDIR}/files:${DAISEE_LAYERDIR}/recipes-kernel/linux/files:"
SRC_URI:append:daisee = " file://daisee.cfg file://daisee-rpi.cfg"
