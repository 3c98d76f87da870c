//! chat-load against a real chat-runner over loopback: clients spread over rooms, every line
//! counted where it went. The server runs in this process (`chat_runner::serve` on a thread of
//! its own, in memory, on a free loopback port); chat-load runs as the binary cargo built,
//! bounded in time and killed if it overruns. Counts only: nothing here depends on how fast
//! this machine is.
//!
//! A second test puts chat-load in front of a fake server that sends every line to everyone,
//! rooms or not, to check that misdeliveries are caught, not only that a good server passes.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use chat_core::Config;
use chat_runner::{Settings, SyncMode, listen, serve};

/// The most a chat-load run here may take (registering 20 clients, 1 s of sending, the drain).
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// Starts chat-runner in this process on a free loopback port, with the sweep's flags (no
/// flood limit, no per-address cap, no colour, no history), and returns its address.
fn start_server() -> String {
    let listener = listen("127.0.0.1:0".parse().unwrap()).expect("bind a loopback port");
    let addr = listener.local_addr().unwrap().to_string();
    let settings = Settings {
        core: Config::default()
            .with_colour(false)
            .with_history(0)
            .with_flood_limit(None),
        lag_limit: 256,
        queue_limit: 1024,
        stall_timeout: Some(Duration::from_secs(60)),
        max_per_address: 0,
        flush_interval: chat_runner::DEFAULT_FLUSH_INTERVAL,
        record: None,
        data: None,
        history_keep: 100,
        private_history: Duration::ZERO,
        sync: SyncMode::Normal,
        cluster: None,
        metrics: None,
        motd: None,
        operators: Vec::new(),
        operator_accounts: Vec::new(),
    };
    // The thread serves until the test process exits.
    thread::spawn(move || serve(listener, settings).expect("serve"));
    addr
}

/// Runs chat-load with `args` (and `--json`), killing it if it takes longer than
/// [`RUN_LIMIT`]; the JSON object it printed.
fn chat_load(args: &[&str]) -> serde_json::Value {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chat-load"))
        .args(args)
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chat-load");
    let started = Instant::now();
    while child.try_wait().expect("wait for chat-load").is_none() {
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chat-load {args:?} took more than {RUN_LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "chat-load {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json = stdout
        .lines()
        .rev()
        .find(|line| line.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON from chat-load: {stdout}"));
    serde_json::from_str(json).unwrap_or_else(|error| panic!("{error}: {json}"))
}

fn numbers(value: &serde_json::Value) -> Vec<u64> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(|n| n.as_u64().expect("a count"))
        .collect()
}

/// 20 clients in 4 rooms of 5, 5 lines a second each for 1 s: every line reaches the 4 other
/// members of its room, once, and no one else.
fn rooms_over(dialect: &str) {
    let addr = start_server();
    let report = chat_load(&[
        "--addr",
        &addr,
        "--dialect",
        dialect,
        "--clients",
        "20",
        "--rooms",
        "4",
        "--rate",
        "5",
        "--duration",
        "1",
    ]);
    assert_eq!(report["rooms"], 4, "{report}");
    let sent = report["sent"].as_u64().unwrap();
    // 20 clients × 5 a second × 1 s, give or take the schedule's edges.
    assert!((15..=25).contains(&(sent / 4)), "{report}");
    let expected = numbers(&report["room_expected"]);
    let delivered = numbers(&report["room_delivered"]);
    assert_eq!(expected.len(), 4, "{report}");
    assert_eq!(
        expected.iter().sum::<u64>(),
        sent * 4,
        "4 others per line: {report}"
    );
    assert_eq!(delivered, expected, "every room got its lines: {report}");
    assert_eq!(report["delivered"].as_u64(), Some(sent * 4), "{report}");
    assert_eq!(report["misdelivered"], 0, "{report}");
    assert_eq!(report["duplicates"], 0, "{report}");
    assert_eq!(report["rooms_incomplete"], 0, "{report}");
    assert_eq!(report["disconnects"], 0, "{report}");
}

#[test]
fn plain_clients_in_four_rooms_each_get_their_rooms_lines() {
    rooms_over("plain");
}

#[test]
fn irc_clients_in_four_rooms_each_get_their_rooms_lines() {
    rooms_over("irc");
}

/// A fake plain-dialect server that ignores rooms: it answers a client's `/part #lobby` as
/// chat-runner does, then sends every line anyone says to everyone, its sender included.
fn start_careless_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let everyone: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            let everyone = everyone.clone();
            everyone.lock().unwrap().push(stream.try_clone().unwrap());
            thread::spawn(move || {
                let mut reply = stream.try_clone().unwrap();
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if line == "/part #lobby" {
                        let _ = reply.write_all(b"*** You left #lobby.\n");
                    } else if !line.starts_with('/') {
                        let said = format!("someone: {line}\n");
                        for other in everyone.lock().unwrap().iter_mut() {
                            let _ = other.write_all(said.as_bytes());
                        }
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn lines_sent_to_the_wrong_room_are_counted() {
    let addr = start_careless_server();
    let report = chat_load(&[
        "--addr",
        &addr,
        "--clients",
        "8",
        "--rooms",
        "2",
        "--rate",
        "5",
        "--duration",
        "1",
    ]);
    let sent = report["sent"].as_u64().unwrap();
    assert!(sent > 0, "{report}");
    // Each line reaches its 3 room-mates (counted), the 4 of the other room and its sender
    // (misdelivered).
    assert_eq!(report["delivered"].as_u64(), Some(sent * 3), "{report}");
    assert_eq!(report["misdelivered"].as_u64(), Some(sent * 5), "{report}");
    assert_eq!(report["rooms_incomplete"], 0, "{report}");
}
