//! Runs `examples/blocking.rs` on loopback and chats through it with two real clients, so the
//! example is known to keep the core's contract.

#[allow(dead_code)] // its `main` is for `cargo run`
#[path = "../examples/blocking.rs"]
mod blocking;

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use chat_core::{Config, FloodLimit};

/// The longest a test waits for a line it expects.
const PATIENCE: Duration = Duration::from_secs(5);

struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("read timeout");
        let writer = stream.try_clone().expect("clone");
        Self {
            reader: BufReader::new(stream),
            writer,
        }
    }

    fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .expect("send");
    }

    /// The next line, without its `\r\n`; `None` at the end of the stream.
    fn line(&mut self, deadline: Instant) -> Option<String> {
        let mut line = String::new();
        loop {
            match self.reader.read_line(&mut line) {
                Ok(0) => return None,
                Ok(_) => return Some(line.trim_end().to_owned()),
                // A read that timed out may have read part of a line: it stays in `line`.
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    assert!(Instant::now() < deadline, "no whole line in time: {line:?}");
                }
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// Reads lines until one is `want`.
    fn expect(&mut self, want: &str) {
        let deadline = Instant::now() + PATIENCE;
        let mut seen = Vec::new();
        while let Some(line) = self.line(deadline) {
            if line == want {
                return;
            }
            seen.push(line);
        }
        panic!("the connection ended without {want:?}; saw {seen:?}");
    }

    /// Reads what is left until the server closes the connection.
    fn expect_closed(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        while self.line(deadline).is_some() {}
    }
}

/// Runs the example on a loopback port for as long as `chat` takes, then stops it and checks
/// that it stopped cleanly; hands back what `chat` returned.
fn with_server<T>(config: Config, chat: impl FnOnce(SocketAddr) -> T) -> T {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = AtomicBool::new(false);
    thread::scope(|scope| {
        let server = scope.spawn(|| blocking::serve(listener, config, &stop));
        // Stops the server even when `chat` panics, so the scope can end.
        struct Stop<'a>(&'a AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let stopping = Stop(&stop);
        let kept = chat(addr);
        drop(stopping);
        let served = server.join().expect("the server thread panicked");
        served.expect("serve");
        kept
    })
}

fn config() -> Config {
    Config::default()
        .with_colour(false)
        .with_greeting_delay(Duration::ZERO)
}

const WELCOMED: &str = "*** Pick a nickname with /nick NAME; /help lists the commands.";

#[test]
fn two_clients_chat_through_the_example() {
    let mut bob = with_server(config(), |addr| {
        let mut alice = Client::connect(addr);
        alice.expect(WELCOMED);
        let mut bob = Client::connect(addr);
        // Bob's welcome means he is in the lobby, to hear what alice says next.
        bob.expect(WELCOMED);

        alice.send("/nick alice");
        bob.expect("*** anonymous-1 is now known as alice");
        alice.send("hello");
        bob.expect("alice: hello");

        bob.send("/nick bob");
        alice.expect("*** anonymous-2 is now known as bob");
        alice.send("/msg bob psst");
        bob.expect("[private] alice: psst");
        alice.expect("[private] to bob: psst");

        alice.send("/quit");
        alice.expect("*** Goodbye!");
        alice.expect_closed();
        bob.expect("*** alice left (quit)");
        bob
    });
    // Told at shutdown, then closed.
    bob.expect("*** The server is shutting down. Goodbye!");
    bob.expect_closed();
}

#[test]
fn input_held_back_goes_on_after_resume() {
    // Two lines at once, then one every 20 ms: most of what follows is held back and resumed.
    let flood = FloodLimit {
        burst: 2,
        per_second: 50,
    };
    with_server(config().with_flood_limit(Some(flood)), |addr| {
        let mut alice = Client::connect(addr);
        alice.expect(WELCOMED);
        let mut bob = Client::connect(addr);
        bob.expect(WELCOMED);
        alice.send("one\ntwo\nthree\nfour\nfive");
        alice.expect(
            "*** Slow down: you are sending more than 50 lines a second; \
             the rest will follow at that pace.",
        );
        for word in ["one", "two", "three", "four", "five"] {
            bob.expect(&format!("anonymous-1: {word}"));
        }
        // A line naming several rooms is handled one room per step, each after a Resume;
        // as the last line read, with no bytes left to feed with it.
        let mut irc = Client::connect(addr);
        irc.send("NICK ann\r\nUSER ann 0 * :Ann\r\nJOIN #a,#b,#c\r");
        for room in ["#a", "#b", "#c"] {
            irc.expect(&format!(":ann!~ann@hidden JOIN {room}"));
        }
        irc.send("PING x\r");
        irc.expect(":chat.local PONG chat.local x");
    });
}
