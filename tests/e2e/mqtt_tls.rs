//! MQTT security defaults against a real mosquitto with a TLS listener that requires client
//! certificates, a password file and an ACL, all set up by the test (certificates made with
//! openssl: v3 with extensions, since rustls rejects v1 certificates):
//! - the gateway (mqtts://, CA file, client certificate, user name, password from a file)
//!   delivers its alerts and status, and never logs its password;
//! - the ACL confines the gateway's account to its own topic prefix;
//! - a wrong password and an untrusted CA fail with a clear error in the log, and the alert
//!   stays in the outbox;
//! - and, separately, the daemon runs as `nobody` (no root needed).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use netwarden_e2e::{
    collect_topic_lines, gateway_in, require, tempdir, v5_alert_datagram, wait_for, Broker, Proc,
};

const PASSWORD: &str = "gw-s3cret-Zq81";

fn openssl(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .context("openssl")?;
    if !out.status.success() {
        bail!("openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// A CA named `name` (`name.pem`, `name.key`).
fn make_ca(dir: &Path, name: &str) -> anyhow::Result<()> {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-subj",
            &format!("/CN=netwarden test {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    )
}

/// A leaf certificate `name.pem`/`name.key` signed by `ca`, with v3 extensions from `ext`.
fn make_leaf(dir: &Path, ca: &str, name: &str, cn: &str, ext: &str) -> anyhow::Result<()> {
    std::fs::write(dir.join(format!("{name}.ext")), ext)?;
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={cn}"),
        ],
    )?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &format!("{name}.pem"),
            "-extfile",
            &format!("{name}.ext"),
        ],
    )
}

/// `mosquitto_sub` over TLS as `user`, collecting `(topic, payload)`.
struct TlsSub {
    lines: Arc<Mutex<Vec<(String, String)>>>,
    _proc: Proc,
}

impl TlsSub {
    fn start(
        port: u16,
        certs: &Path,
        user: &str,
        password: &str,
        topic: &str,
    ) -> anyhow::Result<TlsSub> {
        let p = |f: &str| certs.join(f).display().to_string();
        let mut proc = Proc::spawn(
            "mosquitto_sub",
            Command::new("mosquitto_sub")
                .args(["-h", "127.0.0.1", "-p", &port.to_string()])
                .args([
                    "--cafile",
                    &p("ca.pem"),
                    "--cert",
                    &p("client.pem"),
                    "--key",
                    &p("client.key"),
                ])
                .args(["-u", user, "-P", password, "-q", "1", "-v", "-t", topic])
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        )?;
        let out = proc.child.stdout.take().context("stdout")?;
        let lines = collect_topic_lines(out);
        std::thread::sleep(Duration::from_millis(500));
        Ok(TlsSub { lines, _proc: proc })
    }

    fn messages(&self) -> Vec<(String, String)> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

fn gateway_config(port: u16, certs: &Path, ca: &str, password_file: &Path) -> String {
    let p = |f: &str| certs.join(f).display().to_string();
    format!(
        "site = \"tls\"\ndevice = \"gw\"\n[mqtt]\nurl = \"mqtts://127.0.0.1:{port}\"\n\
         ca_file = \"{}\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"\n\
         username = \"gw\"\npassword_file = \"{}\"\n",
        p(ca),
        p("client.pem"),
        p("client.key"),
        password_file.display()
    )
}

#[test]
fn tls_client_cert_password_and_acl() -> anyhow::Result<()> {
    require("openssl")?;
    require("mosquitto_passwd")?;
    require("mosquitto_pub")?;
    let certs = tempdir::Dir::new("tls-certs")?;
    let c = certs.path();
    make_ca(c, "ca")?;
    make_ca(c, "rogue-ca")?;
    make_leaf(
        c,
        "ca",
        "server",
        "127.0.0.1",
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )?;
    make_leaf(
        c,
        "ca",
        "client",
        "netwarden-gw",
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=clientAuth\n",
    )?;
    {
        // mosquitto drops to its own user when started as root: let it read these.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(c, std::fs::Permissions::from_mode(0o755))?;
        for f in ["ca.pem", "server.pem", "server.key"] {
            std::fs::set_permissions(c.join(f), std::fs::Permissions::from_mode(0o644))?;
        }
    }
    let passwd = c.join("passwd");
    std::fs::write(&passwd, "")?;
    for (user, pw) in [("gw", PASSWORD), ("admin", "admin-pw")] {
        let st = Command::new("mosquitto_passwd")
            .arg("-b")
            .arg(&passwd)
            .args([user, pw])
            .status()?;
        anyhow::ensure!(st.success(), "mosquitto_passwd failed");
    }
    let acl = c.join("acl");
    std::fs::write(
        &acl,
        "user gw\ntopic write netwarden/tls/gw/#\n\nuser admin\ntopic read netwarden/#\n",
    )?;
    {
        use std::os::unix::fs::PermissionsExt;
        for f in [&passwd, &acl] {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644))?;
        }
    }
    let p = |f: &str| c.join(f).display().to_string();
    let broker = Broker::start(&format!(
        "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n\
         allow_anonymous false\npassword_file {}\nacl_file {}\nlog_dest stderr\n",
        p("ca.pem"),
        p("server.pem"),
        p("server.key"),
        passwd.display(),
        acl.display()
    ))?;
    let admin = TlsSub::start(broker.port, c, "admin", "admin-pw", "netwarden/#")?;

    // 1. The right CA, client certificate and password: alerts and status arrive.
    let pw_file = c.join("gw-password");
    std::fs::write(&pw_file, format!("{PASSWORD}\n"))?;
    let gw = gateway_in(
        tempdir::Dir::new("tls-gw")?,
        &gateway_config(broker.port, c, "ca.pem", &pw_file),
        &[],
    )?;
    let sock = std::net::UdpSocket::bind("127.0.0.1:0")?;
    sock.send_to(&v5_alert_datagram(7, 3, 0), gw.netflow)?;
    let alerts = wait_for(Duration::from_secs(30), "3 alerts over TLS", || {
        let m: Vec<_> = admin
            .messages()
            .into_iter()
            .filter(|(t, _)| t.starts_with("netwarden/tls/gw/alerts/"))
            .collect();
        (m.len() >= 3).then_some(m)
    })
    .with_context(|| format!("log:\n{}\nbroker:\n{}", gw.log(), broker.log()))?;
    assert!(alerts.iter().all(|(_, p)| p.contains("\"id\"")));
    assert!(admin
        .messages()
        .iter()
        .any(|(t, p)| t == "netwarden/tls/gw/status" && p.contains("online")));
    // Acknowledged alerts leave the outbox once the connection has outlived their PUBACK by
    // mqtt.ack_hold_secs (5 s).
    wait_for(Duration::from_secs(20), "the outbox to drain", || {
        (gw.stats().ok()?["outbox_len"].as_u64()? == 0).then_some(())
    })?;

    // 2. The ACL confines the gateway's account to its prefix (MQTT 3.1.1 brokers drop a
    // denied publish silently, so this is the broker's job: checked with the same account).
    let publish = |topic: &str, msg: &str| -> anyhow::Result<()> {
        let st = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &broker.port.to_string()])
            .args([
                "--cafile",
                &p("ca.pem"),
                "--cert",
                &p("client.pem"),
                "--key",
                &p("client.key"),
            ])
            .args([
                "-u", "gw", "-P", PASSWORD, "-q", "1", "-t", topic, "-m", msg,
            ])
            .status()?;
        anyhow::ensure!(st.success(), "mosquitto_pub failed");
        Ok(())
    };
    publish("netwarden/other/site/alerts/high", "forged")?;
    publish("netwarden/tls/gw/acl-check", "allowed")?;
    wait_for(Duration::from_secs(10), "the allowed publish", || {
        admin
            .messages()
            .into_iter()
            .find(|(t, _)| t == "netwarden/tls/gw/acl-check")
    })?;
    assert!(
        !admin.messages().iter().any(|(_, p)| p == "forged"),
        "the ACL let the gateway's account publish outside its prefix"
    );
    let log = gw.log();
    drop(gw);
    assert!(!log.contains(PASSWORD), "the password is in the log");

    // 3. A wrong password: a clear error, the alert stays in the outbox.
    let wrong = c.join("wrong-password");
    std::fs::write(&wrong, "not-the-password")?;
    let gw = gateway_in(
        tempdir::Dir::new("tls-gw-badpw")?,
        &gateway_config(broker.port, c, "ca.pem", &wrong),
        &[],
    )?;
    sock.send_to(&v5_alert_datagram(100, 1, 1), gw.netflow)?;
    wait_for(Duration::from_secs(20), "a bad password error", || {
        gw.log()
            .contains("not authorized; check the user name or password")
            .then_some(())
    })
    .with_context(|| gw.log())?;
    wait_for(
        Duration::from_secs(10),
        "the alert kept in the outbox",
        || (gw.stats().ok()?["outbox_len"].as_u64()? == 1).then_some(()),
    )?;
    assert_eq!(gw.stats()?["metrics"]["mqtt_connects"], 0);
    assert!(!gw.log().contains("not-the-password"));
    drop(gw);

    // 4. A CA that did not sign the broker's certificate: a clear TLS error.
    let gw = gateway_in(
        tempdir::Dir::new("tls-gw-rogue")?,
        &gateway_config(broker.port, c, "rogue-ca.pem", &pw_file),
        &[],
    )?;
    wait_for(Duration::from_secs(20), "an untrusted-CA error", || {
        let log = gw.log();
        (log.contains("TLS handshake with the broker failed") && log.contains("UnknownIssuer"))
            .then_some(())
    })
    .with_context(|| gw.log())?;
    assert_eq!(gw.stats()?["metrics"]["mqtt_connects"], 0);
    Ok(())
}

/// The daemon needs no root: as `nobody` it binds its NetFlow port, creates its data directory,
/// raises and stores alerts.
#[test]
fn runs_without_root() -> anyhow::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if Command::new("id").arg("-u").output()?.stdout != b"0\n" {
        eprintln!("not root: already running unprivileged, nothing to drop");
        return Ok(());
    }
    require("setpriv")?;
    let dir = tempdir::Dir::new("unprivileged")?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))?;
    // A copy the unprivileged user can execute (the build tree may not be reachable).
    let bin = dir.path().join("netwarden");
    std::fs::copy(netwarden_e2e::netwarden_bin()?, &bin)?;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755))?;
    let port = netwarden_e2e::free_udp_port()?;
    let data = dir.path().join("data");
    let log = std::fs::File::create(dir.path().join("log"))?;
    let _gw = Proc::spawn(
        "netwarden as nobody",
        Command::new("setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
            .arg(&bin)
            .args(["run", "--learn", "off"])
            .args(["--netflow-listen", &format!("127.0.0.1:{port}")])
            .args(["--http-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(log),
    )?;
    let stats = data.join("stats.json");
    wait_for(
        Duration::from_secs(30),
        "netwarden to start as nobody",
        || stats.exists().then_some(()),
    )
    .with_context(|| std::fs::read_to_string(dir.path().join("log")).unwrap_or_default())?;
    let sock = std::net::UdpSocket::bind("127.0.0.1:0")?;
    sock.send_to(&v5_alert_datagram(1, 2, 0), ("127.0.0.1", port))?;
    wait_for(Duration::from_secs(20), "alerts raised and stored", || {
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&stats).ok()?).ok()?;
        (s["metrics"]["alerts_raised"].as_u64()? >= 2 && s["metrics"]["alerts_store_errors"] == 0)
            .then_some(())
    })?;
    let owner = std::fs::metadata(data.join("db"))?.uid();
    assert_ne!(owner, 0, "the database belongs to the unprivileged user");
    Ok(())
}
