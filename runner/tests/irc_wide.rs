//! The IRC commands and capabilities of the wider irctest run, over real sockets: `NAMES` of
//! several rooms, secret rooms, `multi-prefix`, `userhost-in-names`, `away-notify`, `SETNAME`,
//! `WHOWAS`, `HELP`, `PRIVMSG @#room`, `LUSERS`, WHOX, `LIST` terms and `MONITOR`.

use chat_tests::{Client, Server};

/// The server binary, built by cargo for these tests.
const RUNNER: &str = env!("CARGO_BIN_EXE_chat-runner");

/// IRC clients in no room when they register, irctest's server name, and a greeting delay long
/// enough that no IRC client is greeted as plain text first (the harness's default is 0).
const ARGS: &[&str] = &[
    "--no-irc-lobby",
    "--server-name",
    "My.Little.Server",
    "--greeting-delay",
    "5000",
];

/// An IRC client registered as `nick` with `caps` (none if empty), its welcome read. Its first
/// line goes out at once, so it is never greeted as plain text; with `--no-irc-lobby` it is in
/// no room.
fn irc(server: &Server, nick: &str, caps: &str) -> Client {
    let mut client = Client::connect(server.addr());
    if caps.is_empty() {
        client.send(format!("NICK {nick}\r\nUSER {nick} 0 * :Real {nick}\r\n"));
    } else {
        client.send(format!(
            "CAP LS 302\r\nCAP REQ :{caps}\r\nNICK {nick}\r\nUSER {nick} 0 * :Real {nick}\r\n\
             CAP END\r\n"
        ));
    }
    client.expect_line_where(|line| line.contains(" 001 "), "the welcome");
    client.irc_sync();
    client
}

#[test]
fn names_secret_rooms_prefixes_whowas_help_and_lusers() {
    let server = Server::plain(RUNNER, ARGS);
    let mut ann = irc(&server, "ann", "");
    let mut cat = irc(&server, "cat", "multi-prefix userhost-in-names");
    let mut bob = irc(&server, "bob", "");

    ann.send("JOIN #a,#b\r\nMODE #a +v ann\r\nMODE #b +s\r\n");
    ann.irc_sync();
    cat.send("JOIN #a\r\n");
    cat.irc_sync();
    assert_eq!(ann.irc_sync(), [":cat!~cat@hidden JOIN #a"]);
    ann.send("NAMES #a,#b\r\n");
    assert_eq!(
        ann.irc_sync(),
        [
            ":My.Little.Server 353 ann = #a :@ann cat",
            ":My.Little.Server 353 ann @ #b :@ann",
            ":My.Little.Server 366 ann #a,#b :End of /NAMES list",
        ]
    );
    cat.send("NAMES #a\r\n");
    assert_eq!(
        cat.irc_sync(),
        [
            ":My.Little.Server 353 cat = #a :@+ann!~ann@hidden cat!~cat@hidden",
            ":My.Little.Server 366 cat #a :End of /NAMES list",
        ]
    );
    // #b is secret: bob, not in it, is not shown it.
    bob.send("LIST #a,#b\r\nNAMES #b\r\n");
    assert_eq!(
        bob.irc_sync(),
        [
            ":My.Little.Server 321 bob Channel :Users  Name",
            ":My.Little.Server 322 bob #a 2 :",
            ":My.Little.Server 323 bob :End of /LIST",
            ":My.Little.Server 366 bob #b :End of /NAMES list",
        ]
    );

    // bob leaves; WHOWAS remembers him.
    bob.send("QUIT :bye\r\n");
    bob.expect_closed();
    ann.send("WHOWAS bob\r\n");
    assert_eq!(
        ann.irc_sync(),
        [
            ":My.Little.Server 314 ann bob ~bob hidden * :Real bob",
            &format!(
                ":My.Little.Server 312 ann bob My.Little.Server :chat-{}",
                env!("CARGO_PKG_VERSION")
            ),
            ":My.Little.Server 369 ann bob :End of WHOWAS",
        ]
    );

    // ELIST: masks, negated masks and sizes.
    ann.send("LIST #*,!*b,>1\r\n");
    assert_eq!(
        ann.irc_sync(),
        [
            ":My.Little.Server 321 ann Channel :Users  Name",
            ":My.Little.Server 322 ann #a 2 :",
            ":My.Little.Server 323 ann :End of /LIST",
        ]
    );

    // WHOX: the fields asked, in WHOX's order, with the token.
    ann.send("WHO cat %nfct,7\r\n");
    assert_eq!(
        ann.irc_sync(),
        [
            ":My.Little.Server 354 ann 7 * cat H",
            ":My.Little.Server 315 ann cat :End of WHO list",
        ]
    );

    ann.send("HELP whowas\r\nLUSERS\r\n");
    let heard = ann.irc_sync();
    assert_eq!(heard[0], ":My.Little.Server 704 ann WHOWAS :** WHOWAS **");
    assert_eq!(heard[2], ":My.Little.Server 706 ann WHOWAS :End of /HELP");
    assert!(
        heard.contains(&":My.Little.Server 265 ann 2 3 :Current local users 2, max 3".into()),
        "{heard:?}"
    );
}

#[test]
fn away_notify_setname_and_lines_to_operators() {
    let server = Server::plain(RUNNER, ARGS);
    let mut ann = irc(&server, "ann", "");
    let mut cat = irc(&server, "cat", "away-notify setname");
    let mut bob = irc(&server, "bob", "");
    for client in [&mut ann, &mut cat, &mut bob] {
        client.send("JOIN #r\r\n");
        client.irc_sync();
    }
    ann.irc_sync();
    cat.irc_sync();

    bob.send("AWAY :out\r\nPRIVMSG @#r :ops only\r\nSETNAME :Robert\r\n");
    bob.irc_sync();
    // cat asked for away-notify and setname, and is no operator; ann made #r.
    assert_eq!(
        cat.irc_sync(),
        [
            ":bob!~bob@hidden AWAY :out",
            ":bob!~bob@hidden SETNAME :Robert",
        ]
    );
    assert_eq!(ann.irc_sync(), [":bob!~bob@hidden PRIVMSG @#r :ops only"]);
    cat.send("SETNAME :Cat Two\r\nWHOIS cat\r\n");
    let heard = cat.irc_sync();
    assert_eq!(heard[0], ":cat!~cat@hidden SETNAME :Cat Two");
    assert_eq!(
        heard[1],
        ":My.Little.Server 311 cat cat ~cat hidden * :Cat Two"
    );
}

#[test]
fn monitor_and_extended_monitor() {
    let server = Server::plain(RUNNER, ARGS);
    let mut eve = irc(&server, "eve", "extended-monitor away-notify");
    eve.send("MONITOR + bob\r\n");
    assert_eq!(eve.irc_sync(), [":My.Little.Server 731 eve :bob"]);
    let mut bob = irc(&server, "bob", "");
    assert_eq!(
        eve.irc_sync(),
        [":My.Little.Server 730 eve :bob!~bob@hidden"]
    );
    // They share no room: eve hears of bob's AWAY for watching him.
    bob.send("AWAY :brb\r\n");
    bob.irc_sync();
    assert_eq!(eve.irc_sync(), [":bob!~bob@hidden AWAY :brb"]);
    bob.send("QUIT\r\n");
    bob.expect_closed();
    assert_eq!(eve.irc_sync(), [":My.Little.Server 731 eve :bob"]);
}
