SUMMARY = "DAISEE gateway OS image"
DESCRIPTION = "The agent on a read-only root in RAUC's A/B slots, booted by GRUB EFI with \
               image/'s boot counters, its state on /data: the disk image/layout/partitions \
               describes, as files/wic/daisee.wks.in gives it to wic."
HOMEPAGE = "https://github.com/daisee/gateway"
BUGTRACKER = "https://github.com/daisee/gateway/issues"
SECTION = "images"
LICENSE = "MIT"

inherit core-image
# nooelint: oelint.file.requirenotfound - oe-core's, not this layer's
require conf/image-uefi.conf

IMAGE_FEATURES += "read-only-rootfs"
IMAGE_INSTALL = "${CORE_IMAGE_EXTRA_INSTALL} daisee-agent daisee-os grub-editenv kernel-image \
                 packagegroup-core-boot rauc"
IMAGE_LINGUAS = ""
# boot-health marks a slot good once its agent is ready; meta-rauc's unit would mark every boot
# good, and GRUB's tries would never run out.
BAD_RECOMMENDATIONS += "rauc-mark-good"

# The slot's root (the bundle's image too), and the disk to flash with bmaptool.
IMAGE_FSTYPES = "${DAISEE_ROOT_FSTYPE} wic.zst wic.bmap"
WKS_FILE = "daisee.wks.in"
# Slot A holds the very root file system the bundles carry.
# nooelint: oelint.vars.specific - wic is an image type, not a package
IMAGE_TYPEDEP:wic = "${DAISEE_ROOT_FSTYPE}"
# /etc/fstab is image/'s (daisee-os): wic leaves it alone.
WIC_CREATE_EXTRA_ARGS += "--no-fstab-update"

# The EFI partition: GRUB as the firmware's fallback loader, image/'s grub.cfg and the counters
# where grub.cfg, RAUC and boot-health look for them. On the Pi the firmware, device trees and
# U-Boot (the machine's IMAGE_BOOT_FILES) are there too.
DAISEE_EFI_DIR = "${@d.getVar('EFIDIR').lstrip('/')}"
IMAGE_BOOT_FILES:append = " \
    grub-efi-${EFI_BOOT_IMAGE};${DAISEE_EFI_DIR}/${EFI_BOOT_IMAGE} \
    daisee-grub.cfg;${DAISEE_EFI_DIR}/grub.cfg \
    daisee-grubenv;${@daisee.tree.layout(d, 'GRUBENV')} \
"
do_image_wic[depends] += "daisee-boot:do_deploy grub-efi:do_deploy"

# GRUB boots a slot's /boot/vmlinuz and /boot/initrd.img (image/grub.cfg.in): the kernel package's
# image, and the initramfs that prepares /data.
do_rootfs[depends] += "daisee-initramfs:do_image_complete"
ROOTFS_POSTPROCESS_COMMAND += "daisee_slot_boot_files"
daisee_slot_boot_files() {
    kernel=$(find ${IMAGE_ROOTFS}/boot -maxdepth 1 -name '${KERNEL_IMAGETYPE}-*' ! -type l | head -n 1)
    if [ -z "$kernel" ]; then
        bbfatal "no ${KERNEL_IMAGETYPE} in the root's /boot"
    fi
    mv "$kernel" ${IMAGE_ROOTFS}/boot/vmlinuz
    find ${IMAGE_ROOTFS}/boot -maxdepth 1 -name '${KERNEL_IMAGETYPE}*' -type l -delete
    install -m 0644 ${DEPLOY_DIR_IMAGE}/daisee-initramfs-${MACHINE}.${INITRAMFS_FSTYPES} ${IMAGE_ROOTFS}/boot/initrd.img
}
daisee_slot_boot_files[doc] = "Puts the kernel and the initramfs where image/grub.cfg.in boots them"
