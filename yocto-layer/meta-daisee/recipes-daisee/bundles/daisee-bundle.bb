SUMMARY = "DAISEE gateway update bundle"
DESCRIPTION = "daisee-image's root slot, signed, for RAUC on gateways of this machine: its \
               compatible string names the machine and the Yocto route, so a gateway of \
               another board or one built by image/build refuses it."
HOMEPAGE = "https://github.com/daisee/gateway"
BUGTRACKER = "https://github.com/daisee/gateway/issues"
SECTION = "images"
LICENSE = "MIT"
# The bundle is made of daisee-image's output alone.
SRC_URI = ""

inherit bundle

RAUC_BUNDLE_COMPATIBLE = "${DAISEE_COMPATIBLE}"
RAUC_BUNDLE_VERSION = "${DISTRO_VERSION}"
RAUC_BUNDLE_DESCRIPTION = "${DISTRO_NAME} ${DISTRO_VERSION} for ${MACHINE}"
# As image/layout/manifest.raucm.in has them for image/build's bundles.
RAUC_BUNDLE_FORMAT = "${@daisee.tree.manifest(d, 'bundle', 'format')}"
RAUC_BUNDLE_SLOTS = "rootfs"
RAUC_SLOT_rootfs = "daisee-image"
RAUC_SLOT_rootfs[fstype] = "${DAISEE_ROOT_FSTYPE}"

RAUC_KEY_FILE = "${DAISEE_RAUC_KEY_DIR}/signing.key.pem"
RAUC_CERT_FILE = "${DAISEE_RAUC_KEY_DIR}/signing.cert.pem"
