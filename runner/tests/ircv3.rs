//! IRCv3 over real sockets, through the runner and its store: labels on answers the store
//! gives (CHATHISTORY, answered on another thread), BETWEEN in both directions, client-only
//! tags and TAGMSG, and a tag section longer than a line, sent in pieces.

use chat_tests::{Client, Server};

/// The server binary, built by cargo for these tests.
const RUNNER: &str = env!("CARGO_BIN_EXE_chat-runner");

/// An IRC client registered as `nick` with `caps`, its welcome read.
fn irc(server: &Server, nick: &str, caps: &str) -> Client {
    let mut client = server.connect();
    client.send(format!(
        "CAP LS 302\r\nCAP REQ :{caps}\r\nNICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nCAP END\r\n"
    ));
    client.expect_line_where(|line| line.contains(" 001 "), "the welcome");
    client.irc_sync();
    client
}

/// The texts of the PRIVMSG lines of a chathistory batch, checking the batch's shape.
fn texts(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|line| line.starts_with("@batch=history;"))
        .filter_map(|line| line.split_once(" :").map(|(_, rest)| rest.to_owned()))
        .filter_map(|rest| rest.split_once(" :").map(|(_, text)| text.to_owned()))
        .collect()
}

#[test]
fn labels_reach_the_store_and_back_and_between_goes_both_ways() {
    let dir = std::env::temp_dir().join(format!("chat-ircv3-{}", std::process::id()));
    let server = Server::plain(RUNNER, &["--data", dir.to_str().unwrap()]);
    let caps = "batch draft/chathistory echo-message labeled-response message-tags server-time";
    let mut lea = irc(&server, "lea", caps);
    for n in 1..=10 {
        lea.send_line(&format!("PRIVMSG #lobby :line {n}"));
    }
    // Every echo carries its msgid: the first and the last mark the range.
    let mut ids = Vec::new();
    for n in 1..=10 {
        let echo = lea.expect_line(&format!("PRIVMSG #lobby :line {n}"));
        let id = echo
            .split([';', ' '])
            .find_map(|tag| tag.strip_prefix("msgid="))
            .expect("a msgid")
            .to_owned();
        ids.push(id);
    }
    let (first, last) = (&ids[0], &ids[9]);

    lea.send_line(&format!(
        "@label=fw CHATHISTORY BETWEEN #lobby msgid={first} msgid={last} 3"
    ));
    lea.send_line("PING done-fw");
    let forward = sync_until(&mut lea, "done-fw");
    assert!(
        forward[0].starts_with("@label=fw :")
            && forward[0].ends_with(" BATCH +labeled labeled-response"),
        "{forward:?}"
    );
    assert!(forward[1].starts_with("@batch=labeled :"), "{forward:?}");
    assert_eq!(texts(&forward), ["line 2", "line 3", "line 4"]);
    assert!(
        forward[forward.len() - 2].ends_with(" BATCH -labeled"),
        "{forward:?}"
    );

    lea.send_line(&format!(
        "@label=bw CHATHISTORY BETWEEN #lobby msgid={last} msgid={first} 3"
    ));
    lea.send_line("PING done-bw");
    let backward = sync_until(&mut lea, "done-bw");
    assert_eq!(
        texts(&backward),
        ["line 7", "line 8", "line 9"],
        "{backward:?}"
    );
    assert!(backward[0].starts_with("@label=bw "), "{backward:?}");
    drop(lea);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Lines up to and including the PONG for `token`.
fn sync_until(client: &mut Client, token: &str) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let line = client.next_line();
        let done = line.contains("PONG") && line.ends_with(token);
        lines.push(line);
        if done {
            return lines;
        }
    }
}

#[test]
fn client_tags_reach_those_who_read_them_even_past_a_line_in_pieces() {
    let server = Server::plain(RUNNER, &[]);
    let mut lea = irc(&server, "lea", "echo-message message-tags");
    let mut tom = irc(&server, "tom", "message-tags");
    let mut sam = irc(&server, "sam", "server-time");
    let mut pete = irc(&server, "pete", "");
    let mut text = server.join("tess");
    for client in [&mut lea, &mut tom, &mut sam, &mut pete] {
        client.irc_sync();
    }
    text.sync();

    // 3,000 bytes of tags, sent in pieces of 1,000 bytes: they outgrow the line's buffer.
    let long = "x".repeat(3000);
    let line = format!("@+big={long};+draft/react=ok PRIVMSG #lobby :tagged\r\n");
    for piece in line.as_bytes().chunks(1000) {
        lea.send(piece);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let relayed = tom.expect_line("PRIVMSG #lobby :tagged");
    assert!(
        relayed.contains(&format!(";+big={long};+draft/react=ok :lea!")),
        "{} bytes",
        relayed.len()
    );
    let timed = sam.expect_line("PRIVMSG #lobby :tagged");
    assert!(
        timed.starts_with("@time=") && !timed.contains("+big"),
        "{timed}"
    );
    assert_eq!(
        pete.expect_line("PRIVMSG #lobby :tagged"),
        ":lea!~lea@hidden PRIVMSG #lobby :tagged"
    );
    text.expect_line("lea: tagged");
    lea.expect_line("PRIVMSG #lobby :tagged");

    // TAGMSG: to those who read client tags, and nobody else.
    lea.send_line("@+typing=active TAGMSG #lobby");
    let typing = tom.expect_line("TAGMSG #lobby");
    assert!(typing.contains(";+typing=active :lea!"), "{typing}");
    lea.expect_line("TAGMSG #lobby");
    lea.send_line("PRIVMSG #lobby :after");
    for client in [&mut sam, &mut pete] {
        let next = client.next_line();
        assert!(next.ends_with("PRIVMSG #lobby :after"), "{next}");
    }
    assert_eq!(text.next_line(), "lea: after");

    // Tags over 4,096 bytes: 417, and nobody hears the line.
    let over = "x".repeat(4100);
    lea.send(format!("@+big={over} PRIVMSG #lobby :never\r\n"));
    lea.expect_line("417 lea :Input line was too long");
    lea.send_line("PRIVMSG #lobby :still here");
    let next = tom.next_line();
    assert!(next.ends_with("PRIVMSG #lobby :after"), "{next}");
    let next = tom.next_line();
    assert!(next.ends_with("PRIVMSG #lobby :still here"), "{next}");
}
