//! Rooms over real sockets: joining, parting, topics, the room list, and who hears what.

use chat_core::{MAX_IRC_NAMES, MAX_ROOMS_PER_PERSON};
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

/// The names an IRC `NAMES #lobby` lists, in its order (status prefixes taken off).
fn lobby_names(watcher: &mut Client) -> Vec<String> {
    watcher.send("NAMES #lobby\r\n");
    let mut names = Vec::new();
    loop {
        let line = watcher.next_line();
        if line.contains(" 366 ") {
            return names;
        }
        if line.contains(" 353 ") {
            let listed = line.rsplit_once(" :").map_or("", |(_, names)| names);
            names.extend(
                listed
                    .split(' ')
                    .map(|name| name.trim_start_matches(['@', '+']).to_owned()),
            );
        }
    }
}

/// People leave and others take the slots they left, so the lobby's list, in joining order,
/// no longer runs in the order of the server's tables; sends to the room walk it, and once
/// they have walked it enough the core puts it in that order (`Members::walking`). That is
/// only done once the tables hold more membership cells than the caches (65,536), which 3,400
/// people in three rooms do (20 cells each, with the second row a third room takes). The
/// sends that pay for the passes are the newcomers' `JOIN`s to the IRC watcher, each a walk
/// of the lobby: passes come every few hundred newcomers. Then every line still reaches
/// everyone once, in order, and the room lists the newcomers among those who stayed, in the
/// order of their slots (which shows the list was put in order).
#[test]
fn a_room_whose_list_is_put_in_order_after_people_came_and_went_still_reaches_everyone() {
    const PEOPLE: usize = 3400;
    const LEAVING: usize = PEOPLE / 2;
    // The test's end of every connection, and some to spare.
    if !chat_tests::allow_open_files(
        "a_room_whose_list_is_put_in_order_after_people_came_and_went_still_reaches_everyone",
        PEOPLE as u64 + 512,
    ) {
        return;
    }
    let server = Server::plain(RUNNER, &["--no-flood-limit", "--max-per-ip", "0"]);
    let mut watcher = Client::connect(server.addr());
    watcher.send("NICK watcher\r\nUSER u 0 * :U\r\n");
    watcher.expect_line(" 366 ");
    let mut speaker = server.join("speaker");
    speaker.send_line("/join #a\n/join #b\n/join #lobby");
    let mut people: Vec<Client> = Vec::with_capacity(PEOPLE);
    for n in 0..PEOPLE {
        let mut person = server.connect();
        person.send_line("/join #a\n/join #b\n/join #lobby");
        people.push(person);
        if n % 100 == 99 {
            // The watcher takes its JOINs as they come, or it would fall behind.
            watcher.irc_sync();
        }
    }
    // Half leave, in a shuffled order (a fixed xorshift), and the watcher sees each go.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    for _ in 0..LEAVING {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        drop(people.swap_remove((state % people.len() as u64) as usize));
        watcher.expect_line_where(|line| line.contains(" QUIT "), "a QUIT");
    }
    // As many come, into the slots just freed, last freed first.
    for n in 0..LEAVING {
        people.push(server.connect());
        if n % 100 == 99 {
            watcher.irc_sync();
        }
    }
    let lines: Vec<String> = (0..10).map(|n| format!("line {n}")).collect();
    for line in &lines {
        speaker.send_line(line);
    }
    let heard: Vec<String> = lines
        .iter()
        .map(|line| format!("speaker: {line}"))
        .collect();
    for (n, person) in people.iter_mut().enumerate() {
        let got: Vec<String> = person
            .sync()
            .into_iter()
            .filter(|line| line.starts_with("speaker: "))
            .collect();
        assert_eq!(got, heard, "person {n}: every line once, in order");
    }
    let got: Vec<String> = watcher
        .irc_sync()
        .into_iter()
        .filter(|line| line.contains(" PRIVMSG #lobby :"))
        .filter_map(|line| Some(line.rsplit_once(" :")?.1.to_owned()))
        .collect();
    assert_eq!(got, lines, "the watcher: every line once, in order");
    // Nobody but the watcher and the speaker took a nickname: the others are `anonymous-N`,
    // N their slot's number. In joining order the first listed would be those who came first
    // and stayed, every other slot a gap where someone left; in the tables' order the
    // newcomers fill those slots.
    let listed = lobby_names(&mut watcher);
    assert_eq!(listed.len(), MAX_IRC_NAMES);
    let slots: Vec<u32> = listed
        .iter()
        .filter_map(|name| name.strip_prefix("anonymous-")?.parse().ok())
        .collect();
    assert_eq!(slots.len(), MAX_IRC_NAMES - 2, "{listed:?}");
    let gaps: u32 = slots
        .windows(2)
        .map(|pair| pair[1].abs_diff(pair[0]) - 1)
        .sum();
    assert!(
        (gaps as usize) < slots.len() / 4,
        "{gaps} slots missing among the first listed: the list was not put in order ({slots:?})"
    );
}
