//! TLS over real sockets (`--tls-listen`): every dialect through TLS in the same rooms as the
//! plain port, the own client's `--tls`, `openssl s_client`, the Python `irc` package over
//! TLS, handshakes that fail or never finish, plain text on the TLS port, and the certificate
//! reloaded on SIGHUP.
//!
//! Each test makes its own CA and server certificate (for `localhost` and 127.0.0.1) with
//! rcgen and writes the PEM files to a temporary directory. `openssl` and the Python `irc`
//! package are optional: without them their tests print a loud `SKIPPED` line and pass, unless
//! `CHAT_REQUIRE_TOOLS=1` (openssl) or `CHAT_REQUIRE_PYTHON=1` (irc), which `.ci/run` sets
//! once it has them, and which make those tests fail instead.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use chat_tests::{Client, Server, TempDir, WAIT, run_to_exit, skip_unless_required};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

/// The server binary, built by cargo for these tests.
const RUNNER: &str = env!("CARGO_BIN_EXE_chat-runner");

/// A test CA: its certificate (PEM) and what it needs to sign server certificates.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("a CA key");
        Self {
            issuer: CertifiedIssuer::self_signed(params, key).expect("a CA certificate"),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `localhost` and 127.0.0.1 named `name`: (cert PEM, key PEM,
    /// cert DER).
    fn server_cert(&self, name: &str) -> (String, String, Vec<u8>) {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server certificate parameters");
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("a server key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("a server certificate");
        (cert.pem(), key.serialize_pem(), cert.der().to_vec())
    }
}

/// A CA, a server certificate from it, and the PEM files in a temporary directory.
struct Pki {
    dir: TempDir,
    ca: Ca,
    /// The server certificate's DER, to compare with what a client is shown.
    der: Vec<u8>,
}

impl Pki {
    fn new(name: &str) -> Self {
        let dir = TempDir::new(name);
        let ca = Ca::new(&format!("chat test CA {name}"));
        let (cert, key, der) = ca.server_cert(&format!("chat server {name}"));
        std::fs::write(dir.0.join("ca.pem"), ca.pem()).expect("writing ca.pem");
        std::fs::write(dir.0.join("cert.pem"), cert).expect("writing cert.pem");
        std::fs::write(dir.0.join("key.pem"), key).expect("writing key.pem");
        Self { dir, ca, der }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.0.join(file)
    }

    fn arg(&self, file: &str) -> String {
        self.path(file).to_str().expect("a UTF-8 path").to_owned()
    }

    fn ca_pem(&self) -> Vec<u8> {
        self.ca.pem().into_bytes()
    }

    /// A server with a plain port and a TLS port using these files, plus `args`.
    fn server(&self, args: &[&str]) -> Server {
        let (cert, key) = (self.arg("cert.pem"), self.arg("key.pem"));
        let mut all = vec![
            "--no-color",
            "--tls-listen",
            "127.0.0.1:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ];
        all.extend_from_slice(args);
        Server::start(RUNNER, &all)
    }
}

/// Stdout lines of a child process, read on a thread so that every wait is bounded.
fn line_reader(stdout: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (lines, received) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    received
}

/// Waits for a line from `lines` containing `text`; fails after [`WAIT`] with what came.
#[track_caller]
fn expect_from(lines: &Receiver<String>, text: &str, who: &str) -> String {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(text) => return line,
            Ok(line) => seen.push(line),
            Err(_) => panic!("{who}: no line containing {text:?} within {WAIT:?}; got {seen:?}"),
        }
    }
}

/// A child process killed (and reaped) when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn every_dialect_over_tls_shares_the_lobby_with_the_plain_port() {
    let pki = Pki::new("dialects");
    let server = pki.server(&[]);
    let ca = pki.ca_pem();
    let mut bob = server.join("bob");

    let mut alice = server.join_tls(&ca, "alice");
    assert_eq!(alice.peer_certificate(), Some(pki.der.clone()));
    bob.expect_line("anonymous-2 is now known as alice");
    alice.send_line("hello from TLS");
    assert_eq!(bob.expect_line("alice:"), "alice: hello from TLS");
    bob.send_line("hello from the plain port");
    assert_eq!(alice.expect_line("bob:"), "bob: hello from the plain port");

    let mut irc = server.connect_tls(&ca);
    irc.send("NICK tlsirc\r\nUSER tlsirc 0 * :over TLS\r\n");
    irc.expect_line_where(|line| line.contains(" 001 tlsirc "), "the IRC welcome");
    irc.expect_line("JOIN #lobby");
    irc.send("PRIVMSG #lobby :hello from IRC over TLS\r\n");
    assert_eq!(
        bob.expect_line("tlsirc:"),
        "tlsirc: hello from IRC over TLS"
    );
    assert_eq!(
        alice.expect_line("tlsirc:"),
        "tlsirc: hello from IRC over TLS"
    );
    bob.send_line("hi IRC");
    irc.expect_line(":bob!plain@hidden PRIVMSG #lobby :hi IRC");

    let mut node = Client::connect_tls(server.tls_addr(), &ca, "127.0.0.1")
        .expect("a TLS handshake checked against the IP address");
    node.send(r#"{"type":"nickname","message":"node"}"#);
    node.expect_line("*** You are now known as node.");
    node.send(r#"{"type":"boardcast","message":"hello from JSON over TLS"}"#);
    assert_eq!(bob.expect_line("node:"), "node: hello from JSON over TLS");
    assert_eq!(alice.expect_line("node:"), "node: hello from JSON over TLS");
    irc.expect_line(":node!json@hidden PRIVMSG #lobby :hello from JSON over TLS");
    bob.send_line("/list");
    assert_eq!(
        bob.expect_line("#lobby ("),
        "*** #lobby (4): alice, bob (you), node, tlsirc"
    );
    let log = server.log();
    assert_eq!(
        log.matches(" over TLS (").count(),
        3,
        "three TLS connections logged as such:\n{log}"
    );
}

#[test]
fn per_address_limit_and_quit_work_the_same_over_tls() {
    let pki = Pki::new("caps");
    let server = pki.server(&["--max-per-ip", "1"]);
    let ca = pki.ca_pem();
    let mut alice = server.join_tls(&ca, "alice");
    let mut second = Client::connect_tls(server.tls_addr(), &ca, "localhost")
        .expect("the handshake comes before the per-address check");
    second.expect_line("too many connections from your address");
    second.expect_closed();
    let mut plain = Client::connect(server.addr());
    plain.expect_line("too many connections from your address");
    plain.expect_closed();
    alice.send_line("/quit bye");
    alice.expect_closed();
    server.expect_log("alice (127.0.0.1:");
}

/// Runs the own client with `args` and `input` on stdin until it exits; (status, stdout,
/// stderr).
fn run_client(args: &[&str], input: &str) -> (i32, String, String) {
    chat_tests::run_with_input(RUNNER, args, input, WAIT)
}

#[test]
fn the_own_client_speaks_tls_with_a_private_ca() {
    let pki = Pki::new("client");
    let server = pki.server(&[]);
    let mut bob = server.join("bob");
    let ca = pki.arg("ca.pem");
    for (host, nick) in [("localhost", "byname"), ("127.0.0.1", "byip")] {
        let addr = format!("{host}:{}", server.tls_addr().port());
        let started = Instant::now();
        let (status, stdout, stderr) = run_client(
            &["--connect", &addr, "--tls", "--tls-ca", &ca],
            &format!("/nick {nick}\nhello over TLS\n"),
        );
        println!("the client over TLS to {addr} ran {:?}", started.elapsed());
        assert_eq!(status, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
        assert!(
            stdout.contains(&format!("*** You are now known as {nick}.")),
            "stdout:\n{stdout}"
        );
        assert_eq!(
            bob.expect_line(&format!("{nick}:")),
            format!("{nick}: hello over TLS")
        );
    }

    // The public roots do not know the test CA.
    let addr = format!("localhost:{}", server.tls_addr().port());
    let (status, stdout, stderr) = run_client(&["--connect", &addr, "--tls"], "hello\n");
    assert_eq!(status, 1, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "TLS handshake with {addr} failed: invalid peer certificate: UnknownIssuer"
        )),
        "stderr:\n{stderr}"
    );
    // Nor is the certificate for another name.
    let other = Pki::new("client-other");
    let (status, _, stderr) = run_client(
        &[
            "--connect",
            &addr,
            "--tls",
            "--tls-ca",
            &other.arg("ca.pem"),
        ],
        "hello\n",
    );
    assert_eq!(status, 1, "stderr:\n{stderr}");
    assert!(stderr.contains("UnknownIssuer"), "stderr:\n{stderr}");
    // A client speaking TLS to the plain port gets no handshake, and says so.
    let plain = format!("127.0.0.1:{}", server.addr().port());
    let (status, _, stderr) =
        run_client(&["--connect", &plain, "--tls", "--tls-ca", &ca], "hello\n");
    assert_eq!(status, 1, "stderr:\n{stderr}");
    assert!(
        stderr.contains(&format!("TLS handshake with {plain} failed")),
        "stderr:\n{stderr}"
    );
}

#[test]
fn client_tls_flags_are_checked() {
    let pki = Pki::new("client-flags");
    let missing = pki.arg("missing.pem");
    let (status, _, stderr) = run_client(
        &["--connect", "127.0.0.1:1", "--tls", "--tls-ca", &missing],
        "",
    );
    assert_eq!(status, 2, "stderr:\n{stderr}");
    assert!(
        stderr.contains(&format!("--tls-ca {missing}: cannot read")),
        "stderr:\n{stderr}"
    );
    let key = pki.arg("key.pem");
    let (status, _, stderr) =
        run_client(&["--connect", "127.0.0.1:1", "--tls", "--tls-ca", &key], "");
    assert_eq!(status, 2, "stderr:\n{stderr}");
    assert!(stderr.contains("no certificate"), "stderr:\n{stderr}");
    let (status, _, stderr) = run_client(
        &["--connect", "127.0.0.1:1", "--tls-ca", &pki.arg("ca.pem")],
        "",
    );
    assert_eq!(status, 2, "stderr:\n{stderr}");
    assert!(stderr.contains("use it with --tls"), "stderr:\n{stderr}");
}

#[test]
fn the_client_reconnects_over_tls() {
    let pki = Pki::new("reconnect");
    let mut server = pki.server(&[]);
    let tls = server.tls_addr();
    let mut client = Killed(
        Command::new(RUNNER)
            .args(["--connect", &tls.to_string(), "--tls", "--tls-ca"])
            .arg(pki.path("ca.pem"))
            .arg("--reconnect")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning the client"),
    );
    let mut stdin = client.0.stdin.take().unwrap();
    let lines = line_reader(client.0.stdout.take().unwrap());
    stdin.write_all(b"/nick comeback\n").unwrap();
    expect_from(&lines, "You are now known as comeback", "the client");
    server.signal("TERM");
    server.expect_exit();
    drop(server);
    // A new server on the same TLS port; the client finds it and takes its nickname back.
    let (cert, key) = (pki.arg("cert.pem"), pki.arg("key.pem"));
    let tls_listen = tls.to_string();
    let server = Server::start(
        RUNNER,
        &[
            "--no-color",
            "--tls-listen",
            &tls_listen,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ],
    );
    let mut bob = server.join("bob");
    chat_tests::wait_until("the client back, with its nickname", || {
        bob.send_line("/list");
        bob.expect_line("#lobby (").contains("comeback")
    });
    stdin.write_all(b"back over TLS\n").unwrap();
    assert_eq!(bob.expect_line("comeback:"), "comeback: back over TLS");
}

#[test]
fn openssl_s_client_talks_over_tls() {
    let test = "openssl_s_client_talks_over_tls";
    let missing = match Command::new("openssl").arg("version").output() {
        Ok(output) if output.status.success() => None,
        Ok(output) => Some(format!("`openssl version` failed: {}", output.status)),
        Err(error) => Some(format!("openssl cannot be run: {error}")),
    };
    if let Some(missing) = missing {
        skip_unless_required(
            "CHAT_REQUIRE_TOOLS",
            test,
            &missing,
            "install openssl (.ci/run does)",
        );
        return;
    }
    let pki = Pki::new("openssl");
    let server = pki.server(&[]);
    let mut bob = server.join("bob");
    let mut openssl = Killed(
        Command::new("openssl")
            .args(["s_client", "-connect", &server.tls_addr().to_string()])
            .args(["-servername", "localhost", "-verify_return_error", "-quiet"])
            .arg("-CAfile")
            .arg(pki.path("ca.pem"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning openssl s_client"),
    );
    let mut stdin = openssl.0.stdin.take().unwrap();
    let lines = line_reader(openssl.0.stdout.take().unwrap());
    expect_from(&lines, "Welcome to the chat!", "openssl s_client");
    stdin.write_all(b"/nick ossl\n").unwrap();
    expect_from(&lines, "You are now known as ossl.", "openssl s_client");
    stdin.write_all(b"hello from openssl\n").unwrap();
    assert_eq!(bob.expect_line("ossl:"), "ossl: hello from openssl");
    bob.send_line("hello openssl");
    assert_eq!(
        expect_from(&lines, "bob:", "openssl s_client"),
        "bob: hello openssl"
    );
    stdin.write_all(b"/quit done\n").unwrap();
    bob.expect_line("*** ossl left (quit: done)");
}

#[test]
fn the_python_irc_client_talks_over_tls() {
    let test = "the_python_irc_client_talks_over_tls";
    let Some(python) = chat_tests::python_with(test, "irc.client, irc.connection, ssl") else {
        return;
    };
    let pki = Pki::new("python");
    let server = pki.server(&[]);
    let mut bob = server.join("bob");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/irc_tls_e2e.py");
    let port = server.tls_addr().port().to_string();
    let mut child = Killed(
        Command::new(python)
            .arg(script)
            .args(["127.0.0.1", &port])
            .arg(pki.path("ca.pem"))
            .args(["pytls", "bob", "hello from Python over TLS", "hi Python"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning the Python script"),
    );
    let lines = line_reader(child.0.stdout.take().unwrap());
    expect_from(&lines, r#""ready": "said""#, "the Python script");
    assert_eq!(
        bob.expect_line("pytls:"),
        "pytls: hello from Python over TLS"
    );
    bob.send_line("hi Python");
    let done = expect_from(&lines, r#""done": true"#, "the Python script");
    assert!(done.contains("TLSv1.3"), "{done}");
    bob.expect_line("*** pytls left (quit: bye over TLS)");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the script did not exit");
        thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "the Python script: {status}");
    server.expect_log("pytls");
}

#[test]
fn failed_handshakes_and_plain_text_are_refused_and_the_server_goes_on() {
    let pki = Pki::new("refused");
    let server = pki.server(&[]);
    let ca = pki.ca_pem();
    let mut bob = server.join("bob");

    // A client that does not trust the server's CA gives up; the server logs one line.
    let stranger = Ca::new("a stranger CA");
    let error = Client::connect_tls(server.tls_addr(), stranger.pem().as_bytes(), "localhost")
        .expect_err("a client that does not trust the CA");
    assert!(error.to_string().contains("UnknownIssuer"), "{error}");
    let line = server.expect_log("TLS handshake with 127.0.0.1:");
    assert!(
        line.contains("failed: received fatal alert: UnknownCA"),
        "{line}"
    );

    // A certificate for a name the server's is not for.
    let error = Client::connect_tls(server.tls_addr(), &ca, "chat.example")
        .expect_err("a certificate for another name");
    assert!(
        error
            .to_string()
            .contains("not valid for name \"chat.example\""),
        "{error}"
    );

    // Plain text, and an IRC client without TLS, are told to use TLS, then closed.
    for (first, byte) in [("/nick plain\n", "0x2f"), ("NICK plainirc\r\n", "0x4e")] {
        let mut plain = Client::connect(server.tls_addr());
        plain.send(first);
        assert_eq!(
            plain.next_line(),
            "*** This port speaks TLS; connect with TLS (e.g. chat-runner --connect HOST:PORT \
             --tls) or use the plain port."
        );
        plain.expect_closed();
        server.expect_log(&format!("failed: not TLS (first byte {byte}"));
    }

    // A connection closed before saying anything.
    let closed = TcpStream::connect(server.tls_addr()).unwrap();
    drop(closed);
    server.expect_log("failed: closed before the handshake");

    // None of them counted: the server serves on, on both ports.
    let mut alice = server.join_tls(&ca, "alice");
    alice.send_line("still here");
    assert_eq!(bob.expect_line("alice:"), "alice: still here");
    bob.send_line("/list");
    assert_eq!(
        bob.expect_line("#lobby ("),
        "*** #lobby (2): alice, bob (you)"
    );
    let log = server.log();
    assert_eq!(
        log.matches("connected from").count(),
        2,
        "only bob and alice connected:\n{log}"
    );
}

#[test]
fn a_handshake_that_never_finishes_is_closed_after_the_timeout() {
    let pki = Pki::new("timeout");
    let server = pki.server(&["--tls-handshake-timeout", "0.5"]);
    server.expect_log("handshake timeout 0.5 s");
    // Silent, and stopped after the first byte of a record: both wait for the timeout.
    for first in ["", "\x16"] {
        let started = Instant::now();
        let mut silent = Client::connect(server.tls_addr());
        silent.send(first);
        silent.expect_closed();
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(400),
            "closed after {took:?}, before the timeout"
        );
        assert_eq!(
            silent.received(),
            b"",
            "nothing is sent before the handshake"
        );
    }
    wait_for_log_count(&server, "failed: no handshake within 0.5 s", 2);
    // And the server serves on.
    server.join_tls(&pki.ca_pem(), "alice");
}

#[test]
fn sighup_reloads_the_certificate_and_keeps_it_when_the_files_are_bad() {
    let pki = Pki::new("reload");
    let server = pki.server(&[]);
    let first_ca = pki.ca_pem();
    let mut alice = server.join_tls(&first_ca, "alice");
    assert_eq!(alice.peer_certificate(), Some(pki.der.clone()));

    // New files from another CA.
    let second = Ca::new("the second CA");
    let (cert, key, second_der) = second.server_cert("the second server");
    std::fs::write(pki.path("cert.pem"), cert).unwrap();
    std::fs::write(pki.path("key.pem"), &key).unwrap();
    server.signal("HUP");
    server.expect_log("TLS certificate reloaded from");
    let second_ca = second.pem().into_bytes();
    let mut bob = server.join_tls(&second_ca, "bob");
    assert_eq!(bob.peer_certificate(), Some(second_der.clone()));
    let error = Client::connect_tls(server.tls_addr(), &first_ca, "localhost")
        .expect_err("the old CA no longer vouches for the server");
    assert!(error.to_string().contains("UnknownIssuer"), "{error}");
    // The connection made before goes on with its own session.
    alice.send_line("made before the reload");
    assert_eq!(bob.expect_line("alice:"), "alice: made before the reload");

    // A broken certificate file: logged, and the second certificate stays.
    std::fs::write(pki.path("cert.pem"), "not a certificate\n").unwrap();
    server.signal("HUP");
    let line = server.expect_log("TLS certificate not reloaded");
    assert!(
        line.contains(&format!("{}: no certificate", pki.arg("cert.pem"))),
        "{line}"
    );
    let carol = server.join_tls(&second_ca, "carol");
    assert_eq!(carol.peer_certificate(), Some(second_der.clone()));

    // A key that does not go with the certificate: the same.
    let (cert, _, _) = second.server_cert("a third server");
    std::fs::write(pki.path("cert.pem"), cert).unwrap();
    std::fs::write(pki.path("key.pem"), pki.ca.server_cert("x").1).unwrap();
    server.signal("HUP");
    wait_for_log_count(&server, "TLS certificate not reloaded", 2);
    let dave = server.join_tls(&second_ca, "dave");
    assert_eq!(dave.peer_certificate(), Some(second_der));
    let log = server.log();
    assert!(log.contains("does not go with the certificate"), "{log}");
}

/// Waits until `text` appears in `count` log lines.
fn wait_for_log_count(server: &Server, text: &str, count: usize) {
    chat_tests::wait_until(&format!("{count} log lines with {text:?}"), || {
        server.log().matches(text).count() >= count
    });
}

#[test]
fn sighup_without_tls_is_logged_and_harmless() {
    let server = Server::plain(RUNNER, &[]);
    server.signal("HUP");
    server.expect_log("SIGHUP: no TLS certificate to reload");
    let mut bob = server.join("bob");
    bob.send_line("/list");
    bob.expect_line("#lobby (1)");
}

#[test]
fn tls_alone_without_a_plain_port() {
    let pki = Pki::new("alone");
    let mut child = Killed(
        Command::new(RUNNER)
            .args(["--no-data", "--no-color", "--tls-listen", "127.0.0.1:0"])
            .arg("--tls-cert")
            .arg(pki.path("cert.pem"))
            .arg("--tls-key")
            .arg(pki.path("key.pem"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning chat-runner"),
    );
    let lines = line_reader(child.0.stdout.take().unwrap());
    let log = line_reader(child.0.stderr.take().unwrap());
    let line = expect_from(&lines, "chat-runner listening", "chat-runner");
    let addr: SocketAddr = line
        .strip_prefix("chat-runner listening for TLS on ")
        .unwrap_or_else(|| panic!("{line}"))
        .parse()
        .unwrap();
    let started = Instant::now();
    let mut alice = Client::connect_tls(addr, &pki.ca_pem(), "localhost").expect("a handshake");
    println!("TCP connect and TLS handshake: {:?}", started.elapsed());
    alice.expect_line("Welcome to the chat!");
    let listening = expect_from(&log, "listening for TLS on", "the log");
    assert!(!listening.contains("listening on"), "{listening}");
    assert!(
        lines.recv_timeout(Duration::from_millis(200)).is_err(),
        "no plain port is announced"
    );
}

#[test]
fn bad_tls_command_lines_exit_with_status_2_naming_the_file() {
    let pki = Pki::new("args");
    let (cert, key) = (pki.arg("cert.pem"), pki.arg("key.pem"));
    let missing = pki.arg("missing.pem");
    let cases: [(&[&str], &str); 7] = [
        (
            &["--tls-listen", "127.0.0.1:0"],
            "--tls-listen needs --tls-cert FILE and --tls-key FILE",
        ),
        (
            &["--tls-listen", "127.0.0.1:0", "--tls-cert", &cert],
            "--tls-listen needs --tls-cert FILE and --tls-key FILE",
        ),
        (
            &["--tls-cert", &cert, "--tls-key", &key],
            "use them with --tls-listen",
        ),
        (
            &[
                "--tls-listen",
                "127.0.0.1:0",
                "--tls-cert",
                &missing,
                "--tls-key",
                &key,
            ],
            &format!("TLS certificate: {missing}: cannot read"),
        ),
        (
            &[
                "--tls-listen",
                "127.0.0.1:0",
                "--tls-cert",
                &key,
                "--tls-key",
                &key,
            ],
            &format!("TLS certificate: {key}: no certificate"),
        ),
        (
            &[
                "--tls-listen",
                "127.0.0.1:0",
                "--tls-cert",
                &cert,
                "--tls-key",
                &cert,
            ],
            &format!("TLS certificate: {cert}: no private key"),
        ),
        (&["--tls"], "--tls is for clients"),
    ];
    for (args, expected) in cases {
        let mut all = vec!["--no-data"];
        all.extend_from_slice(args);
        let (output, _) = run_to_exit(RUNNER, &all, WAIT);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}: nothing was bound");
    }
    // A key that does not go with the certificate.
    let other = Pki::new("args-other");
    let (output, _) = run_to_exit(
        RUNNER,
        &[
            "--no-data",
            "--tls-listen",
            "127.0.0.1:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &other.arg("key.pem"),
        ],
        WAIT,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("does not go with the certificate in {cert}")),
        "{stderr}"
    );
}
