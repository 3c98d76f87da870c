//! The Redis layer against a real Redis (`CHAT_REDIS_URL`), and its pure parts without one.
//! Tests run in parallel against one Redis: each names its rooms and nicks after itself, the
//! process and a random part, and deletes what it made.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::time::{Duration, Instant as StdInstant};

use chat_core::relay::Kind;
use chat_core::{Instant, LineKind, MAX_LINE_BYTES};
use chat_tests::redis_url;
use futures_lite::StreamExt;

use super::{
    CALL_TIMEOUT, CONNECT_TIMEOUT, Claim, Cluster, ClusterError, DEFAULT_LEASE, Entry, Gap, Heard,
    MAX_FETCH, MAX_PAYLOAD_BYTES, Outbound, Position, RemoteLine, Renewal, RoomKeys, STREAM_KEEP,
    Sent, Subscriber, new_node_id, read_heard, unique_number, within,
};

/// Runs `test` to its end, failing if it takes longer than `limit`.
fn run<T>(limit: Duration, test: impl Future<Output = T>) -> T {
    smol::block_on(futures_lite::future::or(
        async { Some(test.await) },
        async {
            smol::Timer::after(limit).await;
            None
        },
    ))
    .unwrap_or_else(|| panic!("the test took longer than {limit:?}"))
}

/// A room name of this test and process: `#TAG-PID-RANDOM`, with capitals, since the keys
/// must not care.
fn unique_room(tag: &str) -> String {
    format!(
        "#{tag}-{}-{:06x}",
        std::process::id(),
        unique_number() & 0xff_ffff
    )
}

/// A nick of this test and process, within the 16 characters a nick may have.
fn unique_nick(tag: char) -> String {
    format!(
        "{tag}{}x{:04x}",
        std::process::id() % 10_000_000,
        unique_number() & 0xffff
    )
}

async fn connect(url: &str, name: &str, lease: Duration) -> Cluster {
    Cluster::connect(url, name, lease)
        .await
        .unwrap_or_else(|error| panic!("connecting node {name}: {error}"))
}

async fn subscribed(node: &Cluster, room: &str) -> Subscriber {
    let mut subscriber = node.subscriber().await.expect("a subscriber");
    subscriber.subscribe(room).await.expect("subscribing");
    subscriber
}

/// Deletes a room's keys, so that a test leaves nothing behind in a shared Redis.
async fn forget_room(node: &Cluster, room: &str) {
    let keys = RoomKeys::new(room).expect("a room name");
    let mut commands = node.commands.clone();
    let _: i64 = redis::cmd("DEL")
        .arg(&keys.meta)
        .arg(&keys.stream)
        .query_async(&mut commands)
        .await
        .expect("deleting the room's keys");
}

fn line(node: &Cluster, nick: &str, text: &str) -> RemoteLine {
    RemoteLine {
        node: node.node_id().to_owned(),
        nick: nick.to_owned(),
        kind: Kind::Said(LineKind::Line),
        text: text.to_owned(),
        at: Instant::from_millis(1_700_000_000_000),
        person: None,
        room: None,
    }
}

/// `nick` with the letters picked by the bits of `variant` in capitals.
fn in_case(nick: &str, variant: usize) -> String {
    nick.chars()
        .enumerate()
        .map(|(at, c)| {
            if variant >> (at % usize::BITS as usize) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

async fn next_heard(subscriber: &mut Subscriber) -> Result<Heard, ClusterError> {
    subscriber
        .next()
        .await
        .expect("the subscriber's stream ended")
}

#[test]
fn nick_race_has_exactly_one_winner() {
    let test = "nick_race_has_exactly_one_winner";
    let Some(url) = redis_url(test) else { return };
    run(Duration::from_secs(20), async {
        let mut nodes = Vec::new();
        for name in ["race-a", "race-b", "race-c"] {
            nodes.push(connect(&url, name, DEFAULT_LEASE).await);
        }
        let nick = unique_nick('r');
        let claims: Vec<_> = (0..50)
            .map(|n| {
                let node = nodes[n % nodes.len()].clone();
                let asked = in_case(&nick, n);
                smol::spawn(async move {
                    let answer = node.claim_nick(&asked, None).await;
                    (node.node_id().to_owned(), asked, answer)
                })
            })
            .collect();
        let mut answers = Vec::new();
        for claim in claims {
            answers.push(claim.await);
        }
        let winners: Vec<_> = answers
            .iter()
            .filter(|(_, _, answer)| matches!(answer, Ok(Claim::Granted)))
            .collect();
        assert_eq!(winners.len(), 1, "one winner: {answers:#?}");
        let winner = winners[0].0.clone();
        for (node, asked, answer) in &answers {
            match answer {
                Ok(Claim::Granted) => {}
                Ok(Claim::Taken { owner }) => assert_eq!(
                    *owner, winner,
                    "{node} asked for {asked}: taken, but by the wrong node"
                ),
                other => panic!("{node} asked for {asked}: {other:?}"),
            }
        }
        let winning = nodes
            .iter()
            .find(|node| node.node_id() == winner)
            .expect("the winner is one of ours");
        assert_eq!(
            winning.release_nick(&nick.to_uppercase()).await.ok(),
            Some(true)
        );
    });
}

#[test]
fn lapsed_lease_frees_nicks_and_a_rename_frees_the_old() {
    let test = "lapsed_lease_frees_nicks_and_a_rename_frees_the_old";
    let Some(url) = redis_url(test) else { return };
    run(Duration::from_secs(30), async {
        let lease = Duration::from_secs(1);
        let a = connect(&url, "lapse-a", lease).await;
        let b = connect(&url, "lapse-b", lease).await;
        assert_ne!(a.node_id(), b.node_id());
        let [n1, n2, n3, n4] = ['p', 'q', 's', 't'].map(unique_nick);
        let taken_by = |node: &Cluster| {
            Ok::<_, String>(Claim::Taken {
                owner: node.node_id().to_owned(),
            })
        };
        let claim = |node: &Cluster, nick: &str, previous: Option<&str>| {
            let (node, nick, previous) =
                (node.clone(), nick.to_owned(), previous.map(str::to_owned));
            async move {
                node.claim_nick(&nick, previous.as_deref())
                    .await
                    .map_err(|error| error.to_string())
            }
        };

        assert_eq!(claim(&a, &n1, None).await, Ok(Claim::Granted));
        assert_eq!(claim(&a, &n4, None).await, Ok(Claim::Granted));
        assert_eq!(claim(&b, &n1.to_uppercase(), None).await, taken_by(&a));
        // A live owner keeps its nick past its lease, renewing.
        assert_eq!(a.renew_interval(), lease / 3);
        for _ in 0..4 {
            smol::Timer::after(a.renew_interval()).await;
            assert_eq!(a.renew_lease().await.ok(), Some(Renewal::Renewed));
            assert_eq!(b.renew_lease().await.ok(), Some(Renewal::Renewed));
        }
        assert_eq!(claim(&b, &n1, None).await, taken_by(&a));

        // `a` stops renewing; `b` goes on.
        let stopped = StdInstant::now();
        while stopped.elapsed() < lease + lease / 2 {
            smol::Timer::after(lease / 4).await;
            assert_eq!(b.renew_lease().await.ok(), Some(Renewal::Renewed));
        }
        assert_eq!(claim(&b, &n1, None).await, Ok(Claim::Granted));
        assert_eq!(claim(&a, &n2, None).await, Ok(Claim::LeaseLost));
        assert_eq!(claim(&a, &n1, None).await, Ok(Claim::LeaseLost));
        assert_eq!(a.renew_lease().await.ok(), Some(Renewal::Rejoined));
        assert_eq!(claim(&a, &n1, None).await, taken_by(&b));
        assert_eq!(claim(&a, &n2, None).await, Ok(Claim::Granted));
        // Rejoining dropped what `a` held under the lapsed lease, though nobody took it.
        assert_eq!(claim(&b, &n4, None).await, Ok(Claim::Granted));

        // A rename releases the old nick in the same step.
        assert_eq!(claim(&b, &n3, Some(&n1)).await, Ok(Claim::Granted));
        assert_eq!(claim(&a, &n1, None).await, Ok(Claim::Granted));
        // A change of case of one's own nick is granted; another person here gets "taken".
        assert_eq!(
            claim(&b, &n3.to_uppercase(), Some(&n3)).await,
            Ok(Claim::Granted)
        );
        assert_eq!(claim(&b, &n3, None).await, taken_by(&b));
        // Releasing.
        assert_eq!(b.release_nick(&n3).await.ok(), Some(true));
        assert_eq!(b.release_nick(&n3).await.ok(), Some(false));
        assert_eq!(b.release_nick(&n1).await.ok(), Some(false), "a's, not b's");
        assert_eq!(claim(&a, &n3, None).await, Ok(Claim::Granted));

        for nick in [&n1, &n2, &n3] {
            assert_eq!(a.release_nick(nick).await.ok(), Some(true), "{nick}");
        }
        assert_eq!(b.release_nick(&n4).await.ok(), Some(true));
    });
}

#[test]
fn concurrent_publishers_get_one_gapless_order() {
    let test = "concurrent_publishers_get_one_gapless_order";
    let Some(url) = redis_url(test) else { return };
    run(Duration::from_secs(30), async {
        const PER_NODE: usize = 100;
        let room = unique_room("Order");
        let reader = connect(&url, "order-reader", DEFAULT_LEASE).await;
        let mut subscriber = subscribed(&reader, &room).await;
        let mut publishers = Vec::new();
        for name in ["order-a", "order-b", "order-c"] {
            let node = connect(&url, name, DEFAULT_LEASE).await;
            let room = room.clone();
            publishers.push(smol::spawn(async move {
                let mut published = Vec::new();
                for n in 0..PER_NODE {
                    let said = line(&node, "speaker", &format!("{} says {n}", node.node_id()));
                    let position = node.publish(&room, &said).await.expect("publishing");
                    published.push((position, said));
                }
                published
            }));
        }
        let mut by_seq = BTreeMap::new();
        let mut epochs = HashSet::new();
        for publisher in publishers {
            let published = publisher.await;
            // Each node published one after another: its numbers rise.
            assert!(published.windows(2).all(|w| w[0].0.seq < w[1].0.seq));
            for (Position { seq, epoch }, said) in published {
                epochs.insert(epoch);
                assert!(by_seq.insert(seq, said).is_none(), "seq {seq} given twice");
            }
        }
        let total = 3 * PER_NODE as u64;
        assert_eq!(
            by_seq.keys().copied().collect::<Vec<_>>(),
            (1..=total).collect::<Vec<_>>()
        );
        assert_eq!(epochs.len(), 1, "one epoch: {epochs:?}");
        let epoch = epochs.into_iter().next();

        // Read back from the stream, in pages.
        let mut after = 0;
        let mut fetched = Vec::new();
        loop {
            let page = reader.fetch(&room, after, 128).await.expect("fetching");
            assert_eq!((page.top, &page.epoch, &page.gap), (total, &epoch, &None));
            assert!(page.entries.len() <= 128);
            let Some(last) = page.entries.last() else {
                break;
            };
            after = last.seq;
            fetched.extend(page.entries);
        }
        let fetched: Vec<_> = fetched
            .into_iter()
            .map(|Entry { seq, line }| (seq, line.expect("a good line")))
            .collect();
        assert_eq!(fetched, by_seq.clone().into_iter().collect::<Vec<_>>());

        // The fourth node heard every line, in order.
        let mut heard = Vec::new();
        for _ in 0..total {
            let Heard {
                room: heard_room,
                position,
                line,
            } = next_heard(&mut subscriber).await.expect("a good line");
            assert_eq!(heard_room, crate::name_key(&room));
            assert_eq!(Some(&position.epoch), epoch.as_ref());
            heard.push((position.seq, line));
        }
        assert_eq!(heard, by_seq.into_iter().collect::<Vec<_>>());
        forget_room(&reader, &room).await;
    });
}

#[test]
fn a_numbering_started_again_goes_on_after_the_last_number_known() {
    let test = "a_numbering_started_again_goes_on_after_the_last_number_known";
    let Some(url) = redis_url(test) else { return };
    run(Duration::from_secs(30), async {
        let node = connect(&url, "floor", DEFAULT_LEASE).await;
        let room = unique_room("floor");
        let send = |text: &str, floor: u64| {
            let batch = [Outbound::Line {
                room: room.clone(),
                line: line(&node, "flo", text),
                floor,
            }];
            let node = &node;
            async move {
                match node.send_batch(&batch).await.expect("sending").as_slice() {
                    [Sent::Placed(position)] => position.clone(),
                    other => panic!("{other:?}"),
                }
            }
        };
        // A room new to Redis, published to by a node whose store keeps it up to 500 (Redis
        // lost it): its numbers go on after 500, and no gap is seen below them.
        let first = send("one", 500).await;
        assert_eq!(first.seq, 501);
        // Once numbered, a room ignores the floor a node gives.
        let second = send("two", 10).await;
        assert_eq!((second.seq, &second.epoch), (502, &first.epoch));
        let fetched = node.fetch(&room, 0, 100).await.expect("fetching");
        let seqs: Vec<u64> = fetched.entries.iter().map(|entry| entry.seq).collect();
        assert_eq!(
            (seqs, fetched.gap, fetched.top),
            (vec![501, 502], None, 502)
        );

        // Lost again: a new epoch, after the floor given.
        forget_room(&node, &room).await;
        let third = send("three", 502).await;
        assert_eq!(third.seq, 503);
        assert_ne!(third.epoch, first.epoch);
        let fetched = node.fetch(&room, 0, 100).await.expect("fetching");
        assert_eq!((fetched.entries.len(), fetched.gap), (1, None));
        assert_eq!(fetched.epoch.as_deref(), Some(third.epoch.as_str()));
        // Lines of the epoch that were trimmed are still a gap, from the base on.
        let keys = RoomKeys::new(&room).expect("a room name");
        let mut commands = node.commands.clone();
        let _: u64 = redis::cmd("XTRIM")
            .arg(&keys.stream)
            .arg("MAXLEN")
            .arg(0)
            .query_async(&mut commands)
            .await
            .expect("XTRIM");
        let fetched = node.fetch(&room, 0, 100).await.expect("fetching");
        assert_eq!(fetched.gap, Some(Gap::Trimmed(503..=503)));
        forget_room(&node, &room).await;
    });
}

#[test]
fn fetch_reports_trimmed_lines_as_a_gap() {
    let test = "fetch_reports_trimmed_lines_as_a_gap";
    let Some(url) = redis_url(test) else { return };
    run(Duration::from_secs(60), async {
        let node = connect(&url, "trim", DEFAULT_LEASE).await;
        let room = unique_room("trim");
        let keys = RoomKeys::new(&room).expect("a room name");
        let mut commands = node.commands.clone();

        let empty = node.fetch(&room, 0, 10).await.expect("fetching");
        assert_eq!(
            (empty.top, empty.epoch, empty.entries.len(), empty.gap),
            (0, None, 0, None)
        );

        for n in 1..=20 {
            node.publish(&room, &line(&node, "trimmer", &format!("line {n}")))
                .await
                .expect("publishing");
        }
        let trim = |most: u64| {
            redis::cmd("XTRIM")
                .arg(&keys.stream)
                .arg("MAXLEN")
                .arg(most)
                .to_owned()
        };
        let _: u64 = trim(5).query_async(&mut commands).await.expect("XTRIM");
        let seqs = |entries: &[Entry]| entries.iter().map(|entry| entry.seq).collect::<Vec<_>>();

        let fetched = node.fetch(&room, 0, 100).await.expect("fetching");
        assert_eq!(fetched.top, 20);
        assert_eq!(seqs(&fetched.entries), (16..=20).collect::<Vec<_>>());
        assert_eq!(fetched.gap, Some(Gap::Trimmed(1..=15)));
        let text = |entry: &Entry| entry.line.as_ref().expect("a good line").text.clone();
        assert_eq!(text(&fetched.entries[0]), "line 16");

        let fetched = node.fetch(&room, 17, 100).await.expect("fetching");
        assert_eq!(
            (seqs(&fetched.entries), fetched.gap),
            (vec![18, 19, 20], None)
        );
        let fetched = node.fetch(&room, 20, 100).await.expect("fetching");
        assert_eq!((fetched.entries.len(), fetched.gap), (0, None));
        // Asked past the top: Redis lost lines the caller saw.
        let fetched = node.fetch(&room, 25, 100).await.expect("fetching");
        assert_eq!((fetched.top, fetched.gap), (20, Some(Gap::Behind)));

        let _: u64 = trim(0).query_async(&mut commands).await.expect("XTRIM");
        let fetched = node.fetch(&room, 10, 100).await.expect("fetching");
        assert_eq!(
            (fetched.entries.len(), fetched.gap),
            (0, Some(Gap::Trimmed(11..=20)))
        );

        // Past the stream's own bound, the oldest lines go.
        let more = STREAM_KEEP + 150;
        for n in 0..more {
            node.publish(&room, &line(&node, "trimmer", &format!("more {n}")))
                .await
                .expect("publishing");
        }
        let top = 20 + more;
        let fetched = node.fetch(&room, 0, usize::MAX).await.expect("fetching");
        assert_eq!(fetched.top, top);
        assert_eq!(fetched.entries.len(), MAX_FETCH, "at most MAX_FETCH a call");
        let first = fetched.entries[0].seq;
        assert_eq!(fetched.gap, Some(Gap::Trimmed(1..=first - 1)));
        let kept = top - first + 1;
        assert!(
            (STREAM_KEEP..more).contains(&kept),
            "kept {kept} lines, bound {STREAM_KEEP}"
        );
        forget_room(&node, &room).await;
    });
}

#[test]
fn malformed_messages_are_errors_and_the_next_line_arrives() {
    let test = "malformed_messages_are_errors_and_the_next_line_arrives";
    let Some(url) = redis_url(test) else { return };
    run(Duration::from_secs(20), async {
        let node = connect(&url, "hostile", DEFAULT_LEASE).await;
        let room = unique_room("hostile");
        let keys = RoomKeys::new(&room).expect("a room name");
        let mut subscriber = subscribed(&node, &room).await;
        let mut commands = node.commands.clone();

        let good = line(&node, "fine", "a good line");
        let payload = good.encode().expect("encoding");
        let mut future = good.clone();
        future.text = "from a newer node".to_owned();
        let future = future
            .encode()
            .expect("encoding")
            .replace("\"v\":1", "\"v\":2");
        let bad_nick = payload.replace("\"fine\"", "\"9lives\"");
        let hostile: Vec<Vec<u8>> = vec![
            b"garbage".to_vec(),
            b"1:abc:{not json".to_vec(),
            format!("2:abc:{future}").into_bytes(),
            format!("0:abc:{payload}").into_bytes(),
            format!("3::{payload}").into_bytes(),
            format!("4:abc:{bad_nick}").into_bytes(),
            format!("5:abc:{}", " ".repeat(MAX_PAYLOAD_BYTES + 1)).into_bytes(),
            [b"6:abc:".as_slice(), &[0xff, 0xfe, b'{']].concat(),
            b"7:abc:[1,2,3]".to_vec(),
        ];
        for message in &hostile {
            let _: u64 = redis::cmd("PUBLISH")
                .arg(node.channel(&keys.live))
                .arg(message.as_slice())
                .query_async(&mut commands)
                .await
                .expect("PUBLISH");
        }
        let published = node.publish(&room, &good).await.expect("publishing");
        for message in &hostile {
            match next_heard(&mut subscriber).await {
                Err(error @ ClusterError::Malformed { .. }) => {
                    let shown = error.to_string();
                    assert!(shown.contains(&node.channel(&keys.live)), "{shown}");
                }
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(message)),
            }
        }
        let heard = next_heard(&mut subscriber).await.expect("the good line");
        assert_eq!((heard.position, heard.line), (published, good.clone()));

        // A foreign entry in the stream: an error for that number, the rest as usual.
        let _: u64 = redis::cmd("HINCRBY")
            .arg(&keys.meta)
            .arg("seq")
            .arg(1)
            .query_async(&mut commands)
            .await
            .expect("HINCRBY");
        let _: String = redis::cmd("XADD")
            .arg(&keys.stream)
            .arg("2-0")
            .arg("x")
            .arg("y")
            .query_async(&mut commands)
            .await
            .expect("XADD");
        let third = node.publish(&room, &good).await.expect("publishing");
        assert_eq!(third.seq, 3);
        let heard = next_heard(&mut subscriber).await.expect("the good line");
        assert_eq!(heard.position, third);
        let fetched = node.fetch(&room, 0, 10).await.expect("fetching");
        let lines: Vec<_> = fetched
            .entries
            .iter()
            .map(|entry| (entry.seq, entry.line.as_ref().ok()))
            .collect();
        assert_eq!(lines, [(1, Some(&good)), (2, None), (3, Some(&good))]);
        let error = fetched.entries[1].line.as_ref().expect_err("malformed");
        assert!(error.to_string().contains("stream entry 2"), "{error}");

        // Unsubscribed, the room's lines no longer come; another room's do.
        let other = unique_room("elsewhere");
        subscriber.unsubscribe(&room).await.expect("unsubscribing");
        subscriber.subscribe(&other).await.expect("subscribing");
        node.publish(&room, &good).await.expect("publishing");
        node.publish(&other, &good).await.expect("publishing");
        let heard = next_heard(&mut subscriber).await.expect("the good line");
        assert_eq!(heard.room, crate::name_key(&other));
        forget_room(&node, &room).await;
        forget_room(&node, &other).await;
    });
}

#[test]
fn connecting_where_nothing_listens_fails_in_time() {
    // No Redis needed: the point is that there is none.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let started = StdInstant::now();
    let error = run(CONNECT_TIMEOUT * 2, async {
        Cluster::connect(
            &format!("redis://:secret@127.0.0.1:{port}/"),
            "nowhere",
            DEFAULT_LEASE,
        )
        .await
        .expect_err("nothing listens there")
    });
    assert!(started.elapsed() <= CONNECT_TIMEOUT + Duration::from_millis(500));
    let shown = error.to_string();
    assert!(
        matches!(error, ClusterError::Connect { .. })
            && shown.starts_with(&format!("cannot connect to Redis at 127.0.0.1:{port}: "))
            && !shown.contains("secret"),
        "{shown}"
    );
}

#[test]
fn connecting_to_a_silent_server_fails_in_time() {
    // Accepts connections (the kernel does, into the backlog) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("a listener");
    let port = silent.local_addr().expect("its address").port();
    let started = StdInstant::now();
    let error = run(CONNECT_TIMEOUT * 2, async {
        Cluster::connect(&format!("redis://127.0.0.1:{port}/"), "mute", DEFAULT_LEASE)
            .await
            .expect_err("nothing answers there")
    });
    let took = started.elapsed();
    assert!(
        took <= CONNECT_TIMEOUT + Duration::from_millis(500),
        "{took:?}"
    );
    // The crate gives up first (1 s per attempt, three attempts): "timed out".
    let shown = error.to_string();
    assert!(
        matches!(error, ClusterError::Connect { .. })
            && shown.starts_with(&format!("cannot connect to Redis at 127.0.0.1:{port}: ")),
        "{shown}"
    );
}

#[test]
fn a_call_that_never_answers_times_out() {
    let started = StdInstant::now();
    let error = run(Duration::from_secs(5), async {
        within(
            Duration::from_millis(100),
            "testing",
            std::future::pending::<redis::RedisResult<()>>(),
        )
        .await
        .expect_err("never answers")
    });
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(
        error.to_string(),
        "Redis did not answer within 0.1 s (testing)"
    );
    assert!(
        CALL_TIMEOUT < DEFAULT_LEASE / 3,
        "a renewal fits between two"
    );
}

#[test]
fn bad_settings_are_refused_with_a_reason() {
    let refused = |url: &str, name: &str, lease: Duration| {
        run(Duration::from_secs(5), Cluster::connect(url, name, lease))
            .expect_err("refused")
            .to_string()
    };
    let url = "redis://127.0.0.1:1/";
    assert_eq!(
        refused(url, "a:b", DEFAULT_LEASE),
        "invalid node name: \"a:b\" contains ':'; use letters, digits, -, _ and ."
    );
    assert_eq!(
        refused(url, "", DEFAULT_LEASE),
        "invalid node name: it is empty"
    );
    assert_eq!(
        refused(url, &"n".repeat(33), DEFAULT_LEASE),
        "invalid node name: more than 32 bytes"
    );
    assert_eq!(
        refused(url, "a", Duration::from_millis(10)),
        "a node's lease must be from 1 to 300 s, not 0.010 s"
    );
    assert!(refused("http://example/", "a", DEFAULT_LEASE).starts_with("not a Redis URL: "));
}

#[test]
fn node_ids_are_new_each_time() {
    let (first, second) = (new_node_id("a"), new_node_id("a"));
    assert_ne!(first, second);
    assert!(first.starts_with("a-") && first.len() == 2 + 16, "{first}");
}

#[test]
fn room_keys_share_the_lowercased_name_as_hash_tag() {
    let keys = RoomKeys::new("#Rust-Lang").expect("a room name");
    assert_eq!(keys.meta, "chat:room:{#rust-lang}:meta");
    assert_eq!(keys.stream, "chat:room:{#rust-lang}:stream");
    // Channels are not keys: the cluster puts its prefix before it (see `Cluster::channel`).
    assert_eq!(keys.live, "room:{#rust-lang}:live");
    assert!(RoomKeys::new("#a}b").is_err());
    assert!(RoomKeys::new("lobby").is_err());
}

#[test]
fn payload_round_trip_and_bounds() {
    let said = RemoteLine {
        node: "a-0123456789abcdef".to_owned(),
        nick: "Alice".to_owned(),
        kind: Kind::Said(LineKind::Action),
        text: "waves \u{3} \"hi\" 你好".to_owned(),
        at: Instant::from_millis(1_700_000_000_123),
        person: None,
        room: Some("#Ærøskøbing".to_owned()),
    };
    let payload = said.encode().expect("encoding");
    assert!(payload.contains("\"v\":1") && payload.contains("\"kind\":\"action\""));
    assert_eq!(RemoteLine::decode(payload.as_bytes()), Ok(said.clone()));
    let topic = RemoteLine {
        kind: Kind::Topic,
        text: "news".to_owned(),
        ..said.clone()
    };
    let topic_payload = topic.encode().expect("encoding");
    assert!(
        topic_payload.contains("\"kind\":\"topic\""),
        "{topic_payload}"
    );
    assert_eq!(
        RemoteLine::decode(topic_payload.as_bytes()),
        Ok(topic.clone())
    );
    let long_topic = RemoteLine {
        text: "x".repeat(chat_core::MAX_TOPIC_BYTES + 1),
        ..topic
    };
    assert!(
        long_topic.encode().is_err(),
        "a topic is bounded as the core bounds it"
    );

    // The longest text, every byte escaped, fits the bound.
    let widest = RemoteLine {
        node: format!("{}-0123456789abcdef", "n".repeat(32)),
        text: "\u{1}".repeat(MAX_LINE_BYTES),
        room: Some(format!(
            "#{}",
            "中".repeat((chat_core::MAX_ROOM_NAME_BYTES - 1) / 3)
        )),
        ..said.clone()
    };
    assert!(widest.encode().expect("encoding").len() <= MAX_PAYLOAD_BYTES);

    let refused = |line: RemoteLine| line.encode().expect_err("refused").to_string();
    assert_eq!(
        refused(RemoteLine {
            text: "x".repeat(MAX_LINE_BYTES + 1),
            ..said.clone()
        }),
        "cannot publish the line: the text has 513 bytes, more than 512"
    );
    assert!(
        refused(RemoteLine {
            text: "two\nlines".to_owned(),
            ..said.clone()
        })
        .contains("line break")
    );
    assert!(
        refused(RemoteLine {
            nick: "anonymous-03".to_owned(),
            ..said.clone()
        })
        .contains("nick \"anonymous-03\"")
    );
    // Someone without a nickname may talk too, and who said it comes back to their node.
    let anonymous = RemoteLine {
        nick: "anonymous-3".to_owned(),
        person: Some(7 << 32 | 3),
        ..said.clone()
    };
    let encoded = anonymous.encode().expect("encoding");
    assert_eq!(RemoteLine::decode(encoded.as_bytes()), Ok(anonymous));

    for (payload, reason) in [
        ("{", "not JSON"),
        ("[]", "not a JSON object"),
        (r#"{"node":"a"}"#, "no payload version"),
        (r#"{"v":3}"#, "payload version 3, this node reads 1"),
        (
            r#"{"v":1,"node":"a","nick":"b","kind":"shout","text":"","at":1}"#,
            "unknown kind \"shout\"",
        ),
        (
            r#"{"v":1,"node":"a","nick":"b","kind":"line","text":""}"#,
            "no \"at\" time",
        ),
        (
            r#"{"v":1,"node":"a{b}","nick":"b","kind":"line","text":"","at":1}"#,
            "node \"a{b}\"",
        ),
    ] {
        let error = RemoteLine::decode(payload.as_bytes()).expect_err(payload);
        assert!(error.contains(reason), "{payload}: {error}");
    }
    // Fields a newer version-1 writer adds are ignored.
    let extended = payload.replacen('{', r#"{"colour":"red","#, 1);
    assert_eq!(RemoteLine::decode(extended.as_bytes()), Ok(said));
}

#[test]
fn channel_messages_are_read_or_refused() {
    let said = RemoteLine {
        node: "b-0123456789abcdef".to_owned(),
        nick: "bob".to_owned(),
        kind: Kind::Said(LineKind::Notice),
        text: "colons: fine: here".to_owned(),
        at: Instant::from_millis(5),
        person: None,
        room: Some("#Lobby".to_owned()),
    };
    let message = format!("12:e1:{}", said.encode().expect("encoding"));
    let heard = read_heard("chat:", "chat:room:{#lobby}:live", message.as_bytes()).expect("read");
    assert_eq!(heard.room, "#lobby");
    assert_eq!(
        (heard.position.seq, heard.position.epoch.as_str()),
        (12, "e1")
    );
    assert_eq!(heard.line, said);
    for channel in [
        "chat:room:{#lobby}:other",
        "elsewhere",
        "chat:room:{lobby}:live",
        // Not a key: a room's channel is named by its name's key, in lower case.
        "chat:room:{#Lobby}:live",
    ] {
        let error = read_heard("chat:", channel, message.as_bytes()).expect_err(channel);
        assert_eq!(
            error.to_string(),
            format!(
                "ignored a malformed message from Redis (channel {channel:?}): not a room's channel"
            )
        );
    }
}
