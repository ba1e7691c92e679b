# The gateway's kernel configuration, shared with linux-yocto's append.
FILESEXTRAPATHS:prepend := "${DAISEE_LAYERDIR}/recipes-kernel/linux/files:"
SRC_URI:append = " file://daisee.cfg"
