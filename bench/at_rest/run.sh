#!/bin/sh
# The cost of encrypting recordings at rest (issue 14 §6), optimised:
# runs benches/at_rest.rs against src/media/at_rest/ compiled alone in
# release mode (a few small crates, a minute to build), instead of a
# release build of all of hotline. The module needs nothing of the crate
# but its own dependencies, so the harness is a tiny crate named `hotline`
# whose lib is just that module.
#
#   bench/at_rest/run.sh [criterion args]   (e.g. -- --measurement-time 10)
set -eu
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${AT_REST_BENCH_DIR:-${TMPDIR:-/tmp}/hotline-at-rest-bench}
mkdir -p "$work/src"
cat > "$work/Cargo.toml" <<TOML
[package]
name = "hotline"
version = "0.0.0"
edition = "2021"
publish = false

[lib]
path = "src/lib.rs"

[dependencies]
aes-gcm = { version = "=0.10.3", default-features = false, features = ["aes", "alloc", "stream", "zeroize"] }
zeroize = "1"
hmac = "0.12"
sha2 = "0.10"
hex = "0.4"
rand = "0.9"
subtle = "2.6"
thiserror = "2"
tracing = "0.1"

[dev-dependencies]
criterion = { version = "0.7", default-features = false }

[profile.release]
debug = 1

[[bench]]
name = "at_rest"
path = "$repo/benches/at_rest.rs"
harness = false
TOML
cat > "$work/src/lib.rs" <<RS
//! benches/at_rest.rs's view of hotline: only the at-rest module.
pub mod media {
    #[path = "$repo/src/media/at_rest/mod.rs"]
    pub mod at_rest;
}
RS
# Same versions as hotline's lock file.
cp "$repo/Cargo.lock" "$work/Cargo.lock"
cd "$work"
exec cargo bench --bench at_rest "$@"
