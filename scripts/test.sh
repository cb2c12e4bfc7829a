#!/usr/bin/env bash
# The test command README gives: formatting, lints as errors, every test.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test
