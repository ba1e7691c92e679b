SUMMARY = "DAISEE gateway system files"
DESCRIPTION = "The units, D-Bus policies, users, udev rule, tmpfiles and mount table that run \
               the agent on a read-only root with its state on /data: image/layout/files's \
               lines of route all, the same files image/build installs."
SECTION = "base"

inherit daisee_tree allarch systemd useradd

SRC_URI += "${@daisee.tree.files_uri(d, 'all')} \
            file://image/layout.sh;subdir=gateway \
            file://image/layout;subdir=gateway \
            file://image/agent.toml;subdir=gateway \
            "

# The agent's user and groups as agent/systemd/daisee.sysusers gives them, fixed ids included:
# files on /data keep their owners across updates.
USERADD_PACKAGES = "${PN}"
GROUPADD_PARAM:${PN} = "${@daisee.tree.groupadd(d)}"
USERADD_PARAM:${PN} = "${@daisee.tree.useradd(d)}"

# daisee-reboot.service is started by its path unit, when the agent asks.
SYSTEMD_SERVICE:${PN} = "daisee-agent.service daisee-boot-health.service daisee-reboot.path"

do_install() {
    # image/build's own installer, for the lines every image takes.
    bash -c '. image/layout.sh && install_files "$1" all' sh ${D}
    # Mount points on the read-only root: daisee-data bind-mounts /data's network configuration
    # on /etc/systemd/network.
    install -d ${D}/data ${D}${@daisee.tree.layout(d, 'EFI_MOUNT')} ${D}${sysconfdir}/systemd/network
    # What a new disk's data partition holds (files/wic/daisee.wks.in): the first configuration,
    # with the owners and modes image/build gives it.
    install -d -m 2770 -o daisee -g daisee-admin ${D}/${DAISEE_NEW_DATA}/daisee
    install -m 0660 -o daisee -g daisee-admin image/agent.toml ${D}/${DAISEE_NEW_DATA}/daisee/agent.toml
}

FILES:${PN} += "/data ${datadir}/daisee ${datadir}/dbus-1 ${nonarch_libdir} ${@daisee.tree.layout(d, 'EFI_MOUNT')}"
# boot-health marks slots with rauc and reads GRUB's counters; 80-daisee-wired.network is
# systemd-networkd's.
RDEPENDS:${PN} = "grub-editenv rauc systemd-networkd"
