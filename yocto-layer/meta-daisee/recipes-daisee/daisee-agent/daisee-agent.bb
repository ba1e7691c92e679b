SUMMARY = "DAISEE gateway agent and its command line"
DESCRIPTION = "daisee-agent reads the gateway's sensors, meters and inverters, switches its \
               relays for demand response, negotiates with neighbouring gateways and records \
               energy flows; daiseectl configures and inspects it over D-Bus."
SECTION = "network"

inherit daisee_tree cargo

# The Cargo workspace this layer sits in (lib/daisee/tree.py), its crates from the lock file.
# The ledger's contracts/ holds npm's node_modules once the tests ran there: only what cargo reads.
DAISEE_CRATE_PARTS[ledger] = "Cargo.toml src tests benches contracts/DaiseeLedger.json"
SRC_URI += "${@daisee.tree.workspace_uri(d)}"
require daisee-agent-crates.inc

# The two binaries the gateway runs; the simulator, image tools and benches stay on the host.
CARGO_BUILD_FLAGS:append = " -p daisee-agent -p daiseectl"
# The workspace's release profile strips the binaries, the agent's own override too; oe-core
# strips them itself and keeps the debug symbols in the -dbg package.
export CARGO_PROFILE_RELEASE_STRIP = "false"
CARGO_BUILD_FLAGS:append = " --config profile.release.package.daisee-agent.strip=false"

# The units, policy and users that run it come from daisee-os, which image/layout/files feeds.
RDEPENDS:${PN} = "daisee-os"
