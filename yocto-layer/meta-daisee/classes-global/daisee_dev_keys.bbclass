# Development RAUC keys for a build that brings none (the kas files inherit this class): made once
# in DAISEE_RAUC_KEY_DIR by image/layout.sh's dev_keys, as image/build makes its own. Bundles
# signed by them are for development and tests: for production, set DAISEE_RAUC_KEY_DIR to the
# directory of your CA certificate and signing key and do not inherit this class.
addhandler daisee_dev_keys
daisee_dev_keys[eventmask] = "bb.event.ConfigParsed"
daisee_dev_keys[doc] = "Makes development RAUC keys in DAISEE_RAUC_KEY_DIR unless it has a CA certificate"
python daisee_dev_keys() {
    import subprocess
    keys = e.data.getVar("DAISEE_RAUC_KEY_DIR")
    if os.path.exists(os.path.join(keys, "ca.cert.pem")):
        return
    bb.warn("meta-daisee: development RAUC keys made in %s; never ship bundles signed by them" % keys)
    subprocess.run(["bash", "-c", '. image/layout.sh && dev_keys "$1"', "sh", keys],
                   cwd=e.data.getVar("DAISEE_TOP"), check=True)
}
