# The gateway's kernel configuration, shared with linux-yocto's append.
FILESEXTRAPATHS:prepend:daisee := "${DAISEE_LAYERDIR}/recipes-kernel/linux/files:"
SRC_URI:append:daisee = " file://daisee.cfg"
