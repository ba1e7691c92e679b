# What image/grub.cfg.in calls beyond oe-core's built-in modules: the slot's squashfs root, the
# EFI partition's disk, and the messages and reboot of a gateway with no good slot. GRUB has no
# module directory on the EFI partition, so they are built in.
GRUB_BUILDIN:append:daisee = " squash4 regexp echo sleep reboot"
