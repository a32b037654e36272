#!/bin/sh
# The cost of each recording format (issue 16 item 3), optimised: runs
# benches/recording_formats.rs against the formats' code compiled alone in
# release mode (codec.rs and the recorder's kind/ogg/opus/encode files, with
# opus-pure, and its aligner with sample/media_time for the alaw path),
# instead of a release build of all of hotline. The harness is
# a tiny crate named `hotline` whose lib is just those files.
#
#   bench/recording_formats/run.sh [criterion args]   (e.g. -- --measurement-time 5)
set -eu
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${FORMATS_BENCH_DIR:-${TMPDIR:-/tmp}/hotline-formats-bench}
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
opus-pure = "=0.2.2"
rand = "0.9"
serde = { version = "1", features = ["derive"] }
thiserror = "2"
hound = "3.5"

[dev-dependencies]
criterion = { version = "0.7", default-features = false }

[profile.release]
debug = 1

[[bench]]
name = "recording_formats"
path = "$repo/benches/recording_formats.rs"
harness = false
TOML
cat > "$work/src/lib.rs" <<RS
//! benches/recording_formats.rs's view of hotline: only the formats.
pub mod media {
    #[path = "$repo/src/media/codec.rs"]
    pub mod codec;
    pub mod recorder {
        #[path = "$repo/src/media/recorder/kind.rs"]
        mod kind;
        #[path = "$repo/src/media/recorder/ogg.rs"]
        mod ogg;
        #[path = "$repo/src/media/recorder/opus.rs"]
        mod opus;
        #[path = "$repo/src/media/recorder/encode.rs"]
        mod encode;
        #[path = "$repo/src/media/recorder/media_time.rs"]
        mod media_time;
        #[path = "$repo/src/media/recorder/sample.rs"]
        mod sample;
        #[path = "$repo/src/media/recorder/aligner.rs"]
        mod aligner;
        pub use aligner::{Channel, ChannelAligner};
        pub use sample::{Chunk, Sample};
        pub use encode::FormatEncoder;
        pub use kind::RecordingFormat;
        pub const OPUS_BITRATE_BPS: i32 = opus::OPUS_BITRATE_BPS;
    }
}
RS
# Same versions as hotline's lock file.
cp "$repo/Cargo.lock" "$work/Cargo.lock"
cd "$work"
HOTLINE_REPO=$repo exec cargo bench --bench recording_formats "$@"
