SUMMARY = "initramfs-framework module: the DAISEE gateway's data partition"
DESCRIPTION = "Runs image/'s daisee-data, the Debian image's initramfs-tools script, on the \
               mounted root: grows the data partition, repairs and mounts it on /data, and \
               bind-mounts the gateway's machine-id, hostname and network configuration."
SECTION = "base"

inherit daisee_tree allarch

SRC_URI += "file://image/rootfs/etc/initramfs-tools/scripts/local-bottom/daisee-data;subdir=gateway \
            file://daisee \
            file://functions \
            "

do_install() {
    # After 90-rootfs mounts the slot, before 99-finish switches to it.
    install -D -m 0755 ${UNPACKDIR}/daisee ${D}/init.d/95-daisee
    install -D -m 0644 ${UNPACKDIR}/functions ${D}/scripts/functions
    install -D -m 0755 image/rootfs/etc/initramfs-tools/scripts/local-bottom/daisee-data \
        ${D}${datadir}/daisee/daisee-data
}

FILES:${PN} += "/init.d/95-daisee /scripts/functions ${datadir}/daisee"
RDEPENDS:${PN} = "e2fsprogs-e2fsck initramfs-framework-base initramfs-module-rootfs util-linux-blkid \
                  util-linux-mount util-linux-partx util-linux-sfdisk"
