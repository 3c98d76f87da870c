//! The smallest runner that keeps chat-core's contract: one thread, `std::net` only, every
//! socket non-blocking and polled in turn. It shows what any runner owes the core: feeding input
//! one line at a time and keeping what is not taken until `Output::Resume`, draining
//! `poll_output` after every `handle_*` call, arming `poll_timeout`, reporting disconnects, and
//! bounding what waits for a client that does not read.
//!
//! Run it with `cargo run -p chat-core --example blocking -- 9999`, then `nc 127.0.0.1 9999` in
//! two terminals. Ctrl-C stops it.
//!
//! Left to the real runner (`runner/`): readiness from epoll instead of trying every socket,
//! skipping room messages for clients that lag (`handle_backlog`), signals, TCP keepalive.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant as StdInstant};

use chat_core::{
    Admission, Config, ConnectionId, DisconnectReason, Error, Instant, Output, Server,
};

/// Small enough (about 110 KB) to build on any thread's stack on its way into the `Box`; for
/// thousands of clients, build it as `runner/src/main.rs` does.
const CLIENTS: usize = 64;
/// A client with more than this waiting for it is not reading, and is dropped.
const MAX_PENDING: usize = 256 * 1024;
/// The longest nap when nothing happens: the delay a new line may wait for.
const IDLE: Duration = Duration::from_millis(5);
/// How long a closed connection gets to take its last lines.
const LINGER: Duration = Duration::from_secs(2);

fn main() -> io::Result<()> {
    let port = std::env::args().nth(1).map_or(Ok(9999), |arg| arg.parse());
    let listener = TcpListener::bind(("127.0.0.1", port.map_err(io::Error::other)?))?;
    eprintln!("listening on {}", listener.local_addr()?);
    // Nothing sets it: Ctrl-C ends the process, and the kernel closes the sockets.
    serve(listener, Config::default(), &AtomicBool::new(false))
}

/// Serves on `listener` until `stop` is set, then tells everyone and gives them [`LINGER`] to
/// read it.
pub(crate) fn serve(listener: TcpListener, config: Config, stop: &AtomicBool) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let epoch = StdInstant::now();
    let core = Box::new(Server::new(config, Instant::ZERO));
    let conns = HashMap::new();
    let mut runner = Runner { core, conns, epoch };
    let mut buf = [0; 4096];
    while !stop.load(Ordering::Relaxed) {
        let mut busy = runner.accept(&listener);
        // Before reading, so that connections flood control lets go are fed below.
        let due = runner.core.poll_timeout();
        if due.is_some_and(|at| at <= runner.now()) {
            runner.step(|core, now| core.handle_timeout(now));
        }
        // A snapshot: a step may drop connections.
        let ids: Vec<ConnectionId> = runner.conns.keys().copied().collect();
        for id in ids {
            busy |= runner.read(id, &mut buf);
            runner.feed(id);
        }
        busy |= runner.write();
        if !busy {
            let due = runner.core.poll_timeout().map(|at| at.to_std(epoch));
            let wait = due.map_or(IDLE, |at| at.saturating_duration_since(StdInstant::now()));
            std::thread::sleep(wait.min(IDLE));
        }
    }
    runner.step(|core, now| core.handle_shutdown(now));
    // The core takes no more steps, not even a disconnect: every connection is closing now.
    let deadline = StdInstant::now() + LINGER;
    for c in runner.conns.values_mut() {
        c.closing = Some(deadline);
    }
    while !runner.conns.is_empty() && StdInstant::now() < deadline {
        if !runner.write() {
            std::thread::sleep(IDLE);
        }
    }
    Ok(())
}

struct Conn {
    stream: TcpStream,
    /// Read but not yet taken by the core.
    inbox: Vec<u8>,
    outbox: Vec<u8>,
    /// Flood control took none of `inbox`: offer it again only after `Output::Resume`.
    held: bool,
    /// The core is done with it: write what is queued until then, then close.
    closing: Option<StdInstant>,
}

struct Runner {
    core: Box<Server<chat_core::Inline<CLIENTS>>>,
    conns: HashMap<ConnectionId, Conn>,
    epoch: StdInstant,
}

impl Runner {
    fn now(&self) -> Instant {
        Instant::from_std(self.epoch, StdInstant::now())
    }

    /// One step of the core, then its outputs, before anything else may happen.
    fn step(
        &mut self,
        step: impl FnOnce(&mut Server<chat_core::Inline<CLIENTS>>, Instant) -> Result<(), Error>,
    ) {
        let now = self.now();
        ok(step(&mut self.core, now));
        self.drain();
    }

    fn accept(&mut self, listener: &TcpListener) -> bool {
        let mut busy = false;
        // A few per turn: a burst of connections must not starve those already here.
        for _ in 0..16 {
            let stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                // Out of descriptors, say: try again next turn rather than stop serving.
                Err(error) => {
                    eprintln!("accept: {error}");
                    break;
                }
            };
            busy = true;
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            // Chat lines are small and wanted now, not after Nagle's delay.
            let _ = stream.set_nodelay(true);
            match ok(self.core.handle_connect(self.now())) {
                Admission::Accepted(id) => {
                    let conn = Conn {
                        stream,
                        inbox: Vec::new(),
                        outbox: Vec::new(),
                        held: false,
                        closing: None,
                    };
                    self.conns.insert(id, conn);
                    self.drain();
                }
                // One write into an empty socket buffer: it fits, or the client gets nothing.
                // Full (or, from a banned address, banned: this example knows no addresses).
                Admission::Refused(reply) | Admission::Banned(reply) => {
                    drop((&stream).write(reply));
                }
                _ => {}
            }
        }
        busy
    }

    fn read(&mut self, id: ConnectionId, buf: &mut [u8]) -> bool {
        let Some(c) = self.conns.get_mut(&id) else {
            return false;
        };
        // Bytes waiting mean the core holds this client back: what it sends meanwhile waits in
        // the socket, where TCP slows the sender.
        if c.closing.is_some() || !c.inbox.is_empty() {
            return false;
        }
        let reason = match c.stream.read(buf) {
            Ok(0) => DisconnectReason::Closed,
            Ok(n) => {
                c.inbox.extend_from_slice(&buf[..n]);
                return true;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                return false;
            }
            Err(_) => DisconnectReason::Error,
        };
        // Not dropped yet: the peer may only have shut its sending side, and still read.
        c.closing = Some(StdInstant::now() + LINGER);
        self.step(|core, now| core.handle_disconnect(now, id, reason));
        true
    }

    /// Hands the core the bytes read from `id`, a line per call, for as long as it takes them.
    fn feed(&mut self, id: ConnectionId) {
        let now = self.now();
        while let Some(c) = self.conns.get_mut(&id).filter(|c| c.closing.is_none()) {
            if c.held || c.inbox.is_empty() {
                return;
            }
            let mut consumed = ok(self.core.handle_input(now, id, &c.inbox));
            c.inbox.drain(..consumed.bytes());
            // Taking nothing is flood control: `Output::Resume` says when to offer it again.
            c.held = consumed.bytes() == 0 && !consumed.more();
            self.drain();
            // A line naming several targets is handled one part per step.
            while consumed.more() && self.conns.contains_key(&id) {
                consumed = ok(self.core.handle_more(now, id));
                self.drain();
            }
        }
    }

    /// Carries out, in order, what the last step asked for.
    fn drain(&mut self) {
        let mut too_slow = Vec::new();
        while let Some(output) = self.core.poll_output() {
            match output {
                Output::Send { to, bytes } => {
                    for id in to {
                        let Some(c) = self.conns.get_mut(&id) else {
                            continue;
                        };
                        c.outbox.extend_from_slice(bytes);
                        if c.outbox.len() > MAX_PENDING {
                            too_slow.push(id);
                        }
                    }
                }
                Output::Close { conn, reason } => {
                    eprintln!("{conn} closed: {reason}");
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.closing = Some(StdInstant::now() + LINGER);
                    }
                }
                Output::Resume { conn } => {
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.held = false;
                    }
                }
                Output::Event(event) => eprintln!("{event:?}"),
                _ => {}
            }
        }
        // Only now: the core takes no step while outputs are waiting.
        for id in too_slow {
            if let Some(c) = self.conns.remove(&id).filter(|c| c.closing.is_none()) {
                eprintln!("{id} dropped: {} bytes waiting", c.outbox.len());
                self.step(|core, now| core.handle_disconnect(now, id, DisconnectReason::TooSlow));
            }
        }
    }

    /// Writes what each socket takes; closes connections that are done or failed.
    fn write(&mut self) -> bool {
        let (mut wrote, mut failed) = (false, Vec::new());
        let now = StdInstant::now();
        self.conns.retain(|&id, c| {
            while !c.outbox.is_empty() {
                match c.stream.write(&c.outbox) {
                    Ok(n) if n > 0 => {
                        c.outbox.drain(..n);
                        wrote = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    _ => {
                        // The core hears of it, unless it closed the connection itself.
                        if c.closing.is_none() {
                            failed.push(id);
                        }
                        return false;
                    }
                }
            }
            c.closing
                .is_none_or(|until| !c.outbox.is_empty() && now < until)
        });
        for id in failed {
            self.step(|core, now| core.handle_disconnect(now, id, DisconnectReason::Error));
        }
        wrote
    }
}

/// Every [`Error`] is a misuse of the API (a step before the last drain ended, a
/// connection the core has closed): a bug in this runner, never something a peer can cause.
fn ok<T>(result: Result<T, Error>) -> T {
    result.unwrap_or_else(|error| panic!("bug: {error}"))
}
