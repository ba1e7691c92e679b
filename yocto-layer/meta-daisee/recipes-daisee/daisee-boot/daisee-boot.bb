SUMMARY = "DAISEE gateway A/B boot configuration for GRUB"
DESCRIPTION = "image/grub.cfg.in filled in for this machine (GRUB EFI reads it from the EFI \
               partition and picks the root slot by its counters), and the first grubenv with \
               the counters image/layout/grubenv gives a new disk."
SECTION = "bootloaders"

# Text files only: no compiler.
INHIBIT_DEFAULT_DEPS = "1"

inherit daisee_tree deploy nopackages

SRC_URI += "file://image/layout.sh;subdir=gateway \
            file://image/layout;subdir=gateway \
            file://image/grub.cfg.in;subdir=gateway \
            "
# The console is the machine's.
PACKAGE_ARCH = "${MACHINE_ARCH}"

do_compile() {
    # image/build's renderer, with this machine's console.
    bash -c '. image/layout.sh && render image/grub.cfg.in CONSOLE="$1"' sh "${DAISEE_CONSOLE}" > ${B}/grub.cfg
    # GRUB's environment block: a header, the variables, '#' up to 1024 bytes (what
    # grub-editenv writes; image/build runs it, here it is not built for the host).
    {
        echo "# GRUB Environment Block"
        bash -c '. image/layout.sh && rows image/layout/grubenv'
    } > ${B}/grubenv.head
    padding=$(expr 1024 - $(stat -c %s ${B}/grubenv.head))
    if [ "$padding" -lt 0 ]; then
        bbfatal "image/layout/grubenv does not fit GRUB's 1024-byte environment block"
    fi
    cp ${B}/grubenv.head ${B}/grubenv
    head -c "$padding" /dev/zero | tr '\0' '#' >> ${B}/grubenv
}

do_deploy() {
    install -m 0644 ${B}/grub.cfg ${DEPLOYDIR}/daisee-grub.cfg
    install -m 0644 ${B}/grubenv ${DEPLOYDIR}/daisee-grubenv
}
addtask deploy after do_compile before do_build
