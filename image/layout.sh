# shellcheck shell=bash disable=SC2034 # the scripts that source it use what it defines
# What image/build and image/make-test-fixtures share, sourced from the repository's root with
# `work` set: image/layout read into shell variables, its templates filled in, bundles made.

# Prints FILE's lines that are neither blank nor comments: the rows of image/layout's tables.
rows() { # FILE
    grep -Ev '^[[:space:]]*(#|$)' "$1"
}

# COMPATIBLE, EFI_MOUNT, GRUBENV, TRIES, CONSOLE.
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

# Makes OUTPUT, a bundle (verity) of the slot image ROOT signed by KEY_DIR's signing key.
bundle() { # KEY_DIR ROOT OUTPUT
    rm -rf "${work:?}/bundle" "$3"
    mkdir -p "$work/bundle"
    ln "$2" "$work/bundle/rootfs.img"
    render image/layout/manifest.raucm.in VERSION="$(git describe --always --dirty 2>/dev/null || echo dev)" \
        > "$work/bundle/manifest.raucm"
    rauc bundle --cert "$1/signing.cert.pem" --key "$1/signing.key.pem" "$work/bundle" "$3" >/dev/null
}
