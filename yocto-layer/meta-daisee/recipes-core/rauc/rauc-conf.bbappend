# RAUC on the gateway: image/layout/system.conf.in for this machine's compatible string, and the
# CA certificate of DAISEE_RAUC_KEY_DIR as the keyring beside it (system.conf names it relatively).
FILESEXTRAPATHS:prepend:daisee := "${DAISEE_RAUC_KEY_DIR}:${DAISEE_TOP}:"
SRC_URI:remove:daisee = "file://system.conf"
SRC_URI:append:daisee = " file://image/layout.sh;subdir=gateway file://image/layout;subdir=gateway"
RAUC_KEYRING_FILE:daisee = "ca.cert.pem"
# The compatible string names the machine.
PACKAGE_ARCH:daisee = "${MACHINE_ARCH}"

do_configure:daisee() {
    cd ${UNPACKDIR}/gateway
    bash -c '. image/layout.sh && render image/layout/system.conf.in COMPATIBLE="$1"' sh "${DAISEE_COMPATIBLE}" \
        > ${UNPACKDIR}/system.conf
}
