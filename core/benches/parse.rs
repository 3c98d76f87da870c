//! Input throughput of the core, in lines per second (criterion's `elem/s`).
//!
//! - `input/command_parse`: `Command::parse` alone, over a realistic mix of lines.
//! - `input/handle_input`: the whole input path for one connection: framing, the UTF-8 and
//!   control-character checks, parsing, the command itself and rendering its output, then
//!   draining `poll_output` as a runner does. The connection is alone in its room, so no other
//!   recipient is resolved: this measures the cost of a line, not of its fan-out (that is the
//!   `broadcast` bench).
//!
//! The project's target is at least 5 million plain-text lines parsed per second on one core.

mod support;

use std::fmt::Write as _;
use std::hint::black_box;

use chat_core::testing::Driver;
use chat_core::{Command, Output};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use support::{NOW, config, connect, drain};

/// Lines in the corpus: enough to mix kinds and lengths well, few enough to stay in L1/L2 so
/// the bench measures the parser, not memory.
const LINES: usize = 1000;

/// Bounds of a chat message's length in bytes.
const SAY_BYTES: std::ops::RangeInclusive<usize> = 20..=120;

/// Words for messages. A few are not ASCII (two- to four-byte UTF-8), as real chat is not.
const WORDS: &[&str] = &[
    "the", "a", "to", "and", "is", "it", "you", "that", "of", "in", "I", "for", "on", "we", "this",
    "with", "have", "just", "not", "be", "what", "so", "but", "at", "can", "was", "lol", "ok",
    "yeah", "thanks", "hello", "build", "server", "works", "broken", "again", "anyone", "know",
    "why", "tomorrow", "meeting", "deploy", "coffee", "later", "really", "think", "should",
    "maybe", "release", "tests", "green", "fixed", "merged", "review", "café", "naïve", "über",
    "😀", "👍", "→", "?", "!", ":)", "...",
];

/// Nicknames for `/nick` and `/msg`: all valid (see `Nickname::new`).
const NICKS: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
];

/// Rooms for `/join`: a handful, far below `MAX_ROOMS`, as a real user joins a few.
const ROOMS: &[&str] = &["#lobby", "#rust", "#random", "#help", "#ops"];

/// A small deterministic generator (xorshift64*), so every run parses the same corpus and
/// results compare across runs without a `rand` dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform enough in `0..n` for picking words.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    /// Words joined by spaces, at least `min` bytes and close to a length drawn from
    /// `min..=max` (the last word may go past it, so draw below `max` by the longest word).
    fn text(&mut self, min: usize, max: usize) -> String {
        let longest = WORDS.iter().map(|word| word.len()).max().unwrap_or(0);
        let target = min + self.below(max - longest - min + 1);
        let mut text = String::new();
        while text.len() < target {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(self.pick(WORDS));
        }
        text
    }
}

/// The corpus: mostly chat messages of 20–120 bytes, with some commands, in about the
/// proportions of a lively room (84% messages, 6% `/msg`, 5% `/me`, 3% `/nick`, 2% `/join`).
fn corpus() -> Vec<String> {
    let mut rng = Rng(0x5eed_c0ff_ee00_1234);
    let lines: Vec<String> = (0..LINES)
        .map(|n| {
            // The first line is a message: a connection's first line also settles its
            // dialect, and this one is plainly text.
            let roll = if n == 0 { 0 } else { rng.below(100) };
            let mut line = String::new();
            match roll {
                0..84 => line = rng.text(*SAY_BYTES.start(), *SAY_BYTES.end()),
                84..90 => {
                    let (to, text) = (rng.pick(NICKS), rng.text(10, 80));
                    let _ = write!(line, "/msg {to} {text}");
                }
                90..95 => {
                    let text = rng.text(10, 60);
                    let _ = write!(line, "/me {text}");
                }
                95..98 => {
                    let _ = write!(line, "/nick {}", rng.pick(NICKS));
                }
                _ => {
                    let _ = write!(line, "/join {}", rng.pick(ROOMS));
                }
            }
            line
        })
        .collect();
    // The mix is what the numbers mean: check it rather than trust the generator.
    let says = lines.iter().filter(|line| !line.starts_with('/')).count();
    assert!((800..=880).contains(&says), "{says} messages in {LINES}");
    for line in lines.iter().filter(|line| !line.starts_with('/')) {
        assert!(SAY_BYTES.contains(&line.len()), "{line:?}");
        assert!(
            matches!(Command::parse(line), Ok(Command::Say(_))),
            "{line:?}"
        );
    }
    let bytes: usize = lines.iter().map(String::len).sum();
    eprintln!(
        "corpus: {LINES} lines, {says} messages, {} bytes a line on average",
        bytes / LINES
    );
    lines
}

/// `Command::parse` over the corpus, one line at a time.
fn command_parse(c: &mut Criterion, lines: &[String]) {
    let mut group = c.benchmark_group("input");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("command_parse", |b| {
        b.iter(|| {
            for line in lines {
                // black_box on the way in keeps the compiler from specialising the parser
                // for known lines; on the way out, from discarding the result.
                let _ = black_box(Command::parse(black_box(line)));
            }
        });
    });
    group.finish();
}

/// `Server::handle_input` over the same lines as one buffer (as a runner reads a chunk),
/// one line per call as the API requires, draining `poll_output` after each.
fn handle_input(c: &mut Criterion, lines: &[String]) {
    let buffer: Vec<u8> = lines
        .iter()
        .flat_map(|line| line.bytes().chain(*b"\n"))
        .collect();
    // A small server: only one connection is ever in it. Boxed, as a runner keeps it.
    let mut driver: Driver<8> = Driver::new(config(), NOW);
    let conn = connect(&mut driver);
    let server = driver.server_mut();

    // Once, outside the timing: each call takes exactly one line and nothing asks the runner
    // to hold bytes back or close the connection, so the timed loop measures what it claims.
    let mut rest = &buffer[..];
    for line in lines {
        let taken = server.handle_input(NOW, conn, rest).unwrap().bytes();
        assert_eq!(taken, line.len() + 1, "one line per call: {line:?}");
        rest = &rest[taken..];
        while let Some(output) = server.poll_output() {
            assert!(
                matches!(output, Output::Send { .. } | Output::Event(_)),
                "{line:?} gave {output:?}"
            );
        }
    }

    let mut group = c.benchmark_group("input");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("handle_input", |b| {
        b.iter(|| {
            let mut rest = black_box(&buffer[..]);
            let mut recipients = 0;
            while !rest.is_empty() {
                let taken = server.handle_input(NOW, conn, rest).unwrap().bytes();
                rest = &rest[taken..];
                recipients += drain(server);
            }
            recipients
        });
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let lines = corpus();
    command_parse(c, &lines);
    handle_input(c, &lines);
}

criterion_group!(input, benches);
criterion_main!(input);
