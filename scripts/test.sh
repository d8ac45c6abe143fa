#!/usr/bin/env bash
# The project's test command: installs what the tests need (the QNN libraries and
# the Debian packages they load), then runs the whole workspace's tests.
# Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup-qnn.sh

# Snapshots are reviewed by people (`cargo insta review`), never accepted by a test run.
export INSTA_UPDATE=no
cargo test --workspace "$@"
