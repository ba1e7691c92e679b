# RAUC on the gateway: image/layout/system.conf.in for this machine's compatible string, and the
# CA certificate of DAISEE_RAUC_KEY_DIR as the keyring beside it (system.conf names it relatively).
inherit daisee-tree

FILESEXTRAPATHS:prepend := "${DAISEE_RAUC_KEY_DIR}:"
RAUC_KEYRING_FILE = "ca.cert.pem"
SRC_URI:remove = "file://system.conf"
SRC_URI:append = " file://image/layout.sh;subdir=gateway file://image/layout;subdir=gateway"
S = "${UNPACKDIR}"

do_configure() {
	cd ${UNPACKDIR}/gateway
	bash -c '. image/layout.sh && render image/layout/system.conf.in COMPATIBLE="$1"' sh "${DAISEE_COMPATIBLE}" \
		> ${UNPACKDIR}/system.conf
}
do_configure[vardeps] += "DAISEE_COMPATIBLE"
