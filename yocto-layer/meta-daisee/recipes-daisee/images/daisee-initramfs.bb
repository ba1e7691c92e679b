SUMMARY = "DAISEE gateway initramfs"
DESCRIPTION = "Mounts the booted slot's read-only root by its partition name and prepares the \
               data partition (initramfs-module-daisee-data) before systemd starts."
HOMEPAGE = "https://github.com/daisee/gateway"
BUGTRACKER = "https://github.com/daisee/gateway/issues"
SECTION = "images"
LICENSE = "MIT"

PACKAGE_INSTALL = "${VIRTUAL-RUNTIME_base-utils} base-passwd initramfs-framework-base \
                   initramfs-module-daisee-data initramfs-module-rootfs initramfs-module-udev udev"
PACKAGE_EXCLUDE = "kernel-image-*"
IMAGE_FEATURES = ""
IMAGE_LINGUAS = ""
IMAGE_NAME_SUFFIX ?= ""
IMAGE_FSTYPES = "${INITRAMFS_FSTYPES}"

inherit core-image

IMAGE_ROOTFS_SIZE = "8192"
IMAGE_ROOTFS_EXTRA_SPACE = "0"
