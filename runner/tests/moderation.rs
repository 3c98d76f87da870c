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
    // Other modes are not kept.
    ivy.send("MODE #den +k secret\r\n");
    assert_eq!(
        ivy.expect_line(" 472 "),
        ":chat.local 472 ivy k :is not a channel mode here (only o, v, b, m, s and t are kept)"
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
