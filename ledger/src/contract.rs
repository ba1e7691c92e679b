//! The contract's bindings, generated from the committed artifact (`contracts/DaiseeLedger.json`,
//! rebuilt by `npm run build` in `contracts/`), so that building the crate needs no Node.

#![allow(missing_docs, unreachable_pub, clippy::too_many_arguments)]

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    DaiseeLedger,
    "contracts/DaiseeLedger.json"
);
