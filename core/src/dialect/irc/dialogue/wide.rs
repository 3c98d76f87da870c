//! `NAMES` of several rooms, secret rooms, `multi-prefix`, `userhost-in-names`, `away-notify`,
//! `SETNAME`, `WHOWAS`, `HELP`, `INFO`, `PRIVMSG @#room` and `LUSERS`, as a client sees them.

use super::*;

#[test]
fn names_of_several_rooms_end_with_one_366_naming_them_all() {
    let mut chat = Chat::new();
    let ann = chat.irc("ann");
    chat.send(ann, "JOIN #a,#b\r\n");
    chat.take(ann);
    chat.send(ann, "NAMES #a,#b\r\n");
    assert_eq!(
        chat.take(ann),
        [
            ":irc.test 353 ann = #a :@ann",
            ":irc.test 353 ann = #b :@ann",
            ":irc.test 366 ann #a,#b :End of /NAMES list",
        ]
    );
    // Three, one of which does not exist: still one 366, naming the whole list.
    chat.send(ann, "NAMES #a,#nowhere,#b\r\n");
    assert_eq!(
        chat.take(ann),
        [
            ":irc.test 353 ann = #a :@ann",
            ":irc.test 353 ann = #b :@ann",
            ":irc.test 366 ann #a,#nowhere,#b :End of /NAMES list",
        ]
    );
    // One room: its own 366, as before; a second parameter that is not the list is ignored.
    chat.send(ann, "NAMES #a\r\nNAMES #b irc.test\r\n");
    assert_eq!(
        chat.take(ann),
        [
            ":irc.test 353 ann = #a :@ann",
            ":irc.test 366 ann #a :End of /NAMES list",
            ":irc.test 353 ann = #b :@ann",
            ":irc.test 366 ann #b :End of /NAMES list",
        ]
    );
}

#[test]
fn a_secret_room_is_hidden_from_those_not_in_it() {
    let mut chat = Chat::new();
    let ann = chat.irc("ann");
    let bob = chat.irc("bob");
    let carol = chat.plain("carol");
    chat.send(ann, "JOIN #hid\r\n");
    chat.take(ann);
    chat.send(ann, "MODE #hid +s\r\nMODE #hid\r\n");
    assert_eq!(
        chat.take(ann),
        [
            ":ann!~ann@hidden MODE #hid +s",
            ":irc.test 324 ann #hid +ns",
            ":irc.test 329 ann #hid 0"
        ]
    );
    assert!(chat.take(carol).is_empty(), "carol is not in #hid");
    chat.send(carol, "/rooms\n");
    let heard = chat.take(carol);
    assert!(!heard.iter().any(|line| line.contains("#hid")), "{heard:?}");
    chat.take(bob);
    chat.send(bob, "LIST\r\nNAMES #hid\r\nWHO #hid\r\nWHOIS ann\r\n");
    assert_eq!(
        chat.take(bob),
        [
            ":irc.test 321 bob Channel :Users  Name",
            ":irc.test 322 bob #lobby 3 :",
            ":irc.test 323 bob :End of /LIST",
            ":irc.test 366 bob #hid :End of /NAMES list",
            ":irc.test 315 bob #hid :End of WHO list",
            ":irc.test 311 bob ann ~ann hidden * :Real ann",
            ":irc.test 319 bob ann :#lobby ",
            ":irc.test 312 bob ann irc.test :chat-0.1.0",
            ":irc.test 318 bob ann :End of /WHOIS list",
        ]
    );
    // Its members see it, marked secret (`@`) in NAMES.
    chat.send(ann, "NAMES #hid\r\n");
    assert_eq!(chat.take(ann)[0], ":irc.test 353 ann @ #hid :@ann");
    chat.send(ann, "LIST\r\n");
    assert!(
        chat.take(ann)
            .contains(&":irc.test 322 ann #hid 1 :".into())
    );
    // Once bob is in, so does he; and after -s, everyone.
    chat.send(bob, "JOIN #hid\r\nLIST #hid\r\n");
    assert!(
        chat.take(bob)
            .contains(&":irc.test 322 bob #hid 2 :".into())
    );
    chat.send(ann, "MODE #hid -s\r\n");
    chat.send(carol, "/rooms\n");
    let heard = chat.take(carol);
    assert!(heard.iter().any(|line| line.contains("#hid")), "{heard:?}");
}

#[test]
fn multi_prefix_and_userhost_in_names_show_every_status_and_the_whole_prefix() {
    let mut chat = Chat::new();
    let ann = chat.irc("ann");
    chat.send(ann, "JOIN #m\r\nMODE #m +v ann\r\n");
    let cat = with_caps(&mut chat, "cat", "multi-prefix userhost-in-names");
    chat.send(cat, "JOIN #m\r\n");
    chat.take(cat);
    chat.send(cat, "NAMES #m\r\nWHO #m\r\n");
    assert_eq!(
        chat.take(cat),
        [
            ":irc.test 353 cat = #m :@+ann!~ann@hidden cat!~cat@hidden",
            ":irc.test 366 cat #m :End of /NAMES list",
            ":irc.test 352 cat #m ~ann hidden irc.test ann H@+ :0 Real ann",
            ":irc.test 352 cat #m ~cat hidden irc.test cat H :0 N",
            ":irc.test 315 cat #m :End of WHO list",
        ]
    );
    // Without the capabilities: the highest status, and nicknames.
    chat.take(ann);
    chat.send(ann, "NAMES #m\r\nWHO #m\r\n");
    assert_eq!(
        chat.take(ann),
        [
            ":irc.test 353 ann = #m :@ann cat",
            ":irc.test 366 ann #m :End of /NAMES list",
            ":irc.test 352 ann #m ~ann hidden irc.test ann H@ :0 Real ann",
            ":irc.test 352 ann #m ~cat hidden irc.test cat H :0 N",
            ":irc.test 315 ann #m :End of WHO list",
        ]
    );
}

#[test]
fn away_notify_tells_those_who_asked_and_share_a_room() {
    let mut chat = Chat::new();
    let cat = with_caps(&mut chat, "cat", "away-notify");
    let ann = chat.irc("ann");
    let bob = chat.irc("bob");
    chat.take(cat);
    chat.take(bob);
    chat.send(ann, "AWAY :at lunch\r\nAWAY\r\n");
    assert_eq!(
        chat.take(cat),
        [":ann!~ann@hidden AWAY :at lunch", ":ann!~ann@hidden AWAY",]
    );
    assert!(chat.take(bob).is_empty(), "bob did not ask");
    // Someone away who joins a room cat is in is shown away to cat.
    chat.send(cat, "JOIN #r\r\n");
    chat.send(bob, "PART #lobby\r\nAWAY :gone fishing\r\n");
    chat.take(cat);
    chat.send(bob, "JOIN #r\r\n");
    assert_eq!(
        chat.take(cat),
        [
            ":bob!~bob@hidden JOIN #r",
            ":bob!~bob@hidden AWAY :gone fishing",
        ]
    );
    let heard = chat.take(bob);
    assert!(
        !heard.iter().any(|line| line.contains(" AWAY")),
        "{heard:?}"
    );
}

#[test]
fn setname_changes_the_real_name_and_tells_those_who_asked() {
    let mut chat = Chat::new();
    let sam = with_caps(&mut chat, "sam", "setname");
    let tom = with_caps(&mut chat, "tom", "setname");
    let bob = chat.irc("bob");
    chat.take(sam);
    chat.take(tom);
    chat.take(bob);
    chat.send(sam, "SETNAME :Samuel Q\r\n");
    assert_eq!(chat.take(sam), [":sam!~sam@hidden SETNAME :Samuel Q"]);
    assert_eq!(chat.take(tom), [":sam!~sam@hidden SETNAME :Samuel Q"]);
    assert!(chat.take(bob).is_empty(), "bob did not ask");
    chat.send(bob, "WHOIS sam\r\n");
    assert_eq!(
        chat.take(bob)[0],
        ":irc.test 311 bob sam ~sam hidden * :Samuel Q"
    );
    let long = "x".repeat(crate::state::person::MAX_REALNAME_BYTES + 1);
    chat.send(
        sam,
        &std::format!("SETNAME :\r\nSETNAME :{long}\r\nSETNAME\r\n"),
    );
    let refused = ":irc.test FAIL SETNAME INVALID_REALNAME :Real names are 1 to 64 bytes";
    assert_eq!(
        chat.take(sam),
        [
            refused,
            refused,
            ":irc.test 461 sam SETNAME :Not enough parameters",
        ]
    );
    assert!(chat.take(tom).is_empty());
}

#[test]
fn whowas_remembers_who_left_newest_first() {
    let mut chat = Chat::new();
    let ann = chat.irc("ann");
    for user in ["first", "second"] {
        let bob = chat.connect();
        chat.send(
            bob,
            &std::format!("NICK bob\r\nUSER {user} 0 * :Bob {user}\r\n"),
        );
        chat.send(bob, "QUIT :bye\r\n");
    }
    chat.take(ann);
    chat.send(
        ann,
        "WHOWAS BOB\r\nWHOWAS bob 1\r\nWHOWAS bob 0\r\nWHOWAS nobody\r\n",
    );
    let second = [
        ":irc.test 314 ann bob ~second hidden * :Bob second",
        ":irc.test 312 ann bob irc.test :chat-0.1.0",
    ];
    let first = [
        ":irc.test 314 ann bob ~first hidden * :Bob first",
        ":irc.test 312 ann bob irc.test :chat-0.1.0",
    ];
    let mut expected: Vec<String> = Vec::new();
    let end = |nick: &str| std::format!(":irc.test 369 ann {nick} :End of WHOWAS");
    expected.extend(second.iter().chain(&first).map(|&line| line.into()));
    expected.push(end("BOB"));
    expected.extend(second.iter().map(|&line| line.into()));
    expected.push(end("bob"));
    expected.extend(second.iter().chain(&first).map(|&line| line.into()));
    expected.push(end("bob"));
    expected.push(":irc.test 406 ann nobody :There was no such nickname".into());
    expected.push(end("nobody"));
    assert_eq!(chat.take(ann), expected);
}

#[test]
fn whowas_forgets_the_oldest_when_full() {
    use crate::state::past::MAX_WHOWAS;
    let mut chat = Chat::new();
    let ann = chat.irc("ann");
    for at in 0..=MAX_WHOWAS {
        let gone = chat.irc(&std::format!("gone{at}"));
        chat.send(gone, "QUIT\r\n");
    }
    chat.take(ann);
    chat.send(ann, "WHOWAS gone0\r\nWHOWAS gone1\r\n");
    let heard = chat.take(ann);
    assert_eq!(
        heard[0],
        ":irc.test 406 ann gone0 :There was no such nickname"
    );
    assert_eq!(
        heard[2],
        ":irc.test 314 ann gone1 ~gone1 hidden * :Real gone1"
    );
}

#[test]
fn help_and_info_answer_with_their_numerics() {
    let mut chat = Chat::new();
    let ann = chat.irc("ann");
    chat.send(ann, "HELP privmsg\r\nHELPOP nothing\r\n");
    let heard = chat.take(ann);
    assert_eq!(
        heard,
        [
            ":irc.test 704 ann PRIVMSG :** PRIVMSG **",
            ":irc.test 705 ann PRIVMSG :PRIVMSG target[,target...] :text - says text to a room or a person",
            ":irc.test 706 ann PRIVMSG :End of /HELP",
            ":irc.test 524 ann nothing :No help available on this topic",
        ]
    );
    chat.send(ann, "HELP\r\n");
    let heard = chat.take(ann);
    assert!(
        heard[0].starts_with(":irc.test 704 ann index :"),
        "{heard:?}"
    );
    assert!(
        heard[1..heard.len() - 1]
            .iter()
            .all(|line| line.starts_with(":irc.test 705 ann index :"))
    );
    assert!(
        heard.iter().any(|line| line.contains(" WHOWAS")),
        "{heard:?}"
    );
    assert_eq!(
        heard.last().unwrap(),
        ":irc.test 706 ann index :End of /HELP"
    );
    chat.send(ann, "INFO\r\n");
    let heard = chat.take(ann);
    assert!(heard.len() > 1);
    assert!(
        heard[..heard.len() - 1]
            .iter()
            .all(|line| line.starts_with(":irc.test 371 ann :"))
    );
    assert_eq!(
        heard.last().unwrap(),
        ":irc.test 374 ann :End of /INFO list"
    );
}

#[test]
fn a_line_to_at_room_reaches_its_operators_only() {
    let mut chat = Chat::new();
    let ann = chat.irc("ann");
    let bob = chat.irc("bob");
    let carol = chat.irc("carol");
    let dan = chat.irc("dan");
    chat.send(ann, "JOIN #ops\r\n");
    chat.send(bob, "JOIN #ops\r\n");
    chat.send(carol, "JOIN #ops\r\n");
    chat.send(ann, "MODE #ops +o carol\r\n");
    for conn in [ann, bob, carol, dan] {
        chat.take(conn);
    }
    chat.send(bob, "PRIVMSG @#ops :for the ops\r\n");
    assert!(chat.take(bob).is_empty());
    assert_eq!(
        chat.take(ann),
        [":bob!~bob@hidden PRIVMSG @#ops :for the ops"]
    );
    assert_eq!(
        chat.take(carol),
        [":bob!~bob@hidden PRIVMSG @#ops :for the ops"]
    );
    // Not a member: refused as a line to the room would be.
    chat.send(dan, "PRIVMSG @#ops :let me in\r\n");
    assert_eq!(
        chat.take(dan),
        [":irc.test 404 dan #ops :Cannot send to channel (you are not in it, and it is +n)"]
    );
    assert!(chat.take(ann).is_empty());
}

#[test]
fn lusers_counts_connections_still_registering_apart_and_keeps_the_peak() {
    let mut chat = Chat::new();
    let ann = chat.irc("ann");
    let bob = chat.irc("bob");
    let half = chat.connect();
    chat.send(half, "NICK half\r\n");
    chat.send(bob, "QUIT\r\n");
    chat.take(ann);
    chat.send(ann, "LUSERS\r\n");
    let heard = chat.take(ann);
    assert_eq!(
        heard[0],
        ":irc.test 251 ann :There are 1 users and 0 invisible on 1 servers"
    );
    assert!(
        heard.contains(&":irc.test 253 ann 1 :unknown connection(s)".into()),
        "{heard:?}"
    );
    assert!(
        heard.contains(&":irc.test 265 ann 1 2 :Current local users 1, max 2".into()),
        "{heard:?}"
    );
    assert!(
        heard.contains(&":irc.test 266 ann 1 2 :Current global users 1, max 2".into()),
        "{heard:?}"
    );
}

#[test]
fn monitor_tells_when_a_watched_nickname_is_taken_and_left() {
    let mut chat = Chat::new();
    let ann = chat.irc("ann");
    chat.send(ann, "MONITOR + bob,*!x@y,carol\r\n");
    assert_eq!(
        chat.take(ann),
        [
            ":irc.test 432 ann *!x@y :Erroneous nickname",
            ":irc.test 731 ann :bob,carol",
        ]
    );
    let bob = chat.irc("bob");
    assert_eq!(
        chat.take(ann),
        [
            ":irc.test 730 ann :bob!~bob@hidden",
            ":bob!~bob@hidden JOIN #lobby",
        ]
    );
    chat.send(ann, "MONITOR S\r\nMONITOR L\r\n");
    assert_eq!(
        chat.take(ann),
        [
            ":irc.test 730 ann :bob!~bob@hidden",
            ":irc.test 731 ann :carol",
            ":irc.test 732 ann :bob,carol",
            ":irc.test 733 ann :End of MONITOR list",
        ]
    );
    // A change of case says nothing; a new name is the old one left and the new one taken.
    chat.send(bob, "NICK BOB\r\n");
    assert!(chat.take(ann).iter().all(|line| !line.contains(" 73")));
    chat.send(bob, "NICK carol\r\n");
    let heard: Vec<String> = chat
        .take(ann)
        .into_iter()
        .filter(|line| line.contains(" 73"))
        .collect();
    assert_eq!(
        heard,
        [
            ":irc.test 731 ann :BOB",
            ":irc.test 730 ann :carol!~bob@hidden",
        ]
    );
    chat.send(bob, "QUIT\r\n");
    let heard = chat.take(ann);
    assert!(
        heard.contains(&":irc.test 731 ann :carol".into()),
        "{heard:?}"
    );
    // Unwatched, then cleared: nothing more.
    chat.send(ann, "MONITOR - carol\r\nMONITOR C\r\nMONITOR L\r\n");
    assert_eq!(chat.take(ann), [":irc.test 733 ann :End of MONITOR list"]);
    let carol = chat.irc("carol");
    assert!(chat.take(ann).iter().all(|line| !line.contains(" 73")));
    chat.send(carol, "QUIT\r\n");
}

#[test]
fn monitor_refuses_past_its_bounds() {
    use crate::state::monitor::MAX_MONITOR;
    let mut chat = Chat::new();
    let ann = chat.irc("ann");
    let names: Vec<String> = (0..=MAX_MONITOR).map(|at| std::format!("n{at}")).collect();
    chat.send(ann, &std::format!("MONITOR + {}\r\n", names.join(",")));
    let heard = chat.take(ann);
    assert_eq!(
        heard[0],
        std::format!(":irc.test 734 ann {MAX_MONITOR} n{MAX_MONITOR} :Monitor list is full")
    );
    chat.send(ann, "MONITOR L\r\n");
    let listed = chat.take(ann)[0].clone();
    assert_eq!(listed.matches(',').count(), MAX_MONITOR - 1, "{listed}");
}

#[test]
fn extended_monitor_tells_watchers_outside_the_rooms_of_away_and_setname() {
    let mut chat = Chat::new();
    let eve = with_caps(&mut chat, "eve", "extended-monitor away-notify setname");
    let tim = with_caps(&mut chat, "tim", "away-notify setname");
    let bob = chat.irc("bob");
    // No room shared: all three leave the lobby.
    for conn in [eve, tim, bob] {
        chat.send(conn, "PART #lobby\r\n");
    }
    chat.send(eve, "MONITOR + bob\r\n");
    chat.send(tim, "MONITOR + bob\r\n");
    chat.take(eve);
    chat.take(tim);
    chat.send(bob, "AWAY :afk\r\nAWAY\r\nSETNAME :Bobby\r\n");
    assert_eq!(
        chat.take(eve),
        [
            ":bob!~bob@hidden AWAY :afk",
            ":bob!~bob@hidden AWAY",
            ":bob!~bob@hidden SETNAME :Bobby",
        ]
    );
    assert!(
        chat.take(tim).is_empty(),
        "tim did not ask for extended-monitor"
    );
    // Sharing a room, eve gets each line once, as a member.
    chat.send(eve, "JOIN #x\r\n");
    chat.send(bob, "JOIN #x\r\n");
    chat.take(eve);
    chat.send(bob, "AWAY :again\r\n");
    assert_eq!(chat.take(eve), [":bob!~bob@hidden AWAY :again"]);
}

#[test]
fn whox_answers_with_the_fields_asked_in_its_own_order() {
    let mut chat = Chat::new();
    let ann = chat.irc("ann");
    let bob = chat.irc("bob");
    chat.send(bob, "AWAY :out\r\n");
    chat.take(ann);
    chat.send(
        ann,
        "WHO bob %rnatcuihsfdlo,42\r\nWHO #lobby %n\r\nWHO bob %tn,toolong\r\n",
    );
    assert_eq!(
        chat.take(ann),
        [
            ":irc.test 354 ann 42 * ~bob 255.255.255.255 hidden irc.test bob G 0 0 0 n/a :Real bob",
            ":irc.test 315 ann bob :End of WHO list",
            ":irc.test 354 ann ann",
            ":irc.test 354 ann bob",
            ":irc.test 315 ann #lobby :End of WHO list",
            ":irc.test 354 ann 0 bob",
            ":irc.test 315 ann bob :End of WHO list",
        ]
    );
}

#[test]
fn list_takes_masks_negated_masks_and_sizes() {
    let mut chat = Chat::new();
    let ann = chat.irc("ann");
    let bob = chat.irc("bob");
    chat.send(ann, "JOIN #chan1,#chan2\r\n");
    chat.send(bob, "JOIN #chan2\r\n");
    chat.take(ann);
    let listed = |chat: &mut Chat, only: &str| -> Vec<String> {
        chat.send(ann, &std::format!("LIST {only}\r\n"));
        chat.take(ann)
            .iter()
            .filter(|line| line.contains(" 322 "))
            .filter_map(|line| line.split(' ').nth(3).map(String::from))
            .collect()
    };
    assert_eq!(listed(&mut chat, "*AN1"), ["#chan1"]);
    assert_eq!(listed(&mut chat, "#c*n2,#lobby"), ["#lobby", "#chan2"]);
    assert_eq!(listed(&mut chat, "!#ch*"), ["#lobby"]);
    assert_eq!(listed(&mut chat, "#ch*,!*2"), ["#chan1"]);
    assert_eq!(listed(&mut chat, ">1,<3"), ["#lobby", "#chan2"]);
    assert_eq!(listed(&mut chat, "<2"), ["#chan1"]);
    assert!(listed(&mut chat, "*an3").is_empty());
}
