//! The Debian package and its systemd unit (issue 15 §4, docs/deploy.md):
//! the paths in `Cargo.toml`'s `[package.metadata.deb]`, in
//! `deploy/systemd/hotline.service` and in the packaged configuration
//! `deploy/debian/hotline.toml` must agree, and that configuration must
//! pass `hotline check` with the files laid out as the package lays them
//! out (prompts, flows, calendars, areas). When cargo-deb is installed the
//! package itself is built from the test's binary and unpacked, and its own
//! binary checks its own configuration; when `systemd-analyze` is there it
//! verifies the unit. No network, no root, nothing installed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const UNIT: &str = "deploy/systemd/hotline.service";
const PACKAGED_CONFIG: &str = "deploy/debian/hotline.toml";
/// Where the package puts things, as the unit and the configuration name them.
const BINARY: &str = "/usr/bin/hotline";
const CONFIG: &str = "/etc/hotline/hotline.toml";
const ETC: &str = "/etc/hotline";
const SHARE: &str = "/usr/share/hotline";
const STATE: &str = "/var/lib/hotline";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// `[package.metadata.deb]` of Cargo.toml.
fn deb_metadata() -> toml::Table {
    let manifest: toml::Table = read("Cargo.toml").parse().expect("Cargo.toml");
    manifest["package"]["metadata"]["deb"]
        .as_table()
        .expect("[package.metadata.deb]")
        .clone()
}

/// The deb's assets: (source, destination, mode), destinations absolute.
fn assets() -> Vec<(String, String, String)> {
    deb_metadata()["assets"]
        .as_array()
        .expect("assets")
        .iter()
        .map(|a| {
            let a = a.as_array().expect("asset [source, dest, mode]");
            let s = |i: usize| a[i].as_str().expect("string").to_string();
            (s(0), format!("/{}", s(1)), s(2))
        })
        .collect()
}

/// The asset whose source is `source`: its absolute destination.
fn dest_of(source: &str) -> String {
    assets()
        .into_iter()
        .find(|(s, _, _)| s == source)
        .unwrap_or_else(|| panic!("no deb asset {source}"))
        .1
}

/// The files one asset installs: (file in the repository, absolute path in
/// the package). Globs are `dir/*` or `dir/*.ext`, as cargo-deb reads them.
fn expand(source: &str, dest: &str) -> Vec<(PathBuf, String)> {
    let Some((dir, pattern)) = source.rsplit_once('/').filter(|(_, p)| p.contains('*')) else {
        let target = if dest.ends_with('/') {
            format!(
                "{dest}{}",
                Path::new(source).file_name().unwrap().to_string_lossy()
            )
        } else {
            dest.to_string()
        };
        return vec![(repo().join(source), target)];
    };
    let suffix = pattern.trim_start_matches('*');
    assert!(dest.ends_with('/'), "{source}: a glob goes to a directory");
    let mut files: Vec<(PathBuf, String)> = std::fs::read_dir(repo().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file() && p.to_string_lossy().ends_with(suffix))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (p, format!("{dest}{name}"))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{source} matches no file");
    files
}

/// `Key=value` lines of the unit's sections (a key may repeat).
fn unit() -> BTreeMap<String, Vec<String>> {
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in read(UNIT).lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('[') {
            continue;
        }
        let (k, v) = line.split_once('=').expect("Key=value");
        keys.entry(k.to_string()).or_default().push(v.to_string());
    }
    keys
}

fn one(unit: &BTreeMap<String, Vec<String>>, key: &str) -> String {
    match unit.get(key).map(Vec::as_slice) {
        Some([v]) => v.clone(),
        other => panic!("{UNIT}: {key} once, found {other:?}"),
    }
}

/// The packaged configuration, parsed.
fn packaged_config() -> toml::Table {
    read(PACKAGED_CONFIG)
        .parse()
        .expect("packaged config is TOML")
}

/// `text` with the package's absolute directories moved under `root`.
fn rooted(text: &str, root: &Path) -> String {
    [ETC, SHARE, STATE].iter().fold(text.to_string(), |t, dir| {
        t.replace(dir, &format!("{}{dir}", root.display()))
    })
}

/// Run `binary check` on `root`'s etc/hotline/hotline.toml with the
/// package's directories moved under `root`, as the service would read it.
fn check_under(binary: &Path, root: &Path) {
    let config = root.join(CONFIG.trim_start_matches('/'));
    let text = std::fs::read_to_string(&config).expect("installed config");
    let moved = root.join("hotline-check.toml");
    std::fs::write(&moved, rooted(&text, root)).expect("write");
    std::fs::create_dir_all(root.join(STATE.trim_start_matches('/'))).expect("state dir");
    let out = Command::new(binary)
        .arg("check")
        .arg(&moved)
        .output()
        .expect("hotline check");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success() && stdout.trim_end().ends_with(": ok"),
        "hotline check refused the packaged configuration:\n{stdout}{stderr}"
    );
}

#[test]
fn packaged_config_passes_check_where_the_package_puts_its_files() {
    // Every directory the configuration names is one the package fills or
    // the unit makes writable: nothing relative to a working directory.
    let config = packaged_config();
    let path = |section: &str, key: &str| {
        config[section][key]
            .as_str()
            .unwrap_or_else(|| panic!("[{section}] {key}"))
            .to_string()
    };
    assert_eq!(path("data", "dir"), STATE);
    assert_eq!(path("media", "sounds_dir"), format!("{SHARE}/sounds"));
    assert_eq!(path("ivr", "flows_dir"), format!("{ETC}/ivr-flows"));
    assert_eq!(path("ivr", "calendars_dir"), ETC);
    assert_eq!(path("ivr", "areas"), format!("{ETC}/areas.csv"));
    let text = read(PACKAGED_CONFIG);
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        assert!(
            !line.contains("\"./"),
            "relative path in {PACKAGED_CONFIG}: {line}"
        );
    }
    // No demo credentials in what a site installs.
    for key in ["agent", "user", "blacklist"] {
        assert!(!config.contains_key(key), "[[{key}]] in {PACKAGED_CONFIG}");
    }
    assert!(
        !text.contains("password ="),
        "a password in {PACKAGED_CONFIG}"
    );

    // Lay the package's files out under a temporary root, as its assets
    // say, and check the configuration there with the real binary.
    let root = tempfile::tempdir().expect("tempdir");
    for (source, dest, _) in assets() {
        if source.starts_with("target/") {
            continue;
        }
        for (file, target) in expand(&source, &dest) {
            let to = root.path().join(target.trim_start_matches('/'));
            std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
            std::fs::copy(&file, &to).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        }
    }
    check_under(Path::new(env!("CARGO_BIN_EXE_hotline")), root.path());
}

#[test]
fn unit_agrees_with_the_package_and_the_configuration() {
    let unit = unit();
    let config = packaged_config();

    // The unit runs the packaged binary on the packaged configuration.
    assert_eq!(dest_of("target/release/hotline"), "/usr/bin/");
    assert_eq!(dest_of(PACKAGED_CONFIG), CONFIG);
    assert_eq!(
        one(&unit, "ExecStart"),
        format!("{BINARY} serve --config {CONFIG}")
    );
    // hotline has no sd_notify (Type=notify would time out at every start);
    // SIGHUP reloads it.
    assert_eq!(one(&unit, "Type"), "exec");
    assert_eq!(one(&unit, "ExecReload"), "/bin/kill -HUP $MAINPID");
    assert!(
        read("src/switch/signal.rs").contains("SignalKind::hangup()"),
        "SIGHUP is what reloads"
    );

    // Its state directory is [data] dir, and writable under ProtectSystem.
    assert_eq!(one(&unit, "ProtectSystem"), "strict");
    assert_eq!(one(&unit, "StateDirectory"), "hotline");
    assert_eq!(config["data"]["dir"].as_str(), Some(STATE));
    assert_eq!(one(&unit, "ReadWritePaths"), STATE);
    assert_eq!(one(&unit, "WorkingDirectory"), STATE);

    // It runs as the user postinst creates, who owns the data.
    assert_eq!(one(&unit, "User"), "hotline");
    let postinst = read("deploy/debian/postinst");
    assert!(postinst.contains("adduser --system --group"), "{postinst}");
    assert!(postinst.contains("/var/lib/hotline"), "{postinst}");
    assert!(
        postinst.contains("#DEBHELPER#"),
        "systemd snippets go in postinst"
    );
    // Recordings are kept for years: not even a purge deletes them.
    let postrm = read("deploy/debian/postrm");
    assert!(postrm.contains("\"purge\""), "postrm says what purge keeps");
    assert!(
        !postrm.contains("rm -rf /var/lib/hotline") && !postrm.contains("rm -r "),
        "no package command deletes the data:\n{postrm}"
    );

    // SIGTERM drains; the stop timeout outlasts the grace period.
    assert_eq!(one(&unit, "KillSignal"), "SIGTERM");
    let grace = config["calls"]["shutdown_grace_secs"]
        .as_integer()
        .expect("[calls] shutdown_grace_secs");
    let stop: i64 = one(&unit, "TimeoutStopSec").parse().expect("seconds");
    assert!(
        stop >= grace + 30,
        "TimeoutStopSec {stop} must outlast shutdown_grace_secs {grace} (+30 s to flush)"
    );
    // A configuration error (exit 2) is not retried in a loop.
    assert_eq!(one(&unit, "RestartPreventExitStatus"), "2");

    // The SIP and HTTP ports are unprivileged: no capability is granted.
    for key in ["sip", "http"] {
        let listen = config[key]["listen"].as_str().expect("listen");
        let port: u16 = listen.rsplit(':').next().unwrap().parse().expect("port");
        assert!(
            port >= 1024,
            "[{key}] listen {listen} needs CAP_NET_BIND_SERVICE"
        );
    }
    assert_eq!(one(&unit, "AmbientCapabilities"), "");

    // cargo-deb installs this very unit file.
    let units = deb_metadata()["systemd-units"]["unit-scripts"]
        .as_str()
        .expect("systemd-units.unit-scripts")
        .to_string();
    assert_eq!(Path::new(&units).join("hotline.service"), Path::new(UNIT));

    // systemd itself accepts it (with the binary it names made to exist).
    if !tool_runs("systemd-analyze", &["--version"]) {
        println!("skipped: systemd-analyze verify (systemd-analyze not installed)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("hotline.service");
    std::fs::write(
        &copy,
        read(UNIT).replace(BINARY, env!("CARGO_BIN_EXE_hotline")),
    )
    .expect("write");
    verify_unit(&copy);
}

fn tool_runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn verify_unit(unit: &Path) {
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(unit)
        .current_dir(unit.parent().expect("dir"))
        .output()
        .expect("systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify {}:\n{stderr}",
        unit.display()
    );
}

#[test]
fn debian_package_installs_files_where_the_unit_and_configuration_expect() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    if !tool_runs(&cargo, &["deb", "--version"]) {
        println!("skipped: cargo-deb not installed (cargo install cargo-deb --locked)");
        return;
    }
    if !tool_runs("dpkg-deb", &["--version"]) {
        println!("skipped: dpkg-deb not installed");
        return;
    }
    // The package of the binary this test was built with. cargo-deb takes
    // `<target>/release/hotline` (`--no-build`: as built); its dev profile
    // is deprecated, so the debug binary is linked into a target directory
    // of its own as a release one.
    // Beside the binary (same file system: hard-linked, not copied).
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let target_dir = work.path().join("target");
    std::fs::create_dir_all(target_dir.join("release")).expect("mkdir");
    let binary = Path::new(env!("CARGO_BIN_EXE_hotline"));
    let staged = target_dir.join("release/hotline");
    if std::fs::hard_link(binary, &staged).is_err() {
        std::fs::copy(binary, &staged).expect("copy the binary");
    }
    let out = Command::new(&cargo)
        .current_dir(repo())
        .env("CARGO_TARGET_DIR", &target_dir)
        .args([
            "deb",
            "--no-build",
            "--offline",
            "--locked",
            "--strip",
            "--fast",
        ])
        .args(["--deb-version", "0.0.0-test", "-o"])
        .arg(work.path())
        .output()
        .expect("cargo deb");
    assert!(
        out.status.success(),
        "cargo deb:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let deb = std::fs::read_dir(work.path())
        .expect("output")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .expect("a .deb");

    // What it holds: every asset where Cargo.toml says, the unit where
    // systemd looks.
    let listing = dpkg_deb(&["-c"], &deb);
    let files: Vec<String> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(|p| p.trim_start_matches('.').to_string())
        .collect();
    let mut expected = vec![
        BINARY.to_string(),
        "/usr/lib/systemd/system/hotline.service".to_string(),
    ];
    for (source, dest, _) in assets() {
        if !source.starts_with("target/") {
            expected.extend(expand(&source, &dest).into_iter().map(|(_, t)| t));
        }
    }
    for path in &expected {
        assert!(
            files.contains(path),
            "{path} not in the package:\n{listing}"
        );
    }
    let config_line = listing
        .lines()
        .find(|l| l.ends_with(&format!(".{CONFIG}")))
        .expect("config listed");
    assert!(config_line.starts_with("-rw-r-----"), "{config_line}");

    // Its control data: the configuration and IVR files are conffiles, the
    // user is made by postinst, which also carries the systemd snippets.
    let control_dir = work.path().join("control");
    let out = Command::new("dpkg-deb")
        .arg("-e")
        .arg(&deb)
        .arg(&control_dir)
        .output()
        .expect("dpkg-deb -e");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let control = |name: &str| {
        std::fs::read_to_string(control_dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let conffiles = control("conffiles");
    for path in expected.iter().filter(|p| p.starts_with("/etc/")) {
        assert!(
            conffiles.lines().any(|l| l == path),
            "{path} not a conffile:\n{conffiles}"
        );
    }
    let postinst = control("postinst");
    assert!(postinst.contains("adduser --system"), "{postinst}");
    assert!(postinst.contains("deb-systemd-helper"), "{postinst}");
    assert!(!postinst.contains("#DEBHELPER#"), "{postinst}");
    let fields = control("control");
    assert!(
        fields
            .lines()
            .any(|l| l.starts_with("Depends:") && l.contains("adduser")),
        "{fields}"
    );

    // Unpacked, its own binary accepts its own configuration, and systemd
    // its unit.
    let root = work.path().join("root");
    let out = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&root)
        .output()
        .expect("dpkg-deb -x");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let packaged_binary = root.join(BINARY.trim_start_matches('/'));
    check_under(&packaged_binary, &root);
    if tool_runs("systemd-analyze", &["--version"]) {
        let unit = root.join("usr/lib/systemd/system/hotline.service");
        let text = std::fs::read_to_string(&unit).expect("unit");
        let copy = work.path().join("hotline.service");
        std::fs::write(
            &copy,
            text.replace(BINARY, &packaged_binary.to_string_lossy()),
        )
        .expect("write");
        verify_unit(&copy);
    }
}

fn dpkg_deb(args: &[&str], deb: &Path) -> String {
    let out = Command::new("dpkg-deb")
        .args(args)
        .arg(deb)
        .output()
        .expect("dpkg-deb");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
