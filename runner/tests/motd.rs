//! `--motd FILE`: the message of the day for IRC clients and plain-text users, over real
//! sockets, and its reload on SIGHUP.

use chat_tests::{Client, Server, TempDir};

/// The server binary, built by cargo for these tests.
const RUNNER: &str = env!("CARGO_BIN_EXE_chat-runner");

/// Registers an IRC client called `nick` and returns the MOTD lines it is sent: the text of
/// each `372` between `375` and `376`.
fn irc_motd(server: &Server, nick: &str) -> Vec<String> {
    let mut irc = Client::connect(server.addr());
    irc.send(format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n"));
    irc.expect_line(" 375 ");
    let mut lines = Vec::new();
    loop {
        let line = irc.next_line();
        if line.contains(" 376 ") {
            return lines;
        }
        let text = line
            .split_once(&format!(" 372 {nick} :- "))
            .unwrap_or_else(|| panic!("not a 372 line: {line:?}"))
            .1;
        lines.push(text.to_owned());
    }
}

/// Connects a plain-text user and returns the lines of its welcome up to the lobby's list.
fn plain_welcome(server: &Server) -> Vec<String> {
    let mut plain = Client::connect(server.addr());
    let mut lines = vec![plain.expect_line("*** Welcome to the chat!")];
    loop {
        let line = plain.next_line();
        if line.contains(" #lobby (") {
            return lines;
        }
        lines.push(line);
    }
}

#[test]
fn irc_clients_get_the_file_and_plain_users_its_first_line() {
    let dir = TempDir::new("motd");
    let file = dir.0.join("motd.txt");
    std::fs::write(&file, "Rules: be kind.\r\nNo spam.\n\x1b[31mred\n\n").unwrap();
    let server = Server::plain(RUNNER, &["--motd", file.to_str().unwrap()]);
    server.expect_log("motd read (3 lines)");
    assert_eq!(
        irc_motd(&server, "ann"),
        ["Rules: be kind.", "No spam.", "^[[31mred"]
    );
    let welcome = plain_welcome(&server);
    assert_eq!(
        welcome[1..],
        [
            "*** Pick a nickname with /nick NAME; /help lists the commands.",
            "*** Rules: be kind.",
            "*** You are now talking in #lobby.",
        ],
        "{welcome:?}"
    );
}

#[test]
fn without_motd_the_built_in_message_stays() {
    let server = Server::plain(RUNNER, &[]);
    let motd = irc_motd(&server, "ann");
    assert!(motd[0].starts_with("People on IRC"), "{motd:?}");
    let welcome = plain_welcome(&server);
    assert_eq!(welcome.len(), 3, "{welcome:?}");
    assert!(
        welcome[2].starts_with("*** You are now talking"),
        "{welcome:?}"
    );
}

#[test]
fn a_long_file_is_cut_and_the_cut_logged() {
    let dir = TempDir::new("motd-long");
    let file = dir.0.join("motd.txt");
    let mut text = format!("{}\n", "x".repeat(300));
    for n in 1..40 {
        text.push_str(&format!("line {n}\n"));
    }
    std::fs::write(&file, text).unwrap();
    let server = Server::plain(RUNNER, &["--motd", file.to_str().unwrap()]);
    server.expect_log("motd read (32 lines)");
    server.expect_log("motd: 8 line(s) past the first 32 left out, 1 line(s) cut to 200 bytes");
    let motd = irc_motd(&server, "ann");
    assert_eq!(motd.len(), 32);
    assert_eq!(motd[0], "x".repeat(200));
    assert_eq!(motd[31], "line 31");
}

#[test]
fn sighup_reloads_the_motd_and_keeps_the_old_one_on_an_error() {
    let dir = TempDir::new("motd-reload");
    let file = dir.0.join("motd.txt");
    std::fs::write(&file, "first\n").unwrap();
    let server = Server::plain(RUNNER, &["--motd", file.to_str().unwrap()]);
    server.expect_log("motd read (1 lines)");
    assert_eq!(irc_motd(&server, "ann"), ["first"]);

    std::fs::write(&file, "second\nand more\n").unwrap();
    server.signal("HUP");
    server.expect_log("motd reloaded (2 lines)");
    // The reload is logged before the hub has it: a plain-text user's welcome is a step of
    // the hub's after it, once the event is in.
    chat_tests::wait_until("the new motd", || {
        irc_motd(&server, "bob") == ["second", "and more"]
    });
    assert_eq!(plain_welcome(&server)[2], "*** second");

    // A file that cannot be read: logged, and the old message kept.
    std::fs::remove_file(&file).unwrap();
    server.signal("HUP");
    let line = server.expect_log("motd not reloaded");
    assert!(line.contains("motd.txt"), "{line}");
    assert_eq!(irc_motd(&server, "carol"), ["second", "and more"]);
    // The TLS part of SIGHUP is still there, and says it has nothing to do.
    server.expect_log("SIGHUP: no TLS certificate to reload");
}

#[test]
fn an_unreadable_motd_file_is_refused_at_start() {
    let dir = TempDir::new("motd-missing");
    let missing = dir.0.join("missing.txt");
    let (output, _) = chat_tests::run_to_exit(
        RUNNER,
        &["--no-data", "--motd", missing.to_str().unwrap()],
        std::time::Duration::from_secs(10),
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--motd") && stderr.contains("missing.txt"),
        "{stderr}"
    );
}
