//! Room operators over real sockets: whoever makes a room may put people out of it and make
//! others operators, in the plain dialect and IRC alike.

use chat_tests::{Client, Server};

/// The server binary, built by cargo for these tests.
const RUNNER: &str = env!("CARGO_BIN_EXE_chat-runner");

#[test]
fn a_rooms_maker_puts_people_out_and_shares_the_job() {
    let server = Server::plain(RUNNER, &[]);
    let mut alice = server.join("alice");
    alice.send_line("/join #den");
    alice.expect_line("*** You are now talking in #den.");
    let mut bob = server.join("bob");
    bob.send_line("/join #den");
    bob.expect_line("*** You are now talking in #den.");
    let mut ivy = Client::connect(server.addr());
    ivy.send("NICK ivy\r\nUSER i 0 * :I\r\n");
    let isupport = ivy.expect_line(" PREFIX=");
    assert!(isupport.contains(" PREFIX=(ov)@+ "), "{isupport}");
    ivy.send("JOIN #den\r\n");
    assert_eq!(
        ivy.expect_line(" 353 ivy = #den "),
        ":chat.local 353 ivy = #den :@alice bob ivy"
    );

    // Not an operator: refused.
    bob.send_line("/kick alice");
    bob.expect_line("*** error: you are not an operator of #den");
    ivy.send("KICK #den bob\r\n");
    ivy.expect_line(" 482 ivy #den :You're not channel operator");

    // alice makes ivy one; ivy puts bob out.
    alice.send_line("/op ivy");
    assert_eq!(
        ivy.expect_line(" MODE "),
        ":alice!plain@hidden MODE #den +o ivy"
    );
    ivy.send("KICK #den bob :enough\r\n");
    assert_eq!(
        ivy.expect_line(" KICK "),
        ":ivy!~i@hidden KICK #den bob :enough"
    );
    bob.expect_line("*** You were put out of #den by ivy (enough)");
    alice.expect_line("*** bob was put out of #den by ivy (enough)");
    // bob is out of #den: what he says now goes to the lobby.
    bob.send_line("still here");
    assert_eq!(alice.sync(), ["[#lobby] bob: still here"]);
    // A ban keeps bob out, even on a new connection under his name.
    ivy.send("MODE #den +b bob!*@*\r\n");
    assert_eq!(
        ivy.expect_line(" MODE "),
        ":ivy!~i@hidden MODE #den +b bob!*@*"
    );
    bob.send_line("/quit");
    bob.expect_closed();
    let mut back = server.join("bob");
    back.send_line("/join #den");
    back.expect_line("*** error: you are banned from #den");
    // A mode that is none here is named.
    ivy.send("MODE #den +q secret\r\n");
    assert_eq!(
        ivy.expect_line(" 472 "),
        ":chat.local 472 ivy q :is not a channel mode here (b, e, i, I, k, l, m, n, o, r, s, t and v are)"
    );
    // WHO and WHOIS show who keeps order.
    ivy.send("WHOIS alice\r\n");
    assert!(ivy.expect_line(" 319 ").ends_with(":#lobby @#den "));
    ivy.send("WHO #den\r\n");
    assert!(ivy.expect_line(" 352 ").contains(" alice H@ :0 "));
    ivy.send("NAMES #den\r\n");
    assert_eq!(
        ivy.expect_line(" 353 ivy = #den "),
        ":chat.local 353 ivy = #den :@alice @ivy"
    );

    // A kicked IRC client is told too, as IRC clients expect.
    alice.send_line("/kick ivy bye");
    assert_eq!(
        ivy.expect_line(" KICK "),
        ":alice!plain@hidden KICK #den ivy :bye"
    );
}

#[test]
fn password_rooms_limits_and_invitations_over_sockets() {
    let server = Server::plain(RUNNER, &[]);
    let mut alice = server.join("alice");
    alice.send_line("/join #vault");
    alice.expect_line("*** You are now talking in #vault.");
    alice.send_line("/mode +k open-sesame");
    alice.expect_line("*** alice locked #vault with a key: /join #vault open-sesame");

    // Without the key, or with a wrong one: refused, in both dialects.
    let mut bob = server.join("bob");
    bob.send_line("/join #vault");
    bob.expect_line("*** error: #vault has a key: /join #vault KEY");
    let mut ivy = Client::connect(server.addr());
    ivy.send("NICK ivy\r\nUSER i 0 * :I\r\n");
    ivy.expect_line(" 001 ");
    let isupport = ivy.expect_line(" CHANMODES=");
    assert!(
        isupport.contains(" CHANMODES=beI,k,l,imnrst "),
        "{isupport}"
    );
    ivy.send("JOIN #vault wrong\r\n");
    assert_eq!(
        ivy.expect_line(" 475 "),
        ":chat.local 475 ivy #vault :Cannot join channel (+k)"
    );
    // With it: in.
    ivy.send("JOIN #vault open-sesame\r\n");
    ivy.expect_line(":ivy!~i@hidden JOIN #vault");
    bob.send_line("/join #vault open-sesame");
    bob.expect_line("*** You are now talking in #vault.");

    // A limit of 3 with 3 in: the next is told the room is full.
    alice.send_line("/mode +l 3");
    assert_eq!(
        ivy.expect_line(" MODE "),
        ":alice!plain@hidden MODE #vault +l 3"
    );
    let mut carl = server.join("carl");
    carl.send_line("/join #vault open-sesame");
    carl.expect_line("*** error: #vault is full (3 people)");

    // Invite-only: an operator's invitation lets carl past the limit and the key, once.
    alice.send_line("/mode +i");
    bob.expect_line("*** alice let only invited people into #vault");
    bob.send_line("/invite carl");
    bob.expect_line("*** error: you are not an operator of #vault");
    ivy.send("INVITE carl #vault\r\n");
    ivy.expect_line(" 482 ivy #vault ");
    alice.send_line("/invite carl");
    alice.expect_line("*** You invited carl into #vault.");
    carl.expect_line("*** alice invites you into #vault: /join #vault");
    carl.send_line("/join #vault");
    carl.expect_line("*** You are now talking in #vault.");
    carl.send_line("/part #vault");
    carl.sync();
    carl.send_line("/join #vault open-sesame");
    carl.expect_line("*** error: #vault lets in only whom its operators invite (/invite)");

    // The modes, as a member sees them (the key too) and as IRC's 324 says.
    ivy.send("MODE #vault\r\n");
    assert_eq!(
        ivy.expect_line(" 324 "),
        ":chat.local 324 ivy #vault +inkl open-sesame 3"
    );
}

#[test]
fn a_registered_room_keeps_its_founder_modes_and_bans_across_a_restart() {
    let data = chat_tests::TempDir::new("registered-room");
    let start = || Server::plain(RUNNER, &["--data", data.arg()]);
    let mut server = start();
    let mut alice = server.found_room("alice", "#den");
    alice.send_line("/mode +ikl sesame 10");
    alice.expect_line("*** alice let at most 10 people into #den");
    alice.send_line("/ban bob 1h flooding");
    alice.expect_line("*** alice banned bob!*@* from #den for 1h (flooding)");
    alice.send_line("/ban $a:mallory");
    alice.expect_line("*** alice banned $a:mallory from #den");
    alice.send_line("/ban carl 30s");
    alice.expect_line("*** alice banned carl!*@* from #den for 30s");
    alice.send_line("/unban carl");
    alice.expect_line("*** alice lifted the ban on carl!*@* in #den");
    alice.send_line("/quit");
    alice.expect_closed();
    server.signal("TERM");
    server.expect_exit();

    // Restarted on the same data: the room is still there, as alice left it.
    let server = start();
    server.expect_log("store: 1 registered rooms, 2 bans (0 lapsed, not restored)");
    let mut bob = server.join("bob");
    bob.send_line("/join #den sesame");
    bob.expect_line("*** error: you are banned from #den");
    let mut carl = server.join("carl");
    carl.send_line("/join #den sesame");
    carl.expect_line("*** error: #den lets in only whom its operators invite (/invite)");
    let mut ivy = Client::connect(server.addr());
    ivy.send("NICK ivy\r\nUSER i 0 * :I\r\nMODE #den\r\nMODE #den +b\r\n");
    assert_eq!(
        ivy.expect_line(" 324 "),
        ":chat.local 324 ivy #den +inrkl * 10"
    );
    let bans = ivy.expect_line(" 367 ");
    assert!(
        bans.starts_with(":chat.local 367 ivy #den bob!*@* alice "),
        "{bans}"
    );
    assert!(ivy.expect_line(" 367 ").contains(" $a:mallory alice "));
    ivy.expect_line(" 368 ");

    // Its founder, identified, comes in past +i and the key, as its operator; and lets
    // carl in.
    let mut alice = server.join("alice");
    alice.send_line("/identify correct-horse-battery");
    alice.expect_line("*** You are now identified as alice.");
    alice.send_line("/join #den");
    alice.expect_line("*** You are now talking in #den.");
    alice.send_line("/invite carl");
    carl.expect_line("*** alice invites you into #den: /join #den");
    carl.send_line("/join #den");
    carl.expect_line("*** You are now talking in #den.");
    ivy.send("NAMES #den\r\n");
    assert_eq!(
        ivy.expect_line(" 353 ivy = #den "),
        ":chat.local 353 ivy = #den :@alice carl"
    );
}

#[test]
fn ban_and_invite_exceptions_work_and_survive_a_restart() {
    let data = chat_tests::TempDir::new("exceptions");
    let start = || Server::plain(RUNNER, &["--data", data.arg()]);
    let mut server = start();
    let mut op = Client::connect(server.addr());
    op.send("NICK op\r\nUSER o 0 * :O\r\n");
    let isupport = op.expect_line(" EXCEPTS ");
    assert!(isupport.contains(" INVEX "), "{isupport}");
    op.send("JOIN #den\r\nMODE #den +b ba*!*@*\r\nMODE #den +e bar!*@*\r\n");
    op.expect_line("MODE #den +e bar!*@*");
    op.send("MODE #den +i\r\nMODE #den +I *!~b@*\r\n");
    op.expect_line("MODE #den +I *!~b@*");
    // bar (user name b): past the ban by its exception, past +i by the invite exception.
    let mut bar = Client::connect(server.addr());
    bar.send("NICK bar\r\nUSER b 0 * :B\r\nJOIN #den\r\n");
    bar.expect_line(" JOIN #den");
    // baz, with the same user name, matches the invite exception but is banned.
    let mut baz = Client::connect(server.addr());
    baz.send("NICK baz\r\nUSER b 0 * :Z\r\nJOIN #den\r\n");
    assert_eq!(
        baz.expect_line(" 474 "),
        ":chat.local 474 baz #den :Cannot join channel (+b)"
    );
    baz.send("QUIT\r\n");
    bar.send("QUIT\r\n");
    op.send("QUIT\r\n");
    baz.expect_closed();
    bar.expect_closed();
    op.expect_closed();
    server.signal("TERM");
    server.expect_exit();

    // Restarted on the same data: all three lists are back, each apart.
    let server = start();
    server.expect_log("3 bans (0 lapsed, not restored)");
    let mut ivy = Client::connect(server.addr());
    ivy.send("NICK ivy\r\nUSER i 0 * :I\r\nMODE #den +e\r\nMODE #den +I\r\nMODE #den +b\r\n");
    assert!(
        ivy.expect_line(" 348 ")
            .starts_with(":chat.local 348 ivy #den bar!*@* op ")
    );
    ivy.expect_line(" 349 ");
    assert!(
        ivy.expect_line(" 346 ")
            .starts_with(":chat.local 346 ivy #den *!~b@* op ")
    );
    ivy.expect_line(" 347 ");
    assert!(
        ivy.expect_line(" 367 ")
            .starts_with(":chat.local 367 ivy #den ba*!*@* op ")
    );
    ivy.expect_line(" 368 ");
    ivy.send("JOIN #den\r\n");
    ivy.expect_line(" 473 ivy #den ");
    let mut bar = Client::connect(server.addr());
    bar.send("NICK bar\r\nUSER b 0 * :B\r\nJOIN #den\r\n");
    bar.expect_line(" JOIN #den");
    let mut baz = Client::connect(server.addr());
    baz.send("NICK baz\r\nUSER b 0 * :Z\r\nJOIN #den\r\n");
    baz.expect_line(" 474 baz #den ");
    // In the plain dialect: /mode, and the lists told in words.
    let mut text = server.join("text");
    text.send_line("/mode #den +e");
    text.expect_line("*** ban exception on #den: bar!*@* (set by op)");
}

#[test]
fn a_key_goes_with_its_room_and_does_not_come_back_after_a_restart() {
    let data = chat_tests::TempDir::new("room-key-gone");
    let start = || Server::plain(RUNNER, &["--data", data.arg()]);
    let mut server = start();
    let mut ann = server.join("ann");
    ann.send_line("/join #x");
    ann.expect_line("*** You are now talking in #x.");
    ann.send_line("/mode +k sesame");
    ann.expect_line("*** ann locked #x with a key");
    ann.send_line("/part #x");
    ann.sync();
    // The room went with its key; made again, it has a topic (so the store keeps it), no key.
    let mut bob = server.join("bob");
    bob.send_line("/join #x");
    bob.expect_line("*** You are now talking in #x.");
    bob.send_line("/topic hello");
    bob.expect_line("*** bob set the topic of #x: hello");
    server.signal("TERM");
    server.expect_exit();
    let server = start();
    let mut carl = server.join("carl");
    carl.send_line("/join #x");
    carl.expect_line("*** You are now talking in #x.");
}

#[test]
fn a_nickname_ban_keeps_out_look_alikes_and_an_exception_lets_in_only_the_name() {
    let server = Server::plain(RUNNER, &[]);
    let mut op = server.join("op");
    op.send_line("/join #den");
    op.expect_line("*** You are now talking in #den.");
    op.send_line("/ban alice");
    op.expect_line("*** op banned alice!*@* from #den");
    // A digit one for an L, in any case: the server would not give it beside alice, but
    // anyone may take it while she is away. The ban keeps it out too.
    for nick in ["a1ice", "A1ICE"] {
        let mut twin = server.join(nick);
        twin.send_line("/join #den");
        twin.expect_line("*** error: you are banned from #den");
        twin.send_line("/quit");
        twin.expect_closed();
    }
    // Not a look-alike of alice (names are lowered first: its 1 is where alice has an i, and
    // a small i looks like no 1): in.
    let mut other = server.join("AL1CE");
    other.send_line("/join #den");
    other.expect_line("*** You are now talking in #den.");
    let mut alicia = server.join("alicia");
    alicia.send_line("/join #den");
    alicia.expect_line("*** You are now talking in #den.");
    // An exception names exactly whom it lets in: alice, not her look-alikes.
    op.send_line("/mode +e alice");
    op.expect_line("*** op let alice!*@* into #den despite its bans");
    let mut twin = server.join("a1ice");
    twin.send_line("/join #den");
    twin.expect_line("*** error: you are banned from #den");
    twin.send_line("/quit");
    twin.expect_closed();
    let mut alice = server.join("alice");
    alice.send_line("/join #den");
    alice.expect_line("*** You are now talking in #den.");
}
