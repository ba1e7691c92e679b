# /etc/fstab is image/'s: daisee-os installs it (the read-only root, /data, volatile /var).
do_install:append:daisee() {
    rm ${D}${sysconfdir}/fstab
}
