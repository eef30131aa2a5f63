#!/usr/bin/env bash
# Quick start, step 2 (and what CI runs): install what is missing, then lint and run every test:
# unit tests, parser tests over real ClientHello captures, and the end-to-end tests, which run as
# root with the real eBPF programs and real clients inside network namespaces they create.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The fuzz targets live outside the workspace (cargo-fuzz needs nightly to run them); make sure
# they still compile against the parsers' API.
cargo check --quiet --locked --manifest-path sniff/fuzz/Cargo.toml
# The end-to-end tests run the warden binary; build it first. The static (musl) build is what
# releases ship: tests/tests/release_static.rs checks it is static and runs.
cargo build --workspace --bins
CC_x86_64_unknown_linux_musl=musl-gcc cargo build -p proxy --bin warden --target x86_64-unknown-linux-musl
cargo test --workspace
