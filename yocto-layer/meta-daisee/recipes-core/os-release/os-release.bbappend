# The version the agent's updater compares a feed's bundles with: the one the bundles carry
# (daisee-bundle's RAUC_BUNDLE_VERSION), in systemd's os-release fields, as image/build writes them.
IMAGE_ID:daisee = "daisee-gateway"
IMAGE_VERSION:daisee = "${DISTRO_VERSION}"
OS_RELEASE_FIELDS:append:daisee = " IMAGE_ID IMAGE_VERSION"
