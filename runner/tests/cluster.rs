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
use std::net::{Shutdown, TcpListener};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use chat_tests::{Client, Server, redis_url};

/// The server binary, built by cargo for these tests.
const RUNNER: &str = env!("CARGO_BIN_EXE_chat-runner");

/// How long a node may take to exit after a bad start (connecting gives up after 5 s).
const EXIT_WAIT: Duration = Duration::from_secs(10);

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
    chat_tests::run_to_exit(RUNNER, args, EXIT_WAIT)
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

/// How many ports [`private_port`] gives before it gives the first again.
const PRIVATE_PORTS: u32 = 12_000;

/// A port for a [`PrivateRedis`], from 20000 to 31999 (below the ephemeral ports): a new one
/// each call, from one that depends on this process.
fn private_port() -> u16 {
    use std::sync::atomic::AtomicU32;
    static CALLS: AtomicU32 = AtomicU32::new(0);
    let call = CALLS.fetch_add(1, Ordering::SeqCst);
    let offset = std::process::id().wrapping_add(call) % PRIVATE_PORTS;
    u16::try_from(20_000 + offset).expect("a port")
}

/// Whether a Redis answers `PING` on `port` of the loopback address.
fn answers_ping(port: u16) -> bool {
    use std::io::Read;
    let Ok(mut redis) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let mut answer = [0_u8; 7];
    redis.set_read_timeout(Some(Duration::from_secs(1))).is_ok()
        && redis.write_all(b"PING\r\n").is_ok()
        && redis.read_exact(&mut answer).is_ok()
        && &answer == b"+PONG\r\n"
}

/// A `redis-server` of the test's own, killed when dropped.
struct PrivateRedis {
    child: Option<Child>,
    port: u16,
}

impl PrivateRedis {
    /// Starts one on a free port, or `None` if `redis-server` is not installed.
    ///
    /// The port is below Linux's range of ephemeral ports (32768 to 60999 by default), where
    /// every node of the tests (listening on `127.0.0.1:0`) and every outgoing connection
    /// takes its port: a port from that range could be given to a node started by another
    /// test before redis-server binds it, or while it is stopped, and the nodes would then
    /// talk to a chat server.
    fn start() -> Option<Self> {
        for _ in 0..PRIVATE_PORTS {
            let port = private_port();
            if TcpListener::bind(("127.0.0.1", port)).is_err() {
                continue;
            }
            let mut redis = Self { child: None, port };
            match redis.launch() {
                None => return None,
                Some(true) => return Some(redis),
                // Taken meanwhile: the next.
                Some(false) => {}
            }
        }
        panic!("no free port for redis-server among {PRIVATE_PORTS}");
    }

    /// Starts the server (again) on its port, and waits until it answers; false if it could
    /// not be started, or exited (its port taken).
    fn run(&mut self) -> bool {
        self.launch() == Some(true)
    }

    /// Starts the server on its port: `None` if it cannot be run at all, else whether it
    /// answers `PING` (false: it exited first). Fails if it does neither within 5 s.
    fn launch(&mut self) -> Option<bool> {
        let spawned = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        // Kept at once, so that it is killed when dropped, however this ends.
        let child = self.child.insert(spawned.ok()?);
        let deadline = Instant::now() + Duration::from_secs(5);
        // A PONG, not a mere connection: a node listening there would take one too.
        while !answers_ping(self.port) {
            if child.try_wait().ok().flatten().is_some() {
                self.child = None;
                return Some(false);
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            thread::sleep(Duration::from_millis(20));
        }
        Some(true)
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
        chat_tests::skip_unless_required(
            "CHAT_REQUIRE_REDIS",
            test,
            "redis-server could not be started",
            "install it (Debian: apt-get install redis-server)",
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
fn a_nickname_taken_elsewhere_while_its_nodes_lease_lapsed_is_given_up_and_told() {
    let test = "a_nickname_taken_elsewhere_while_its_nodes_lease_lapsed_is_given_up_and_told";
    let Some(url) = redis_url(test) else { return };
    let url = fresh_db(&url, 6);
    let a = node(&url, "lapse-a", &["--lease", "1"]);
    let b = node(&url, "lapse-b", &[]);
    let nick = unique_nick("la");
    let mut ann = a.connect();
    ann.nick(&nick);
    let mut bob = b.connect();
    assert!(!try_nick(&mut bob, &nick), "{nick} is ann's");

    // a is paused past its lease: b's bob takes the nickname meanwhile.
    a.signal("STOP");
    let taken = nick_within(&mut bob, &nick, Duration::from_secs(5));
    println!("{nick} came free {taken:?} after a was paused");
    a.signal("CONT");

    // a finds its lease lapsed, claims its people's nicknames again, and finds this one
    // taken: ann goes by it no longer, and is told why.
    ann.expect_line("*** You are now known as anonymous-");
    let told = ann.expect_line("*** someone on another server took the nickname");
    assert!(told.contains(&nick), "{told}");
    a.expect_log(&format!(
        "took the nickname {nick} while this node's lease had lapsed"
    ));
    // One person goes by it: asking for it again on a is refused.
    assert!(!try_nick(&mut ann, &nick), "{nick} is bob's now");
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

/// `url` on Redis database `db`: each chat test has a database of its own, so that the nodes
/// of tests running side by side (who hear every room of their database, and every person)
/// stay apart.
fn on_db(url: &str, db: u8) -> String {
    let base = url.trim_end_matches('/');
    let base = match base.rsplit_once('/') {
        Some((head, tail))
            if !head.ends_with('/') && tail.bytes().all(|byte| byte.is_ascii_digit()) =>
        {
            head
        }
        _ => base,
    };
    format!("{base}/{db}")
}

/// Sends `commands` (each its words) to the Redis at `address` in RESP over a socket, so that
/// the tests need no Redis client, and returns what it answered to them, read until `until`
/// has come.
fn redis_commands(address: &str, commands: &[&[&str]], until: &[u8]) -> Vec<u8> {
    let mut redis = std::net::TcpStream::connect(address).expect("connecting to Redis");
    redis
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a read timeout");
    let mut request = String::new();
    for words in commands {
        request.push_str(&format!("*{}\r\n", words.len()));
        for word in *words {
            request.push_str(&format!("${}\r\n{word}\r\n", word.len()));
        }
    }
    redis.write_all(request.as_bytes()).expect("asking Redis");
    let mut answer = Vec::new();
    let mut buffer = [0_u8; 256];
    while !answer.ends_with(until) {
        use std::io::Read;
        match redis.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(count) => answer.extend_from_slice(&buffer[..count]),
        }
    }
    answer
}

/// Empties Redis database `db` of `url` (the test's own, see [`on_db`]): the nodes of an
/// earlier run, killed, would otherwise be listed until their lease lapses. A URL with a
/// password is left as it is.
fn flush_db(url: &str, db: u8) {
    let Some(address) = url
        .strip_prefix("redis://")
        .map(|rest| rest.split('/').next().unwrap_or_default())
        .filter(|address| !address.contains('@'))
    else {
        return;
    };
    let db = db.to_string();
    let answer = redis_commands(
        address,
        &[&["SELECT", &db], &["FLUSHDB"]],
        b"+OK\r\n+OK\r\n",
    );
    assert_eq!(answer, b"+OK\r\n+OK\r\n", "SELECT and FLUSHDB");
}

/// The URL of database `db` of `url`, emptied: see [`on_db`] and [`flush_db`].
fn fresh_db(url: &str, db: u8) -> String {
    flush_db(url, db);
    on_db(url, db)
}

/// Waits until `client` (plain text) finds `nick` in `room` with `/list`.
fn wait_listed(client: &mut Client, room: &str, nick: &str) {
    chat_tests::wait_until(&format!("{nick} listed in {room}"), || {
        client.send_line("/list");
        let list = client.expect_line(&format!("*** {room} ("));
        list.contains(&format!(" {nick},"))
            || list.contains(&format!(" {nick} "))
            || list.ends_with(&format!(" {nick}"))
    });
}

/// Registers an IRC client as `nick` (after the plain-text welcome of a test server).
fn irc_join(node: &Server, nick: &str) -> Client {
    let mut client = node.connect();
    client.send(format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n"));
    client.expect_line(&format!(" 001 {nick} "));
    // Through the lobby's names, which come with the registration.
    client.expect_line(" 366 ");
    client
}

#[test]
fn people_on_three_nodes_share_rooms_and_private_messages() {
    let test = "people_on_three_nodes_share_rooms_and_private_messages";
    let Some(url) = redis_url(test) else { return };
    let url = fresh_db(&url, 1);
    let (a, b, c) = (
        node(&url, "share-a", &[]),
        node(&url, "share-b", &[]),
        node(&url, "share-c", &[]),
    );
    let (ann, bob, cat) = (unique_nick("an"), unique_nick("bo"), unique_nick("ca"));
    let mut alice = a.join(&ann);
    let mut irc = irc_join(&b, &bob);
    // The original client's JSON, on c.
    let mut json = c.connect();
    json.send(format!(r#"{{"type":"nickname","message":"{cat}"}}"#));
    json.expect_line("You are now known as ");

    // Each sees the others arrive, as if they were on the same server.
    alice.expect_line(&format!("*** {bob} joined #lobby"));
    alice.expect_line(&format!("*** {cat} joined #lobby"));
    let joined = irc.expect_line(&format!(":{cat}!remote@"));
    assert!(joined.ends_with(" JOIN #lobby"), "{joined}");

    // A room line from a reaches b and c, in each one's dialect.
    alice.send_line("hello from a");
    let heard = irc.expect_line("hello from a");
    assert!(
        heard.starts_with(&format!(":{ann}!remote@share-a-"))
            && heard.ends_with(" PRIVMSG #lobby :hello from a"),
        "{heard}"
    );
    json.expect_line(&format!("{ann}: hello from a"));
    irc.send("PRIVMSG #lobby :\x01ACTION waves from b\x01\r\n");
    alice.expect_line(&format!("* {bob} waves from b"));
    json.expect_line(&format!("* {bob} waves from b"));

    // Listings name everyone, wherever they are.
    irc.send("NAMES #lobby\r\n");
    let names = irc.expect_line(" 353 ");
    for nick in [&ann, &bob, &cat] {
        assert!(names.contains(nick.as_str()), "{nick} not in {names}");
    }
    irc.send(format!("WHOIS {cat}\r\n"));
    let server = irc.expect_line(" 312 ");
    assert!(server.contains(" share-c-"), "{server}");
    alice.send_line("/list");
    let list = alice.expect_line("*** #lobby (3)");
    assert!(list.contains(&bob) && list.contains(&cat), "{list}");

    // Private messages cross nodes both ways.
    irc.send(format!("PRIVMSG {ann} :psst from b\r\n"));
    alice.expect_line(&format!("[private] {bob}: psst from b"));
    json.send(format!(
        r#"{{"type":"client","user":"{ann}","message":"psst from c"}}"#
    ));
    alice.expect_line(&format!("[private] {cat}: psst from c"));
    alice.send_line(&format!("/msg {bob} back to b"));
    let private = irc.expect_line("back to b");
    assert!(
        private.ends_with(&format!(" PRIVMSG {bob} :back to b")),
        "{private}"
    );

    // A new room, a rename, a departure: told everywhere.
    alice.send_line("/join #cluster-talk");
    alice.expect_line("*** #cluster-talk (1)");
    chat_tests::wait_until("b knows alice is in #cluster-talk", || {
        irc.send(format!("WHOIS {ann}\r\n"));
        let mut in_it = false;
        loop {
            let line = irc.next_line();
            in_it |= line.contains(" 319 ") && line.contains("#cluster-talk");
            if line.contains(" 318 ") {
                return in_it;
            }
        }
    });
    irc.send("JOIN #cluster-talk\r\n");
    let names = irc.expect_line(" 353 ");
    assert!(names.contains(&ann), "{names}");
    alice.expect_line(&format!("*** {bob} joined #cluster-talk (2 here)"));
    let renamed = unique_nick("al");
    alice.nick(&renamed);
    let nick_line = irc.expect_line(" NICK ");
    assert!(
        nick_line.ends_with(&format!(" NICK :{renamed}")),
        "{nick_line}"
    );
    json.expect_line(&format!("*** {ann} is now known as {renamed}"));
    alice.send_line("/quit bye");
    let quit = irc.expect_line(" QUIT ");
    assert!(
        quit.starts_with(&format!(":{renamed}!remote@")) && quit.contains("bye"),
        "{quit}"
    );
    json.expect_line(&format!("*** {renamed} left"));
}

#[test]
fn a_rooms_topic_is_one_across_the_nodes_and_found_by_a_node_that_comes_later() {
    let test = "a_rooms_topic_is_one_across_the_nodes_and_found_by_a_node_that_comes_later";
    let Some(url) = redis_url(test) else { return };
    let url = fresh_db(&url, 5);
    let (a, b) = (node(&url, "topic-a", &[]), node(&url, "topic-b", &[]));
    let (ann, bob, cat) = (unique_nick("an"), unique_nick("bo"), unique_nick("ca"));
    let mut alice = a.join(&ann);
    let mut irc = irc_join(&b, &bob);
    alice.expect_line(&format!("*** {bob} joined #lobby"));

    // Set on a: shown on both, by the same name.
    alice.send_line("/topic set on a");
    alice.expect_line(&format!("*** {ann} set the topic of #lobby: set on a"));
    let topic = irc.expect_line(" TOPIC #lobby ");
    assert!(
        topic.starts_with(&format!(":{ann}!remote@topic-a-"))
            && topic.ends_with(" TOPIC #lobby :set on a"),
        "{topic}"
    );
    // Set on b: its setter gets its answer when the topic has its place.
    irc.send("TOPIC #lobby :set on b\r\n");
    let answer = irc.expect_line(" TOPIC #lobby ");
    assert!(
        answer.starts_with(&format!(":{bob}!")) && answer.ends_with(" TOPIC #lobby :set on b"),
        "{answer}"
    );
    alice.expect_line(&format!("*** {bob} set the topic of #lobby: set on b"));
    alice.send_line("/topic");
    alice.expect_line("*** Topic of #lobby: set on b");
    irc.send("TOPIC #lobby\r\n");
    let current = irc.expect_line(" 332 ");
    assert!(current.ends_with(" #lobby :set on b"), "{current}");

    // A room of a's with a topic.
    alice.send_line("/join #topical");
    alice.expect_line("*** #topical (1)");
    alice.send_line("/topic deep");
    alice.expect_line(&format!("*** {ann} set the topic of #topical: deep"));

    // A node started after both topics were set shows them: the lobby's, and that of a room
    // it learns of from a's people.
    let c = node(&url, "topic-c", &[]);
    let mut carol = c.join(&cat);
    chat_tests::wait_until("c shows the lobby's topic", || {
        carol.send_line("/topic");
        carol.expect_line("opic") == "*** Topic of #lobby: set on b"
    });
    wait_listed(&mut carol, "#lobby", &ann);
    carol.send_line("/join #topical");
    carol.expect_line("*** #topical (2)");
    chat_tests::wait_until("c shows the topic of #topical", || {
        carol.send_line("/topic");
        carol.expect_line("opic") == "*** Topic of #topical: deep"
    });

    // Cleared on c: cleared everywhere.
    carol.send_line("/topic -");
    carol.expect_line(&format!("*** {cat} cleared the topic of #topical"));
    alice.expect_line(&format!("*** {cat} cleared the topic of #topical"));
    alice.send_line("/topic");
    alice.expect_line("*** #topical has no topic.");
}

#[test]
fn a_rooms_lines_have_one_order_on_every_node() {
    let test = "a_rooms_lines_have_one_order_on_every_node";
    let Some(url) = redis_url(test) else { return };
    let url = fresh_db(&url, 2);
    let nodes = [
        node(&url, "order-a", &[]),
        node(&url, "order-b", &[]),
        node(&url, "order-c", &[]),
    ];
    const LINES: usize = 100;
    // On each node a speaker and a listener, in a room of their own.
    let mut listeners: Vec<Client> = nodes
        .iter()
        .map(|node| {
            let mut listener = node.join(&unique_nick("li"));
            listener.send_line("/join #order");
            listener.expect_line("*** #order (");
            listener
        })
        .collect();
    let speakers: Vec<Client> = nodes
        .iter()
        .map(|node| {
            let mut speaker = node.join(&unique_nick("sp"));
            speaker.send_line("/join #order");
            speaker.expect_line("*** #order (");
            speaker
        })
        .collect();
    // Everyone is known everywhere before the lines start.
    for listener in &mut listeners {
        chat_tests::wait_until("six people in #order", || {
            listener.send_line("/list");
            listener
                .expect_line("*** #order (")
                .starts_with("*** #order (6)")
        });
    }
    // The three speakers at once, each as fast as it can.
    let speaking: Vec<_> = speakers
        .into_iter()
        .enumerate()
        .map(|(n, mut speaker)| {
            thread::spawn(move || {
                for line in 0..LINES {
                    speaker.send_line(&format!("line {n}.{line}"));
                }
                speaker
            })
        })
        .collect();
    let _speakers: Vec<Client> = speaking
        .into_iter()
        .map(|speaking| speaking.join().expect("a speaker"))
        .collect();
    let heard: Vec<Vec<String>> = listeners
        .iter_mut()
        .map(|listener| {
            (0..3 * LINES)
                .map(|_| {
                    listener
                        .expect_line(": line ")
                        .split_once(": ")
                        .unwrap()
                        .1
                        .to_owned()
                })
                .collect()
        })
        .collect();
    // Each speaker's lines in the order sent, and the same interleaving on every node.
    for n in 0..3 {
        let own: Vec<&String> = heard[0]
            .iter()
            .filter(|line| line.starts_with(&format!("line {n}.")))
            .collect();
        let sent: Vec<String> = (0..LINES).map(|line| format!("line {n}.{line}")).collect();
        assert_eq!(own, sent.iter().collect::<Vec<_>>());
    }
    assert_eq!(heard[0], heard[1], "nodes a and b differ");
    assert_eq!(heard[0], heard[2], "nodes a and c differ");
}

/// The lines `client` (plain text, in `room`) gets from `/history 50`, as `nick: text`.
fn history(client: &mut Client, room: &str) -> Vec<String> {
    client.send_line("/history 50");
    let mut lines = Vec::new();
    loop {
        let line = client.next_line();
        if line == format!("*** End of history of {room}.")
            || line == format!("*** Nothing has been said in {room} yet.")
        {
            return lines;
        }
        // `[2026-12-01 09:33 UTC] alice: hello`
        if let Some((_, said)) = line.split_once(" UTC] ") {
            lines.push(said.to_owned());
        }
    }
}

#[test]
fn a_node_started_later_or_back_from_a_stop_shows_the_same_history() {
    let test = "a_node_started_later_or_back_from_a_stop_shows_the_same_history";
    let Some(url) = redis_url(test) else { return };
    let url = fresh_db(&url, 8);
    let a = node(&url, "hist-a", &[]);
    let ann = unique_nick("an");
    let mut alice = a.join(&ann);
    for line in ["one", "two", "three"] {
        alice.send_line(line);
    }
    let said = |range: std::ops::Range<usize>| -> Vec<String> {
        ["one", "two", "three", "four", "five"][range]
            .iter()
            .map(|line| format!("{ann}: {line}"))
            .collect()
    };
    // Kept when they come back in the room's order.
    chat_tests::wait_until("a's history has its lines", || {
        history(&mut alice, "#lobby") == said(0..3)
    });

    // Started after the lines were said, with a store on disk: it has them.
    let data = chat_tests::TempDir::new("cluster-history");
    let mut b = node(&url, "hist-b", &["--data", data.arg()]);
    let mut carol = b.join(&unique_nick("ca"));
    chat_tests::wait_until("b's history has a's lines", || {
        history(&mut carol, "#lobby") == said(0..3)
    });

    // Stopped; lines said meanwhile; started again on its store: it has them too, once each.
    b.signal("TERM");
    b.expect_exit();
    for line in ["four", "five"] {
        alice.send_line(line);
    }
    chat_tests::wait_until("a's history has the new lines", || {
        history(&mut alice, "#lobby") == said(0..5)
    });
    // A line with a terminal escape in it, put in the stream behind the nodes' backs: b's
    // fill does not keep it (the core would refuse it too).
    let address = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or_default();
    let numbered = redis_commands(
        address,
        &[
            &["SELECT", "8"],
            &["HINCRBY", "chat:room:{#lobby}:meta", "seq", "1"],
        ],
        b"\r\n:",
    );
    let numbered = String::from_utf8_lossy(&numbered).into_owned();
    let seq: u64 = numbered
        .rsplit(':')
        .next()
        .and_then(|seq| seq.trim().parse().ok())
        .unwrap_or_else(|| panic!("HINCRBY answered {numbered:?}"));
    let payload = r#"{"v":1,"node":"evil","nick":"mallory","kind":"line","text":"\u001b[2Jgotcha","at":1,"person":null}"#;
    let added = redis_commands(
        address,
        &[
            &["SELECT", "8"],
            &[
                "XADD",
                "chat:room:{#lobby}:stream",
                &format!("{seq}-0"),
                "d",
                payload,
            ],
        ],
        format!("{seq}-0\r\n").as_bytes(),
    );
    assert!(
        added.ends_with(format!("{seq}-0\r\n").as_bytes()),
        "{}",
        String::from_utf8_lossy(&added)
    );
    let b = node(&url, "hist-b", &["--data", data.arg()]);
    let mut dave = b.join(&unique_nick("da"));
    chat_tests::wait_until("b's history has what was said while it was stopped", || {
        history(&mut dave, "#lobby") == said(0..5)
    });
    b.expect_log(&format!(
        "cluster: line {seq} of #lobby from node evil not kept"
    ));
}

/// A speaker that only writes (what it is sent is read and dropped by a thread of its own, so
/// that it never counts as a slow reader); writing fails quietly once its node is gone.
struct Speaker {
    stream: std::net::TcpStream,
    _drain: thread::JoinHandle<()>,
}

impl Speaker {
    fn join(node: &Server, nick: &str, room: &str) -> Self {
        let mut stream = std::net::TcpStream::connect(node.addr()).expect("connecting");
        stream.set_nodelay(true).expect("set_nodelay");
        stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .expect("set_write_timeout");
        let mut reader = stream.try_clone().expect("a second handle");
        let drain = thread::spawn(move || {
            use std::io::Read;
            let mut buffer = [0_u8; 16 * 1024];
            while matches!(reader.read(&mut buffer), Ok(count) if count > 0) {}
        });
        stream
            .write_all(format!("/nick {nick}\n/join {room}\n").as_bytes())
            .expect("joining");
        Self {
            stream,
            _drain: drain,
        }
    }

    /// Sends `line`; false once the node is gone.
    fn say(&mut self, line: &str) -> bool {
        self.stream
            .write_all(format!("{line}\n").as_bytes())
            .is_ok()
    }
}

#[test]
fn a_soak_with_a_node_killed_midway_loses_and_reorders_nothing_on_the_others() {
    let test = "a_soak_with_a_node_killed_midway_loses_and_reorders_nothing_on_the_others";
    let Some(url) = redis_url(test) else { return };
    let url = fresh_db(&url, 7);
    let flags = ["--no-flood-limit"];
    let nodes = [
        node(&url, "soak-a", &flags),
        node(&url, "soak-b", &flags),
        node(&url, "soak-c", &flags),
    ];
    // Each speaker sends a numbered line every PACE for RUN; c is killed halfway.
    const PACE: Duration = Duration::from_millis(10);
    const RUN: Duration = Duration::from_secs(6);
    let mut listeners: Vec<Client> = nodes[..2]
        .iter()
        .map(|node| {
            let mut listener = node.join(&unique_nick("li"));
            listener.send_line("/join #soak");
            listener.expect_line("*** #soak (");
            listener
        })
        .collect();
    let speakers: Vec<Speaker> = nodes
        .iter()
        .map(|node| Speaker::join(node, &unique_nick("sp"), "#soak"))
        .collect();
    for listener in &mut listeners {
        chat_tests::wait_until("five people in #soak", || {
            listener.send_line("/list");
            listener
                .expect_line("*** #soak (")
                .starts_with("*** #soak (5)")
        });
    }

    let started = Instant::now();
    let speaking: Vec<thread::JoinHandle<usize>> = speakers
        .into_iter()
        .zip(["a", "b", "c"])
        .map(|(mut speaker, name)| {
            thread::spawn(move || {
                let mut sent = 0;
                while started.elapsed() < RUN {
                    if !speaker.say(&format!("soak {name} {sent}")) {
                        break;
                    }
                    sent += 1;
                    thread::sleep(PACE);
                }
                speaker.say(&format!("soak {name} done"));
                sent
            })
        })
        .collect();
    let hearing: Vec<thread::JoinHandle<(Vec<String>, Vec<String>)>> = listeners
        .into_iter()
        .map(|mut listener| {
            thread::spawn(move || {
                let (mut heard, mut notices) = (Vec::new(), Vec::new());
                let mut done = [false; 2];
                while done != [true, true] {
                    assert!(
                        started.elapsed() < RUN + Duration::from_secs(30),
                        "the soak's lines did not all come: {} heard",
                        heard.len()
                    );
                    let line = listener.next_line();
                    if line.contains("messages missed") {
                        notices.push(line);
                    } else if let Some((_, said)) = line.split_once(": soak ") {
                        match said {
                            "a done" => done[0] = true,
                            "b done" => done[1] = true,
                            _ => heard.push(said.to_owned()),
                        }
                    }
                }
                (heard, notices)
            })
        })
        .collect();
    thread::sleep(RUN / 2);
    nodes[2].signal("KILL");
    let killed_at = started.elapsed();

    let sent: Vec<usize> = speaking
        .into_iter()
        .map(|speaking| speaking.join().expect("a speaker"))
        .collect();
    let heard: Vec<(Vec<String>, Vec<String>)> = hearing
        .into_iter()
        .map(|hearing| hearing.join().expect("a listener"))
        .collect();
    let of = |lines: &[String], name: &str| -> Vec<usize> {
        lines
            .iter()
            .filter_map(|line| line.strip_prefix(&format!("{name} ")))
            .map(|number| number.parse().expect("a line number"))
            .collect()
    };
    for (listener, (lines, notices)) in heard.iter().enumerate() {
        // The surviving nodes' speakers: every line, in the order sent.
        for (speaker, name) in ["a", "b"].into_iter().enumerate() {
            let expected: Vec<usize> = (0..sent[speaker]).collect();
            assert_eq!(
                of(lines, name),
                expected,
                "listener {listener}: speaker {name} lost or reordered lines"
            );
        }
        // The killed node's: the lines it published before it died, in order, none twice.
        let from_c = of(lines, "c");
        assert!(
            from_c.windows(2).all(|pair| pair[0] < pair[1]),
            "listener {listener}: c's lines out of order"
        );
        assert!(
            !from_c.is_empty() && from_c.len() <= sent[2],
            "listener {listener}: {} of c's lines, {} sent",
            from_c.len(),
            sent[2]
        );
        println!(
            "listener {listener}: {} lines ({} a, {} b, {} of c's {} sent), gaps announced: {notices:?}",
            lines.len(),
            sent[0],
            sent[1],
            from_c.len(),
            sent[2]
        );
        // Nothing was missed, so nothing is announced as missed.
        assert!(notices.is_empty(), "listener {listener}: {notices:?}");
    }
    // One order: both surviving nodes show the same lines in the same order.
    assert_eq!(
        heard[0].0, heard[1].0,
        "nodes a and b show different orders"
    );
    println!(
        "c killed {:.2} s in; the soak ran {:.2} s",
        killed_at.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn a_killed_nodes_people_leave_every_other_node_within_its_lease() {
    let test = "a_killed_nodes_people_leave_every_other_node_within_its_lease";
    let Some(url) = redis_url(test) else { return };
    let url = fresh_db(&url, 3);
    let (a, b) = (
        node(&url, "dead-a", &["--lease", "2"]),
        node(&url, "dead-b", &[]),
    );
    let ann = unique_nick("an");
    let _alice = a.join(&ann);
    let mut bob = b.join(&unique_nick("bo"));
    let mut irc = irc_join(&b, &unique_nick("ir"));
    wait_listed(&mut bob, "#lobby", &ann);
    irc.send("NAMES #lobby\r\n");
    assert!(irc.expect_line(" 353 ").contains(&ann));

    a.signal("KILL");
    let killed = Instant::now();
    let left = bob.expect_line(&format!("*** {ann} left"));
    assert!(left.contains("was lost"), "{left}");
    let quit = irc.expect_line(" QUIT ");
    assert!(
        quit.starts_with(&format!(":{ann}!remote@")) && quit.contains("was lost"),
        "{quit}"
    );
    // Within the lease and one check (every second), give or take a call.
    assert!(
        killed.elapsed() < Duration::from_secs(2 + 1 + 1),
        "{:?}",
        killed.elapsed()
    );
    println!(
        "{ann} left b {:?} after its node was killed",
        killed.elapsed()
    );
    nick_within(&mut bob, &ann, Duration::from_secs(3));
}

#[test]
fn a_node_stopped_cleanly_takes_its_people_at_once() {
    let test = "a_node_stopped_cleanly_takes_its_people_at_once";
    let Some(url) = redis_url(test) else { return };
    let url = fresh_db(&url, 4);
    let (mut a, b) = (node(&url, "stop-a", &[]), node(&url, "stop-b", &[]));
    let ann = unique_nick("an");
    let _alice = a.join(&ann);
    let mut bob = b.join(&unique_nick("bo"));
    wait_listed(&mut bob, "#lobby", &ann);
    a.signal("TERM");
    let left = bob.expect_line(&format!("*** {ann} left"));
    assert!(left.contains("shut down"), "{left}");
    a.expect_exit();
}

#[test]
fn lines_said_while_redis_is_away_stay_here_and_the_chat_resumes() {
    let test = "lines_said_while_redis_is_away_stay_here_and_the_chat_resumes";
    if redis_url(test).is_none() {
        return;
    }
    let Some(mut redis) = PrivateRedis::start() else {
        panic!("{test}: redis-server could not be started");
    };
    let url = redis.url();
    let (a, b) = (node(&url, "away-a", &[]), node(&url, "away-b", &[]));
    let (ann, bob_nick) = (unique_nick("an"), unique_nick("bo"));
    let mut alice = a.join(&ann);
    let mut amy = a.join(&unique_nick("am"));
    let mut bob = b.join(&bob_nick);
    wait_listed(&mut alice, "#lobby", &bob_nick);
    alice.send_line("before");
    bob.expect_line(&format!("{ann}: before"));

    redis.stop();
    alice.send_line("during");
    // Shown on a, to the people there, and everyone there is told once.
    amy.expect_line(&format!("{ann}: during"));
    alice.expect_line("The other servers cannot be reached");
    bob.expect_line("The other servers cannot be reached");
    // A private message to b cannot go: its sender is told.
    alice.send_line(&format!("/msg {bob_nick} psst"));
    alice.expect_line(&format!(
        "*** error: your private message to {bob_nick} was not delivered: the other servers \
         cannot be reached just now"
    ));
    // Nor can a topic: it is set nowhere, a included, so that the nodes never disagree on it.
    alice.send_line("/topic set while apart");
    alice.expect_line(
        "*** error: your topic for #lobby was not set: the other servers cannot be reached just now",
    );
    alice.send_line("/topic");
    alice.expect_line("#lobby has no topic.");
    let seen = amy.sync();
    assert!(
        !seen.iter().any(|line| line.contains("set while apart")),
        "{seen:?}"
    );

    assert!(redis.run(), "redis-server did not start again");
    alice.expect_line("The other servers can be reached again");
    bob.expect_line("The other servers can be reached again");
    // The people of each node are known again on the other, and lines flow.
    chat_tests::wait_until("alice listed on b again", || {
        bob.send_line("/list");
        bob.expect_line("*** #lobby (").contains(&ann)
    });
    // b's listener may still be on its way back: lines said meanwhile reach b once it is.
    alice.send_line("after");
    chat_tests::wait_until("the line said after reaching b", || {
        bob.sync()
            .iter()
            .any(|line| line == &format!("{ann}: after"))
    });
    let log = a.log();
    assert!(log.contains("cluster: Redis out of reach"), "{log}");
    // Redis lost the lobby's numbering; the new one goes on after the last number the nodes
    // knew, so that b's store keeps the line said before beside the one said after.
    assert_kept_in_order(&mut bob, &ann);
    // Redis came back empty, and a's people were never shown leaving b meanwhile.
    let seen = String::from_utf8_lossy(bob.received()).into_owned();
    assert!(!seen.contains(" left ("), "{seen}");
}

/// Asserts that `client`'s node keeps both lines `speaker` said in #lobby, "before" and then
/// "after": a numbering Redis started again between them replaced neither.
fn assert_kept_in_order(client: &mut Client, speaker: &str) {
    let kept = history(client, "#lobby");
    let at = |text: &str| {
        let line = format!("{speaker}: {text}");
        kept.iter().position(|kept| *kept == line)
    };
    assert!(
        matches!((at("before"), at("after")), (Some(b), Some(a)) if b < a),
        "{kept:?}"
    );
}

/// A TCP proxy on a free loopback port to a Redis, for one node's connections, that can be made
/// deaf: what the node sends still reaches Redis, and is carried out, but nothing Redis answers
/// reaches the node, as when Redis stops right after carrying out a call, before it answered.
/// A connection is closed on both sides when either closes.
struct DeafeningProxy {
    port: u16,
    deaf: Arc<AtomicBool>,
}

impl DeafeningProxy {
    /// Starts one in front of the Redis on `upstream`, hearing.
    fn start(upstream: u16) -> Self {
        use std::io::Read;
        use std::net::TcpStream;
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port for the proxy");
        let port = listener.local_addr().expect("the proxy's address").port();
        let deaf = Arc::new(AtomicBool::new(false));
        let shared = Arc::clone(&deaf);
        // Ends when the test process does: it holds nothing but its port.
        thread::spawn(move || {
            for node in listener.incoming() {
                let Ok(node) = node else { continue };
                let Ok(redis) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue; // Redis stopped: the node's connection is closed at once
                };
                let pump =
                    |mut from: TcpStream, mut to: TcpStream, deaf: Option<Arc<AtomicBool>>| {
                        thread::spawn(move || {
                            let mut buffer = [0_u8; 16 * 1024];
                            loop {
                                let read = match from.read(&mut buffer) {
                                    Ok(0) | Err(_) => break,
                                    Ok(read) => read,
                                };
                                if deaf
                                    .as_ref()
                                    .is_some_and(|deaf| deaf.load(Ordering::SeqCst))
                                {
                                    continue;
                                }
                                if to.write_all(&buffer[..read]).is_err() {
                                    break;
                                }
                            }
                            let _ = from.shutdown(Shutdown::Both);
                            let _ = to.shutdown(Shutdown::Both);
                        });
                    };
                let (Ok(node_side), Ok(redis_side)) = (node.try_clone(), redis.try_clone()) else {
                    continue;
                };
                pump(node, redis_side, None);
                pump(redis, node_side, Some(Arc::clone(&shared)));
            }
        });
        Self { port, deaf }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// From now on, what Redis answers is dropped (`true`), or passed on again (`false`).
    fn set_deaf(&self, deaf: bool) {
        self.deaf.store(deaf, Ordering::SeqCst);
    }
}

#[test]
fn a_line_redis_numbered_but_never_answered_keeps_its_place_when_the_numbering_starts_again() {
    let test =
        "a_line_redis_numbered_but_never_answered_keeps_its_place_when_the_numbering_starts_again";
    if redis_url(test).is_none() {
        return;
    }
    let Some(mut redis) = PrivateRedis::start() else {
        panic!("{test}: redis-server could not be started");
    };
    // a talks to Redis through the proxy, b directly.
    let proxy = DeafeningProxy::start(redis.port);
    let a = node(&proxy.url(), "deaf-a", &[]);
    let b = node(&redis.url(), "deaf-b", &[]);
    let (ann, bob_nick) = (unique_nick("an"), unique_nick("bo"));
    let mut alice = a.join(&ann);
    let mut bob = b.join(&bob_nick);
    wait_listed(&mut alice, "#lobby", &bob_nick);

    // Redis numbers a's line and b shows it (and keeps it under its number), but a hears
    // neither the answer nor the line on its channel: Redis stops first, losing everything.
    proxy.set_deaf(true);
    alice.send_line("before");
    bob.expect_line(&format!("{ann}: before"));
    redis.stop();
    proxy.set_deaf(false);
    alice.expect_line("The other servers cannot be reached");
    assert!(redis.run(), "redis-server did not start again");
    alice.expect_line("The other servers can be reached again");
    bob.expect_line("The other servers can be reached again");

    // a starts the lobby's numbering again: after the number its unanswered line may have
    // been given, so that b keeps both lines, in order, and replaces neither.
    alice.send_line("after");
    chat_tests::wait_until("the line said after reaching b", || {
        bob.sync()
            .iter()
            .any(|line| line == &format!("{ann}: after"))
    });
    assert_kept_in_order(&mut bob, &ann);
}

#[test]
fn a_topic_lost_with_the_lines_a_node_missed_is_read_again() {
    let test = "a_topic_lost_with_the_lines_a_node_missed_is_read_again";
    if redis_url(test).is_none() {
        return;
    }
    let Some(redis) = PrivateRedis::start() else {
        panic!("{test}: redis-server could not be started");
    };
    let url = redis.url();
    let a = node(&url, "gap-a", &["--no-flood-limit"]);
    let b = node(&url, "gap-b", &[]);
    let (ann, bea_nick) = (unique_nick("an"), unique_nick("be"));
    let mut alice = a.join(&ann);
    // Plain-text speakers are not shown their own lines: amy watches a's room.
    let mut amy = a.join(&unique_nick("am"));
    let mut bea = b.join(&bea_nick);
    wait_listed(&mut alice, "#lobby", &bea_nick);
    alice.send_line("/topic old");
    bea.expect_line("set the topic of #lobby: old");

    // b is paused and its room-line subscription cut (Redis drops every subscriber of this
    // private instance): what a says meanwhile b must fetch from the stream when it is back.
    b.signal("STOP");
    let address = url.trim_start_matches("redis://").trim_end_matches('/');
    let killed = redis_commands(address, &[&["CLIENT", "KILL", "TYPE", "pubsub"]], b"\r\n");
    assert!(
        killed.starts_with(b":"),
        "{}",
        String::from_utf8_lossy(&killed)
    );
    // A new topic, then more lines than a room's stream keeps: the topic line is trimmed
    // from the stream before b can fetch it.
    alice.send_line("/topic new");
    alice.expect_line("set the topic of #lobby: new");
    let count = 1_400;
    let mut burst = String::new();
    for n in 0..count {
        burst.push_str(&format!("gap line {n}\n"));
    }
    alice.send(burst);
    amy.expect_line(&format!("{ann}: gap line {}", count - 1));
    b.signal("CONT");

    // b announces what it missed, and finds the topic from where Redis keeps it.
    let missed = bea.expect_line("messages missed]");
    println!("b: {missed}");
    chat_tests::wait_until("b shows the new topic", || {
        bea.send_line("/topic");
        bea.expect_line("#lobby").contains("new")
    });
    let log = b.log();
    assert!(!log.contains("bug"), "{log}");
}

#[test]
fn fifty_clients_on_three_nodes_race_for_one_nickname_and_one_wins() {
    let test = "fifty_clients_on_three_nodes_race_for_one_nickname_and_one_wins";
    let Some(url) = redis_url(test) else { return };
    let nodes = [
        node(&url, "race-a", &[]),
        node(&url, "race-b", &[]),
        node(&url, "race-c", &[]),
    ];
    let mut clients: Vec<Client> = (0..50).map(|n| nodes[n % 3].connect()).collect();
    // Every client asks at once (each write a few microseconds after the last), in case
    // variants, so that Redis decides, not the order of the sockets.
    let nick = unique_nick("ra");
    for (n, client) in clients.iter_mut().enumerate() {
        let asked = if n % 2 == 0 {
            nick.clone()
        } else {
            nick.to_ascii_uppercase()
        };
        client.send_line(&format!("/nick {asked}"));
    }
    let mut winners = Vec::new();
    for (n, client) in clients.iter_mut().enumerate() {
        let answer = client.expect_line_where(
            |line| line.contains("You are now known as") || line.contains(" is taken"),
            "the answer to /nick",
        );
        if answer.contains("You are now known as") {
            winners.push(n);
        } else {
            assert!(
                answer.to_ascii_lowercase().contains(&format!(
                    "the nickname {nick} is taken; you are still anonymous-"
                )),
                "client {n}: {answer}"
            );
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    println!("client {} on node {} won", winners[0], winners[0] % 3);
}

#[test]
fn names_in_any_script_are_one_name_across_the_nodes() {
    let test = "names_in_any_script_are_one_name_across_the_nodes";
    let Some(url) = redis_url(test) else { return };
    // A database of its own, as for the accounts test: on the shared one, the nodes of the
    // tests beside it could be more than a node lists (it timed out once under load there).
    let url = fresh_db(&url, 12);
    let (a, b) = (node(&url, "script-a", &[]), node(&url, "script-b", &[]));
    // Cyrillic and digits: one script (digits belong to every script).
    let number = unique() % 1_000_000;
    let nick = format!("Дмитрий{number}");
    let mut dmitry = a.join(&nick);
    let mut bob = b.join(&unique_nick("bo"));
    // Another case of it is taken on the other node too.
    for other in [format!("ДМИТРИЙ{number}"), format!("дмитрий{number}")] {
        assert!(!try_nick(&mut bob, &other), "{other} granted beside {nick}");
    }
    // One room whatever the case of its name, on either node; each node shows it as the
    // first of its people to join it spelt it.
    let room = format!("#Ærø{number}");
    dmitry.send_line(&format!("/join {room}"));
    dmitry.expect_line(&format!("*** You are now talking in {room}."));
    let lower = format!("#ærø{number}");
    bob.send_line(&format!("/join {}", lower.to_uppercase()));
    bob.expect_line("*** You are now talking in #");
    bob.send_line("hej");
    dmitry.expect_line(": hej");
    dmitry.send_line("привет");
    bob.expect_line(&format!("{nick}: привет"));

    // A room in Cyrillic (its key mixes in Latin look-alikes, and is no valid name): its
    // topic and its history reach a node started later, under the room's own name.
    let room = format!("#Комната{number}");
    dmitry.send_line(&format!("/join {room}"));
    dmitry.send_line("/topic о погоде");
    dmitry.expect_line(&format!("set the topic of {room}: о погоде"));
    bob.send_line(&format!("/join {room}"));
    bob.expect_line("*** You are now talking in #");
    dmitry.send_line("дождь");
    bob.expect_line(&format!("{nick}: дождь"));
    let c = node(&url, "script-c", &[]);
    let mut carol = c.join(&unique_nick("ca"));
    // Once c knows the other nodes' people, it knows the room they are in, under its name:
    // carol joins that room, however she spells it. (Before it knows them, c would show the
    // room as she spelt it; whether her join or their listing came first was a race here.)
    wait_listed(&mut carol, "#lobby", &nick);
    let upper = room.to_uppercase();
    carol.send_line(&format!("/join {upper}"));
    carol.expect_line(&format!("*** You are now talking in {room}."));
    chat_tests::wait_until("c shows the room's topic", || {
        carol.send_line("/topic");
        carol.expect_line("opic").contains("о погоде")
    });
    chat_tests::wait_until("c has the room's history", || {
        history(&mut carol, &room).contains(&format!("{nick}: дождь"))
    });
    let log = c.log();
    assert!(!log.contains("could not"), "{log}");
}

/// A plain-text client on `node` that took `nick`, a registered name, and was told so. The
/// name may still be another node's for a moment (its holder just quit there).
fn told_registered(node: &Server, nick: &str) -> Client {
    let mut client = node.connect();
    nick_within(&mut client, nick, Duration::from_secs(5));
    client.expect_line(&format!(
        "*** The nickname {nick} is registered: if it is yours, /identify PASSWORD within 2 s, \
         or you will be renamed."
    ));
    client
}

#[test]
fn accounts_are_one_across_the_nodes() {
    let test = "accounts_are_one_across_the_nodes";
    let Some(url) = redis_url(test) else { return };
    const PASSWORD: &str = "correct-horse-battery";
    let grace = ["--nick-grace", "2"];
    let (a, b) = (node(&url, "acc-a", &grace), node(&url, "acc-b", &grace));
    let ann = unique_nick("acc");

    // Registered on one node while the other runs: the other protects the name at once.
    let mut first = a.join(&ann);
    first.send_line(&format!("/register {PASSWORD}"));
    first.expect_line(&format!(
        "*** You registered the account {ann}; you are identified as it."
    ));
    first.send_line("/quit");
    first.expect_closed();
    let upper = ann.to_uppercase();
    let mut back = told_registered(&b, &upper);
    back.send_line("/identify wrong-password");
    back.expect_line(&format!("*** error: wrong password for {upper}"));
    // Identified as the account is spelt, on a node that never saw it made.
    back.send_line(&format!("/identify {PASSWORD}"));
    back.expect_line(&format!("*** You are now identified as {ann}."));
    back.send_line(&format!("/password {PASSWORD} a-new-password"));
    back.expect_line("*** Your password was changed.");
    back.send_line("/quit");
    back.expect_closed();

    // The other node checks the new password; an impostor there is renamed.
    let mut impostor = told_registered(&a, &ann);
    let renamed = impostor.expect_line_where(
        |line| line.contains("you are anonymous-"),
        "the impostor renamed",
    );
    assert!(renamed.contains(&ann), "{renamed}");
    impostor.send_line(&format!("/login {ann} {PASSWORD}"));
    impostor.expect_line(&format!("*** error: wrong password for {ann}"));
    impostor.send_line(&format!("/login {ann} a-new-password"));
    impostor.expect_line(&format!("*** You are now identified as {ann}."));

    // A node started later finds the account, and may name it a server operator.
    let c = node(&url, "acc-c", &["--oper", &ann, "--nick-grace", "2"]);
    let mut root = told_registered(&c, &ann);
    root.send_line("/identify a-new-password");
    root.expect_line(&format!("*** You are now identified as {ann}."));
    root.expect_line("*** You are a server operator: you keep order in every room.");
}

#[test]
fn wrong_passwords_are_counted_across_the_nodes() {
    let test = "wrong_passwords_are_counted_across_the_nodes";
    let Some(url) = redis_url(test) else { return };
    let (a, b) = (node(&url, "wrong-a", &[]), node(&url, "wrong-b", &[]));
    let bea = unique_nick("wr");
    let mut owner = a.join(&bea);
    owner.send_line("/register correct-horse-battery");
    owner.expect_line(&format!(
        "*** You registered the account {bea}; you are identified as it."
    ));
    // Three wrong passwords on one node are answered at once...
    let mut guesser = a.join(&unique_nick("gu"));
    for _ in 0..3 {
        guesser.send_line(&format!("/login {bea} wrong-password"));
        guesser.expect_line(&format!("*** error: wrong password for {bea}"));
    }
    // ...and the fourth, on the other node (whose address count is nought), waits.
    let mut elsewhere = b.join(&unique_nick("gu"));
    let asked = Instant::now();
    elsewhere.send_line(&format!("/login {bea} wrong-password"));
    elsewhere.expect_line(&format!("*** error: wrong password for {bea}"));
    let waited = asked.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "the fourth wrong password in a row was answered after {waited:?}"
    );
}

/// A server operator's account made on `made_on`, then a node (named after `tag`) that names
/// it an operator, and the operator identified there.
fn operator_elsewhere(url: &str, made_on: &Server, tag: &str) -> (Server, Client) {
    let root = unique_nick("op");
    // The operator's account is made before a node names it.
    let mut made = made_on.join(&root);
    made.send_line("/register correct-horse-battery");
    made.expect_line("you are identified as it.");
    made.send_line("/quit");
    made.expect_closed();
    let node = node(url, tag, &["--oper", &root]);
    let mut operator = node.connect();
    nick_within(&mut operator, &root, Duration::from_secs(5));
    operator.send_line("/identify correct-horse-battery");
    operator.expect_line("You are a server operator");
    (node, operator)
}

/// A new client on `node` takes `nick` (when the last holder elsewhere has let it go) and is
/// put out for a server ban with the reason `spam`.
fn banned_on_taking(node: &Server, nick: &str) {
    let mut client = node.connect();
    nick_within(&mut client, nick, Duration::from_secs(5));
    client.expect_line("*** You are banned from this server (spam).");
    client.expect_closed();
}

#[test]
fn a_server_ban_set_on_one_node_holds_on_every_node() {
    let test = "a_server_ban_set_on_one_node_holds_on_every_node";
    let Some(url) = redis_url(test) else { return };
    let eve = unique_nick("eve");
    let b = node(&url, "ban-b", &[]);
    let (_a, mut operator) = operator_elsewhere(&url, &b, "ban-a");

    let mut target = b.join(&eve);
    operator.send_line(&format!("/serverban {eve} 1h spam"));
    operator.expect_line(&format!(
        "*** You banned {eve}!*@* from the server for 1h (spam)."
    ));
    // Put out on the other node, and kept out there.
    target.expect_line("*** You are banned from this server (spam).");
    target.expect_closed();
    banned_on_taking(&b, &eve);
    // A node started now finds the ban.
    let c = node(&url, "ban-c", &[]);
    banned_on_taking(&c, &eve);
    b.expect_log(&format!(
        "banned {eve}!*@* from the server (heard from the cluster)"
    ));

    // Lifted on the first node: free on the others.
    operator.send_line(&format!("/serverunban {eve}"));
    operator.expect_line(&format!("*** You lifted the server ban on {eve}!*@*."));
    for node in [&b, &c] {
        node.expect_log(&format!(
            "the server ban on {eve}!*@* was lifted (heard from the cluster)"
        ));
        let mut back = node.connect();
        nick_within(&mut back, &eve, Duration::from_secs(5));
        // Still here a moment later: not put out.
        thread::sleep(Duration::from_millis(300));
        let since = back.sync();
        assert!(
            !since.iter().any(|line| line.contains("banned")),
            "{since:?}"
        );
        back.send_line("/quit");
    }
}

#[test]
fn accounts_are_seen_across_the_nodes_and_private_history_follows_them() {
    let test = "accounts_are_seen_across_the_nodes_and_private_history_follows_them";
    let Some(url) = redis_url(test) else { return };
    // A database of its own: on the shared one, the nodes of the tests beside it (and those
    // killed within their lease) could be more than a node lists the people of.
    let url = fresh_db(&url, 9);
    const PASSWORD: &str = "correct-horse-battery";
    let (a, b) = (node(&url, "priv-a", &[]), node(&url, "priv-b", &[]));
    let (ann, bob) = (unique_nick("pa"), unique_nick("pb"));
    let mut ann_here = a.join(&ann);
    ann_here.send_line(&format!("/register {PASSWORD}"));
    ann_here.expect_line("you are identified as it.");
    let mut bob_there = b.join(&bob);
    bob_there.send_line(&format!("/register {PASSWORD}"));
    bob_there.expect_line("you are identified as it.");
    // Each node learns the other's person with their account (so b keeps what ann and bob
    // say to each other under ann's account too).
    let whois = |client: &mut Client, nick: &str| {
        client.send(format!("WHOIS {nick}\r\n"));
        let mut lines = Vec::new();
        loop {
            let line = client.expect_line_where(
                |line| line.contains(" 330 ") || line.contains(" 318 "),
                "WHOIS's account or end",
            );
            let end = line.contains(" 318 ");
            lines.push(line);
            if end {
                return lines;
            }
        }
    };
    for (here, nick) in [(&a, &bob), (&b, &ann)] {
        let mut watcher = irc_join(here, &unique_nick("pw"));
        let deadline = Instant::now() + Duration::from_secs(5);
        while !whois(&mut watcher, nick)
            .iter()
            .any(|line| line.contains(" 330 ") && line.contains(&format!(" {nick} {nick} ")))
        {
            assert!(
                Instant::now() < deadline,
                "{nick}'s account never shown on the other node"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }
    // Private messages both ways, kept under both accounts on both nodes.
    ann_here.send_line(&format!("/msg {bob} first, from ann"));
    bob_there.expect_line("first, from ann");
    bob_there.send_line(&format!("/msg {ann} and back, from bob"));
    ann_here.expect_line("and back, from bob");
    ann_here.send_line("/quit");
    ann_here.expect_closed();
    // Ann comes back on the other node, and reads her history with Bob there.
    let mut irc = b.connect();
    irc.send(format!(
        "CAP REQ :batch draft/chathistory\r\nNICK {}\r\nUSER a 0 * :A\r\nCAP END\r\n",
        unique_nick("px")
    ));
    irc.expect_line(" 366 ");
    irc.send(format!("PRIVMSG NickServ :IDENTIFY {ann} {PASSWORD}\r\n"));
    irc.expect_line(&format!("You are now identified as {ann}"));
    irc.send(format!("CHATHISTORY LATEST {bob} * 10\r\n"));
    irc.expect_line(&format!(" BATCH +history chathistory {bob}"));
    let first = irc.expect_line(" PRIVMSG ");
    assert!(
        first.ends_with(&format!(":{ann} PRIVMSG {bob} :first, from ann")),
        "{first}"
    );
    let second = irc.expect_line(" PRIVMSG ");
    assert!(
        second.ends_with(&format!(":{bob} PRIVMSG {ann} :and back, from bob")),
        "{second}"
    );
}

#[test]
fn a_server_ban_lifted_while_a_node_was_stopped_is_lifted_there_when_it_comes_back() {
    let test = "a_server_ban_lifted_while_a_node_was_stopped_is_lifted_there_when_it_comes_back";
    let Some(url) = redis_url(test) else { return };
    let eve = unique_nick("eve");
    let data = chat_tests::TempDir::new("ban-lift");
    let b_name = node_name("lift-b");
    let start_b = || {
        Server::plain(
            RUNNER,
            &["--cluster", &url, "--node", &b_name, "--data", data.arg()],
        )
    };
    let mut b = start_b();
    let (a, mut operator) = operator_elsewhere(&url, &b, "lift-a");
    operator.send_line(&format!("/serverban {eve} spam"));
    operator.expect_line("You banned");
    b.expect_log(&format!(
        "banned {eve}!*@* from the server (heard from the cluster)"
    ));
    // Stopped: it keeps the ban in its store. Lifted meanwhile.
    b.signal("TERM");
    b.expect_exit();
    operator.send_line(&format!("/serverunban {eve}"));
    operator.expect_line("You lifted the server ban");
    a.expect_log(&format!(
        "lifting the server ban on {eve}!*@* shared with the other nodes"
    ));
    let b = start_b();
    b.expect_log(&format!(
        "the server ban on {eve}!*@* was lifted (heard from the cluster)"
    ));
    let mut back = b.connect();
    nick_within(&mut back, &eve, Duration::from_secs(5));
    let since = back.sync();
    assert!(
        !since.iter().any(|line| line.contains("banned")),
        "{since:?}"
    );
}

#[test]
fn a_name_listed_as_an_operator_on_one_node_cannot_be_registered_on_another() {
    let test = "a_name_listed_as_an_operator_on_one_node_cannot_be_registered_on_another";
    let Some(url) = redis_url(test) else { return };
    let carol = unique_nick("res");
    let b_name = node_name("res-b");
    let mut b = Server::plain(
        RUNNER,
        &["--cluster", &url, "--node", &b_name, "--oper", &carol],
    );
    b.expect_log("1 operator name(s) with no account reserved");
    let a = node(&url, "res-a", &[]);
    let mut first = a.join(&carol);
    first.send_line("/register correct-horse-battery");
    first.expect_line(&format!("*** error: the account {carol} exists already"));
    a.expect_log(&format!("refused to register {carol}"));
    // The node lists it no more (restarted without it): free to register.
    b.signal("TERM");
    b.expect_exit();
    let b = Server::plain(RUNNER, &["--cluster", &url, "--node", &b_name]);
    b.expect_log("accounts:");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        first.send_line("/register correct-horse-battery");
        let answer = first.expect_line_where(
            |line| line.contains("You registered") || line.contains("exists already"),
            "the answer to /register",
        );
        if answer.contains("You registered") {
            break;
        }
        assert!(Instant::now() < deadline, "still reserved: {answer}");
        thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until `node`'s log has `count` lines containing `text`.
fn expect_log_lines(node: &Server, text: &str, count: usize) {
    chat_tests::wait_until(&format!("{count} log lines with {text:?}"), || {
        node.log()
            .lines()
            .filter(|line| line.contains(text))
            .count()
            >= count
    });
}

#[test]
fn a_registered_rooms_order_holds_on_every_node() {
    let test = "a_registered_rooms_order_holds_on_every_node";
    let Some(url) = redis_url(test) else { return };
    let (a, b) = (node(&url, "room-a", &[]), node(&url, "room-b", &[]));
    let (alice, carl, dave) = (unique_nick("ra"), unique_nick("rc"), unique_nick("rd"));
    let room = format!("#r{:06x}", unique());
    let mut founder = a.found_room(&alice, &room);
    founder.send_line("/mode +ikl sesame 10");
    founder.expect_line(&format!("let at most 10 people into {room}"));
    b.expect_log(&format!("the modes of {room} (heard from the cluster)"));

    // Held on the other node: invite-only, then keyed.
    let mut guest = b.join(&carl);
    guest.send_line(&format!("/join {room} sesame"));
    guest.expect_line(&format!(
        "*** error: {room} lets in only whom its operators invite (/invite)"
    ));
    // Each change of `+ikl` was heard; then `-i`.
    let modes_heard = format!("the modes of {room} (heard from the cluster)");
    expect_log_lines(&b, &modes_heard, 3);
    founder.send_line("/mode -i");
    expect_log_lines(&b, &modes_heard, 4);
    guest.send_line(&format!("/join {room}"));
    guest.expect_line("*** error:");
    guest.send_line(&format!("/join {room} sesame"));
    guest.expect_line(&format!("*** You are now talking in {room}."));
    // A ban set on one node keeps its target out on the other.
    founder.send_line(&format!("/ban {dave}"));
    founder.expect_line(&format!("banned {dave}!*@* from {room}"));
    b.expect_log(&format!(
        "the ban on {dave}!*@* in {room} (heard from the cluster)"
    ));
    let mut banned = b.join(&dave);
    banned.send_line(&format!("/join {room} sesame"));
    banned.expect_line(&format!("*** error: you are banned from {room}"));

    // A node started later knows the room's order from the start.
    let c = node(&url, "room-c", &[]);
    c.expect_log(&format!(
        "registering {room} to {alice} (heard from the cluster)"
    ));
    let mut late = c.join(&unique_nick("rl"));
    late.send_line(&format!("/join {room}"));
    late.expect_line("*** error:");
    late.send_line(&format!("/join {room} sesame"));
    late.expect_line(&format!("*** You are now talking in {room}."));
}

#[test]
fn an_operators_kick_mute_op_and_invite_reach_people_on_other_nodes() {
    let test = "an_operators_kick_mute_op_and_invite_reach_people_on_other_nodes";
    let Some(url) = redis_url(test) else { return };
    // A database of its own: the listing of rooms below finds the room among few.
    let url = fresh_db(&url, 11);
    let (a, b, c) = (
        node(&url, "order-a", &[]),
        node(&url, "order-b", &[]),
        node(&url, "order-c", &[]),
    );
    let room = format!("#o{:06x}", unique());
    let [ann, first_b, bob, first_c, cat] = ["oa", "ob", "bo", "oc", "ca"].map(unique_nick);
    // Ann makes the room, and is its operator; nobody on b or c is one.
    let mut alice = a.join(&ann);
    alice.send_line(&format!("/join {room}"));
    alice.expect_line(&format!("*** You are now talking in {room}."));
    let mut seconds = Vec::new();
    for (node, nick) in [(&b, &first_b), (&c, &first_c)] {
        let mut first = node.join(nick);
        // In once the room is known there (ann is in it): it is hers, not made anew here.
        chat_tests::wait_until(&format!("{room} known on a node"), || {
            // The listing of rooms, then of the lobby's people (`*** #lobby (N): …`) to end it.
            first.send_line("/rooms");
            first.send_line("/list");
            let mut known = false;
            loop {
                let line = first.next_line();
                known |= line.contains(&format!("   {room} (")) && !line.contains(" (0");
                if line.starts_with("*** #lobby (") && line.contains("): ") {
                    return known;
                }
            }
        });
        first.send_line(&format!("/join {room}"));
        first.expect_line(&format!("*** You are now talking in {room}."));
        seconds.push(first);
    }
    let mut irc = irc_join(&b, &bob);
    irc.send(format!("JOIN {room}\r\n"));
    // Ann's standing came with her: on b she is shown as the room's operator.
    let names = irc.expect_line(&format!(" 353 {bob} "));
    assert!(names.contains(&format!("@{ann}")), "{names}");
    irc.expect_line(&format!(" 366 {bob} {room} "));
    let mut carl = c.join(&cat);
    carl.send_line(&format!("/join {room}"));
    carl.expect_line(&format!("*** You are now talking in {room}."));
    wait_listed(&mut alice, &room, &bob);
    wait_listed(&mut alice, &room, &cat);
    wait_listed(&mut carl, &room, &bob);

    // A kick from a puts bob out on b, and c shows it as a kick, not a bare departure.
    alice.send_line(&format!("/kick {bob} enough"));
    alice.expect_line(&format!(
        "*** {bob} was put out of {room} by {ann} (enough)"
    ));
    let kick = irc.expect_line(" KICK ");
    assert!(
        kick.starts_with(&format!(":{ann}!"))
            && kick.ends_with(&format!(" KICK {room} {bob} :enough")),
        "{kick}"
    );
    carl.expect_line(&format!(
        "*** {bob} was put out of {room} by {ann} (enough)"
    ));
    irc.send(format!("PRIVMSG {room} :still here?\r\n"));
    let refused = irc.expect_line(&format!(" {bob} {room} "));
    assert!(
        refused.contains(" 404 ") || refused.contains(" 442 "),
        "{refused}"
    );

    // Back in, then muted from a for ten minutes: b refuses his lines.
    irc.send(format!("JOIN {room}\r\n"));
    irc.expect_line(&format!(" 366 {bob} {room} "));
    wait_listed(&mut alice, &room, &bob);
    alice.send_line(&format!("/mute {bob} 10m"));
    alice.expect_line(&format!("*** {ann} muted {bob} in {room}"));
    let muted = irc.expect_line(" NOTICE ");
    assert!(muted.contains(&format!("{ann} muted {bob}")), "{muted}");
    carl.expect_line(&format!("*** {ann} muted {bob} in {room}"));
    irc.send(format!("PRIVMSG {room} :can you hear me\r\n"));
    irc.expect_line(&format!(
        " 404 {bob} {room} :Cannot send to channel (you are muted)"
    ));

    // Cat, on c, is no operator there; made one from a, he lifts bob's mute on b.
    carl.send_line(&format!("/unmute {bob}"));
    carl.expect_line("*** error: you are not an operator of");
    alice.send_line(&format!("/op {cat}"));
    carl.expect_line(&format!("*** {ann} made {cat} an operator of {room}"));
    let op = irc.expect_line(" MODE ");
    assert!(op.ends_with(&format!(" MODE {room} +o {cat}")), "{op}");
    carl.send_line(&format!("/unmute {bob}"));
    carl.expect_line(&format!("*** {cat} unmuted {bob} in {room}"));
    alice.expect_line(&format!("*** {cat} unmuted {bob} in {room}"));
    irc.expect_line(&format!("{cat} unmuted {bob}"));
    irc.send(format!("PRIVMSG {room} :thanks\r\n"));
    alice.expect_line(&format!("{bob}: thanks"));
    carl.expect_line(&format!("{bob}: thanks"));

    // Invite-only on b (set by its operator there): bob, kicked again, gets back in only with
    // an invitation, given from a.
    alice.send_line(&format!("/op {first_b}"));
    let first_on_b = &mut seconds[0];
    first_on_b.expect_line(&format!("*** {ann} made {first_b} an operator of {room}"));
    first_on_b.send_line("/mode +i");
    first_on_b.expect_line(&format!("let only invited people into {room}"));
    // An unregistered room's modes hold on every node where it has people: c is told, and
    // someone new on a is kept out.
    carl.expect_line(&format!("*** [{room}] Modes now: +i"));
    let mut dan = a.join(&unique_nick("od"));
    dan.send_line(&format!("/join {room}"));
    dan.expect_line(&format!(
        "*** error: {room} lets in only whom its operators invite"
    ));
    alice.send_line(&format!("/kick {bob}"));
    irc.expect_line(" KICK ");
    irc.send(format!("JOIN {room}\r\n"));
    irc.expect_line(&format!(" 473 {bob} {room} "));
    alice.send_line(&format!("/invite {bob}"));
    alice.expect_line(&format!("*** You invited {bob} into {room}."));
    let invited = irc.expect_line(" INVITE ");
    assert!(
        invited.starts_with(&format!(":{ann}!"))
            && invited.ends_with(&format!(" INVITE {bob} {room}")),
        "{invited}"
    );
    irc.send(format!("JOIN {room}\r\n"));
    irc.expect_line(&format!(" 366 {bob} {room} "));
}

#[test]
fn a_registered_rooms_exceptions_hold_on_every_node() {
    let test = "a_registered_rooms_exceptions_hold_on_every_node";
    let Some(url) = redis_url(test) else { return };
    let (a, b) = (node(&url, "list-a", &[]), node(&url, "list-b", &[]));
    let (alice, dave) = (unique_nick("la"), unique_nick("ld"));
    // Another name the ban matches (the same first letters), not excepted.
    let other = format!("{dave}x");
    let room = format!("#e{:06x}", unique());
    let mut founder = a.found_room(&alice, &room);
    founder.send_line("/mode +i");
    founder.send_line(&format!("/ban {dave}*"));
    founder.expect_line(&format!("banned {dave}*!*@* from {room}"));
    founder.send_line(&format!("/mode +eI {dave} {dave}"));
    founder.expect_line(&format!("let {dave}!*@* into {room} despite its bans"));
    founder.expect_line(&format!("let {dave}!*@* into {room} uninvited"));
    b.expect_log(&format!(
        "the ban exception on {dave}!*@* in {room} (heard from the cluster)"
    ));
    b.expect_log(&format!(
        "the invite exception on {dave}!*@* in {room} (heard from the cluster)"
    ));

    // On the other node: dave comes in past the ban and +i; the other name is banned.
    let mut excepted = b.join(&dave);
    excepted.send_line(&format!("/join {room}"));
    excepted.expect_line(&format!("*** You are now talking in {room}."));
    excepted.send_line(&format!("/part {room}"));
    let mut banned = b.join(&other);
    banned.send_line(&format!("/join {room}"));
    banned.expect_line(&format!("*** error: you are banned from {room}"));

    // A node started later knows the lists from the start.
    let c = node(&url, "list-c", &[]);
    for list in ["ban exception", "invite exception"] {
        c.expect_log(&format!(
            "the {list} on {dave}!*@* in {room} (heard from the cluster)"
        ));
    }
    let mut ivy = Client::connect(c.addr());
    // Registration waits for the nickname's claim: asked before it, MODE would get 451.
    ivy.send(format!("NICK {}\r\nUSER i 0 * :I\r\n", unique_nick("li")));
    ivy.expect_line(" 001 ");
    ivy.send(format!("MODE {room} +e\r\n"));
    assert!(
        ivy.expect_line(" 348 ")
            .contains(&format!(" {room} {dave}!*@* {alice} "))
    );

    // The ban exception lifted on a: dave is banned on b again, still past +i.
    founder.send_line(&format!("/mode -e {dave}"));
    founder.expect_line(&format!("lifted the ban exception on {dave}!*@* in {room}"));
    b.expect_log(&format!(
        "lifting the ban exception on {dave}!*@* in {room} (heard from the cluster)"
    ));
    excepted.send_line(&format!("/join {room}"));
    excepted.expect_line(&format!("*** error: you are banned from {room}"));
    ivy.send(format!("MODE {room} +I\r\n"));
    assert!(
        ivy.expect_line(" 346 ")
            .contains(&format!(" {room} {dave}!*@* {alice} "))
    );
}
