//! TLS material for tests: a throw-away CA and a server certificate made
//! by `openssl req`, and the `[tls]` section that names them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A test CA and a server certificate it signed for `ip` (and the name
/// `hotline.test`), made by openssl: `(ca, cert, key)` PEM files.
pub fn certificate(dir: &Path, ip: &str) -> (PathBuf, PathBuf, PathBuf) {
    let path = |name: &str| dir.join(name);
    let run = |args: &[&str]| {
        let ok = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl is installed (scripts/test installs it)");
        assert!(ok.success(), "openssl {args:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=hotline test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "server.csr",
        "-subj",
        "/CN=hotline.test",
    ]);
    std::fs::write(
        path("server.ext"),
        format!("subjectAltName=IP:{ip},DNS:hotline.test\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"),
    )
    .expect("extensions");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        "cert.pem",
        "-extfile",
        "server.ext",
    ]);
    (path("ca.pem"), path("cert.pem"), path("key.pem"))
}

/// The `[tls]` section for `cert` and `key`.
pub fn tls_section(cert: &Path, key: &Path) -> String {
    format!(
        "\n[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
        cert.display(),
        key.display()
    )
}

/// A test configuration on `net` (data under `dir`) with the queued baresip
/// agent (`baresip::QUEUED_AGENT`), SIP over TLS on port 5061 with a
/// certificate a fresh CA signed for hotline's address, and `extra`; the CA
/// file phones check it against.
pub fn queued_agent_over_tls(net: super::Net, dir: &Path, extra: &str) -> (PathBuf, String) {
    let (ca, cert, key) = certificate(dir, &net.ip(1));
    let base = super::config(
        net,
        &dir.join("var"),
        &format!(
            "{}{}{extra}",
            super::baresip::QUEUED_AGENT,
            tls_section(&cert, &key)
        ),
    );
    let realm = "realm = \"hotline.test\"\n";
    assert!(base.contains(realm), "the test config's realm");
    let text = base.replacen(
        realm,
        &format!("{realm}transports = [\"udp\", \"tcp\", \"tls\"]\n"),
        1,
    );
    (ca, text)
}
