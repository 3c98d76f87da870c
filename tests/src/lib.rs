//! Helpers shared by the end-to-end tests: start `chat-runner` on a free loopback port
//! ([`Server`]) and talk to it as a line-oriented client ([`Client`]).
//!
//! The tests live with the binary they test, in `runner/tests/`, where cargo builds the binary
//! first and names it: each passes `env!("CARGO_BIN_EXE_chat-runner")` to [`Server::start`],
//! so a test never runs a stale server, and never runs cargo itself.
//!
//! Every wait is bounded by [`WAIT`] (or by the duration given) and polls with a deadline, so a
//! hung server fails a test with a clear message instead of hanging it, and no assertion
//! depends on how fast a loaded machine runs.

use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long any single expectation waits before the test fails.
pub const WAIT: Duration = Duration::from_secs(5);

/// How often polling loops (for logs, for process exit) look again.
const POLL: Duration = Duration::from_millis(20);

/// Runs `runner` with `args` and `input` on its stdin (the terminal client, say) until it
/// exits by itself, failing (after killing it) if it takes longer than `within`. Its exit
/// status (-1 for a signal), stdout and stderr. A broken pipe on stdin is fine: the program
/// may exit before reading (when it cannot connect).
pub fn run_with_input(
    runner: &str,
    args: &[&str],
    input: &str,
    within: Duration,
) -> (i32, String, String) {
    let (output, _) = run_until_exit(runner, args, Some(input), within);
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs the server binary `runner` with `args` until it exits by itself, failing (after
/// killing it) if it takes longer than `within`: for the command lines it refuses, or the
/// starts that cannot go on. Its output, and how long it took.
pub fn run_to_exit(runner: &str, args: &[&str], within: Duration) -> (Output, Duration) {
    run_until_exit(runner, args, None, within)
}

/// Runs `runner` with `args`, `input` on its stdin (or none), until it exits, at most
/// `within`: its output and how long it took.
fn run_until_exit(
    runner: &str,
    args: &[&str],
    input: Option<&str>,
    within: Duration,
) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = Command::new(runner)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning chat-runner");
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        let _ = stdin.write_all(input.as_bytes());
    }
    while child.try_wait().expect("waiting for chat-runner").is_none() {
        if started.elapsed() > within {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chat-runner {args:?} did not exit within {within:?}");
        }
        thread::sleep(POLL);
    }
    let output = child
        .wait_with_output()
        .expect("collecting chat-runner's output");
    (output, started.elapsed())
}

/// What a test does without something this machine may lack (a service, a tool, a package, a
/// limit): `missing` says what, `remedy` how to get it. If the `CHAT_REQUIRE_*` variable
/// `required_by` is `1` (`.ci/run` sets them once it has installed everything), the test fails:
/// a green run that skipped the real thing is not a pass. Otherwise a loud `SKIPPED test` line
/// goes to stderr, and the caller skips the test (or the part of it that needs the thing).
#[track_caller]
pub fn skip_unless_required(required_by: &str, test: &str, missing: &str, remedy: &str) {
    assert!(
        std::env::var(required_by).as_deref() != Ok("1"),
        "{test}: {required_by}=1, but {missing}; {remedy}"
    );
    // Not through eprintln!, which the harness swallows for a test that passes.
    let _ = writeln!(
        io::stderr(),
        "\n!!! SKIPPED {test}: {missing}; {remedy} (with {required_by}=1, as in CI, this fails \
         instead)\n"
    );
}

/// The Redis for a test that needs one (`CHAT_REDIS_URL`), or `None` without one, after
/// [`skip_unless_required`] (`CHAT_REQUIRE_REDIS`).
pub fn redis_url(test: &str) -> Option<String> {
    if let Some(url) = std::env::var("CHAT_REDIS_URL")
        .ok()
        .filter(|url| !url.is_empty())
    {
        return Some(url);
    }
    skip_unless_required(
        "CHAT_REQUIRE_REDIS",
        test,
        "CHAT_REDIS_URL is not set",
        "start redis-server and set it, e.g. CHAT_REDIS_URL=redis://127.0.0.1:6379/",
    );
    None
}

/// Raises this process's soft limit on open files to `wanted`, within the hard limit, for a
/// test that holds thousands of connections; false if the hard limit is lower (a stock login
/// allows 1,024), after [`skip_unless_required`] (`CHAT_REQUIRE_OPEN_FILES`).
pub fn allow_open_files(test: &str, wanted: u64) -> bool {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|soft| soft < wanted) {
        limit.current = Some(limit.maximum.map_or(wanted, |hard| hard.min(wanted)));
        let _ = setrlimit(Resource::Nofile, limit);
    }
    let Some(allowed) = getrlimit(Resource::Nofile).current else {
        return true;
    };
    if allowed >= wanted {
        return true;
    }
    skip_unless_required(
        "CHAT_REQUIRE_OPEN_FILES",
        test,
        &format!("it needs {wanted} open files and the hard limit allows {allowed}"),
        "raise the hard limit (ulimit -Hn)",
    );
    false
}

/// A fresh directory under the system's temporary one, removed when dropped.
#[derive(Debug)]
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// Makes one named after `name`, this process and the time.
    pub fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        let dir = std::env::temp_dir().join(format!("chat-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        Self(dir)
    }

    /// Its path, as a command-line argument.
    pub fn arg(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temporary path")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A number no other barrier of this test process has had: barriers of clients on one
/// server can never be taken for each other's.
fn next_barrier() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Polls `done` until it is true, failing after [`WAIT`] with a message about `what`.
#[track_caller]
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {what}"
        );
        thread::sleep(POLL);
    }
}

/// Sends `signal` (such as `"TERM"`) to process `pid` with the `kill` command.
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("running kill");
    assert!(status.success(), "kill -{signal} {pid}: {status}");
}

/// How the server's stdout line giving its TLS port begins.
const TLS_LISTENING: &str = "chat-runner listening for TLS on ";

/// A running `chat-runner` on `127.0.0.1:<free port>`, killed when dropped.
///
/// Its stderr (the operator log) is collected in the background for [`Server::expect_log`].
#[derive(Debug)]
pub struct Server {
    child: Child,
    addr: SocketAddr,
    /// The TLS port, when started with `--tls-listen`.
    tls_addr: Option<SocketAddr>,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the server binary `runner` with `--listen 127.0.0.1:0` and `args`, and waits for
    /// the line on stdout that gives the port.
    pub fn start(runner: &str, args: &[&str]) -> Self {
        Self::start_at(runner, "127.0.0.1:0", args)
    }

    /// Starts the server binary `runner` with `--listen listen` and `args`, and waits for the
    /// line on stdout that gives the address it bound.
    ///
    /// Flood control is off (`--no-flood-limit`) unless `args` set it (`--flood-...`), and so
    /// are history (`--history 0`) and the greeting delay (`--greeting-delay 0`) unless `args`
    /// set them: most tests send bursts, or expect a newcomer's exact welcome at once, and are
    /// about something else. The store is in memory (`--no-data`) unless `args` give `--data`.
    /// Everything is logged (`--log-level debug`, so that tests can wait for a connection's
    /// log lines) unless `args` give `--log-level` or `--config` (whose file may set it).
    pub fn start_at(runner: &str, listen: &str, args: &[&str]) -> Self {
        let sets = |prefix: &str| args.iter().any(|arg| arg.starts_with(prefix));
        let mut child = Command::new(runner)
            .args(["--listen", listen])
            .args(args)
            .args((!sets("--flood")).then_some("--no-flood-limit"))
            .args((!sets("--data") && !sets("--no-data")).then_some("--no-data"))
            .args(if sets("--log-level") || sets("--config") {
                &[][..]
            } else {
                &["--log-level", "debug"][..]
            })
            .args(if sets("--history") {
                &[][..]
            } else {
                &["--history", "0"][..]
            })
            .args(if sets("--greeting-delay") {
                &[][..]
            } else {
                &["--greeting-delay", "0"][..]
            })
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning chat-runner");

        let log = Arc::new(Mutex::new(String::new()));
        let stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
        let sink = Arc::clone(&log);
        thread::spawn(move || {
            for line in stderr.lines() {
                let Ok(line) = line else { break };
                let mut log = sink.lock().unwrap_or_else(|poison| poison.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });

        // The stdout lines up to the one giving the plain port (a TLS port's comes first),
        // read on a thread so that the wait is bounded; the thread then keeps draining stdout
        // until the process ends.
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let (lines, received) = mpsc::channel();
        thread::spawn(move || {
            loop {
                let mut line = String::new();
                let _ = stdout.read_line(&mut line);
                let last = line.is_empty() || !line.starts_with(TLS_LISTENING);
                let _ = lines.send(line);
                if last {
                    break;
                }
            }
            let _ = io::copy(&mut stdout, &mut io::sink());
        });
        let deadline = Instant::now() + WAIT;
        let mut tls_addr = None;
        let line = loop {
            let Ok(line) =
                received.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            else {
                let _ = child.kill();
                panic!("chat-runner printed no address within {WAIT:?}");
            };
            match line.trim_end().strip_prefix(TLS_LISTENING) {
                Some(addr) => tls_addr = addr.parse().ok(),
                None => break line,
            }
        };
        let addr = line
            .trim_end()
            .strip_prefix("chat-runner listening on ")
            .and_then(|addr| addr.parse().ok());
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            thread::sleep(Duration::from_millis(100));
            let log = log.lock().map(|log| log.clone()).unwrap_or_default();
            panic!("unexpected first stdout line {line:?}; stderr:\n{log}");
        };
        Self {
            child,
            addr,
            tls_addr,
            log,
        }
    }

    /// Starts the server binary `runner` with `--no-color` and `args`.
    pub fn plain(runner: &str, args: &[&str]) -> Self {
        let mut all = vec!["--no-color"];
        all.extend_from_slice(args);
        Self::start(runner, &all)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address the server listens on for TLS (`--tls-listen`); fails if it does not.
    pub fn tls_addr(&self) -> SocketAddr {
        self.tls_addr
            .expect("the server was started without --tls-listen")
    }

    /// Connects a TLS client that trusts the CA certificates in `ca_pem` and expects the
    /// server to be `localhost`, and waits for the last line of its welcome banner.
    pub fn connect_tls(&self, ca_pem: &[u8]) -> Client {
        let mut client = Client::connect_tls(self.tls_addr(), ca_pem, "localhost")
            .unwrap_or_else(|error| panic!("TLS handshake with {}: {error}", self.tls_addr()));
        client.expect_line(" #lobby (");
        client
    }

    /// Connects a TLS client (as [`connect_tls`](Self::connect_tls)) that picks `nick`.
    pub fn join_tls(&self, ca_pem: &[u8], nick: &str) -> Client {
        let mut client = self.connect_tls(ca_pem);
        client.nick(nick);
        client
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Connects a client and waits for the last line of its welcome banner (the lobby's list), so
    /// the server has registered it before this returns.
    pub fn connect(&self) -> Client {
        let mut client = Client::connect(self.addr);
        client.expect_line(" #lobby (");
        client
    }

    /// Connects a client that picks `nick`, and waits until it has.
    pub fn join(&self, nick: &str) -> Client {
        let mut client = self.connect();
        client.nick(nick);
        client
    }

    /// A plain-text client that takes `nick`, registers it as an account (password
    /// `correct-horse-battery`), makes `room` and registers the room to it: its founder,
    /// talking in it.
    pub fn found_room(&self, nick: &str, room: &str) -> Client {
        let mut founder = self.join(nick);
        founder.send_line("/register correct-horse-battery");
        founder.expect_line(&format!(
            "*** You registered the account {nick}; you are identified as it."
        ));
        founder.send_line(&format!("/join {room}"));
        founder.expect_line(&format!("*** You are now talking in {room}."));
        founder.send_line("/register-room");
        founder.expect_line(&format!(
            "*** {nick} registered {room} to the account {nick}"
        ));
        founder
    }

    /// The address of the server's metrics (`--metrics 127.0.0.1:0`), from its log line
    /// `metrics on http://ADDR/metrics`.
    pub fn metrics_addr(&self) -> SocketAddr {
        let line = self.expect_log("metrics on http://");
        line.split("metrics on http://")
            .nth(1)
            .and_then(|rest| rest.strip_suffix("/metrics"))
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no metrics address in {line:?}"))
    }

    /// Everything the server has logged on stderr so far.
    pub fn log(&self) -> String {
        self.log
            .lock()
            .map(|log| log.clone())
            .unwrap_or_else(|poison| poison.into_inner().clone())
    }

    /// Waits until a log line contains `text`, and returns that line.
    pub fn expect_log(&self, text: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let log = self.log();
            if let Some(line) = log.lines().find(|line| line.contains(text)) {
                return line.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no log line containing {text:?} within {WAIT:?}; the log so far:\n{log}"
            );
            thread::sleep(POLL);
        }
    }

    /// Sends `signal` (such as `"TERM"`) to the server.
    pub fn signal(&self, signal: &str) {
        send_signal(self.pid(), signal);
    }

    /// Waits for the server to exit on its own and returns its status.
    pub fn expect_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for chat-runner") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "chat-runner still running {WAIT:?} later; its log:\n{}",
                self.log()
            );
            thread::sleep(POLL);
        }
    }
}

impl Drop for Server {
    /// Kills the server. When the test is failing, prints the server's log too, so that it
    /// shows up with the test's output.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let status = self.child.wait();
        if thread::panicking() {
            // Give the stderr thread a moment to take the last lines.
            thread::sleep(Duration::from_millis(50));
            eprintln!(
                "chat-runner on {} ({status:?}) logged:\n{}",
                self.addr,
                self.log()
            );
        }
    }
}

/// One connection to the server, with everything it has received kept for error messages.
///
/// Lines are returned without their `\r\n` (or `\n`), decoded lossily as UTF-8.
#[derive(Debug)]
pub struct Client {
    stream: Connection,
    /// Received bytes not yet returned as lines.
    pending: Vec<u8>,
    /// Every byte received, for assertions on raw output and for failure messages.
    received: Vec<u8>,
    /// The server closed the connection (or reset it).
    closed: bool,
}

/// A client's connection: plain, or TLS (rustls, blocking, over the same kind of socket).
#[derive(Debug)]
enum Connection {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Connection {
    fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(stream) => stream,
            Self::Tls(stream) => stream.get_ref(),
        }
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp().set_read_timeout(timeout)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().local_addr()
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.tcp().shutdown(how)
    }
}

impl Read for Connection {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(stream) => stream.read(buffer),
            Self::Tls(stream) => stream.read(buffer),
        }
    }
}

impl Write for Connection {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(stream) => stream.write(bytes),
            Self::Tls(stream) => stream.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(stream) => stream.flush(),
            Self::Tls(stream) => stream.flush(),
        }
    }
}

/// A TCP connection to `addr` with the test clients' settings.
fn tcp_connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, WAIT)
        .unwrap_or_else(|error| panic!("connecting to {addr}: {error}"));
    stream.set_nodelay(true).expect("set_nodelay");
    stream
        .set_write_timeout(Some(WAIT))
        .expect("set_write_timeout");
    stream
}

impl Client {
    /// Connects to `addr`; does not wait for anything.
    pub fn connect(addr: SocketAddr) -> Self {
        Self::over(Connection::Plain(tcp_connect(addr)))
    }

    /// Connects to `addr` over TLS, trusting only the CA certificates in `ca_pem` and
    /// expecting a certificate for `server_name` (a host name or an IP address), and completes
    /// the handshake (within [`WAIT`]). The error is rustls's, for tests of a handshake that
    /// must fail.
    pub fn connect_tls(addr: SocketAddr, ca_pem: &[u8], server_name: &str) -> io::Result<Self> {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem) {
            roots
                .add(cert.expect("a PEM CA certificate"))
                .expect("a usable CA certificate");
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name =
            rustls::pki_types::ServerName::try_from(server_name.to_owned()).expect("a server name");
        let mut connection =
            rustls::ClientConnection::new(Arc::new(config), name).expect("a TLS client");
        let mut tcp = tcp_connect(addr);
        tcp.set_read_timeout(Some(WAIT)).expect("set_read_timeout");
        while connection.is_handshaking() {
            connection.complete_io(&mut tcp)?;
        }
        Ok(Self::over(Connection::Tls(Box::new(
            rustls::StreamOwned::new(connection, tcp),
        ))))
    }

    /// The certificate the server presented (DER), for a TLS client; `None` for a plain one.
    pub fn peer_certificate(&self) -> Option<Vec<u8>> {
        match &self.stream {
            Connection::Plain(_) => None,
            Connection::Tls(stream) => stream
                .conn
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|cert| cert.to_vec()),
        }
    }

    fn over(stream: Connection) -> Self {
        Self {
            stream,
            pending: Vec::new(),
            received: Vec::new(),
            closed: false,
        }
    }

    /// Caps the kernel's receive buffer for this connection (`SO_RCVBUF`, which also stops the
    /// kernel from growing it), for a test client that stops reading: how much the kernel
    /// takes for a client that does not read then no longer depends on the machine
    /// (`net.ipv4.tcp_rmem` allows 32 MB on some), so the server's handling of it is reached
    /// within a bounded number of lines.
    pub fn limit_receive_buffer(&self, bytes: usize) {
        rustix::net::sockopt::set_socket_recv_buffer_size(self.stream.tcp(), bytes)
            .expect("setting SO_RCVBUF");
    }

    /// The client's own address, as the server's log shows the peer.
    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().expect("local_addr")
    }

    /// Writes `bytes` as they are (no line ending is added).
    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        let bytes = bytes.as_ref();
        if let Err(error) = self
            .stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush())
        {
            panic!(
                "sending {:?}: {error}; received so far: {}",
                String::from_utf8_lossy(bytes),
                self.describe()
            );
        }
    }

    /// Writes `line` followed by `\n`.
    pub fn send_line(&mut self, line: &str) {
        self.send(format!("{line}\n"));
    }

    /// Picks `nick` and waits for the confirmation.
    pub fn nick(&mut self, nick: &str) {
        self.send_line(&format!("/nick {nick}"));
        let line = self.expect_line("You are now known as ");
        assert!(line.contains(nick), "asked for {nick:?}, got {line:?}");
    }

    /// Closes the sending side, as a client that is done talking does.
    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Every byte received so far, including lines already returned.
    pub fn received(&self) -> &[u8] {
        &self.received
    }

    /// The next complete line, waiting up to [`WAIT`] for it.
    pub fn next_line(&mut self) -> String {
        self.next_line_within(WAIT, "any line")
    }

    /// Skips lines until one contains `text`, and returns it. Fails after [`WAIT`], or when the
    /// connection closes first.
    pub fn expect_line(&mut self, text: &str) -> String {
        self.expect_line_where(
            |line| line.contains(text),
            &format!("a line containing {text:?}"),
        )
    }

    /// Skips lines until one satisfies `matches`, and returns it; `what` describes it for the
    /// failure message.
    pub fn expect_line_where(&mut self, matches: impl Fn(&str) -> bool, what: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let line =
                self.next_line_within(deadline.saturating_duration_since(Instant::now()), what);
            if matches(&line) {
                return line;
            }
        }
    }

    /// Sends a command only this client gets an answer to, and waits for that answer. Returns
    /// the lines that arrived before it: since the server answers in order, they are all the
    /// server had sent this client before it read the barrier.
    pub fn sync(&mut self) -> Vec<String> {
        let token = format!("/sync-barrier-{}", next_barrier());
        self.send_line(&token);
        let answer = format!("unknown command {token};");
        self.lines_before(&format!("the reply to {token}"), |line| {
            line.contains(&answer)
        })
    }

    /// As [`Client::sync`], for a registered IRC client: a `PING` whose `PONG` only this
    /// client gets.
    pub fn irc_sync(&mut self) -> Vec<String> {
        let token = format!("irc-sync-barrier-{}", next_barrier());
        self.send(format!("PING :{token}\r\n"));
        self.lines_before(&format!("the PONG to {token}"), |line| {
            line.contains(" PONG ") && line.ends_with(&token)
        })
    }

    /// The lines that arrive before the first that `is_answer` takes (which is read too),
    /// failing after [`WAIT`].
    fn lines_before(&mut self, what: &str, is_answer: impl Fn(&str) -> bool) -> Vec<String> {
        let mut before = Vec::new();
        let deadline = Instant::now() + WAIT;
        loop {
            let line =
                self.next_line_within(deadline.saturating_duration_since(Instant::now()), what);
            if is_answer(&line) {
                return before;
            }
            before.push(line);
        }
    }

    /// Fails if any byte arrives within `quiet`.
    pub fn expect_silence(&mut self, quiet: Duration) {
        let deadline = Instant::now() + quiet;
        let before = self.received.len();
        while !self.closed && Instant::now() < deadline {
            self.fill(deadline);
            assert_eq!(
                self.received.len(),
                before,
                "expected silence for {quiet:?}, got {:?}; received so far: {}",
                String::from_utf8_lossy(&self.received[before..]),
                self.describe()
            );
        }
        assert!(
            !self.closed,
            "expected silence, but the server closed the connection; received: {}",
            self.describe()
        );
    }

    /// Reads until the server closes the connection, failing after [`WAIT`]. What arrives
    /// meanwhile is kept in [`received`](Self::received) and may still be read as lines.
    pub fn expect_closed(&mut self) {
        let deadline = Instant::now() + WAIT;
        while !self.closed {
            assert!(
                Instant::now() < deadline,
                "the server did not close the connection within {WAIT:?}; received: {}",
                self.describe()
            );
            self.fill(deadline);
        }
    }

    /// The next line, waiting at most `within`.
    fn next_line_within(&mut self, within: Duration, what: &str) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(end) = self.pending.iter().position(|&byte| byte == b'\n') {
                let mut line: Vec<u8> = self.pending.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return String::from_utf8_lossy(&line).into_owned();
            }
            assert!(
                !self.closed,
                "connection closed while waiting for {what}; received: {}",
                self.describe()
            );
            assert!(
                Instant::now() < deadline,
                "timed out after {within:?} waiting for {what}; received: {}",
                self.describe()
            );
            self.fill(deadline);
        }
    }

    /// One read, waiting until `deadline` at most. Sets `closed` at the end of the stream.
    fn fill(&mut self, deadline: Instant) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        self.stream
            .set_read_timeout(Some(left))
            .expect("set_read_timeout");
        let mut buffer = [0; 64 * 1024];
        match self.stream.read(&mut buffer) {
            Ok(0) => self.closed = true,
            Ok(read) => {
                self.pending.extend_from_slice(&buffer[..read]);
                self.received.extend_from_slice(&buffer[..read]);
            }
            Err(error)
                if matches!(
                    error.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(error)
                if matches!(
                    error.kind(),
                    ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                        // A TLS connection closed without close_notify.
                        | ErrorKind::UnexpectedEof
                ) =>
            {
                self.closed = true;
            }
            Err(error) => panic!("reading: {error}; received so far: {}", self.describe()),
        }
    }

    /// Everything received, quoted so that control bytes are visible.
    fn describe(&self) -> String {
        let text = String::from_utf8_lossy(&self.received);
        // Keep failure messages readable after a flood: show the end.
        const SHOWN: usize = 4000;
        let shown = match text.char_indices().nth_back(SHOWN) {
            Some((at, _)) => format!("[{} bytes] ...{:?}", self.received.len(), &text[at..]),
            None => format!("{text:?}"),
        };
        if self.closed {
            format!("{shown} (then closed)")
        } else {
            shown
        }
    }
}

/// Readers that each check, on a thread of their own, that numbered lines from `sender`
/// arrive complete and in order, for the tests of a client that stops reading.
#[derive(Debug)]
pub struct OrderedReaders {
    progress: Vec<Arc<AtomicUsize>>,
    threads: Vec<thread::JoinHandle<(bool, Client)>>,
}

impl OrderedReaders {
    /// Starts checking `readers`: each expects `sender: {message(n)}` for n = 0, 1, 2, …
    /// until `sender: end`, and notes whether it saw `departure` among them.
    pub fn spawn(readers: Vec<Client>, message: fn(usize) -> String, departure: &str) -> Self {
        let progress: Vec<Arc<AtomicUsize>> = readers.iter().map(|_| Arc::default()).collect();
        let threads = readers
            .into_iter()
            .zip(&progress)
            .map(|(mut reader, progress)| {
                let (progress, departure) = (Arc::clone(progress), departure.to_owned());
                thread::spawn(move || {
                    let mut saw_departure = false;
                    loop {
                        let line = reader.next_line();
                        if line == "sender: end" {
                            return (saw_departure, reader);
                        }
                        if line == departure {
                            saw_departure = true;
                            continue;
                        }
                        let next = progress.load(Ordering::SeqCst);
                        assert_eq!(line, format!("sender: {}", message(next)));
                        progress.store(next + 1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        Self { progress, threads }
    }

    /// Has `sender` send numbered lines from `from` on, `batch` at a time, each batch received
    /// in full by every reader before the next, until the server has logged a drop and at
    /// least `at_least` lines are out. Fails past `at_most` lines, or past `limit` if given.
    /// Returns how many lines were sent.
    pub fn broadcast_until_dropped(
        &self,
        server: &Server,
        sender: &mut Client,
        message: fn(usize) -> String,
        from: usize,
        (batch, at_least, at_most): (usize, usize, usize),
        limit: Option<Duration>,
    ) -> usize {
        let started = Instant::now();
        let mut sent = from;
        loop {
            for _ in 0..batch {
                sender.send_line(&message(sent));
                sent += 1;
            }
            let failed = || self.threads.iter().any(|thread| thread.is_finished());
            wait_until(&format!("every reader to get {sent} lines"), || {
                failed()
                    || self
                        .progress
                        .iter()
                        .all(|got| got.load(Ordering::SeqCst) == sent)
            });
            if failed() {
                return sent; // joining the reader in `finish` reports why
            }
            if sent >= at_least && server.log().contains("dropped:") {
                println!("sent {sent} lines before the drop");
                return sent;
            }
            assert!(
                sent < at_most && limit.is_none_or(|limit| started.elapsed() < limit),
                "no one was dropped after {sent} lines"
            );
        }
    }

    /// Has `sender` say `end` and returns each reader, with whether it saw the departure.
    pub fn finish(self, sender: &mut Client) -> Vec<(bool, Client)> {
        sender.send_line("end");
        self.threads
            .into_iter()
            .map(|thread| thread.join().expect("a reader failed"))
            .collect()
    }
}

/// The Python to run a test's script with (`CHAT_PYTHON`, or `python3`) if it can
/// `import {imports}`; else `None`, after [`skip_unless_required`] (`CHAT_REQUIRE_PYTHON`).
pub fn python_with(test: &str, imports: &str) -> Option<std::ffi::OsString> {
    let python =
        std::env::var_os("CHAT_PYTHON").unwrap_or_else(|| std::ffi::OsString::from("python3"));
    let shown = python.to_string_lossy().into_owned();
    let unavailable = match Command::new(&python)
        .args(["-c", &format!("import {imports}")])
        .output()
    {
        Ok(output) if output.status.success() => return Some(python),
        Ok(output) => format!(
            "{shown} cannot import {imports}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Err(error) => format!("{shown} could not be run: {error}"),
    };
    skip_unless_required(
        "CHAT_REQUIRE_PYTHON",
        test,
        &unavailable,
        "`pip install irc`, or set CHAT_PYTHON to a Python that has it",
    );
    None
}
