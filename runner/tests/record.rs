//! `--record` and `--replay` over real sockets: a recorded session replays to exactly what each
//! client received, and a damaged recording is refused with the offset named.

use std::path::Path;
use std::process::Command;

use chat_tests::Server;

/// The server binary, built by cargo for these tests.
const RUNNER: &str = env!("CARGO_BIN_EXE_chat-runner");

/// Runs `--replay` on `recording`: each connection's bytes, in connection order.
fn replay(recording: &Path) -> Vec<(String, Vec<u8>)> {
    let output = Command::new(RUNNER)
        .arg("--replay")
        .arg(recording)
        .output()
        .expect("running chat-runner --replay");
    assert!(
        output.status.success(),
        "--replay failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut rest = output.stdout.as_slice();
    let mut connections = Vec::new();
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .expect("a header line");
        let header = std::str::from_utf8(&rest[..end]).expect("a UTF-8 header");
        let (conn, length) = header
            .strip_prefix("=== ")
            .and_then(|header| header.strip_suffix(" bytes"))
            .and_then(|header| header.split_once(": "))
            .unwrap_or_else(|| panic!("a header, not {header:?}"));
        let length: usize = length.parse().expect("a byte count");
        let bytes = rest[end + 1..end + 1 + length].to_vec();
        connections.push((conn.to_owned(), bytes));
        rest = &rest[end + 1 + length..];
    }
    connections
}

#[test]
fn a_recorded_session_replays_to_exactly_what_each_client_received() {
    let dir = chat_tests::TempDir::new("record");
    let recording = dir.0.join("session.rec");
    let recording_arg = recording.to_str().expect("a UTF-8 path");
    let mut server = Server::plain(RUNNER, &["--record", recording_arg, "--history", "5"]);
    let mut alice = server.join("alice");
    alice.send_line("before bob");
    alice.sync();
    // Bob's welcome replays the lobby: a history answer, recorded as the store gave it.
    let mut bob = server.join("bob");
    alice.send_line("hello bob");
    bob.expect_line("alice: hello bob");
    bob.send_line("/history 3");
    bob.expect_line("End of history of #lobby.");
    bob.send_line("/msg alice psst");
    alice.expect_line("bob: psst");
    bob.send_line("/join #side");
    bob.expect_line("#side (1)");
    bob.send_line("in the side room");
    alice.send_line("/nick alicia");
    alice.expect_line("You are now known as alicia.");
    alice.send_line("/quit see you");
    alice.expect_closed();
    server.signal("TERM");
    assert!(server.expect_exit().success());
    bob.expect_closed();

    let replayed = replay(&recording);
    assert_eq!(replayed.len(), 2, "two connections");
    assert_eq!(
        String::from_utf8_lossy(&replayed[0].1),
        String::from_utf8_lossy(alice.received()),
        "alice"
    );
    assert_eq!(
        String::from_utf8_lossy(&replayed[1].1),
        String::from_utf8_lossy(bob.received()),
        "bob"
    );
    assert_eq!(replayed[0].1, alice.received(), "byte for byte");
    assert_eq!(replayed[1].1, bob.received(), "byte for byte");
}

#[test]
fn a_damaged_recording_is_refused_naming_the_offset() {
    let dir = chat_tests::TempDir::new("damaged");
    let recording = dir.0.join("session.rec");
    let recording_arg = recording.to_str().expect("a UTF-8 path");
    let mut server = Server::plain(RUNNER, &["--record", recording_arg]);
    let mut alice = server.join("alice");
    alice.send_line("hello");
    server.signal("TERM");
    assert!(server.expect_exit().success());
    let whole = std::fs::read(&recording).expect("the recording");

    // Cut short inside the last record.
    let cut = dir.0.join("cut.rec");
    std::fs::write(&cut, &whole[..whole.len() - 3]).expect("writing the cut recording");
    let output = Command::new(RUNNER)
        .arg("--replay")
        .arg(&cut)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("not a valid recording at byte "),
        "{stderr}"
    );

    // Not a recording at all.
    let other = dir.0.join("other.rec");
    std::fs::write(&other, b"hello, I am not a recording").unwrap();
    let output = Command::new(RUNNER)
        .arg("--replay")
        .arg(&other)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not a chat-runner recording"), "{stderr}");

    // A file that cannot be created is a clear error at start, exit status 1.
    let output = Command::new(RUNNER)
        .args(["--listen", "127.0.0.1:0", "--no-data", "--record"])
        .arg(dir.0.join("no/such/dir/x.rec"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot record to "), "{stderr}");
}

/// Registers an IRC client called `nick` and returns it once its MOTD has ended.
fn irc_client(server: &Server, nick: &str) -> chat_tests::Client {
    let mut irc = chat_tests::Client::connect(server.addr());
    irc.send(format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n"));
    irc.expect_line(" 376 ");
    irc
}

#[test]
fn the_motd_and_its_reload_replay_byte_for_byte() {
    let dir = chat_tests::TempDir::new("record-motd");
    let recording = dir.0.join("session.rec");
    let motd = dir.0.join("motd.txt");
    let config = dir.0.join("chat.toml");
    std::fs::write(&motd, "Rules: be kind.\r\n\x1b[31mred \t\nlast\n").unwrap();
    std::fs::write(&config, "announce-limit = 200\n").unwrap();
    let mut server = Server::plain(
        RUNNER,
        &[
            "--record",
            recording.to_str().unwrap(),
            "--motd",
            motd.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
    );
    let mut clients = vec![irc_client(&server, "ann")];
    let plain = server.connect();
    assert!(
        String::from_utf8_lossy(plain.received()).contains("*** Rules: be kind."),
        "the first motd"
    );
    clients.push(plain);

    // A reload: a new message and a new room limit, each recorded when it came.
    std::fs::write(&motd, "second\n").unwrap();
    // Joins to rooms of more than one are announced to plain-text users no more.
    std::fs::write(&config, "announce-limit = 1\n").unwrap();
    server.signal("HUP");
    server.expect_log("motd reloaded (1 lines)");
    server.expect_log("SIGHUP: announce-limit: 200 -> 1");
    // The reload reaches the hub after its log lines: until it has, a newcomer gets the old
    // message. Every try is a connection of the recording, and replayed too.
    chat_tests::wait_until("the new motd", || {
        let plain = server.connect();
        let new = String::from_utf8_lossy(plain.received()).contains("*** second");
        clients.push(plain);
        new
    });
    clients[0].send("MOTD\r\n");
    clients[0].expect_line(":- second");
    // The new limit holds: a newcomer's arrival is not announced to the first plain user.
    clients[1].send_line("/join #two");
    clients[1].expect_line("#two (1)");
    let mut last = server.connect();
    last.nick("zed");
    last.send_line("/join #two");
    last.expect_line("#two (2)");
    let seen = clients[1].sync();
    assert!(
        !seen.iter().any(|line| line.contains("zed joined")),
        "{seen:?}"
    );
    clients.push(last);
    server.signal("TERM");
    assert!(server.expect_exit().success());
    for client in &mut clients {
        client.expect_closed();
    }

    let replayed = replay(&recording);
    assert_eq!(replayed.len(), clients.len(), "every connection");
    for (n, (client, (_, bytes))) in clients.iter().zip(&replayed).enumerate() {
        assert_eq!(
            String::from_utf8_lossy(bytes),
            String::from_utf8_lossy(client.received()),
            "connection {n}"
        );
        assert_eq!(bytes, client.received(), "connection {n}, byte for byte");
    }
}

#[test]
fn a_recording_of_version_1_replays_and_an_unknown_version_is_named() {
    let dir = chat_tests::TempDir::new("record-version");
    let recording = dir.0.join("session.rec");
    let mut server = Server::plain(RUNNER, &["--record", recording.to_str().unwrap()]);
    let mut alice = server.join("alice");
    alice.send_line("hello");
    alice.sync();
    server.signal("TERM");
    assert!(server.expect_exit().success());
    alice.expect_closed();
    let mut whole = std::fs::read(&recording).unwrap();
    assert!(whole.starts_with(b"chat-record 2\n"));

    // Without a motd or a reload, version 2 has no record version 1 lacks.
    whole[12] = b'1';
    let old = dir.0.join("old.rec");
    std::fs::write(&old, &whole).unwrap();
    let replayed = replay(&old);
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0].1, alice.received(), "byte for byte");

    whole[12] = b'9';
    let future = dir.0.join("future.rec");
    std::fs::write(&future, &whole).unwrap();
    let output = Command::new(RUNNER)
        .arg("--replay")
        .arg(&future)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("format version \"9\"") && stderr.contains("versions 1 and 2"),
        "{stderr}"
    );
}

#[test]
fn restored_bans_and_exceptions_replay_byte_for_byte() {
    let dir = chat_tests::TempDir::new("record-lists");
    let data = dir.0.join("data");
    let data_arg = data.to_str().expect("a UTF-8 path");
    let recording = dir.0.join("session.rec");
    let recording_arg = recording.to_str().expect("a UTF-8 path");
    let mut server = Server::plain(RUNNER, &["--data", data_arg]);
    let mut op = irc_client(&server, "op");
    op.send("JOIN #den\r\nMODE #den +bei ba*!*@* bar!*@*\r\nMODE #den +I baz!*@*\r\n");
    op.expect_line("MODE #den +I baz!*@*");
    op.send("QUIT\r\n");
    op.expect_closed();
    server.signal("TERM");
    server.expect_exit();

    // Restarted and recorded: the restore is in the recording, every list apart.
    let mut server = Server::plain(RUNNER, &["--data", data_arg, "--record", recording_arg]);
    let mut ivy = irc_client(&server, "ivy");
    ivy.send("MODE #den +b\r\nMODE #den +e\r\nMODE #den +I\r\n");
    ivy.expect_line(" 347 ");
    let mut bar = irc_client(&server, "bar");
    bar.send("JOIN #den\r\n");
    bar.expect_line(" 473 bar #den ");
    let mut baz = irc_client(&server, "baz");
    baz.send("JOIN #den\r\n");
    baz.expect_line(" 474 baz #den ");
    for client in [&mut ivy, &mut bar, &mut baz] {
        client.send("QUIT\r\n");
        client.expect_closed();
    }
    server.signal("TERM");
    server.expect_exit();
    let replayed = replay(&recording);
    assert_eq!(replayed.len(), 3, "three connections");
    let lists = String::from_utf8_lossy(&replayed[0].1);
    for line in [
        " 367 ivy #den ba*!*@* op ",
        " 348 ivy #den bar!*@* op ",
        " 346 ivy #den baz!*@* op ",
    ] {
        assert!(lists.contains(line), "{line:?} in {lists}");
    }
    for (client, (_, bytes)) in [&ivy, &bar, &baz].into_iter().zip(&replayed) {
        assert_eq!(bytes, client.received(), "byte for byte");
    }
}
