//! Rooms over real sockets: joining, parting, topics, the room list, and who hears what.

use chat_core::MAX_ROOMS_PER_PERSON;
use chat_tests::{Client, Server};

/// The server binary, built by cargo for these tests.
const RUNNER: &str = env!("CARGO_BIN_EXE_chat-runner");

/// alice and bob, named, both in the lobby, with their join and rename notices taken.
fn alice_and_bob(server: &Server) -> (Client, Client) {
    let mut alice = server.join("alice");
    let bob = server.join("bob");
    alice.expect_line("*** anonymous-2 is now known as bob");
    (alice, bob)
}

#[test]
fn joining_creates_a_room_and_its_talk_stays_in_it() {
    let server = Server::plain(RUNNER, &[]);
    let (mut alice, mut bob) = alice_and_bob(&server);
    let mut carol = server.join("carol");
    alice.expect_line("now known as carol");
    bob.expect_line("now known as carol");

    alice.send_line("/join #Rust");
    assert_eq!(alice.next_line(), "*** You are now talking in #Rust.");
    assert_eq!(alice.next_line(), "*** #Rust (1): alice (you)");
    bob.send_line("/join #rust");
    assert_eq!(bob.next_line(), "*** You are now talking in #Rust.");
    assert_eq!(bob.next_line(), "*** #Rust (2): alice, bob (you)");
    assert_eq!(alice.next_line(), "*** bob joined #Rust (2 here)");

    bob.send_line("borrow checker question");
    assert_eq!(alice.next_line(), "bob: borrow checker question");
    // carol is only in the lobby: she hears nothing of #Rust.
    assert!(carol.sync().is_empty());

    // alice goes back to talking in the lobby but stays in #Rust: #Rust lines reach her
    // marked with the room, and her lobby lines reach carol (and bob, who is in the lobby too,
    // marked since he talks in #Rust).
    alice.send_line("/join #lobby");
    assert_eq!(alice.next_line(), "*** Now talking in #lobby.");
    bob.send_line("/me ponders");
    assert_eq!(alice.next_line(), "[#Rust] * bob ponders");
    alice.send_line("hi lobby");
    assert_eq!(carol.next_line(), "alice: hi lobby");
    assert_eq!(bob.next_line(), "[#lobby] alice: hi lobby");
}

#[test]
fn parting_tells_the_room_and_the_last_one_out_removes_it() {
    let server = Server::plain(RUNNER, &[]);
    let (mut alice, mut bob) = alice_and_bob(&server);
    alice.send_line("/join #tmp");
    alice.expect_line("#tmp (1)");
    bob.send_line("/join #tmp");
    bob.expect_line("#tmp (2)");
    alice.expect_line("bob joined #tmp");

    bob.send_line("/part gotta go");
    assert_eq!(bob.next_line(), "*** You left #tmp.");
    assert_eq!(bob.next_line(), "*** Now talking in #lobby.");
    assert_eq!(alice.next_line(), "*** bob left #tmp (gotta go)");

    alice.send_line("/part #tmp");
    assert_eq!(alice.next_line(), "*** You left #tmp.");
    assert_eq!(alice.next_line(), "*** Now talking in #lobby.");
    assert!(bob.sync().is_empty(), "bob is no longer in #tmp");

    bob.send_line("/rooms");
    assert_eq!(bob.next_line(), "*** Rooms (1):");
    assert_eq!(bob.next_line(), "***   #lobby (2, you are in it)");

    alice.send_line("/part #tmp");
    assert_eq!(alice.next_line(), "*** error: you are not in that room");

    // Leaving every room: talk has nowhere to go until a /join.
    alice.send_line("/part");
    alice.expect_line("You left #lobby.");
    assert_eq!(
        alice.next_line(),
        "*** You are in no room now; /join #lobby to talk again."
    );
    assert_eq!(bob.next_line(), "*** alice left #lobby");
    alice.send_line("anyone?");
    assert_eq!(
        alice.next_line(),
        "*** error: you are in no room; /join #lobby to talk"
    );
    // Sharing no room with bob, alice's rename and departure are not his business.
    alice.send_line("/nick alicia");
    alice.expect_line("You are now known as alicia.");
    alice.send_line("/quit");
    alice.expect_closed();
    assert!(bob.sync().is_empty());
}

#[test]
fn topics_are_announced_shown_on_join_and_bounded() {
    let server = Server::plain(RUNNER, &[]);
    let (mut alice, mut bob) = alice_and_bob(&server);
    alice.send_line("/topic");
    assert_eq!(alice.next_line(), "*** #lobby has no topic.");
    alice.send_line("/topic  welcome, all  ");
    assert_eq!(
        alice.next_line(),
        "*** alice set the topic of #lobby: welcome, all"
    );
    assert_eq!(
        bob.next_line(),
        "*** alice set the topic of #lobby: welcome, all"
    );
    bob.send_line("/topic");
    assert_eq!(bob.next_line(), "*** Topic of #lobby: welcome, all");

    alice.send_line(&format!("/topic {}", "t".repeat(201)));
    assert_eq!(
        alice.next_line(),
        "*** error: a topic has at most 200 bytes; it was not changed"
    );

    alice.send_line("/join #news");
    alice.expect_line("#news (1)");
    alice.send_line("/topic extra, extra");
    alice.expect_line("set the topic of #news");
    bob.send_line("/join #news");
    assert_eq!(bob.next_line(), "*** You are now talking in #news.");
    assert_eq!(bob.next_line(), "*** Topic of #news: extra, extra");
    assert_eq!(bob.next_line(), "*** #news (2): alice, bob (you)");
    bob.send_line("/rooms");
    assert_eq!(bob.next_line(), "*** Rooms (2):");
    assert_eq!(
        bob.next_line(),
        "***   #lobby (2, you are in it) welcome, all"
    );
    assert_eq!(
        bob.next_line(),
        "***   #news (2, you are in it) extra, extra"
    );
}

#[test]
fn bad_room_names_and_full_rooms_get_clear_errors() {
    let server = Server::plain(RUNNER, &["--max-room-members", "2"]);
    let (mut alice, mut bob) = alice_and_bob(&server);
    for (name, why) in [
        ("rust", "a room name starts with #"),
        ("#", "a room name needs something after the #"),
        (
            "#a.b",
            "a room name cannot contain '.'; use letters, digits, _ and -",
        ),
    ] {
        alice.send_line(&format!("/join {name}"));
        assert_eq!(
            alice.next_line(),
            format!("*** error: \"{name}\" is not a valid room name: {why}")
        );
    }
    // The lobby holds two: a third person gets in, but not into the lobby.
    let mut carol = Client::connect(server.addr());
    carol.expect_line("*** error: #lobby is full (2 people)");
    carol.send_line("/join #overflow");
    carol.expect_line("#overflow (1)");
    assert!(alice.sync().is_empty() && bob.sync().is_empty());
}

#[test]
fn the_rooms_of_one_person_are_bounded() {
    let server = Server::plain(RUNNER, &[]);
    let mut alice = server.join("alice");
    // The lobby plus 19 more: as many as one person can be in.
    let joins: String = (1..MAX_ROOMS_PER_PERSON)
        .map(|n| format!("/join #r{n}\n"))
        .collect();
    alice.send(joins);
    alice.expect_line(&format!(
        "*** #r{} (1): alice (you)",
        MAX_ROOMS_PER_PERSON - 1
    ));
    alice.send_line("/join #one-too-many");
    assert_eq!(
        alice.next_line(),
        format!(
            "*** error: you are in {MAX_ROOMS_PER_PERSON} rooms, the most one can be in; /part one first"
        )
    );
    alice.send_line("/part #r5");
    alice.expect_line("You left #r5.");
    alice.next_line();
    alice.send_line("/join #one-too-many");
    assert_eq!(
        alice.next_line(),
        "*** You are now talking in #one-too-many."
    );
}
