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
        "--oper-file",
        "--hash-password",
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
fn max_clients_must_be_within_what_the_server_can_reserve() {
    for bad in ["0", "1048577"] {
        let output = run(&["--max-clients", bad]);
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("--max-clients must be between 1 and 1048576"),
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

#[test]
fn version_prints_the_version_and_exits_zero() {
    let output = run(&["--version"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("chat-runner {}\n", env!("CARGO_PKG_VERSION"))
    );
}

/// Writes `text` as `chat.toml` in `dir` and returns its path as an argument.
fn config_file(dir: &chat_tests::TempDir, text: &str) -> String {
    let path = dir.0.join("chat.toml");
    std::fs::write(&path, text).expect("writing the config file");
    path.to_str().expect("a UTF-8 path").to_owned()
}

/// The value of `key` in `--print-config`'s output.
fn printed(config: &str, key: &str) -> Option<String> {
    config.lines().find_map(|line| {
        let (name, value) = line.split_once(" = ")?;
        (name == key).then(|| value.to_owned())
    })
}

#[test]
fn a_config_file_sets_values_and_flags_override_it() {
    let dir = chat_tests::TempDir::new("cli-config");
    let file = config_file(
        &dir,
        "# a comment\nlisten = \"127.0.0.1:7000\"\nmax-per-ip = 16\nhistory = 7\nno-data = true\n",
    );
    let output = run(&["--config", &file, "--max-per-ip", "3", "--print-config"]);
    assert!(output.status.success(), "{output:?}");
    let config = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        printed(&config, "max-per-ip").as_deref(),
        Some("3"),
        "{config}"
    );
    assert_eq!(
        printed(&config, "history").as_deref(),
        Some("7"),
        "{config}"
    );
    assert_eq!(
        printed(&config, "listen").as_deref(),
        Some("\"127.0.0.1:7000\""),
        "{config}"
    );
    assert_eq!(
        printed(&config, "no-data").as_deref(),
        Some("true"),
        "{config}"
    );
    // Defaults are printed too, and keys without a value as comments: every key is there.
    assert_eq!(
        printed(&config, "queue-limit").as_deref(),
        Some("1024"),
        "{config}"
    );
    assert!(config.contains("# cluster = (not set)"), "{config}");
    // The documented default (README): 30 ms, three times a busy room of 200's spacing.
    assert_eq!(
        printed(&config, "flush-interval").as_deref(),
        Some("30.0"),
        "{config}"
    );
    assert_eq!(
        printed(&config, "log-level").as_deref(),
        Some("\"info\""),
        "{config}"
    );
    // What it prints is itself a config file giving the same configuration.
    let again = config_file(&dir, &config);
    let output = run(&["--config", &again, "--print-config"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), config);
}

#[test]
fn a_config_file_value_is_checked_like_the_flag() {
    let dir = chat_tests::TempDir::new("cli-config-range");
    let file = config_file(&dir, "queue-limit = 0\n");
    let output = run(&["--config", &file, "--print-config"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--queue-limit must be at least 1"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_config_key_is_refused_by_name() {
    let dir = chat_tests::TempDir::new("cli-config-unknown");
    let file = config_file(&dir, "listen = \"127.0.0.1:0\"\nmax-per-address = 4\n");
    let output = run(&["--config", &file]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&file) && stderr.contains("unknown field `max-per-address`"),
        "{stderr}"
    );
    assert!(stderr.contains("line 2, column 1"), "{stderr}");
    assert!(output.stdout.is_empty(), "{output:?}");
}

#[test]
fn a_bad_config_file_is_refused_with_line_and_column() {
    let dir = chat_tests::TempDir::new("cli-config-syntax");
    for (text, at) in [
        ("history = 5\nlisten = \"127.0.0.1:0\n", "line 2, column 22"),
        (
            "history = 5\n\n  max-per-ip = \"lots\"\n",
            "line 3, column 16",
        ),
    ] {
        let file = config_file(&dir, text);
        let output = run(&["--config", &file]);
        assert_eq!(output.status.code(), Some(2), "{text:?}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&file) && stderr.contains(at),
            "{text:?}: {stderr}"
        );
    }
    let output = run(&["--config", &dir.0.join("missing.toml").to_string_lossy()]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}

#[test]
fn log_format_json_writes_one_object_a_line() {
    let server = chat_tests::Server::plain(RUNNER, &["--log-format", "json"]);
    let mut client = server.connect();
    client.nick("alice");
    server.expect_log("alice");
    let log = server.log();
    let mut lines = 0;
    for line in log.lines() {
        let object: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|error| panic!("not a JSON object ({error}): {line:?}"));
        let time = object["time"].as_str().expect("a time");
        assert!(
            time.len() == 20 && time.ends_with('Z') && &time[10..11] == "T",
            "{time}"
        );
        assert!(object["msg"].is_string(), "{line}");
        assert!(
            ["error", "warn", "info", "debug"].contains(&object["level"].as_str().unwrap_or("")),
            "{line}"
        );
        assert_eq!(
            object.as_object().map(|fields| fields.len()),
            Some(3),
            "{line}"
        );
        lines += 1;
    }
    assert!(lines >= 2, "{log}");
    assert!(
        log.lines()
            .any(|line| line.contains("\"level\":\"debug\",\"msg\":\"") && line.contains("alice"))
    );
    assert!(
        log.contains("\"level\":\"info\",\"msg\":\"listening on "),
        "{log}"
    );

    let output = run(&["--log-format", "xml"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--log-format \"xml\": expected text or json"),
        "{stderr}"
    );
}

#[test]
fn operators_are_account_names_in_a_cluster_too() {
    let output = run(&["--oper", "not a name"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--oper \"not a name\" is not an account name"),
        "{stderr}"
    );
    let output = run(&[
        "--oper",
        "root",
        "--cluster",
        "redis://127.0.0.1:1/",
        "--node",
        "a",
    ]);
    // Accepted: the cluster's accounts are shared, and this Redis is not there.
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot join the cluster") && !stderr.contains("--oper"),
        "{stderr}"
    );
    let output = run(&["--oper", "root", "--oper", "ann", "--print-config"]);
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.contains("oper = [\"root\", \"ann\"]"), "{printed}");
}

#[test]
fn a_log_level_is_one_of_four() {
    let output = run(&["--log-level", "loud"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--log-level \"loud\": expected error, warn, info or debug"),
        "{stderr}"
    );
    let dir = chat_tests::TempDir::new("cli-log-level");
    let file = config_file(&dir, "log-level = \"debug\"\n");
    let output = run(&["--config", &file, "--print-config"]);
    let config = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        printed(&config, "log-level").as_deref(),
        Some("\"debug\""),
        "{config}"
    );
}
