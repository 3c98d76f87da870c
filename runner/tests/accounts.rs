//! Accounts over real sockets: register, identify after reconnecting and keep the name, an
//! impostor renamed after the grace period, wrong passwords slowed down, NickServ and WHOIS
//! for IRC clients, and accounts surviving a restart.

use std::time::{Duration, Instant};

use chat_tests::{Client, Server, TempDir};

/// The server binary, built by cargo for these tests.
const RUNNER: &str = env!("CARGO_BIN_EXE_chat-runner");

const PASSWORD: &str = "correct-horse-battery";

fn server(data: &TempDir) -> Server {
    Server::plain(RUNNER, &["--data", data.arg(), "--nick-grace", "2"])
}

/// A plain-text client that took `nick` and was told it is registered (it is not
/// identified yet).
fn claims_registered(server: &Server, nick: &str) -> Client {
    let mut client = server.join(nick);
    client.expect_line(&format!(
        "*** The nickname {nick} is registered: if it is yours, /identify PASSWORD within 2 s, \
         or you will be renamed."
    ));
    client
}

#[test]
fn an_account_keeps_its_name_across_connections_and_restarts() {
    let data = TempDir::new("accounts");
    let mut server = server(&data);
    let mut ann = server.join("ann");
    ann.send_line(&format!("/register {PASSWORD}"));
    ann.expect_line("*** You registered the account ann; you are identified as it.");
    ann.send_line("/register another-password");
    assert_eq!(
        ann.next_line(),
        "*** error: the account ann exists already; /identify PASSWORD if it is yours"
    );
    ann.send_line("/quit");
    ann.expect_closed();

    // Back, under another case of the name: told to prove it, and proves it in time (the
    // account is named as it was registered).
    let mut back = claims_registered(&server, "ANN");
    back.send_line(&format!("/identify {PASSWORD}"));
    back.expect_line("*** You are now identified as ann.");
    std::thread::sleep(Duration::from_millis(2_500));
    let since = back.sync();
    assert!(since.is_empty(), "kept the name: {since:?}");

    // An IRC client sees the account in WHOIS, and can identify through NickServ.
    let mut irc = Client::connect(server.addr());
    irc.send("NICK ivy\r\nUSER i 0 * :I\r\nWHOIS ann\r\n");
    let whois = irc.expect_line(" 330 ");
    assert_eq!(whois, ":chat.local 330 ivy ANN ann :is logged in as");
    irc.send("PRIVMSG NickServ :REGISTER ivy-password ivy@example.org\r\n");
    assert_eq!(
        irc.expect_line("NickServ"),
        ":NickServ!NickServ@services NOTICE ivy :You registered the account ivy; you are \
         identified as it."
    );

    // Restarted on the same data: the accounts are still there.
    back.send_line("/quit");
    back.expect_closed();
    irc.send("QUIT\r\n");
    server.signal("TERM");
    server.expect_exit();
    let server = self::server(&data);
    let mut again = claims_registered(&server, "ann");
    again.send_line("/identify wrong-password");
    assert_eq!(again.next_line(), "*** error: wrong password for ann");
    again.send_line(&format!("/identify {PASSWORD}"));
    again.expect_line("*** You are now identified as ann.");
    // Changing the password.
    again.send_line(&format!("/password {PASSWORD} a-new-password"));
    again.expect_line("*** Your password was changed.");
    again.send_line("/logout");
    again.expect_line("*** You are no longer identified as ann.");
    // Still going by it, and identified no more: the grace period starts again.
    again.expect_line("is registered: if it is yours, /identify PASSWORD within 2 s");
    again.send_line("/identify a-new-password");
    again.expect_line("*** You are now identified as ann.");

    // Passwords are never logged.
    let log = server.log();
    assert!(log.contains("accounts: 2 registered"), "{log}");
    for password in [PASSWORD, "a-new-password", "wrong-password"] {
        assert!(!log.contains(password), "{log}");
    }
}

#[test]
fn an_impostor_is_renamed_and_wrong_passwords_are_slowed_down() {
    let data = TempDir::new("accounts-impostor");
    let server = server(&data);
    let mut bob = server.join("bob");
    bob.send_line(&format!("/register {PASSWORD}"));
    bob.expect_line("*** You registered the account bob");
    bob.send_line("/quit");
    bob.expect_closed();

    let mut watcher = server.join("wat");
    let mut impostor = claims_registered(&server, "bob");
    // Three wrong passwords are answered at once; the next ones wait longer and longer.
    let mut waits = Vec::new();
    for _ in 0..5 {
        let asked = Instant::now();
        impostor.send_line("/login bob not-bobs-password");
        assert_eq!(impostor.next_line(), "*** error: wrong password for bob");
        waits.push(asked.elapsed());
        // The renaming comes after 2 s, in the middle of this: take it as it comes.
        if waits.len() == 1 {
            let renamed = impostor.expect_line("you did not identify as bob in time");
            assert!(renamed.contains("you are anonymous-"), "{renamed}");
        }
    }
    println!("answers to wrong passwords took {waits:?}");
    assert!(waits[3] >= Duration::from_millis(900), "{waits:?}");
    assert!(waits[4] >= Duration::from_millis(1_900), "{waits:?}");
    let seen = watcher.sync();
    assert!(
        seen.iter()
            .any(|line| line.starts_with("*** bob is now known as anonymous-")),
        "{seen:?}"
    );
}

#[test]
fn irc_clients_log_in_with_sasl() {
    let test = "irc_clients_log_in_with_sasl";
    let data = TempDir::new("accounts-sasl");
    let server = server(&data);
    let mut ann = server.join("ann");
    ann.send_line(&format!("/register {PASSWORD}"));
    ann.expect_line("*** You registered the account ann");

    // By hand: a wrong password is refused, the right one logs in before the welcome.
    let mut irc = Client::connect(server.addr());
    irc.send("CAP LS 302\r\nCAP REQ :sasl\r\nNICK sam\r\nUSER s 0 * :S\r\n");
    assert!(irc.expect_line(" LS ").contains("sasl=PLAIN"));
    irc.expect_line(" ACK :sasl");
    irc.send("AUTHENTICATE PLAIN\r\n");
    assert_eq!(irc.next_line(), "AUTHENTICATE +");
    // base64 of "\0ann\0not-the-password".
    irc.send("AUTHENTICATE AGFubgBub3QtdGhlLXBhc3N3b3Jk\r\n");
    assert_eq!(
        irc.next_line(),
        ":chat.local 904 sam :SASL authentication failed"
    );
    irc.send("AUTHENTICATE PLAIN\r\n");
    irc.expect_line("AUTHENTICATE +");
    // base64 of "\0ann\0correct-horse-battery".
    irc.send("AUTHENTICATE AGFubgBjb3JyZWN0LWhvcnNlLWJhdHRlcnk=\r\nCAP END\r\n");
    assert_eq!(
        irc.next_line(),
        ":chat.local 900 sam sam!~s@hidden ann :You are now logged in as ann"
    );
    assert_eq!(
        irc.next_line(),
        ":chat.local 903 sam :SASL authentication successful"
    );
    assert!(irc.next_line().starts_with(":chat.local 001 sam "));

    // The Python `irc` client's own SASL.
    let Some(python) = chat_tests::python_with(test, "irc.client") else {
        return;
    };
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/irc_sasl_e2e.py");
    let port = server.addr().port().to_string();
    let output = std::process::Command::new(python)
        .arg(script)
        .args(["127.0.0.1", &port, "pysasl", "ann", PASSWORD])
        .output()
        .expect("running the Python script");
    let reports = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{reports}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for report in [
        r#"{"logged_in": "ann"}"#,
        r#"{"welcome": "pysasl"}"#,
        r#"{"account": "ann"}"#,
        r#"{"done": true}"#,
    ] {
        assert!(reports.contains(report), "{reports}");
    }
}

/// Registers the account `name` on a server over `data`, and stops it: an operator's
/// account is registered before it is named with `--oper`.
fn register_first(data: &TempDir, name: &str) {
    let mut server = Server::plain(RUNNER, &["--data", data.arg()]);
    let mut client = server.join(name);
    client.send_line(&format!("/register {PASSWORD}"));
    client.expect_line(&format!("*** You registered the account {name}"));
    server.signal("TERM");
    server.expect_exit();
}

#[test]
fn a_listed_operator_name_with_no_account_cannot_be_registered() {
    let data = TempDir::new("operators-unregistered");
    let server = Server::plain(RUNNER, &["--data", data.arg(), "--oper", "root"]);
    server.expect_log("--oper root: there is no account root, so it is no operator");
    let mut eve = server.join("root");
    eve.send_line(&format!("/register {PASSWORD}"));
    eve.expect_line("*** error: the account root exists already");
    eve.send_line("/serverbans");
    eve.expect_line("*** error: only server operators see the server bans");
    server.expect_log("refused to register root: it is on the operators' list");
}

#[test]
fn an_operator_account_keeps_order_in_every_room() {
    let data = TempDir::new("operators");
    register_first(&data, "root");
    let server = Server::plain(RUNNER, &["--data", data.arg(), "--oper", "Root"]);
    server.expect_log("1 accounts are server operators");
    let mut alice = server.join("alice");
    alice.send_line("/join #den");
    alice.expect_line("*** You are now talking in #den.");
    alice.send_line("/mode +ik sesame");
    alice.sync();
    alice.send_line("/ban root");
    alice.expect_line("*** alice banned root!*@* from #den");

    // Until identified, root is nobody special.
    let mut root = server.join("root");
    root.send_line("/join #den");
    root.expect_line("*** error: you are banned from #den");
    root.send_line(&format!("/identify {PASSWORD}"));
    root.expect_line("*** You are now identified as root.");
    root.expect_line("*** You are a server operator: you keep order in every room.");
    // Past the ban, +i and the key; and puts out the room's own operator.
    root.send_line("/join #den");
    root.expect_line("*** You are now talking in #den.");
    root.send_line("/kick alice enough");
    root.expect_line("*** alice was put out of #den by root (enough)");
    alice.expect_line("*** You were put out of #den by root (enough)");

    // IRC: OPER answers 381 to it, 491 to others; WHOIS and LUSERS show it.
    let mut ivy = Client::connect(server.addr());
    ivy.send("NICK ivy\r\nUSER i 0 * :I\r\nOPER ivy secret\r\nWHOIS root\r\nLUSERS\r\n");
    ivy.expect_line(" 491 ivy :");
    assert_eq!(
        ivy.expect_line(" 313 "),
        ":chat.local 313 ivy root :is a server operator"
    );
    assert_eq!(
        ivy.expect_line(" 252 "),
        ":chat.local 252 ivy 1 :operator(s) online"
    );
}

#[test]
fn a_server_ban_puts_out_and_keeps_out_across_a_restart() {
    let data = TempDir::new("server-bans");
    register_first(&data, "root");
    let start = || Server::plain(RUNNER, &["--data", data.arg(), "--oper", "root"]);
    let mut server = start();
    let mut root = server.join("root");
    root.send_line(&format!("/identify {PASSWORD}"));
    root.expect_line("*** You are a server operator");
    let mut alice = server.join("alice");
    alice.send_line("/serverban bob");
    alice.expect_line("*** error: only server operators ban from the server (--oper)");

    // By address: alice, on 127.0.0.1 like everyone here, is put out; the operator stays.
    root.send_line("/serverban 127.0.0.1 1h abuse");
    root.expect_line("*** You banned 127.0.0.1 from the server for 1h (abuse).");
    alice.expect_line("*** You are banned from this server (abuse).");
    alice.expect_closed();
    let mut refused = Client::connect(server.addr());
    assert_eq!(refused.next_line(), "*** You are banned from this server.");
    refused.expect_closed();
    root.send_line("/serverunban 127.0.0.1");
    root.expect_line("*** You lifted the server ban on 127.0.0.1.");

    // By nickname, kept across a restart.
    root.send_line("/serverban mallory 1d spam");
    root.expect_line("*** You banned mallory!*@* from the server for 1d (spam).");
    root.send_line("/serverbans");
    root.expect_line("*** Server bans (1):");
    root.expect_line("***   mallory!*@* (by root ");
    server.signal("TERM");
    server.expect_exit();
    let server = start();
    server.expect_log("store: 1 server bans (0 lapsed, not restored)");
    let mut mallory = server.join("Mallory");
    mallory.expect_line("*** You are banned from this server (spam).");
    mallory.expect_closed();
    let mut ivy = Client::connect(server.addr());
    ivy.send("NICK ivy\r\nUSER i 0 * :I\r\nKLINE 10 ivy2 :bye\r\nSTATS K\r\n");
    assert_eq!(
        ivy.expect_line(" 481 "),
        ":chat.local 481 ivy :Permission Denied- only server operators ban from the server"
    );
    assert_eq!(
        ivy.expect_line(" 481 "),
        ":chat.local 481 ivy :Permission Denied- You're not an IRC operator"
    );
}

#[test]
fn account_notify_over_a_socket() {
    let data = TempDir::new("account-notify");
    let server = server(&data);
    let mut ivy = Client::connect(server.addr());
    ivy.send("CAP LS 302\r\nCAP REQ :account-notify\r\nNICK ivy\r\nUSER i 0 * :I\r\nCAP END\r\n");
    assert!(ivy.expect_line(" CAP * LS ").contains("account-notify"));
    ivy.expect_line(" ACK :account-notify");
    ivy.expect_line(" 001 ");
    let mut ann = server.join("ann");
    ann.send_line(&format!("/register {PASSWORD}"));
    ann.expect_line("*** You registered the account ann");
    assert_eq!(
        ivy.expect_line(" ACCOUNT "),
        ":ann!plain@hidden ACCOUNT ann"
    );
    ann.send_line("/logout");
    assert_eq!(ivy.expect_line(" ACCOUNT "), ":ann!plain@hidden ACCOUNT *");
}

#[test]
fn private_messages_are_kept_per_account_and_read_with_chathistory() {
    let data = TempDir::new("private-history");
    let start = || Server::plain(RUNNER, &["--data", data.arg(), "--nick-grace", "2"]);
    let mut server = start();
    let mut ann = server.join("ann");
    ann.send_line(&format!("/register {PASSWORD}"));
    ann.expect_line("*** You registered the account ann");
    let mut bob = server.join("bob");
    bob.send_line("/register bob-password-1");
    bob.expect_line("*** You registered the account bob");
    ann.send_line("/msg bob first, from ann");
    bob.expect_line("first, from ann");
    bob.send_line("/msg ann and back, from bob");
    ann.expect_line("and back, from bob");
    // carl is identified as no one: what he sends ann is kept for ann only.
    let mut carl = server.join("carl");
    carl.send_line("/msg ann hello from carl");
    ann.expect_line("hello from carl");
    for client in [&mut ann, &mut bob, &mut carl] {
        client.send_line("/quit");
        client.expect_closed();
    }
    server.signal("TERM");
    server.expect_exit();

    // After a restart: ann, identified over IRC, reads her conversation with bob.
    let server = start();
    let mut irc = Client::connect(server.addr());
    irc.send(
        "CAP REQ :batch server-time message-tags draft/chathistory\r\nNICK ann\r\nUSER a 0 * :A\r\n\
         CAP END\r\n",
    );
    irc.expect_line(" 001 ");
    irc.send(format!("PRIVMSG NickServ :IDENTIFY {PASSWORD}\r\n"));
    irc.expect_line("You are now identified as ann");
    irc.send("CHATHISTORY LATEST bob * 10\r\n");
    irc.expect_line(" BATCH +history chathistory bob");
    let first = irc.expect_line(" PRIVMSG ");
    assert!(
        first.ends_with(":ann PRIVMSG bob :first, from ann"),
        "{first}"
    );
    assert!(first.contains(";msgid="), "{first}");
    let second = irc.next_line();
    assert!(
        second.ends_with(":bob PRIVMSG ann :and back, from bob"),
        "{second}"
    );
    assert!(irc.next_line().ends_with(" BATCH -history"));
    irc.send("CHATHISTORY LATEST carl * 10\r\n");
    irc.expect_line(" BATCH +history chathistory carl");
    assert!(
        irc.next_line()
            .ends_with(":carl PRIVMSG ann :hello from carl")
    );
    irc.expect_line(" BATCH -history");
    // A message after the restart is numbered after those kept, and kept too.
    let mut bob = server.join("bob");
    bob.send_line("/identify bob-password-1");
    bob.expect_line("*** You are now identified as bob.");
    bob.send_line("/msg ann after the restart");
    irc.expect_line("after the restart");
    irc.send("CHATHISTORY LATEST bob * 10\r\n");
    irc.expect_line(" BATCH +history chathistory bob");
    let lines: Vec<String> = (0..3).map(|_| irc.next_line()).collect();
    assert!(
        lines[2].ends_with(":bob PRIVMSG ann :after the restart"),
        "{lines:?}"
    );
    irc.expect_line(" BATCH -history");

    // Whoever merely takes the nickname reads nothing of it.
    let mut impostor = Client::connect(server.addr());
    impostor.send(
        "CAP REQ :batch draft/chathistory\r\nNICK carl\r\nUSER c 0 * :C\r\nCAP END\r\n\
         CHATHISTORY LATEST ann * 10\r\n",
    );
    impostor.expect_line(" BATCH +history chathistory ann");
    let next = impostor.next_line();
    assert!(next.ends_with(" BATCH -history"), "{next}");

    // Someone going by bob without the account: what they say is kept apart from bob's, and
    // never passes for his.
    bob.send_line("/quit");
    bob.expect_closed();
    let mut fake = server.join("bob");
    fake.send_line("/msg ann it is me, bob");
    irc.expect_line("it is me, bob");
    irc.send("CHATHISTORY LATEST bob * 10\r\n");
    irc.expect_line(" BATCH +history chathistory bob");
    assert!(irc.next_line().ends_with(":bob PRIVMSG ann :it is me, bob"));
    irc.expect_line(" BATCH -history");
    fake.send_line("/quit");
    fake.expect_closed();
    irc.send("CHATHISTORY LATEST bob * 10\r\n");
    irc.expect_line(" BATCH +history chathistory bob");
    let lines: Vec<String> = (0..4).map(|_| irc.next_line()).collect();
    assert!(lines[3].ends_with(" BATCH -history"), "{lines:?}");
    assert!(
        !lines.iter().any(|line| line.contains("it is me")),
        "{lines:?}"
    );
}

#[test]
fn account_tag_names_an_identified_senders_account() {
    let data = TempDir::new("account-tag");
    let server = server(&data);
    let mut ann = server.join("ann");
    ann.send_line(&format!("/register {PASSWORD}"));
    ann.expect_line("you are identified as it.");
    ann.send_line("/join #den");
    ann.expect_line("*** You are now talking in #den.");
    // One client asked for account-tag, one for nothing.
    let mut tagged = Client::connect(server.addr());
    tagged.send("CAP LS 302\r\n");
    assert!(tagged.expect_line(" CAP * LS ").contains(" account-tag "));
    tagged.send("CAP REQ :account-tag\r\nNICK ivy\r\nUSER i 0 * :I\r\nCAP END\r\nJOIN #den\r\n");
    tagged.expect_line(" 366 ivy #den ");
    let mut bare = Client::connect(server.addr());
    bare.send("NICK joe\r\nUSER j 0 * :J\r\nJOIN #den\r\n");
    bare.expect_line(" 366 joe #den ");
    // From ann, identified: the tag, to the one that asked.
    ann.send_line("hello");
    let line = tagged.expect_line(" PRIVMSG #den ");
    assert!(line.starts_with('@'), "{line}");
    let tags = line[1..].split_once(' ').expect("tags").0;
    assert!(tags.split(';').any(|tag| tag == "account=ann"), "{line}");
    assert_eq!(
        bare.expect_line(" PRIVMSG #den "),
        ":ann!plain@hidden PRIVMSG #den :hello"
    );
    ann.send_line("/msg ivy psst");
    assert!(
        tagged
            .expect_line(" PRIVMSG ivy ")
            .contains(";account=ann ")
    );
    // From joe, not identified: no account tag.
    bare.send("PRIVMSG #den :hi\r\nNOTICE ivy :note\r\n");
    let line = tagged.expect_line(" PRIVMSG #den :hi");
    assert!(!line.contains("account="), "{line}");
    let line = tagged.expect_line(" NOTICE ivy :note");
    assert!(!line.contains("account="), "{line}");
    // Her JOIN and PART too, to the tagged only.
    ann.send_line("/part #den");
    assert!(tagged.expect_line(" PART #den").starts_with('@'));
    ann.send_line("/join #den");
    let join = tagged.expect_line(" JOIN #den");
    assert!(
        join.starts_with("@time=") && join.contains(";account=ann :ann!"),
        "{join}"
    );
    assert_eq!(
        bare.expect_line(" JOIN #den"),
        ":ann!plain@hidden JOIN #den"
    );
    // Once ann logs out, her lines carry none.
    ann.send_line("/logout");
    ann.expect_line("You are no longer identified as ann.");
    ann.send_line("again");
    let line = tagged.expect_line(" PRIVMSG #den :again");
    assert!(!line.contains("account="), "{line}");
}

/// Service names are nobody's: clients and scripts send passwords to `NickServ` and
/// `ChanServ`, so a person by one of those names would collect them. A plain-text or JSON
/// `/msg NickServ` is the server's account service, as IRC's `PRIVMSG NickServ` is, and
/// reaches no one.
#[test]
fn no_one_can_be_nickserv_and_a_password_sent_to_it_reaches_no_one() {
    let data = TempDir::new("services");
    let server = server(&data);
    let mut watcher = server.join("watcher");

    let mut impostor = server.connect();
    for name in ["NickServ", "chanserv", "MemoServ"] {
        impostor.send_line(&format!("/nick {name}"));
        let refused = impostor.next_line();
        assert_eq!(
            refused,
            format!(
                "*** error: \"{name}\" is not a valid nickname: the names of IRC services \
                 (NickServ, ChanServ...) are reserved; you are still {}",
                refused.rsplit(' ').next().unwrap_or_default()
            )
        );
        assert!(refused.ends_with(" anonymous-2"), "{refused}");
    }
    let mut irc = Client::connect(server.addr());
    irc.send("NICK ChanServ\r\nUSER c 0 * :C\r\n");
    assert_eq!(
        irc.expect_line(" 432 "),
        ":chat.local 432 * ChanServ :Erroneous nickname"
    );

    // A password sent to NickServ from plain text and from JSON is answered by the server.
    let mut vic = server.join("vic");
    vic.send_line("/msg NickServ IDENTIFY a-secret-password");
    assert_eq!(
        vic.next_line(),
        "*** error: there is no account vic; /register PASSWORD makes one for your nickname"
    );
    vic.send_line("/msg nickserv HELLO");
    assert_eq!(
        vic.next_line(),
        "*** error: usage: /msg NickServ IDENTIFY [ACCOUNT] PASSWORD, REGISTER PASSWORD, LOGOUT \
         or PASSWORD OLD NEW"
    );
    let mut json = Client::connect(server.addr());
    json.send(r#"{"type":"client","user":"NickServ","message":"IDENTIFY json-secret-pw"}"#);
    json.expect_line(
        "*** error: you have no nickname to identify as; name the account: /login NAME PASSWORD",
    );

    // Nobody else saw either password: everything the others had before their barrier.
    for client in [&mut watcher, &mut impostor] {
        let seen = client.sync();
        assert!(
            seen.iter().all(|line| !line.contains("secret")),
            "a password reached someone: {seen:?}"
        );
    }
}
