//! Small shell-side helpers: the wall clock (read only here and in other
//! shells, never in pure cores) and process figures for health checks.

/// Seconds since the Unix epoch, the time unit of the registrar and auth cores.
#[allow(clippy::disallowed_methods)] // the shell's one wall-clock read
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Resident set size of this process in bytes (Linux `/proc/self/statm`).
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
