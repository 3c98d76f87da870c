//! Cluster mode over real sockets: `chat-runner` nodes sharing one Redis, with plain-text and
//! IRC clients. A nickname is one person's across the nodes; a node killed outright loses its
//! nicknames within its lease; a node whose Redis stops and starts again (empty) claims its
//! people's nicknames again. The command line's cluster flags are checked without Redis.
//!
//! The Redis is `CHAT_REDIS_URL` (see the README). Without it the tests that need one print a
//! loud `SKIPPED` line and pass, unless `CHAT_REQUIRE_REDIS=1` (CI), which fails them. Tests
//! run in parallel on one Redis: each names its nodes and nicknames after itself, the process
//! and the time. The restart test runs a `redis-server` of its own, on a port of its own.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use chat_tests::{Client, Server};

/// The server binary, built by cargo for these tests.
const RUNNER: &str = env!("CARGO_BIN_EXE_chat-runner");

/// How long a node may take to exit after a bad start (connecting gives up after 5 s).
const EXIT_WAIT: Duration = Duration::from_secs(10);

/// The Redis to test against, or `None` (after a loud line on stderr) to skip `test`. With
/// `CHAT_REQUIRE_REDIS=1` (CI) a missing Redis fails the test instead.
fn redis_url(test: &str) -> Option<String> {
    if let Some(url) = std::env::var("CHAT_REDIS_URL")
        .ok()
        .filter(|url| !url.is_empty())
    {
        return Some(url);
    }
    assert!(
        std::env::var("CHAT_REQUIRE_REDIS").as_deref() != Ok("1"),
        "{test}: CHAT_REQUIRE_REDIS=1, but CHAT_REDIS_URL is not set (start redis-server and \
         set it, e.g. CHAT_REDIS_URL=redis://127.0.0.1:6379/)"
    );
    // Not through eprintln!, which the harness swallows for a test that passes.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: CHAT_REDIS_URL is not set (start redis-server and set it; CI sets \
         CHAT_REQUIRE_REDIS=1)"
    );
    None
}

/// A number new to this process and moment, for names no other run uses.
fn unique() -> u32 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos());
    (std::process::id().wrapping_mul(7919) ^ nanos) & 0xff_ffff
}

/// A nickname of this test and run: `tag` and 6 hex digits (within 16 characters).
fn unique_nick(tag: &str) -> String {
    format!("{tag}{:06x}", unique())
}

/// A node of this test and run.
fn node_name(tag: &str) -> String {
    format!("{tag}-{}-{:06x}", std::process::id(), unique())
}

/// A node on `url` named after `tag`, with `extra` flags; killed when dropped.
fn node(url: &str, tag: &str, extra: &[&str]) -> Server {
    let name = node_name(tag);
    let mut args = vec!["--cluster", url, "--node", &name];
    args.extend_from_slice(extra);
    Server::plain(RUNNER, &args)
}

/// Asks for `nick` as a plain-text user; true if granted, false if taken elsewhere.
fn try_nick(client: &mut Client, nick: &str) -> bool {
    client.send_line(&format!("/nick {nick}"));
    let answer = client.expect_line_where(
        |line| line.contains("You are now known as") || line.contains("*** error:"),
        &format!("the answer to /nick {nick}"),
    );
    if answer == format!("*** You are now known as {nick}.") {
        return true;
    }
    assert!(
        answer.starts_with(&format!("*** error: the nickname {nick} is taken;")),
        "{answer}"
    );
    false
}

/// Asks for `nick` every 100 ms until it is granted, for at most `within`; how long it took.
fn nick_within(client: &mut Client, nick: &str, within: Duration) -> Duration {
    let started = Instant::now();
    while !try_nick(client, nick) {
        assert!(
            started.elapsed() < within,
            "{nick} was still taken after {within:?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
    started.elapsed()
}

/// Runs `chat-runner` with `args` until it exits by itself (within [`EXIT_WAIT`]).
fn run(args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = Command::new(RUNNER)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning chat-runner");
    while child.try_wait().expect("waiting for chat-runner").is_none() {
        if started.elapsed() > EXIT_WAIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chat-runner {args:?} did not exit within {EXIT_WAIT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
    let output = child
        .wait_with_output()
        .expect("collecting chat-runner's output");
    (output, started.elapsed())
}

#[test]
fn a_nickname_is_one_persons_across_the_nodes() {
    let test = "a_nickname_is_one_persons_across_the_nodes";
    let Some(url) = redis_url(test) else { return };
    let (a, b) = (node(&url, "one-a", &[]), node(&url, "one-b", &[]));
    let nick = unique_nick("al");
    let upper = nick.to_ascii_uppercase();

    let mut ann = a.connect();
    ann.nick(&nick);
    let mut bob = b.connect();
    assert!(!try_nick(&mut bob, &nick), "{nick} granted on both nodes");
    assert!(!try_nick(&mut bob, &upper), "{upper} granted on both nodes");

    // An IRC client on b: 433, and it registers under another name.
    let mut irc = b.connect();
    irc.send(format!("NICK {nick}\r\nUSER ir 0 * :Irc\r\n"));
    let refused = irc.expect_line_where(
        |line| line.contains(" 433 ") || line.contains(" 001 "),
        "the answer to NICK",
    );
    assert_eq!(
        refused,
        format!(":chat.local 433 * {nick} :Nickname is already in use")
    );
    let other = unique_nick("ir");
    irc.send(format!("NICK {other}\r\n"));
    let welcome = irc.expect_line_where(|line| line.contains(" 001 "), "the welcome");
    assert!(
        welcome.contains(&format!(" 001 {other} :Welcome")),
        "{welcome}"
    );

    // A change of case is still ann's.
    ann.nick(&upper);
    // A rename on a frees the name for b: the release goes after the rename, so b may have to
    // ask again.
    let renamed = unique_nick("an");
    ann.nick(&renamed);
    nick_within(&mut bob, &nick, Duration::from_secs(2));
    assert!(!try_nick(&mut ann, &nick), "{nick} granted on both nodes");
    assert!(!try_nick(&mut ann, &other), "{other} granted on both nodes");

    // Leaving frees it too.
    bob.send_line("/quit");
    bob.expect_closed();
    nick_within(&mut ann, &nick, Duration::from_secs(2));
    irc.send("QUIT :bye\r\n");
    irc.expect_closed();
    nick_within(&mut ann, &other, Duration::from_secs(2));

    // ann gives up a name and cid, on the same node, asks for it at once, while its release
    // may still be on its way: the release and the claim must not cross, or Redis would end
    // up freeing cid's name.
    let mut cid = a.connect();
    ann.nick(&renamed);
    cid.nick(&other);
    let mut dee = b.connect();
    stays_taken(&mut dee, &other, Duration::from_secs(1));
}

/// Asks for `nick` on `client` every 100 ms for `during`, failing if it is ever granted.
fn stays_taken(client: &mut Client, nick: &str, during: Duration) {
    let started = Instant::now();
    while started.elapsed() < during {
        assert!(!try_nick(client, nick), "{nick} granted on two nodes");
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_irc_client_holds_its_nickname_while_it_registers() {
    let test = "an_irc_client_holds_its_nickname_while_it_registers";
    let Some(url) = redis_url(test) else { return };
    // On b, IRC clients speak before the plain-text welcome would come: never in a room
    // before they register, no one sees their nickname until then.
    let (a, b) = (
        node(&url, "reg-a", &[]),
        node(&url, "reg-b", &["--greeting-delay", "10000"]),
    );
    let (nick, other) = (unique_nick("re"), unique_nick("go"));
    let mut ann = a.connect();

    // Negotiating capabilities, it is granted its nickname unseen (no event tells of it), and
    // it is not registered until CAP END.
    let mut irc = Client::connect(b.addr());
    irc.send(format!("CAP LS 302\r\nNICK {nick}\r\n"));
    irc.expect_line(" CAP * LS ");
    thread::sleep(Duration::from_millis(300));
    stays_taken(&mut ann, &nick, Duration::from_secs(1));
    irc.send("USER re 0 * :Re\r\nCAP END\r\n");
    let welcome = irc.expect_line_where(|line| line.contains(" 001 "), "the welcome");
    assert!(
        welcome.contains(&format!(" 001 {nick} :Welcome")),
        "{welcome}"
    );
    stays_taken(&mut ann, &nick, Duration::from_millis(500));

    // One that leaves before registering never arrived, so never departs: its nickname still
    // goes back.
    let mut gone = Client::connect(b.addr());
    gone.send(format!("CAP LS 302\r\nNICK {other}\r\n"));
    gone.expect_line(" CAP * LS ");
    thread::sleep(Duration::from_millis(300));
    assert!(!try_nick(&mut ann, &other), "{other} granted on two nodes");
    drop(gone);
    nick_within(&mut ann, &other, Duration::from_secs(2));
}

#[test]
fn a_killed_nodes_nicknames_come_free_within_its_lease() {
    let test = "a_killed_nodes_nicknames_come_free_within_its_lease";
    let Some(url) = redis_url(test) else { return };
    let lease = Duration::from_secs(2);
    let (a, b) = (
        node(&url, "kill-a", &["--lease", "2"]),
        node(&url, "kill-b", &[]),
    );
    let nick = unique_nick("ki");
    let mut ann = a.connect();
    ann.nick(&nick);
    let mut bob = b.connect();
    assert!(!try_nick(&mut bob, &nick));
    // Renewed meanwhile, a's lease outlives what follows.
    thread::sleep(lease);
    assert!(!try_nick(&mut bob, &nick), "a lost its nick while alive");

    a.signal("KILL");
    let killed = Instant::now();
    // Renewed at most a third of the lease ago: it has more than a second left.
    assert!(
        !try_nick(&mut bob, &nick),
        "free as soon as its node was killed"
    );
    nick_within(&mut bob, &nick, lease + Duration::from_secs(2));
    println!("{nick} was free {:?} after the kill", killed.elapsed());
}

/// A `redis-server` of the test's own, killed when dropped.
struct PrivateRedis {
    child: Option<Child>,
    port: u16,
}

impl PrivateRedis {
    /// Starts one on a free port, or `None` if `redis-server` is not installed.
    fn start() -> Option<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut redis = Self { child: None, port };
        redis.run().then_some(redis)
    }

    /// Starts the server (again) on its port, and waits until it answers.
    fn run(&mut self) -> bool {
        let spawned = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = spawned else {
            return false;
        };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            thread::sleep(Duration::from_millis(20));
        }
        true
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server: everything it held is lost (it keeps nothing on disk).
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn a_node_claims_its_nicknames_again_after_redis_comes_back() {
    let test = "a_node_claims_its_nicknames_again_after_redis_comes_back";
    // Runs with the other cluster tests, on a Redis of its own.
    if redis_url(test).is_none() {
        return;
    }
    let Some(mut redis) = PrivateRedis::start() else {
        assert!(
            std::env::var("CHAT_REQUIRE_REDIS").as_deref() != Ok("1"),
            "{test}: CHAT_REQUIRE_REDIS=1, but redis-server could not be started"
        );
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: redis-server is not installed"
        );
        return;
    };
    let url = redis.url();
    let a = node(&url, "back-a", &["--lease", "1"]);
    let nick = unique_nick("ba");
    let mut ann = a.connect();
    ann.nick(&nick);

    redis.stop();
    a.expect_log("cluster: Redis out of reach: ");
    let mut cid = a.connect();
    let wanted = unique_nick("ca");
    cid.send_line(&format!("/nick {wanted}"));
    cid.expect_line(&format!(
        "*** error: the nickname {wanted} could not be checked with the other servers; try again"
    ));

    // Back, empty: the lease has lapsed, and a claims its people's nicks again.
    assert!(redis.run(), "redis-server could not be started again");
    a.expect_log("cluster: Redis answers again");
    a.expect_log("claiming again the 1 nickname(s) of the people here");
    let tally = a.expect_log("cluster: nicknames claimed again: ");
    assert!(tally.contains(": 1 granted, 0 taken"), "{tally}");
    let b = node(&url, "back-b", &[]);
    let mut bob = b.connect();
    assert!(!try_nick(&mut bob, &nick), "{nick} not claimed again");
    assert!(try_nick(&mut cid, &wanted), "claims work again");
    assert!(!try_nick(&mut bob, &wanted));
}

#[test]
fn a_node_that_cannot_reach_redis_exits_with_a_clear_message() {
    let (output, took) = run(&[
        "--no-data",
        "--listen",
        "127.0.0.1:0",
        "--cluster",
        "redis://127.0.0.1:1/",
        "--node",
        "lonely",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "chat-runner: cannot join the cluster at redis://127.0.0.1:1/: cannot connect to \
             Redis at 127.0.0.1:1: "
        ),
        "{stderr}"
    );
    assert!(
        output.stdout.is_empty(),
        "it said it was listening: {output:?}"
    );
    println!("gave up after {took:?}");
}

#[test]
fn a_password_in_the_cluster_url_is_never_shown() {
    let (output, _) = run(&[
        "--no-data",
        "--listen",
        "127.0.0.1:0",
        "--cluster",
        "redis://:hunter2@127.0.0.1:1/",
        "--node",
        "lonely",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot join the cluster at redis://…@127.0.0.1:1/: "),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn cluster_flags_go_together_or_are_refused() {
    for (args, message) in [
        (
            &["--node", "a"][..],
            "--node names this node in a cluster: use it with --cluster",
        ),
        (&["--lease", "5"], "--lease is a cluster node's"),
        (
            &["--cluster", "redis://127.0.0.1:1/"],
            "--cluster needs --node NAME",
        ),
        (
            &["--cluster", "redis://127.0.0.1:1/", "--node", "a:b"],
            "--node: not a node name: \"a:b\" contains ':'",
        ),
        (
            &[
                "--cluster",
                "redis://127.0.0.1:1/",
                "--node",
                &"n".repeat(33),
            ],
            "--node: not a node name: more than 32 bytes",
        ),
        (
            &[
                "--cluster",
                "redis://127.0.0.1:1/",
                "--node",
                "a",
                "--lease",
                "0",
            ],
            "--lease: the lease must be from 1 to 300 s, not 0 s",
        ),
        (
            &[
                "--cluster",
                "redis://127.0.0.1:1/",
                "--node",
                "a",
                "--lease",
                "301",
            ],
            "--lease: the lease must be from 1 to 300 s, not 301 s",
        ),
        (
            &["--cluster", "http://127.0.0.1/", "--node", "a"],
            "--cluster: not a Redis URL",
        ),
        (
            &[
                "--cluster",
                "redis://127.0.0.1:1/",
                "--node",
                "a",
                "--record",
                "x",
            ],
            "--record cannot go with --cluster",
        ),
    ] {
        let (output, _) = run(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}
