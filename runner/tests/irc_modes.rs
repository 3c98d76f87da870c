//! Room modes and server operators over real sockets, as IRC clients see them (issue 14): `+n`
//! and `-n`, one `MODE` line for several changes, `329`, `OPER` and `WALLOPS`, `KICK` of
//! several people; and what plain-text users see of them.

use chat_tests::{Client, Server, TempDir};

/// The server binary, built by cargo for these tests.
const RUNNER: &str = env!("CARGO_BIN_EXE_chat-runner");

/// An IRC client registered as `nick`, its welcome (and the lobby's names) read.
fn irc(server: &Server, nick: &str) -> Client {
    let mut client = Client::connect(server.addr());
    client.send(format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n"));
    client.expect_line(" 376 ");
    irc_sync(&mut client);
    client
}

/// Every line an IRC client gets before the answer to a `PING` sent now: since the server
/// answers in order, all it had for the client by then.
fn irc_sync(client: &mut Client) -> Vec<String> {
    client.send("PING :barrier\r\n");
    let mut before = Vec::new();
    loop {
        let line = client.next_line();
        if line.contains(" PONG ") && line.ends_with(" barrier") {
            return before;
        }
        before.push(line);
    }
}

#[test]
fn outsiders_talk_to_a_room_only_once_it_is_minus_n() {
    let server = Server::plain(RUNNER, &[]);
    let mut chanop = irc(&server, "chanop");
    chanop.send("JOIN #chan\r\n");
    chanop.expect_line(" 366 ");
    let mut ann = server.join("ann");
    ann.send_line("/join #chan");
    ann.expect_line("*** You are now talking in #chan.");
    let mut baz = irc(&server, "baz");
    irc_sync(&mut chanop);

    // A new room is +n, and says so; an outsider is refused and no one hears it.
    chanop.send("MODE #chan\r\n");
    assert_eq!(
        chanop.expect_line(" 324 "),
        ":chat.local 324 chanop #chan +n"
    );
    baz.send("PRIVMSG #chan :hi from baz\r\n");
    assert_eq!(
        irc_sync(&mut baz),
        [":chat.local 404 baz #chan :Cannot send to channel (you are not in it, and it is +n)"]
    );
    assert!(
        irc_sync(&mut chanop)
            .iter()
            .all(|line| !line.contains("hi from"))
    );
    let heard = ann.sync();
    assert!(
        heard.iter().all(|line| !line.contains("hi from")),
        "{heard:?}"
    );

    // -n: the room is told (IRC clients by MODE, plain users in words), and baz is heard.
    chanop.send("MODE #chan -n\r\n");
    assert_eq!(
        chanop.expect_line(" MODE "),
        ":chanop!~chanop@hidden MODE #chan -n"
    );
    ann.expect_line("*** chanop let people outside #chan send it lines (IRC's -n)");
    baz.send("PRIVMSG #chan :hi again from baz\r\n");
    assert!(irc_sync(&mut baz).is_empty());
    assert_eq!(
        chanop.expect_line(" PRIVMSG "),
        ":baz!~baz@hidden PRIVMSG #chan :hi again from baz"
    );
    assert_eq!(ann.sync(), ["baz: hi again from baz"]);

    // +n again: refused again.
    chanop.send("MODE #chan +n\r\n");
    chanop.expect_line(":chanop!~chanop@hidden MODE #chan +n");
    baz.send("PRIVMSG #chan :and again\r\n");
    baz.expect_line(" 404 baz #chan ");
}

#[test]
fn a_registered_room_stays_minus_n_across_a_restart() {
    let data = TempDir::new("minus-n");
    let start = || Server::plain(RUNNER, &["--data", data.arg()]);
    let mut server = start();
    let mut alice = server.join("alice");
    alice.send_line("/register correct-horse-battery");
    alice.expect_line("*** You registered the account alice");
    alice.send_line("/join #den");
    alice.expect_line("*** You are now talking in #den.");
    alice.send_line("/register-room");
    alice.expect_line("*** alice registered #den to the account alice");
    alice.send_line("/mode -n+t");
    alice.expect_line("*** alice let only operators set the topic of #den");
    alice.send_line("/quit");
    alice.expect_closed();
    server.signal("TERM");
    server.expect_exit();

    let server = start();
    server.expect_log("store: 1 registered rooms");
    let mut ivy = irc(&server, "ivy");
    ivy.send("MODE #den\r\nPRIVMSG #den :from outside\r\n");
    assert_eq!(ivy.expect_line(" 324 "), ":chat.local 324 ivy #den +tr");
    // Nobody is in it to hear; what counts is that it is not refused.
    assert!(
        irc_sync(&mut ivy)
            .iter()
            .all(|line| !line.contains(" 404 ")),
        "refused"
    );
    // A room made now is +n.
    ivy.send("JOIN #new\r\nMODE #new\r\n");
    assert_eq!(ivy.expect_line(" 324 "), ":chat.local 324 ivy #new +n");
}

#[test]
fn one_mode_command_is_one_line_and_a_mode_query_tells_when_the_room_was_made() {
    let server = Server::plain(RUNNER, &[]);
    let unix = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let before = unix();
    let mut chanop = irc(&server, "chanop");
    chanop.send("JOIN #chan\r\n");
    chanop.expect_line(" 366 ");
    let mut ann = server.join("ann");
    ann.send_line("/join #chan");
    ann.expect_line("*** You are now talking in #chan.");
    ann.sync();
    irc_sync(&mut chanop);

    // n is on already: the line names what changed, once.
    chanop.send("MODE #chan +int\r\n");
    assert_eq!(
        irc_sync(&mut chanop),
        [":chanop!~chanop@hidden MODE #chan +it"]
    );
    assert_eq!(
        ann.sync(),
        [
            "*** chanop let only invited people into #chan (/invite NAME)",
            "*** chanop let only operators set the topic of #chan"
        ]
    );
    chanop.send("MODE #chan\r\n");
    let answer = irc_sync(&mut chanop);
    assert_eq!(answer.len(), 2, "{answer:?}");
    assert_eq!(answer[0], ":chat.local 324 chanop #chan +int");
    let made: u64 = answer[1]
        .strip_prefix(":chat.local 329 chanop #chan ")
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or_else(|| panic!("{answer:?}"));
    assert!(
        (before..=unix()).contains(&made),
        "{made} not in {before}.."
    );

    // All off in one line, then `+` alone, still with the time it was made.
    chanop.send("MODE #chan -int\r\nMODE #chan\r\n");
    assert_eq!(
        irc_sync(&mut chanop),
        [
            ":chanop!~chanop@hidden MODE #chan -int".to_owned(),
            ":chat.local 324 chanop #chan +".to_owned(),
            format!(":chat.local 329 chanop #chan {made}")
        ]
    );
}
