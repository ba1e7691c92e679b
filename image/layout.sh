# shellcheck shell=bash disable=SC2034 # the scripts that source it use what it defines
# What image/build and image/make-test-fixtures share, sourced from the repository's root with
# `work` set: image/layout read into shell variables, its templates filled in, bundles made.

# Prints FILE's lines that are neither blank nor comments: the rows of image/layout's tables.
rows() { # FILE
    grep -Ev '^[[:space:]]*(#|$)' "$1"
}

# EFI_MOUNT, GRUBENV, TRIES.
# shellcheck source=SCRIPTDIR/layout/layout.env
. image/layout/layout.env

# What a template's @KEY@ may name: layout.env's keys, and facts drawn from the partitions.
declare -A fill
while IFS='=' read -r key _; do
    fill[$key]=${!key}
done < <(grep -E '^[A-Z][A-Z0-9_]*=' image/layout/layout.env)
fill[TRY_NUMBERS]=$(seq -s ' ' 1 "$TRIES")

# The partitions by role (efi, A, B, data), numbered from 1 in the table's order.
declare -A part_number part_name part_type part_mib part_fs part_label
roles=()
while read -r name type mib fs label role; do
    roles+=("$role")
    part_number[$role]=${#roles[@]}
    part_name[$role]=$name
    part_type[$role]=$type
    part_mib[$role]=$mib
    part_fs[$role]=$fs
    part_label[$role]=$label
done < <(rows image/layout/partitions)
for role in A B; do
    fill[${role}_PART]=${part_number[$role]}
    fill[${role}_LABEL]=${part_name[$role]}
done

# The Debian release the images are made of, and the build root (image/build-root) too: its
# compilers and kernel tools must match the images' C library and kernel.
RELEASE=trixie

# Reads `[--arch ARCH] [OUT]`, the arguments of image/build and image/make-test-fixtures, into
# `arch` (default amd64) and `out` (default ~/.cache/daisee/image/ARCH), and ARCH's machine.
arguments() { # [--arch ARCH] [OUT]
    arch=amd64
    if [ "${1:-}" = --arch ]; then
        arch=$2
        shift 2
    fi
    out=${1:-${HOME:-/root}/.cache/daisee/image/$arch}
    machine "$arch"
}

# Reads ARCH's row of image/layout/machines into ARCH, RUST_TARGET, GRUB_PLATFORM, EFI_BINARY,
# BCJ and BOARD (`-` for none), and its compatible string and console into the templates' keys.
machine() { # ARCH
    local compatible console
    read -r ARCH RUST_TARGET compatible GRUB_PLATFORM EFI_BINARY BCJ console BOARD < <(rows image/layout/machines | awk -v arch="$1" '$1 == arch') || true
    if [ "${ARCH:-}" != "$1" ]; then
        echo "image/layout/machines has no machine $1" >&2
        return 1
    fi
    fill[COMPATIBLE]=$compatible
    fill[CONSOLE]=${console#-}
}

# Lets this host run the programs of `machine`'s architecture, as mmdebstrap's maintainer scripts
# and the build root's kernel tools for it must: qemu-user, registered with binfmt_misc to work in
# chroots too (and arch-test, with which mmdebstrap checks that it does).
emulate() {
    local cpu=${RUST_TARGET%%-*}
    [ "$ARCH" != "$(dpkg --print-architecture)" ] || return 0
    if [ ! -f "/usr/lib/binfmt.d/qemu-$cpu.conf" ] || ! command -v arch-test >/dev/null; then
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends qemu-user-static arch-test
    fi
    mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    [ -e "/proc/sys/fs/binfmt_misc/qemu-$cpu" ] || cat "/usr/lib/binfmt.d/qemu-$cpu.conf" > /proc/sys/fs/binfmt_misc/register
}

# Prints TEMPLATE with each @KEY@ filled in from `fill` or the KEY=VALUE arguments. A key nobody
# knows stops the build rather than leave a placeholder in a configuration.
render() { # TEMPLATE [KEY=VALUE]...
    local template=$1 text key arg
    local -A values=()
    shift
    for key in "${!fill[@]}"; do values[$key]=${fill[$key]}; done
    for arg; do values[${arg%%=*}]=${arg#*=}; done
    text=$(<"$template")
    for key in "${!values[@]}"; do text=${text//"@$key@"/"${values[$key]}"}; done
    if [[ $text =~ @[A-Z][A-Z0-9_]*@ ]]; then
        echo "$template: ${BASH_REMATCH[0]} is no key of image/layout" >&2
        return 1
    fi
    printf '%s\n' "$text"
}

# Installs into ROOT the files image/layout/files lists for the ROUTEs (all, debian).
install_files() { # ROOT ROUTE...
    local root=$1 source destination mode route
    shift
    while read -r source destination mode route; do
        [[ " $* " == *" $route "* ]] || continue
        install -D -m "$mode" "$source" "$root$destination"
    done < <(rows image/layout/files)
}

# Makes DIR's development CA (ca.cert.pem, ca.key.pem) and bundle signing key (signing.cert.pem,
# signing.key.pem) unless it has them: keys for development and the tests, never for production.
dev_keys() { # DIR
    local keys=$1
    [ -f "$keys/ca.cert.pem" ] && return
    mkdir -p "$keys"
    openssl req -x509 -newkey rsa:3072 -nodes -days 3650 -subj "/O=DAISEE development/CN=DAISEE development CA" \
        -keyout "$keys/ca.key.pem" -out "$keys/ca.cert.pem" -addext "basicConstraints=critical,CA:true" \
        -addext "keyUsage=critical,keyCertSign" 2>/dev/null
    openssl req -newkey rsa:3072 -nodes -subj "/O=DAISEE development/CN=DAISEE development bundles" \
        -keyout "$keys/signing.key.pem" -out "$keys/signing.csr.pem" 2>/dev/null
    openssl x509 -req -in "$keys/signing.csr.pem" -CA "$keys/ca.cert.pem" -CAkey "$keys/ca.key.pem" \
        -CAcreateserial -days 3650 -out "$keys/signing.cert.pem" 2>/dev/null
}

# The image's version, which its os-release (IMAGE_VERSION) and its bundles carry and the
# agent's updater orders: the workspace's version, the count of commits, then after `+` the
# commit (which the order ignores), e.g. 0.1.0.812+gbda8812.
image_version() {
    local base count commit
    base=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
    count=$(git rev-list --count HEAD 2>/dev/null || echo 0)
    commit=$(git describe --always --dirty 2>/dev/null || echo unknown)
    echo "$base.$count+g$commit"
}

# Makes OUTPUT, a bundle (verity) of the slot image ROOT signed by KEY_DIR's signing key; its
# manifest's keys as `render` fills them, or as the KEY=VALUE arguments say.
bundle() { # KEY_DIR ROOT OUTPUT [KEY=VALUE]...
    local keys=$1 root=$2 output=$3
    shift 3
    rm -rf "${work:?}/bundle" "$output"
    mkdir -p "$work/bundle"
    ln "$root" "$work/bundle/rootfs.img"
    render image/layout/manifest.raucm.in VERSION="$(image_version)" "$@" \
        > "$work/bundle/manifest.raucm"
    rauc bundle --cert "$keys/signing.cert.pem" --key "$keys/signing.key.pem" "$work/bundle" "$output" >/dev/null
}
