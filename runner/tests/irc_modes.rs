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
    client.irc_sync();
    client
}

/// An IRC client registered as `nick` and in `#chan`, its names list read.
fn irc_in_chan(server: &Server, nick: &str) -> Client {
    let mut client = irc(server, nick);
    client.send("JOIN #chan\r\n");
    client.expect_line(" 366 ");
    client
}

#[test]
fn outsiders_talk_to_a_room_only_once_it_is_minus_n() {
    let server = Server::plain(RUNNER, &[]);
    let mut chanop = irc_in_chan(&server, "chanop");
    let mut ann = server.join("ann");
    ann.send_line("/join #chan");
    ann.expect_line("*** You are now talking in #chan.");
    let mut baz = irc(&server, "baz");
    chanop.irc_sync();

    // A new room is +n, and says so; an outsider is refused and no one hears it.
    chanop.send("MODE #chan\r\n");
    assert_eq!(
        chanop.expect_line(" 324 "),
        ":chat.local 324 chanop #chan +n"
    );
    baz.send("PRIVMSG #chan :hi from baz\r\n");
    assert_eq!(
        baz.irc_sync(),
        [":chat.local 404 baz #chan :Cannot send to channel (you are not in it, and it is +n)"]
    );
    assert!(
        chanop
            .irc_sync()
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
    assert!(baz.irc_sync().is_empty());
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
    let mut alice = server.found_room("alice", "#den");
    alice.send_line("/mode -n");
    alice.expect_line("*** alice let people outside #den send it lines (IRC's -n)");
    alice.send_line("/quit");
    alice.expect_closed();
    server.signal("TERM");
    server.expect_exit();

    let server = start();
    server.expect_log("store: 1 registered rooms");
    let mut ivy = irc(&server, "ivy");
    ivy.send("MODE #den\r\nPRIVMSG #den :from outside\r\n");
    // No modes at all but its registration: still -n.
    assert_eq!(ivy.expect_line(" 324 "), ":chat.local 324 ivy #den +r");
    // Nobody is in it to hear; what counts is that it is not refused.
    assert!(
        ivy.irc_sync().iter().all(|line| !line.contains(" 404 ")),
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
    let mut chanop = irc_in_chan(&server, "chanop");
    let mut ann = server.join("ann");
    ann.send_line("/join #chan");
    ann.expect_line("*** You are now talking in #chan.");
    ann.sync();
    chanop.irc_sync();

    // n is on already: the line names what changed, once.
    chanop.send("MODE #chan +int\r\n");
    assert_eq!(chanop.irc_sync(), [":chanop!~chanop@hidden MODE #chan +it"]);
    assert_eq!(
        ann.sync(),
        [
            "*** chanop let only invited people into #chan (/invite NAME)",
            "*** chanop let only operators set the topic of #chan"
        ]
    );
    chanop.send("MODE #chan\r\n");
    let answer = chanop.irc_sync();
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
        chanop.irc_sync(),
        [
            ":chanop!~chanop@hidden MODE #chan -int".to_owned(),
            ":chat.local 324 chanop #chan +".to_owned(),
            format!(":chat.local 329 chanop #chan {made}")
        ]
    );
}

/// The hash `chat-runner --hash-password` prints for `password`.
fn hash(password: &str) -> String {
    let (status, stdout, stderr) = chat_tests::run_with_input(
        RUNNER,
        &["--hash-password"],
        &format!("{password}\n"),
        std::time::Duration::from_secs(30),
    );
    assert_eq!(status, 0, "{stderr}");
    let hash = stdout.trim().to_owned();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!stdout.contains(password) && !stderr.contains(password));
    hash
}

#[test]
fn oper_identifies_as_an_account_of_the_operators_file_and_wallops_reach_plus_w() {
    // A password the server would refuse is refused here too, and not echoed.
    let (status, _, stderr) = chat_tests::run_with_input(
        RUNNER,
        &["--hash-password"],
        "a b c d e f\n",
        std::time::Duration::from_secs(30),
    );
    assert_eq!(status, 2);
    assert!(
        stderr.contains("no spaces") && !stderr.contains("a b c"),
        "{stderr}"
    );

    let data = TempDir::new("oper-file");
    let file = data.0.join("opers");
    std::fs::write(
        &file,
        format!("# operators\n\noperuser {}\n", hash("operpassword")),
    )
    .unwrap();
    let start = || {
        Server::plain(
            RUNNER,
            &[
                "--data",
                &format!("{}/db", data.arg()),
                "--oper-file",
                file.to_str().unwrap(),
            ],
        )
    };
    let mut server = start();
    server.expect_log("accounts: operuser made from the operators' file");
    let mut nick1 = irc(&server, "nick1");
    let mut nick2 = irc(&server, "nick2");
    let mut nick3 = irc(&server, "nick3");
    nick2.send("MODE nick2 -w\r\n");
    nick3.send("MODE nick3 +w\r\n");
    assert_eq!(nick3.expect_line(" MODE "), ":nick3 MODE nick3 :+w");

    // Not an operator yet: WALLOPS is refused; a wrong password too (once checked).
    nick1.send("WALLOPS :too soon\r\nOPER operuser wrong-password\r\n");
    assert_eq!(
        nick1.expect_line(" 481 "),
        ":chat.local 481 nick1 :Permission Denied - only server operators send WALLOPS (OPER)"
    );
    assert_eq!(
        nick1.expect_line(" 464 "),
        ":chat.local 464 nick1 :Password incorrect"
    );
    nick1.irc_sync();
    // The PING after it waits for OPER's answer, as IRC clients expect.
    nick1.send("OPER operuser operpassword\r\n");
    assert_eq!(
        nick1.irc_sync(),
        [
            ":chat.local 381 nick1 :You are now an IRC operator (identified as operuser)",
            ":nick1 MODE nick1 :+o"
        ]
    );
    nick1.send("WHOIS nick1\r\n");
    nick1.expect_line(" 313 nick1 nick1 :is a server operator");
    nick2.send("WHO nick1\r\nWHO nick3\r\n");
    assert!(nick2.expect_line(" 352 ").ends_with(" nick1 H* :0 nick1"));
    assert!(nick2.expect_line(" 352 ").ends_with(" nick3 H :0 nick3"));
    nick1.irc_sync();
    nick2.irc_sync();

    nick1.send("WALLOPS :hi everyone\r\n");
    assert_eq!(
        nick1.irc_sync(),
        [":nick1!~nick1@hidden WALLOPS :hi everyone"]
    );
    assert_eq!(
        nick3.expect_line(" WALLOPS "),
        ":nick1!~nick1@hidden WALLOPS :hi everyone"
    );
    assert!(nick2.irc_sync().is_empty());
    server.signal("TERM");
    server.expect_exit();

    // The file decides the password: a new hash for the same account replaces the old.
    std::fs::write(&file, format!("operuser {}\n", hash("new-password"))).unwrap();
    let server = start();
    server.expect_log("accounts: operuser's password set from the operators' file");
    let mut nick1 = irc(&server, "nick1");
    nick1.send("OPER operuser operpassword\r\n");
    nick1.expect_line(" 464 ");
    nick1.send("OPER operuser new-password\r\n");
    nick1.expect_line(" 381 ");
    drop(server);

    // A file that is not one stops the start, without showing what it holds.
    std::fs::write(&file, "operuser not-a-hash-secret\n").unwrap();
    let (output, _) = chat_tests::run_to_exit(
        RUNNER,
        &["--no-data", "--oper-file", file.to_str().unwrap()],
        std::time::Duration::from_secs(10),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("line 1: the hash is not an Argon2 hash"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret"), "{stderr}");
}

#[test]
fn kick_puts_out_several_and_a_bad_mode_value_gets_696() {
    let server = Server::plain(RUNNER, &[]);
    let mut foo = irc_in_chan(&server, "foo");
    let mut others: Vec<Client> = ["bar", "baz", "qux"]
        .into_iter()
        .map(|nick| irc_in_chan(&server, nick))
        .collect();
    let mut ann = server.join("ann");
    ann.send_line("/join #chan");
    ann.expect_line("*** You are now talking in #chan.");
    ann.sync();
    foo.irc_sync();
    others[2].irc_sync();

    foo.send("KICK #chan bar,baz :bye\r\n");
    let kicks = [
        ":foo!~foo@hidden KICK #chan bar :bye",
        ":foo!~foo@hidden KICK #chan baz :bye",
    ];
    assert_eq!(foo.irc_sync(), kicks);
    assert_eq!(others[2].irc_sync(), kicks);
    assert_eq!(
        ann.sync(),
        [
            "*** bar was put out of #chan by foo (bye)",
            "*** baz was put out of #chan by foo (bye)"
        ]
    );
    others[0].expect_line(":foo!~foo@hidden KICK #chan bar :bye");
    foo.send("NAMES #chan\r\n");
    assert_eq!(
        foo.expect_line(" 353 "),
        ":chat.local 353 foo = #chan :@foo qux ann"
    );
    foo.expect_line(" 366 ");

    // A limit or a ban mask that is none: 696, naming it; a key: 696, hiding it.
    foo.send("MODE #chan +l :-5\r\nMODE #chan +b :a b\r\nMODE #chan +k :my key\r\n");
    let refused = foo.irc_sync();
    assert_eq!(refused.len(), 3, "{refused:?}");
    assert!(
        refused[0].starts_with(":chat.local 696 foo #chan l -5 :"),
        "{refused:?}"
    );
    assert!(
        refused[1].starts_with(":chat.local 696 foo #chan b * :"),
        "{refused:?}"
    );
    assert!(
        refused[2].starts_with(":chat.local 696 foo #chan k * :"),
        "{refused:?}"
    );
    assert!(others[2].irc_sync().is_empty());
}

#[test]
fn list_filters_on_when_a_room_was_made_and_its_topic_set() {
    let server = Server::plain(RUNNER, &[]);
    let mut ivy = Client::connect(server.addr());
    ivy.send("NICK ivy\r\nUSER ivy 0 * :ivy\r\n");
    assert!(ivy.expect_line(" 005 ").contains(" ELIST=CMNTU "));
    ivy.expect_line(" 376 ");
    ivy.send("PART #lobby\r\nJOIN #made\r\nJOIN #topical\r\nTOPIC #topical :here\r\n");
    ivy.irc_sync();
    let mut listed = |terms: &str| {
        ivy.send(format!("LIST {terms}\r\n"));
        ivy.irc_sync()
            .iter()
            .filter(|line| line.contains(" 322 "))
            .filter_map(|line| line.split(' ').nth(3).map(str::to_owned))
            .collect::<Vec<_>>()
    };
    // Both made (and one topic set) well under ten minutes ago, and more than none.
    assert_eq!(listed("C<10"), ["#made", "#topical"]);
    assert!(listed("C>10").is_empty());
    assert!(listed("C<0").is_empty());
    assert_eq!(listed("T<10"), ["#topical"]);
    assert!(listed("T>10").is_empty());
    assert_eq!(listed("C<10,>0,#t*"), ["#topical"]);
}
