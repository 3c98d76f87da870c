//! The command line of `chat-runner`: help, bad arguments, and the address it reports.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

const RUNNER: &str = env!("CARGO_BIN_EXE_chat-runner");

/// How long the server may take to start, or to exit after a bad argument.
const WAIT: Duration = Duration::from_secs(10);

/// Runs `chat-runner` with `args` to completion (it must exit by itself within [`WAIT`]).
fn run(args: &[&str]) -> Output {
    chat_tests::run_to_exit(RUNNER, args, WAIT).0
}

/// A server started in the background, killed when dropped.
#[derive(Debug)]
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `chat-runner` with `args` and returns it with the first line it prints on stdout.
fn start(args: &[&str]) -> (Running, String) {
    let mut child = Command::new(RUNNER)
        .args(args)
        .arg("--no-data")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning chat-runner");
    let stdout = child.stdout.take().expect("piped stdout");
    let running = Running(child);
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = sender.send(line);
    });
    let line = receiver
        .recv_timeout(WAIT)
        .unwrap_or_else(|_| panic!("chat-runner {args:?} printed nothing within {WAIT:?}"));
    (running, line)
}

#[test]
fn help_lists_every_option_and_exits_zero() {
    let output = run(&["--help"]);
    assert!(output.status.success(), "{output:?}");
    let help = String::from_utf8_lossy(&output.stdout);
    for option in [
        "--listen",
        "--silence-timeout",
        "--queue-limit",
        "--no-color",
        "--connect",
        "--reconnect",
        "--sync",
    ] {
        assert!(
            help.contains(option),
            "--help does not mention {option}:\n{help}"
        );
    }
}

#[test]
fn a_zero_queue_limit_is_refused() {
    let output = run(&["--queue-limit", "0"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--queue-limit must be at least 1"),
        "stderr: {stderr}"
    );
}

#[test]
fn a_zero_room_size_is_refused() {
    let output = run(&["--max-room-members", "0"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--max-room-members must be at least 1"),
        "stderr: {stderr}"
    );
}

#[test]
fn max_clients_must_be_within_what_the_server_is_built_for() {
    for bad in ["0", "16385"] {
        let output = run(&["--max-clients", bad]);
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("--max-clients must be between 1 and 16384"),
            "{stderr}"
        );
    }
}

#[test]
fn reconnect_without_connect_is_refused() {
    let output = run(&["--reconnect"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--reconnect is for clients"),
        "stderr: {stderr}"
    );
}

#[test]
fn a_bad_listen_address_is_refused() {
    let output = run(&["--listen", "nonsense"]);
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--listen") && stderr.contains("nonsense"),
        "stderr: {stderr}"
    );
    assert!(output.stdout.is_empty(), "{output:?}");
}

#[test]
fn bad_numbers_and_unknown_options_are_refused() {
    for args in [
        &["--queue-limit", "lots"][..],
        &["--silence-timeout", "-1"],
        &["--listen", "99999"],
        &["--colour"],
    ] {
        let output = run(args);
        assert!(!output.status.success(), "{args:?}: {output:?}");
        assert!(
            !output.stderr.is_empty() || !output.stdout.is_empty(),
            "{args:?}: no message"
        );
    }
}

#[test]
fn a_port_in_use_is_reported() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("binding a port");
    let addr = taken.local_addr().expect("local_addr").to_string();
    let output = run(&["--listen", &addr]);
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot listen on"), "stderr: {stderr}");
}

#[test]
fn prints_the_bound_ipv4_address() {
    let (_server, line) = start(&["--listen", "127.0.0.1:0"]);
    let addr = line
        .trim_end()
        .strip_prefix("chat-runner listening on 127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let port: u16 = addr.parse().expect("a port number");
    assert_ne!(port, 0);
    TcpStream::connect(("127.0.0.1", port)).expect("connecting to the printed port");
}

#[test]
fn prints_the_bound_ipv6_address() {
    if TcpListener::bind("[::1]:0").is_err() {
        println!("skipped: IPv6 loopback is not available here");
        return;
    }
    let (_server, line) = start(&["--listen", "[::1]:0"]);
    let addr = line
        .trim_end()
        .strip_prefix("chat-runner listening on [::1]:")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let port: u16 = addr.parse().expect("a port number");
    assert_ne!(port, 0);
    TcpStream::connect(("::1", port)).expect("connecting to the printed port");
}
