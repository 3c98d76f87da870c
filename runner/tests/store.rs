//! The store over real sockets and a real SQLite file: what survives a `kill -9`, what the
//! server refuses at start, and what people are told when the store cannot keep up.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use chat_tests::{Client, Server, send_signal};

const RUNNER: &str = env!("CARGO_BIN_EXE_chat-runner");

/// A directory of its own for one test, removed afterwards.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("chat-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("making a temporary directory");
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn arg(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temporary path")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a server that must fail to start, and returns what it said.
fn fails_to_start(args: &[&str]) -> Output {
    let output = Command::new(RUNNER)
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .output()
        .expect("running chat-runner");
    assert!(
        !output.status.success(),
        "chat-runner {args:?} started; it should not have"
    );
    output
}

/// The numbers of the lines `sender-N` in `lines` that came from `sender`, in order.
fn numbers_from(lines: &[String], sender: &str) -> Vec<u32> {
    let prefix = format!("{sender}: {sender}-");
    lines
        .iter()
        .filter_map(|line| {
            let at = line.find(&prefix)?;
            line[at + prefix.len()..].trim().parse().ok()
        })
        .collect()
}

/// `/history 500` in `room`, as the lines shown.
fn history_of(client: &mut Client, room: &str) -> Vec<String> {
    client.send_line(&format!("/join {room}"));
    client.sync();
    client.send_line("/history 500");
    client.expect_line(&format!("of {room}:"));
    let mut lines = Vec::new();
    loop {
        let line = client.next_line();
        if line.contains(&format!("End of history of {room}.")) {
            return lines;
        }
        lines.push(line);
    }
}

#[test]
fn every_line_anyone_saw_survives_a_kill_once_and_in_order() {
    let data = TempDir::new("kill");
    let server = Server::plain(RUNNER, &["--data", data.arg()]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    let mut carol = server.join("carol");
    alice.send_line("/join #one");
    alice.expect_line("#one (1)");
    bob.send_line("/join #two");
    bob.expect_line("#two (1)");
    for room in ["#one", "#two"] {
        carol.send_line(&format!("/join {room}"));
        carol.expect_line(&format!("You are now talking in {room}."));
    }
    carol.sync();

    // Both talk, a few lines at a time; the server is killed while they do.
    let stop = Arc::new(AtomicBool::new(false));
    let talk = |mut client: Client, name: &'static str| {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && n < 50_000 {
                let text: String = (n + 1..=n + 10).map(|n| format!("{name}-{n}\n")).collect();
                client.send(text);
                n += 10;
                thread::sleep(Duration::from_millis(1));
            }
            client
        })
    };
    let (alice, bob) = (talk(alice, "alice"), talk(bob, "bob"));
    let mut seen = Vec::new();
    while numbers_from(&seen, "alice").len() < 300 || numbers_from(&seen, "bob").len() < 300 {
        seen.push(carol.next_line());
    }
    stop.store(true, Ordering::Relaxed);
    send_signal(server.pid(), "KILL");
    carol.expect_closed();
    let _ = (alice.join(), bob.join());
    let text = String::from_utf8_lossy(carol.received()).into_owned();
    let seen: Vec<String> = text.lines().map(str::to_owned).collect();
    let (seen_alice, seen_bob) = (numbers_from(&seen, "alice"), numbers_from(&seen, "bob"));
    drop(server);

    let server = Server::plain(RUNNER, &["--data", data.arg()]);
    let log = server.expect_log("history in ");
    assert!(log.contains("2 room(s) kept"), "{log}");
    let mut dave = server.join("dave");
    for (room, sender, seen) in [("#one", "alice", seen_alice), ("#two", "bob", seen_bob)] {
        let kept = numbers_from(&history_of(&mut dave, room), sender);
        // The last 500 kept: what carol saw of them is there, in order, once.
        let unique: HashSet<u32> = kept.iter().copied().collect();
        assert_eq!(
            unique.len(),
            kept.len(),
            "{room}: a line kept twice: {kept:?}"
        );
        assert!(
            kept.windows(2).all(|pair| pair[0] < pair[1]),
            "{room}: out of order: {kept:?}"
        );
        let first = kept.first().copied().unwrap_or(u32::MAX);
        for number in seen.iter().filter(|&&number| number >= first) {
            assert!(
                unique.contains(number),
                "{room}: {sender}-{number} was seen but is not kept"
            );
        }
        assert!(
            kept.last() >= seen.last(),
            "{room}: the last line seen ({:?}) is not kept (last kept {:?})",
            seen.last(),
            kept.last()
        );
    }
}

#[test]
fn topics_and_the_line_numbering_survive_a_restart() {
    let data = TempDir::new("topics");
    let server = Server::plain(RUNNER, &["--data", data.arg()]);
    let mut alice = server.join("alice");
    alice.send_line("/join #rust");
    alice.expect_line("#rust (1)");
    alice.send_line("/topic all about rust");
    alice.expect_line("set the topic of #rust");
    alice.send_line("first life");
    alice.sync();
    server.signal("TERM");
    drop(server);

    let server = Server::plain(
        RUNNER,
        &[
            "--data",
            data.arg(),
            "--history",
            "5",
            "--greeting-delay",
            "100",
        ],
    );
    let mut bob = server.join("bob");
    // The room stayed with its topic; its line is there when bob joins.
    bob.send_line("/rooms");
    bob.expect_line("#rust (0) all about rust");
    bob.send_line("/join #rust");
    bob.expect_line("Topic of #rust: all about rust");
    bob.expect_line("Earlier in #rust:");
    bob.expect_line("alice: first life");
    bob.send_line("second life");
    bob.sync();
    let history = history_of(&mut bob, "#rust");
    assert_eq!(history.len(), 2, "{history:?}");
    assert!(history[0].ends_with("alice: first life"), "{history:?}");
    // `/history` dates its lines (the join replay said how long ago): `[2026-12-01 09:33 UTC]`.
    assert!(
        history[0].starts_with("[20") && history[0].contains(" UTC] alice: first life"),
        "{history:?}"
    );
    assert!(history[1].ends_with("bob: second life"), "{history:?}");

    // An IRC client gets 333: who set the topic, and when.
    let mut irc = server.connect();
    irc.send(b"NICK ann\r\nUSER a 0 * :Ann\r\nJOIN #rust\r\n");
    irc.expect_line(" 332 ann #rust :all about rust");
    let who_when = irc.expect_line(" 333 ann #rust alice ");
    let set_at: u64 = who_when.rsplit(' ').next().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        set_at <= now && now - set_at < 600,
        "the topic was set at {set_at}, now is {now}"
    );
}

#[test]
fn start_refuses_a_directory_it_cannot_use_and_never_overwrites() {
    let dir = TempDir::new("refuse");

    // Cannot be made: a file stands where a directory would go.
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let below = file.join("data");
    let output = fails_to_start(&["--data", below.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot use") && stderr.contains("as the data directory"),
        "{stderr}"
    );
    // The file itself: said to be one.
    let output = fails_to_start(&["--data", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot use {} as the data directory: it is a file, not a directory",
            file.display()
        )),
        "{stderr}"
    );

    // Not a database: named, and left as it was.
    let junk = dir.path().join("junk");
    std::fs::create_dir_all(&junk).unwrap();
    let contents = b"these are my notes, not a database\n".repeat(200);
    std::fs::write(junk.join("chat.db"), &contents).unwrap();
    let output = fails_to_start(&["--data", junk.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("chat.db is not a chat-runner database")
            && stderr.contains("left as it is"),
        "{stderr}"
    );
    assert!(
        std::fs::read(junk.join("chat.db")).unwrap() == contents,
        "the file was changed"
    );

    // A newer schema: named, and left as it was.
    let newer = dir.path().join("newer");
    std::fs::create_dir_all(&newer).unwrap();
    {
        let db = rusqlite::Connection::open(newer.join("chat.db")).unwrap();
        db.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;")
            .unwrap();
    }
    let before = std::fs::read(newer.join("chat.db")).unwrap();
    let output = fails_to_start(&["--data", newer.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("has schema version 99, newer than"),
        "{stderr}"
    );
    assert!(
        std::fs::read(newer.join("chat.db")).unwrap() == before,
        "the file was changed"
    );

    // Held by another server: refused, naming it.
    let shared = dir.path().join("shared");
    let first = Server::plain(RUNNER, &["--data", shared.to_str().unwrap()]);
    let output = fails_to_start(&["--data", shared.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is in use by another chat-runner")
            && stderr.contains(&format!("pid {}", first.pid()))
            && stderr.contains(&first.addr().to_string()),
        "{stderr}"
    );
    // Once it is gone (even killed), the directory is free again.
    send_signal(first.pid(), "KILL");
    drop(first);
    let again = Server::plain(RUNNER, &["--data", shared.to_str().unwrap()]);
    again.expect_log("history in ");
}

#[test]
fn the_sync_mode_is_chosen_logged_and_checked() {
    let data = TempDir::new("sync");
    // The default, then full: the start-up line names the mode the database reads back.
    for (args, mode) in [
        (&[][..], "(--sync normal)"),
        (&["--sync", "full"][..], "(--sync full)"),
    ] {
        let server = Server::plain(RUNNER, &[&["--data", data.arg()][..], args].concat());
        let log = server.expect_log("history in ");
        assert!(log.contains(mode), "{args:?}: {log}");
        let mut alice = server.join("alice");
        alice.send_line(&format!("said with {args:?}"));
        alice.sync();
    }
    // Anything else is refused before the directory is touched, like any bad flag.
    let unused = data.path().join("unused");
    for bad in ["FULL", "off", ""] {
        let output = fails_to_start(&["--data", unused.to_str().unwrap(), "--sync", bad]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "--sync {bad:?}: {stderr}");
        assert!(
            stderr.contains("--sync") && stderr.contains("expected normal or full"),
            "{stderr}"
        );
    }
    assert!(!unused.exists());
}

#[test]
fn a_store_that_cannot_write_is_told_once_chat_goes_on_and_it_recovers() {
    let data = TempDir::new("stuck");
    let server = Server::plain(RUNNER, &["--data", data.arg()]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    alice.send_line("kept before");
    bob.expect_line("alice: kept before");

    // Another process takes the database's write lock and holds it, as a stuck backup would.
    let blocker = rusqlite::Connection::open(data.path().join("chat.db")).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let began = Instant::now();
    alice.send_line("while stuck 1");
    bob.expect_line("History is not being kept just now");
    let waited = began.elapsed();
    let received = String::from_utf8_lossy(bob.received()).into_owned();
    assert!(received.contains("alice: while stuck 1"), "{received}");
    assert!(
        waited < Duration::from_secs(8),
        "the line waited {waited:?} for a store that cannot write"
    );
    // Chat goes on, at once, and nobody is told again.
    for n in 2..=5 {
        alice.send_line(&format!("while stuck {n}"));
        bob.expect_line(&format!("alice: while stuck {n}"));
    }
    let told = String::from_utf8_lossy(bob.received())
        .matches("is not being kept")
        .count();
    assert_eq!(told, 1);
    let log = server.expect_log("store: writing failed");
    assert!(log.contains("database is locked"), "{log}");

    // The lock goes: writing resumes, and people are told.
    blocker.execute_batch("ROLLBACK").unwrap();
    drop(blocker);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    while !String::from_utf8_lossy(bob.received()).contains("History is being kept again.") {
        assert!(
            Instant::now() < deadline,
            "never told history is kept again"
        );
        n += 1;
        alice.send_line(&format!("after {n}"));
        bob.expect_line(&format!("alice: after {n}"));
    }
    alice.send_line("kept after");
    bob.expect_line("alice: kept after");
    let history = history_of(&mut bob, "#lobby");
    assert!(
        history
            .iter()
            .any(|line| line.ends_with("alice: kept before")),
        "{history:?}"
    );
    assert!(
        history
            .iter()
            .any(|line| line.ends_with("alice: kept after")),
        "{history:?}"
    );
}
