# /etc/fstab is image/'s: daisee-os installs it (the read-only root, /data, volatile /var).
CONFFILES:${PN}:remove:daisee = "${sysconfdir}/fstab"
do_install:append:daisee() {
    rm ${D}${sysconfdir}/fstab
}
