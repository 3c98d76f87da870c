//! Names in any script, over real sockets: nicknames and room names in Chinese, Danish and
//! Russian for plain-text, IRC and JSON users; case across scripts; look-alikes refused.

use chat_tests::{Client, Server};

/// The server binary, built by cargo for these tests.
const RUNNER: &str = env!("CARGO_BIN_EXE_chat-runner");

/// An IRC client registered as `nick`, its welcome read.
fn irc(server: &Server, nick: &str) -> (Client, Vec<String>) {
    let mut client = Client::connect(server.addr());
    client.send(format!("NICK {nick}\r\nUSER u 0 * :U\r\n"));
    let mut welcome = Vec::new();
    loop {
        let line = client.next_line();
        let done = line.contains(" 366 ");
        welcome.push(line);
        if done {
            return (client, welcome);
        }
    }
}

#[test]
fn people_and_rooms_may_be_named_in_any_script() {
    let server = Server::plain(RUNNER, &[]);
    let mut ming = server.join("小明");
    let (mut dmitry, welcome) = irc(&server, "Дмитрий");
    assert!(
        welcome
            .iter()
            .any(|line| line.contains(" 005 ") && line.contains(" CASEMAPPING=rfc8265 ")),
        "{welcome:?}"
    );
    assert!(
        welcome
            .iter()
            .any(|line| line.starts_with(":chat.local 001 Дмитрий :Welcome")),
        "{welcome:?}"
    );
    ming.expect_line("*** anonymous-2 is now known as Дмитрий");

    // A room in Danish, joined by another spelling of its case.
    ming.send_line("/join #Ærøskøbing");
    ming.expect_line("*** You are now talking in #Ærøskøbing.");
    dmitry.send("JOIN #ærØSKØBING\r\n");
    let joined = dmitry.expect_line(" JOIN ");
    assert_eq!(joined, ":Дмитрий!~u@hidden JOIN #Ærøskøbing");
    ming.expect_line("*** Дмитрий joined #Ærøskøbing");
    dmitry.send("PRIVMSG #ÆRØSKØBING :привет\r\n");
    ming.expect_line("Дмитрий: привет");
    ming.send_line("你好");
    assert_eq!(
        dmitry.expect_line("PRIVMSG"),
        ":小明!plain@hidden PRIVMSG #Ærøskøbing :你好"
    );

    // Private messages find people by any case of their name.
    ming.send_line("/msg ДМИТРИЙ 私聊");
    assert_eq!(
        dmitry.expect_line("PRIVMSG Дмитрий"),
        ":小明!plain@hidden PRIVMSG Дмитрий :私聊"
    );

    // A JSON client (the original tutorial's) may pick one too.
    let mut node = Client::connect(server.addr());
    node.send(r#"{"type":"nickname","message":"ゆき"}"#);
    node.expect_line("*** You are now known as ゆき.");
    node.send(r#"{"type":"client","user":"小明","message":"こんにちは"}"#);
    ming.expect_line("ゆき: こんにちは");
}

#[test]
fn look_alikes_invisible_characters_and_mixed_scripts_are_refused() {
    let server = Server::plain(RUNNER, &[]);
    let mut ace = server.join("ace");
    let mut other = server.connect();
    let refusals = [
        // All Cyrillic, and it reads "ace": the name is ace's.
        (
            "асе",
            "*** error: the nickname асе is taken; you are still anonymous-2",
        ),
        // A Cyrillic а among Latin letters.
        (
            "\u{430}lice",
            "*** error: \"\u{430}lice\" is not a valid nickname: a nickname cannot mix scripts \
             like that (letters of one alphabet that look like another's); use one script; you \
             are still anonymous-2",
        ),
        // An invisible space, and a bidi isolate.
        (
            "bob\u{200b}",
            "*** error: \"bob\u{200b}\" is not a valid nickname: a nickname cannot contain \
             U+200B; use letters, digits and _-[]\\^{}|`; you are still anonymous-2",
        ),
        // The digit zero reads as an O: `dОn` is `don`, so `d0n` is too.
        (
            "D0N",
            "*** error: the nickname D0N is taken; you are still anonymous-2",
        ),
    ];
    let mut don = server.join("don");
    other.sync();
    for (nick, reply) in refusals {
        other.send_line(&format!("/nick {nick}"));
        assert_eq!(other.next_line(), reply, "/nick {nick}");
    }
    // Characters a terminal would act on never get that far.
    other.send_line("/nick bob\u{2067}x");
    let refused = other.next_line();
    assert!(refused.starts_with("*** error:"), "{refused}");
    // The real name is the one shown; nobody saw any of the attempts.
    other.nick("bob");
    let seen = ace.sync();
    assert_eq!(
        seen,
        [
            "*** anonymous-2 joined #lobby (2 here)",
            "*** anonymous-3 joined #lobby (3 here)",
            "*** anonymous-3 is now known as don",
            "*** anonymous-2 is now known as bob"
        ]
    );
    don.sync();

    // Rooms too: a look-alike of a room's name is that room.
    ace.send_line("/join #lobby");
    other.send_line("/join #1obby");
    other.expect_line("talking in #lobby.");
}
