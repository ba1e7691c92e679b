# The version the agent's updater compares a feed's bundles with: the one the bundles carry
# (daisee-bundle's RAUC_BUNDLE_VERSION), in systemd's os-release fields, as image/build writes them.
IMAGE_ID = "daisee-gateway"
IMAGE_VERSION = "${DISTRO_VERSION}"
OS_RELEASE_FIELDS:append = " IMAGE_ID IMAGE_VERSION"
