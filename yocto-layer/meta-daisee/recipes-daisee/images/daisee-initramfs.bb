SUMMARY = "DAISEE gateway initramfs"
DESCRIPTION = "Mounts the booted slot's read-only root by its partition name and prepares the \
data partition (initramfs-module-daisee-data) before systemd starts."
LICENSE = "MIT"

PACKAGE_INSTALL = "initramfs-framework-base initramfs-module-udev initramfs-module-rootfs \
                   initramfs-module-daisee-data ${VIRTUAL-RUNTIME_base-utils} udev base-passwd"
PACKAGE_EXCLUDE = "kernel-image-*"
IMAGE_FEATURES = ""
IMAGE_LINGUAS = ""
IMAGE_NAME_SUFFIX ?= ""
IMAGE_FSTYPES = "${INITRAMFS_FSTYPES}"

inherit core-image

IMAGE_ROOTFS_SIZE = "8192"
IMAGE_ROOTFS_EXTRA_SPACE = "0"
