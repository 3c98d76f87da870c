//! Log levels, and SIGHUP reloading the `--config` file, over a real process and real sockets:
//! what changed is logged and applied, what takes a restart is named, a bad file keeps the old
//! configuration.

use std::path::Path;

use chat_tests::{Client, Server, TempDir};

/// The server binary, built by cargo for these tests.
const RUNNER: &str = env!("CARGO_BIN_EXE_chat-runner");

/// Sends SIGHUP, and waits until the server has logged that it read the file again (whatever
/// it found). The reload's `count`th such line, from 1: each SIGHUP logs exactly one of
/// "SIGHUP: no TLS certificate to reload" (none of these tests use TLS), after its changes.
fn reload(server: &Server, count: usize) {
    server.signal("HUP");
    chat_tests::wait_until("the reload's log", || {
        server
            .log()
            .matches("SIGHUP: no TLS certificate to reload")
            .count()
            >= count
    });
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("writing the config file");
}

#[test]
fn a_debug_line_is_written_only_at_debug() {
    for (level, shown) in [("info", false), ("debug", true)] {
        let server = Server::plain(RUNNER, &["--log-level", level]);
        let _alice = server.join("alice");
        // An info line written after the nickname's: stderr is written in order.
        reload(&server, 1);
        let log = server.log();
        assert_eq!(
            log.contains("is now alice"),
            shown,
            "--log-level {level}:\n{log}"
        );
        assert!(log.contains(" INFO listening on "), "{log}");
        if shown {
            let line = server.expect_log("is now alice");
            assert!(line.contains(" DEBUG "), "{line}");
        }
    }
    // At warn, neither: not even the lines of start and shutdown.
    let mut server = Server::plain(RUNNER, &["--log-level", "warn"]);
    let _alice = server.join("alice");
    server.signal("TERM");
    assert!(server.expect_exit().success());
    let log = server.log();
    assert!(!log.contains(" INFO ") && !log.contains(" DEBUG "), "{log}");
}

#[test]
fn sighup_applies_changed_limits_logs_them_and_names_what_takes_a_restart() {
    let dir = TempDir::new("reload");
    let config = dir.0.join("chat.toml");
    write(&config, "max-per-ip = 3\nlog-level = \"info\"\n");
    let server = Server::plain(RUNNER, &["--config", config.to_str().unwrap()]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    assert!(!server.log().contains("is now bob"), "info, from the file");

    write(
        &config,
        "# tighter\nmax-per-ip = 2\nmax-room-members = 1\nlog-level = \"debug\"\n\
         server-name = \"irc.example.org\"\n",
    );
    reload(&server, 1);
    let line = server.expect_log("SIGHUP: max-per-ip: 3 -> 2");
    assert!(line.contains(" INFO "), "{line}");
    server.expect_log("SIGHUP: log-level: \"info\" -> \"debug\"");
    server.expect_log("SIGHUP: max-room-members: (not set) -> 1");
    let line = server.expect_log("SIGHUP: server-name: \"chat.local\" -> \"irc.example.org\"");
    assert!(line.contains("takes a restart"), "{line}");
    assert!(line.contains(" WARN "), "{line}");

    // The new per-address limit: a third connection from 127.0.0.1 is refused; the two there
    // stay.
    let mut carol = Client::connect(server.addr());
    carol.expect_line("too many connections from your address");
    carol.expect_closed();
    server.expect_log("refused 127.0.0.1:");
    // The core's room limit: a second person cannot join a room of one.
    alice.send_line("/join #two");
    alice.expect_line("#two (1)");
    bob.send_line("/join #two");
    bob.expect_line("#two is full (1 people)");
    // The log level: a nickname change is a debug line now.
    bob.send_line("/nick robert");
    bob.expect_line("You are now known as robert.");
    let line = server.expect_log("is now robert");
    assert!(line.contains(" DEBUG "), "{line}");

    // Back to no room limit, one more connection: logged, and applied.
    write(
        &config,
        "max-per-ip = 3\nlog-level = \"debug\"\nserver-name = \"irc.example.org\"\n",
    );
    reload(&server, 2);
    server.expect_log("SIGHUP: max-room-members: 1 -> (not set)");
    server.expect_log("SIGHUP: max-per-ip: 2 -> 3");
    bob.send_line("/join #two");
    bob.expect_line("#two (2)");
    // The server name took a restart: IRC replies still carry the old one, and the file's
    // name is named again as not applied.
    let mut irc = Client::connect(server.addr());
    irc.send("NICK ann\r\nUSER ann 0 * :ann\r\n");
    let welcome = irc.expect_line(" 001 ann ");
    assert!(welcome.starts_with(":chat.local "), "{welcome}");
    assert_eq!(
        server.log().matches("SIGHUP: server-name: ").count(),
        2,
        "{}",
        server.log()
    );
}

#[test]
fn a_file_that_cannot_be_used_keeps_the_old_configuration() {
    let dir = TempDir::new("reload-bad");
    let config = dir.0.join("chat.toml");
    write(&config, "max-per-ip = 1\n");
    let server = Server::plain(RUNNER, &["--config", config.to_str().unwrap()]);
    let _alice = server.connect();

    // Not TOML: the line and column are named, and the old limit stays.
    write(&config, "max-per-ip = 1\nmax-per-ip = = 5\n");
    reload(&server, 1);
    let line = server.expect_log("SIGHUP: configuration not reloaded, the old one stays");
    assert!(
        line.contains("chat.toml") && line.contains("line 2, column"),
        "{line}"
    );
    let mut refused = Client::connect(server.addr());
    refused.expect_line("too many connections from your address");

    // A value out of range: refused whole, naming the flag, although the other key is fine.
    write(&config, "max-per-ip = 5\nqueue-limit = 0\n");
    reload(&server, 2);
    chat_tests::wait_until("the second refusal", || {
        server
            .log()
            .lines()
            .any(|line| line.contains("not reloaded") && line.contains("--queue-limit"))
    });
    let mut refused = Client::connect(server.addr());
    refused.expect_line("too many connections from your address");
    assert!(!server.log().contains("max-per-ip: 1 -> 5"));

    // A file gone: the same.
    std::fs::remove_file(&config).unwrap();
    reload(&server, 3);
    assert_eq!(
        server.log().matches("configuration not reloaded").count(),
        3
    );

    // A good file again: applied.
    write(&config, "max-per-ip = 5\n");
    reload(&server, 4);
    server.expect_log("SIGHUP: max-per-ip: 1 -> 5");
    server.connect();
}

#[test]
fn a_flag_given_at_start_still_wins_over_the_reloaded_file() {
    let dir = TempDir::new("reload-flag");
    let config = dir.0.join("chat.toml");
    write(&config, "max-per-ip = 1\n");
    let server = Server::plain(
        RUNNER,
        &["--config", config.to_str().unwrap(), "--max-per-ip", "2"],
    );
    let _alice = server.connect();
    write(&config, "max-per-ip = 3\nannounce-limit = 7\n");
    reload(&server, 1);
    server.expect_log("SIGHUP: announce-limit: 200 -> 7");
    // The file's change is named, and not applied.
    let line = server.expect_log("SIGHUP: max-per-ip: 1 -> 3 in the file");
    assert!(
        line.contains("the command line's --max-per-ip wins"),
        "{line}"
    );
    assert!(!server.log().contains("SIGHUP: max-per-ip: 2"));
    // Two from one address, as the flag says, and not three.
    let _bob = server.connect();
    let mut carol = Client::connect(server.addr());
    carol.expect_line("too many connections from your address");
}

#[test]
fn sighup_reloads_the_server_operators() {
    let dir = TempDir::new("reload-oper");
    let path = dir.0.join("chat.toml");
    // The account first, then named: a listed name cannot be registered.
    write(&path, "no-data = true\n");
    let server = Server::plain(RUNNER, &["--config", path.to_str().unwrap()]);
    let mut root = server.join("root");
    root.send_line("/register correct-horse-battery");
    root.expect_line("*** You registered the account root");
    write(&path, "oper = [\"root\"]\nno-data = true\n");
    reload(&server, 1);
    server.expect_log("1 accounts are server operators");
    let mut ann = server.join("ann");
    ann.send_line("/join #den");
    ann.expect_line("*** You are now talking in #den.");
    root.send_line("/mode #den +m");
    ann.expect_line("*** root let only operators and voiced people talk in #den");

    // Dropped from the list: no longer one, from the next line on.
    write(&path, "oper = []\nno-data = true\n");
    reload(&server, 2);
    server.expect_log("oper: [\"root\"] -> []");
    root.send_line("/mode #den -m");
    root.expect_line("*** error: you are not in #den");
    // Named again.
    write(&path, "oper = [\"root\", \"ann\"]\nno-data = true\n");
    reload(&server, 3);
    root.send_line("/mode #den -m");
    ann.expect_line("*** root let everyone talk in #den");
}
