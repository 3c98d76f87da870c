//! `--metrics`: the counts scraped over HTTP while plain, IRC and JSON clients talk move by
//! exactly what they did; other paths and methods are refused; and the text passes
//! `promtool check metrics` when promtool is installed (`CHAT_REQUIRE_TOOLS=1` makes its
//! absence a failure).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use chat_tests::{Client, Server, WAIT, redis_url};

/// The server binary, built by cargo for these tests.
const RUNNER: &str = env!("CARGO_BIN_EXE_chat-runner");

/// One HTTP request over a raw socket: the status code and the body.
fn request(addr: SocketAddr, head: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connecting to the metrics address");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("reading the response (the server closes after one)");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {response:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, body.to_owned())
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
}

/// The samples of a scrape, by name with labels (`chat_connections{dialect="irc"}`).
#[derive(Debug)]
struct Scrape {
    text: String,
    samples: HashMap<String, f64>,
}

impl Scrape {
    fn of(server: &Server) -> Self {
        let (status, text) = get(server.metrics_addr(), "/metrics");
        assert_eq!(status, 200, "{text}");
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .map(|line| {
                let (name, value) = line.rsplit_once(' ').expect("a sample: NAME VALUE");
                (name.to_owned(), value.parse().expect("a number"))
            })
            .collect();
        Self { text, samples }
    }

    fn get(&self, name: &str) -> f64 {
        *self
            .samples
            .get(name)
            .unwrap_or_else(|| panic!("no sample {name} in:\n{}", self.text))
    }
}

/// Scrapes until `done` holds for a scrape, failing after [`WAIT`].
fn scrape_until(server: &Server, what: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + WAIT;
    loop {
        let scrape = Scrape::of(server);
        if done(&scrape) {
            return scrape;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {WAIT:?}; the last scrape:\n{}",
            scrape.text
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `promtool check metrics` on `text`, if promtool is installed: the text must pass. Skipped
/// loudly without it, or fails with `CHAT_REQUIRE_TOOLS=1`.
fn promtool_check(text: &str) {
    let spawned = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => {
            chat_tests::skip_unless_required(
                "CHAT_REQUIRE_TOOLS",
                "promtool check metrics",
                &format!("promtool cannot be run: {error}"),
                "Debian: apt-get install prometheus",
            );
            return;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}\non:\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn counts_move_by_what_the_clients_did() {
    let server = Server::plain(
        RUNNER,
        &[
            "--metrics",
            "127.0.0.1:0",
            "--max-per-ip",
            "4",
            "--flood-burst",
            "3",
            "--flood-rate",
            "200",
        ],
    );
    let start = Scrape::of(&server);
    assert_eq!(start.get("chat_connections_accepted_total"), 0.0);
    assert_eq!(start.get("chat_rooms"), 1.0, "the lobby");

    // Two plain clients, one IRC client, one JSON client: 1 + 1 + 2 + 1 lines.
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    let mut carol = Client::connect(server.addr());
    carol.send("NICK carol\r\nUSER carol 0 * :Carol\r\n");
    carol.expect_line(" 001 carol ");
    carol.expect_line(" 366 carol #lobby ");
    let mut dave = Client::connect(server.addr());
    dave.send(r#"{"type":"nickname","message":"dave"}"#);
    dave.expect_line("*** You are now known as dave.");
    alice.expect_line("anonymous-4 is now known as dave");

    let before = scrape_until(&server, "five lines received", |scrape| {
        scrape.get("chat_lines_received_total") == 5.0
    });
    assert_eq!(before.get(r#"chat_connections{dialect="plain"}"#), 2.0);
    assert_eq!(before.get(r#"chat_connections{dialect="irc"}"#), 1.0);
    assert_eq!(before.get(r#"chat_connections{dialect="json"}"#), 1.0);
    assert_eq!(before.get(r#"chat_connections{dialect="undecided"}"#), 0.0);
    assert_eq!(before.get(r#"chat_people_online{where="here"}"#), 4.0);
    assert_eq!(before.get("chat_connections_accepted_total"), 4.0);

    // A fifth connection from the same address is refused.
    let mut fifth = Client::connect(server.addr());
    fifth.expect_line("too many connections from your address");
    let refused = scrape_until(&server, "a refusal", |scrape| {
        scrape.get(r#"chat_connections_refused_total{reason="per_address"}"#) == 1.0
    });
    assert_eq!(refused.get("chat_connections_accepted_total"), 4.0);

    // Alice says 8 lines at once, past her burst of 3: flood control holds her back, and each
    // line goes to the three others.
    let lines = 8;
    let paste: String = (0..lines).map(|n| format!("hello {n}\n")).collect();
    alice.send(&paste);
    for n in 0..lines {
        bob.expect_line(&format!("alice: hello {n}"));
        carol.expect_line(&format!("PRIVMSG #lobby :hello {n}"));
        dave.expect_line(&format!("alice: hello {n}"));
    }
    let after = scrape_until(&server, "the lines counted", |scrape| {
        scrape.get("chat_lines_received_total") - before.get("chat_lines_received_total")
            == f64::from(lines)
    });
    let delta = |name: &str| after.get(name) - before.get(name);
    // Each line to three people, and alice told once to slow down.
    assert_eq!(delta("chat_deliveries_total"), f64::from(lines * 3 + 1));
    // Rendered once per dialect at most: plain (and JSON) readers share one rendering.
    let sent = delta("chat_lines_sent_total");
    assert!(
        (f64::from(lines)..=f64::from(lines * 3)).contains(&sent),
        "{sent}"
    );
    assert!(delta("chat_flood_holds_total") >= 1.0, "{}", after.text);
    let line_bytes: usize = (0..lines)
        .map(|n| format!("alice: hello {n}\r\n").len())
        .sum();
    assert!(
        delta("chat_bytes_written_total") >= (2 * line_bytes) as f64,
        "{}",
        after.text
    );
    assert!(after.get("chat_hub_turn_seconds_count") > before.get("chat_hub_turn_seconds_count"));
    assert!(
        after.get("chat_hub_queue_depth_at_flush_count") > 0.0
            && after.get("chat_hub_writers_per_flush_count") > 0.0
    );
    assert_eq!(delta("chat_slow_skipped_total"), 0.0);

    // Alice quits, bob hangs up (a FIN: closing a socket with unread bytes would reset it, an
    // error).
    alice.send_line("/quit bye");
    alice.expect_closed();
    bob.shutdown_write();
    let gone = scrape_until(&server, "two disconnects", |scrape| {
        scrape.get(r#"chat_disconnects_total{reason="quit"}"#) == 1.0
            && scrape.get(r#"chat_disconnects_total{reason="closed"}"#) == 1.0
    });
    assert_eq!(gone.get(r#"chat_connections{dialect="plain"}"#), 0.0);
    assert_eq!(gone.get(r#"chat_people_online{where="here"}"#), 2.0);

    // Anything but GET /metrics is refused.
    let addr = server.metrics_addr();
    assert_eq!(get(addr, "/").0, 404);
    assert_eq!(get(addr, "/metrics/x").0, 404);
    let post =
        "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    assert_eq!(request(addr, post).0, 405);
    // OpenMetrics when asked for it.
    let (status, text) = request(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text; version=1.0.0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);
    assert!(text.ends_with("# EOF\n"), "{text}");

    promtool_check(&gone.text);
}

/// The flush spacing follows the load: a room of 20 hearing a paste of 50 lines is a light
/// load (under a thousand deliveries, so at most ten thousand a second as the hub measures
/// them), and its flushes are spaced by a sliver of the full 50 µs per writer (1 ms for 20
/// writers: what the spacing was before it followed the load); a second of quiet after, the
/// load is forgotten.
#[test]
fn the_flush_spacing_follows_the_load() {
    let server = Server::plain(RUNNER, &["--metrics", "127.0.0.1:0", "--no-flood-limit"]);
    let mut people: Vec<Client> = (0..20).map(|n| server.join(&format!("p{n}"))).collect();
    let lines = 50;
    let paste: String = (0..lines).map(|n| format!("hello {n}\n")).collect();
    people[0].send(&paste);
    for listener in &mut people[1..] {
        listener.expect_line(&format!("p0: hello {}", lines - 1));
    }
    let busy = scrape_until(&server, "the lines delivered", |scrape| {
        scrape.get("chat_lines_received_total") >= f64::from(lines)
    });
    let deliveries = busy.get("chat_deliveries_total");
    assert!(deliveries >= f64::from(lines * 19), "{}", busy.text);
    let load = busy.get("chat_hub_load_deliveries_per_second");
    // Each delivery counts 1 / 100 ms at most, and less as it ages.
    assert!(
        load > 0.0 && load <= deliveries * 10.0,
        "load {load} for {deliveries} deliveries"
    );
    let spacing = busy.get("chat_hub_flush_spacing_seconds");
    let most = 20.0 * 50e-6 * (deliveries * 10.0 / 1.5e6);
    assert!(
        spacing <= most && spacing < 1e-3 / 10.0,
        "spacing {spacing} s, at most {most} s at this load"
    );
    thread::sleep(Duration::from_secs(1));
    let quiet = Scrape::of(&server);
    let later = quiet.get("chat_hub_load_deliveries_per_second");
    assert!(
        later < load / 100.0,
        "{later} a second after a second of quiet"
    );
    promtool_check(&quiet.text);
}

/// `line 000042 sss...`: about 400 bytes, so that a client's buffers fill quickly.
fn message(n: usize) -> String {
    format!("line {n:06} {}", "s".repeat(388))
}

#[test]
fn room_messages_skipped_for_a_slow_reader_are_counted_as_it_is_told() {
    let server = Server::plain(
        RUNNER,
        &[
            "--metrics",
            "127.0.0.1:0",
            "--lag-limit",
            "20",
            "--queue-limit",
            "100",
        ],
    );
    let mut sender = server.join("sender");
    let mut staller = server.join("staller");
    staller.limit_receive_buffer(64 * 1024);
    sender.expect_line("is now known as staller");

    let mut sent = 0;
    while !server.log().contains("is lagging") {
        assert!(sent < 60_000, "never lagging after {sent} lines");
        for _ in 0..200 {
            sender.send_line(&message(sent));
            sent += 1;
        }
        sender.sync();
    }
    for _ in 0..50 {
        sender.send_line(&message(sent));
        sent += 1;
    }
    sender.sync();
    let lagging = Scrape::of(&server);
    assert!(
        lagging.get("chat_slow_skipped_total") >= 50.0,
        "{}",
        lagging.text
    );

    // It reads again, and is told how many it missed: the count the metrics have.
    let told = loop {
        let line = staller.next_line();
        if let Some(inner) = line
            .strip_prefix("*** [")
            .and_then(|rest| rest.strip_suffix(" skipped]"))
        {
            break inner.split(' ').next().unwrap().parse::<f64>().unwrap();
        }
    };
    let caught_up = Scrape::of(&server);
    assert_eq!(caught_up.get("chat_slow_skipped_total"), told);
    assert_eq!(caught_up.get("chat_slow_dropped_total"), 0.0);
}

/// A send queue grown for a client that fell behind holds its room only while it is used: once
/// the client has read everything, the hub's sweep gives it back within a few seconds (a queue
/// kept its largest size for good before, and after a burst thousands of idle connections
/// held kilobytes each).
#[test]
fn a_send_queue_grown_for_a_slow_reader_is_given_back_once_empty() {
    let server = Server::plain(RUNNER, &["--metrics", "127.0.0.1:0", "--no-flood-limit"]);
    let mut sender = server.join("sender");
    let mut reader = server.join("reader");
    reader.limit_receive_buffer(64 * 1024);
    sender.expect_line("is now known as reader");
    let idle = Scrape::of(&server).get("chat_send_queue_slots");
    assert!(idle <= 8.0, "two idle connections hold {idle} slots");

    // The reader reads nothing: its queue grows past the lag limit (256 by default) and holds
    // what it has, so no sweep can take it.
    let mut sent = 0;
    let grown = loop {
        assert!(sent < 60_000, "the queue never grew after {sent} lines");
        for _ in 0..200 {
            sender.send_line(&message(sent));
            sent += 1;
        }
        sender.sync();
        let scrape = Scrape::of(&server);
        if scrape.get("chat_send_queue_slots") >= 256.0 {
            break scrape;
        }
    };
    thread::sleep(Duration::from_secs(3));
    let held = Scrape::of(&server).get("chat_send_queue_slots");
    assert!(
        held >= 256.0,
        "a queue with messages in it kept its room: {held} slots ({} before)",
        grown.get("chat_send_queue_slots")
    );

    // It reads everything: the last line, or the count of what it missed (which comes after
    // the last line it was given, once its queue is empty).
    let last = message(sent - 1);
    loop {
        let line = reader.next_line();
        if line.ends_with(" skipped]") || line.ends_with(&last) {
            break;
        }
    }
    let released = scrape_until(&server, "the grown queue given back", |scrape| {
        scrape.get("chat_send_queue_slots") <= 8.0
    });
    promtool_check(&released.text);
}

/// `url` on Redis database `db` (10 is the metrics test's; the cluster tests have 1 to 8),
/// whatever database it named.
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

#[test]
fn cluster_lines_are_counted_out_on_one_node_and_in_on_the_other() {
    let test = "cluster_lines_are_counted_out_on_one_node_and_in_on_the_other";
    let Some(url) = redis_url(test) else { return };
    let url = on_db(&url, 10);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos());
    let tag = format!("{}-{nanos:x}", std::process::id());
    let node = |name: &str| {
        let name = format!("metrics-{name}-{tag}");
        Server::plain(
            RUNNER,
            &[
                "--cluster",
                &url,
                "--node",
                &name,
                "--metrics",
                "127.0.0.1:0",
            ],
        )
    };
    let (a, b) = (node("a"), node("b"));
    assert!(
        Scrape::of(&a)
            .text
            .contains("chat_cluster_published_total 0")
    );
    // A room of this run, so that lines of other runs on the database do not count.
    let room = format!("#m{nanos:x}");
    let mut alice = a.connect();
    alice.send_line(&format!("/join {room}"));
    alice.expect_line(&format!("now talking in {room}"));
    let mut bob = b.connect();
    bob.send_line(&format!("/join {room}"));
    bob.expect_line(&format!("now talking in {room}"));
    let (a0, b0) = (Scrape::of(&a), Scrape::of(&b));

    for n in 0..3 {
        alice.send_line(&format!("over the wire {n}"));
    }
    for n in 0..3 {
        bob.expect_line(&format!("over the wire {n}"));
    }
    let published = |scrape: &Scrape| scrape.get("chat_cluster_published_total");
    let received = |scrape: &Scrape| scrape.get("chat_cluster_received_total");
    let a1 = scrape_until(&a, "node a's lines published and read back", |scrape| {
        published(scrape) - published(&a0) >= 3.0 && received(scrape) - received(&a0) >= 3.0
    });
    let b1 = Scrape::of(&b);
    assert!(received(&b1) - received(&b0) >= 3.0, "{}", b1.text);
    assert!(
        b1.get("chat_cluster_lag_seconds_count") - b0.get("chat_cluster_lag_seconds_count") >= 3.0
    );
    assert_eq!(published(&b1), published(&b0), "bob said nothing");
    promtool_check(&a1.text);
}
