// Compiles DaiseeLedger.sol with the pinned solc and OpenZeppelin into DaiseeLedger.json (its ABI
// and creation bytecode), the artifact the Rust crate's bindings are generated from. Run by
// `npm run build`; a test compares its output with the committed file.
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const source = "DaiseeLedger.sol";
const input = {
  language: "Solidity",
  sources: { [source]: { content: fs.readFileSync(path.join(__dirname, source), "utf8") } },
  settings: {
    // Cancun: the newest fork that every EVM chain a community might use has had for long.
    evmVersion: "cancun",
    optimizer: { enabled: true, runs: 1000 },
    // No metadata hash: the bytecode depends on the sources and settings only.
    metadata: { bytecodeHash: "none" },
    outputSelection: { [source]: { DaiseeLedger: ["abi", "evm.bytecode.object"] } },
  },
};

function findImports(name) {
  const file = path.join(__dirname, "node_modules", name);
  return fs.existsSync(file) ? { contents: fs.readFileSync(file, "utf8") } : { error: `not found: ${name}` };
}

const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
// Warnings fail the build too: the contract compiles clean.
const errors = output.errors || [];
for (const e of output.errors || []) process.stderr.write(e.formattedMessage);
if (errors.length > 0) process.exit(1);
const contract = output.contracts[source].DaiseeLedger;
const artifact = { compiler: solc.version(), abi: contract.abi, bytecode: "0x" + contract.evm.bytecode.object };
const out = process.argv[2] || path.join(__dirname, "DaiseeLedger.json");
fs.writeFileSync(out, JSON.stringify(artifact, null, 1) + "\n");
