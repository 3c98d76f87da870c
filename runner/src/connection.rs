//! One connection's two tasks: a reader that feeds the hub, and a writer that drains the
//! connection's output queue into the socket. Both are generic over [`Socket`]: a plain TCP
//! socket, or a TLS connection ([`TlsSocket`](crate::socket::TlsSocket)) once its handshake is
//! done.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use chat_core::{ConnectionId, DisconnectReason};
use futures_lite::future;
use smol::channel::{Sender, TrySendError};

use crate::event::Event;
use crate::pacer::ReaderPace;
use crate::socket::Socket;

/// How long a closing connection gets to take the lines still queued for it.
pub(crate) const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// The most bytes taken from a socket in one read.
const READ_BYTES: usize = 16 * 1024;

/// The most bytes coalesced into one `write` when several messages are waiting.
const WRITE_BATCH_BYTES: usize = 16 * 1024;

/// A queue with room for no more than this many messages gives its buffer back when emptied;
/// a larger one is given back by the hub's sweep (`Hub::release_idle_queues`) if it is empty
/// when the sweep comes.
const IDLE_QUEUE_SLOTS: usize = 4;

/// Bytes rendered once by the core and shared by every recipient's queue. Everything runs on
/// the hub's one thread, so the count need not be atomic.
pub(crate) type Shared = Rc<[u8]>;

/// What the hub shares with one connection's two tasks: the messages waiting for the writer,
/// and the reader's credit. The hub and the tasks all run on one thread, so plain fields do:
/// no atomics, no channel (a channel per connection cost some 660 bytes of memory).
///
/// Pushing does not wake the writer: it hands back the writer's waker if the writer was
/// waiting on an empty queue, and the hub wakes it at its next flush (see `Hub::flush`), so a
/// writer is woken once for everything queued for it in between, not for every message.
#[derive(Debug, Default)]
pub(crate) struct Link {
    messages: VecDeque<Shared>,
    /// How many messages at the front the writer may take: the rest wait for the store to
    /// commit the lines said before they were queued (see [`Gate`]).
    released: usize,
    /// The messages after the released ones, in runs: the commit each waits for, and how many.
    held: VecDeque<(u64, usize)>,
    /// The writer, while it waits for messages.
    writer: Option<Waker>,
    /// No more messages will come: the writer ends once the queue is empty.
    closed: bool,
    /// The writer is inside a write. Seen from the hub (which runs only while the writer is
    /// suspended), that means the socket would not take more: the client is not reading.
    writing: bool,
    /// The writer has ended (the socket failed): nothing queued will be written.
    ended: bool,
    /// Asks the writer to report `Event::CaughtUp` once the queue is empty.
    report_empty: bool,
    /// The reader may take its next chunk; see `read_loop`.
    credit: bool,
    /// The reader, while it waits for a credit.
    reader: Option<Waker>,
}

impl Link {
    /// A link whose reader may take its first chunk at once.
    pub(crate) fn new() -> Self {
        Self {
            credit: true,
            ..Self::default()
        }
    }

    /// Queues `message`, which may go out once commit `wait_for` is done (see [`Gate`]);
    /// returns the writer's waker if it was waiting for messages, for the caller to wake when
    /// the writer should run. Taken, so it is handed back once.
    #[must_use = "a writer waiting for messages must be woken, or they are never written"]
    // Called once per recipient of every send: kept inline in the hub's loop, which the
    // compiler stopped doing by itself once that loop grew (seen in a profile).
    #[inline(always)]
    pub(crate) fn push(&mut self, message: Shared, wait_for: u64, committed: u64) -> Option<Waker> {
        self.messages.push_back(message);
        if self.held.is_empty() && wait_for <= committed {
            self.released += 1;
        } else {
            match self.held.back_mut() {
                Some((commit, count)) if *commit == wait_for => *count += 1,
                _ => self.held.push_back((wait_for, 1)),
            }
        }
        self.writer.take()
    }

    /// Lets the writer take the messages that waited for commits up to `committed`.
    fn release(&mut self, committed: u64) {
        while let Some(&(commit, count)) = self.held.front() {
            if commit > committed {
                break;
            }
            self.released += count;
            self.held.pop_front();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.messages.len()
    }

    /// Message slots the queue holds, used or not.
    pub(crate) fn slots(&self) -> usize {
        self.messages.capacity() + self.held.capacity()
    }

    /// Gives back the room an empty queue kept from when it was busy (a busy writer keeps
    /// it between flushes rather than grow it again each time, see [`write_loop`]). Whether
    /// the queue holds nothing beyond an idle one's now: false while it has messages.
    pub(crate) fn release_if_empty(&mut self) -> bool {
        if !self.messages.is_empty() {
            return self.messages.capacity() <= IDLE_QUEUE_SLOTS;
        }
        if self.messages.capacity() > IDLE_QUEUE_SLOTS {
            self.messages = VecDeque::new();
        }
        // Its runs count messages still queued, so with none queued there are none.
        debug_assert!(self.held.is_empty(), "runs held for an empty queue");
        self.held = VecDeque::new();
        true
    }

    /// Whether the writer cannot take what is queued: it waits for the socket to take its
    /// bytes (see `writing`), or it has ended. Otherwise it is idle, or woken and about to run.
    pub(crate) fn is_stuck(&self) -> bool {
        self.writing || self.ended
    }

    pub(crate) fn close(&mut self) {
        self.closed = true;
        if let Some(writer) = self.writer.take() {
            writer.wake();
        }
    }

    /// Asks the writer to report `Event::CaughtUp` once it has emptied the queue.
    pub(crate) fn report_when_empty(&mut self) {
        self.report_empty = true;
    }

    /// Lets the reader take its next chunk.
    pub(crate) fn give_credit(&mut self) {
        self.credit = true;
        if let Some(reader) = self.reader.take() {
            reader.wake();
        }
    }
}

/// The hub's flushes as the readers see them. While the hub gathers lines for a flush (it is
/// busy), a reader whose client has been talking waits for the next flush instead of for its
/// socket to become readable, and then reads whatever came meanwhile, before the flush goes
/// out; [`ReaderPace`] decides which.
#[derive(Debug, Default)]
pub(crate) struct Ticks {
    /// The hub is gathering: flushes are far enough apart that reading at them pays. The
    /// readers' copy of [`Pacer::is_gathering`](crate::pacer::Pacer::is_gathering), set at
    /// every flush.
    pub(crate) gathering: bool,
    /// Readers waiting for the next flush.
    pub(crate) waiting: Vec<Waker>,
    /// The hub, while it sleeps with no flush due: a reader that begins waiting wakes it, so
    /// that a flush is set for it.
    pub(crate) hub: Option<Waker>,
}

impl Ticks {
    /// Wakes the readers waiting for this flush; returns how many there were.
    pub(crate) fn tick(&mut self) -> usize {
        let readers = self.waiting.len();
        for reader in self.waiting.drain(..) {
            reader.wake();
        }
        readers
    }
}

/// The durability rule as the writers see it: a line is on disk before anyone receives it.
///
/// The hub numbers its commits. A message queued after a line was handed to the store waits
/// for the commit that takes that line (`Link::push` is told which), so it cannot overtake the
/// line onto the wire; the hub sets `committed` as the store reports each commit done, and
/// wakes the writers that wait. With no durable store nothing ever waits: every message
/// waits for commit 0, which is done from the start.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    /// The last commit done.
    pub(crate) committed: u64,
    /// Writers with messages waiting for a commit.
    pub(crate) waiting: Vec<Waker>,
}

impl Gate {
    /// Commit `number` is done: wakes the writers waiting for one.
    pub(crate) fn open_to(&mut self, number: u64) {
        self.committed = self.committed.max(number);
        for writer in self.waiting.drain(..) {
            writer.wake();
        }
    }
}

thread_local! {
    /// One read buffer for every reader on this thread. A reader borrows it only while a read
    /// runs, never across an await, so an idle connection holds no buffer at all.
    static READ_BUFFER: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_BYTES].into_boxed_slice());
    /// One buffer for every writer on this thread to coalesce its messages in. A writer
    /// borrows it only to fill it and try the write, never across an await (what the socket
    /// did not take is copied out, see [`unwritten`]), so no connection holds a batch of its
    /// own: each used to keep the largest it had written (up to 64 KB), and after a burst
    /// (everyone told of a thousand joins) thousands of idle connections held 6 to 11 KiB each.
    static WRITE_BATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// What a write that the socket took `written` of (all, if `None`) left of `bytes`: copied,
/// for the writer to wait with (the slow path: the client is not reading fast enough).
fn unwritten(bytes: &[u8], written: Option<usize>) -> Option<Box<[u8]>> {
    written.map(|taken| bytes[taken..].into())
}

/// Reads until the peer closes or the socket fails, sending each chunk to the hub in order,
/// then reports the disconnect. Ends early, silently, if the hub is gone; the hub drops it
/// (cancels it) when it closes the connection.
///
/// Each read waits for a credit, which the hub gives back once it has handled the previous
/// chunk: one chunk per connection is in flight at a time, so a flooding client gets its turn
/// like everyone else instead of filling the hub's queue, and the memory held for input is
/// bounded by one chunk per connection.
///
/// Between chunks it waits for the socket to become readable, or, while the hub is gathering
/// and this client has been talking, for the hub's next flush (see [`Ticks`]).
pub(crate) async fn read_loop<S: Socket>(
    id: ConnectionId,
    stream: Rc<S>,
    link: Rc<RefCell<Link>>,
    ticks: Rc<RefCell<Ticks>>,
    hub: Sender<Event>,
) {
    // Whether the last read left the socket empty, as far as one can tell: it took less than
    // it could have. Then the next read would only fail with "would block", so the reader waits
    // first (for readability, or for a flush) instead of trying: one system call fewer.
    let mut emptied = false;
    // Whether to wait for a flush or for readability.
    let mut pace = ReaderPace::new();
    let reason = loop {
        future::poll_fn(|context| {
            let mut link = link.borrow_mut();
            if std::mem::take(&mut link.credit) {
                Poll::Ready(())
            } else {
                link.reader = Some(context.waker().clone());
                Poll::Pending
            }
        })
        .await;
        // Read until there is a chunk to hand over; the credit is spent only on one.
        let chunk = loop {
            if emptied {
                if pace.waits_for_flush(ticks.borrow().gathering) {
                    let mut registered = false;
                    future::poll_fn(|context| {
                        if std::mem::replace(&mut registered, true) {
                            Poll::Ready(())
                        } else {
                            let mut ticks = ticks.borrow_mut();
                            ticks.waiting.push(context.waker().clone());
                            if let Some(hub) = ticks.hub.take() {
                                hub.wake();
                            }
                            Poll::Pending
                        }
                    })
                    .await;
                } else if let Err(error) = stream.readable().await {
                    break Err(error);
                }
            }
            let read = READ_BUFFER.with_borrow_mut(|buffer| {
                let read = stream.read_now(buffer)?;
                Ok::<_, io::Error>(buffer[..read].to_vec())
            });
            match read {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    pace.read_nothing();
                    emptied = true;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        match chunk {
            Ok(bytes) if bytes.is_empty() => break (DisconnectReason::Closed, None),
            Ok(bytes) => {
                emptied = bytes.len() < READ_BYTES;
                pace.read_input();
                if let Some(wait) = tell(&hub, Event::Input(id, bytes))
                    && wait.await.is_err()
                {
                    return;
                }
            }
            Err(error) => break (DisconnectReason::Error, Some(error)),
        }
    };
    if let Some(wait) = tell(&hub, Event::Disconnected(id, reason.0, reason.1)) {
        let _ = wait.await;
    }
}

/// A send to the hub that had to wait for room in its queue, boxed.
type Waiting<'a> = Pin<Box<smol::channel::Send<'a, Event>>>;

/// Sends `event` to the hub at once if its queue has room (the usual case, and then `None`),
/// or hands back the send to wait for, boxed: a task holds the state of a waiting send (the
/// event and a listener) only while it waits, so an idle connection's tasks stay small. A
/// closed channel (the hub is gone) comes back as a send that fails at once.
fn tell(hub: &Sender<Event>, event: Event) -> Option<Waiting<'_>> {
    match hub.try_send(event) {
        Ok(()) => None,
        Err(TrySendError::Full(event) | TrySendError::Closed(event)) => {
            Some(Box::pin(hub.send(event)))
        }
    }
}

/// The rest of a write the socket did not take at once: waits for the socket to take it, up
/// to the stall timeout from `started` (when the write began). False if the timeout passed
/// first.
async fn write_rest<S: Socket>(
    stream: &S,
    bytes: &[u8],
    started: std::time::Instant,
    stall_timeout: Option<Duration>,
) -> io::Result<bool> {
    let written = async { stream.write_all(bytes).await.map(|()| true) };
    let Some(timeout) = stall_timeout else {
        return written.await;
    };
    future::or(written, async {
        smol::Timer::at(started + timeout).await;
        Ok(false)
    })
    .await
}

/// Writes queued messages in order, coalescing whatever is waiting into one `write`, until the
/// queue is closed and empty or the socket fails; then shuts the socket down.
///
/// When the link asks for it (the hub is skipping room messages for this client) and the
/// queue has been emptied, it reports `Event::CaughtUp`. A write that cannot finish within
/// `stall_timeout` means the client is not reading: it reports `Event::Stalled` and stops.
pub(crate) async fn write_loop<S: Socket>(
    id: ConnectionId,
    stream: Rc<S>,
    link: Rc<RefCell<Link>>,
    gate: Rc<RefCell<Gate>>,
    hub: Sender<Event>,
    stall_timeout: Option<Duration>,
) {
    let _: io::Result<()> = async {
        loop {
            let waiting = future::poll_fn(|context| {
                let mut link = link.borrow_mut();
                if !link.held.is_empty() {
                    link.release(gate.borrow().committed);
                }
                if link.released > 0 {
                    Poll::Ready(true)
                } else if !link.messages.is_empty() {
                    // Waiting for a commit; queued again as an idle writer too, so woken
                    // either way.
                    gate.borrow_mut().waiting.push(context.waker().clone());
                    link.writer = Some(context.waker().clone());
                    Poll::Pending
                } else if link.closed {
                    Poll::Ready(false)
                } else {
                    link.writer = Some(context.waker().clone());
                    Poll::Pending
                }
            })
            .await;
            if !waiting {
                break;
            }
            // Tried at once: a write the socket takes whole (the usual case) sets no timer,
            // and the task holds the state of a waiting write only while it waits.
            let started = std::time::Instant::now();
            let (length, rest) = {
                let mut link = link.borrow_mut();
                let single = match link.released {
                    1 => link.messages.pop_front(),
                    _ => None,
                };
                if let Some(message) = single {
                    // The common case under light load, one message: written as it is, no
                    // copy.
                    link.released = 0;
                    drop(link);
                    (
                        message.len(),
                        unwritten(&message, stream.write_now(&message)?),
                    )
                } else {
                    WRITE_BATCH.with_borrow_mut(|batch| {
                        batch.clear();
                        while link.released > 0
                            && let Some(next) = link.messages.front()
                        {
                            if !batch.is_empty() && batch.len() + next.len() > WRITE_BATCH_BYTES {
                                break;
                            }
                            batch.extend_from_slice(next);
                            link.messages.pop_front();
                            link.released -= 1;
                        }
                        drop(link);
                        let written = stream.write_now(batch)?;
                        Ok::<_, io::Error>((batch.len(), unwritten(batch, written)))
                    })?
                }
            };
            let done = match rest {
                None => {
                    crate::stats::wrote(length);
                    true
                }
                Some(rest) => {
                    link.borrow_mut().writing = true;
                    let done = Box::pin(write_rest(&*stream, &rest, started, stall_timeout)).await;
                    link.borrow_mut().writing = false;
                    let done = done?;
                    if done {
                        crate::stats::wrote(length);
                    }
                    // A write that took the whole stall timeout counts as stalled even if it
                    // finished: the kernel says a socket is writable only once a good part of
                    // its buffer is free, but a write takes whatever space there is, so a
                    // client that reads nothing could otherwise finish a write just as its
                    // timer fires, and never be dropped.
                    done && stall_timeout.is_none_or(|timeout| started.elapsed() < timeout)
                }
            };
            if !done {
                if let Some(wait) = tell(&hub, Event::Stalled(id)) {
                    let _ = wait.await;
                }
                break;
            }
            let caught_up = {
                let mut link = link.borrow_mut();
                if link.messages.is_empty() && link.messages.capacity() <= IDLE_QUEUE_SLOTS {
                    // A quiet connection holds no buffer: with thousands of them, the few slots
                    // a queue keeps after its last message add up (about 80 bytes each). A
                    // busy one keeps its larger queue rather than grow it again for every
                    // flush.
                    link.messages = VecDeque::new();
                }
                link.messages.is_empty() && std::mem::take(&mut link.report_empty)
            };
            if caught_up && let Some(wait) = tell(&hub, Event::CaughtUp(id)) {
                let _ = wait.await;
            }
        }
        Ok(())
    }
    .await;
    link.borrow_mut().ended = true;
    stream.shutdown();
}

/// Writes `bytes` (the "server full" reply) and closes, giving up after the flush timeout.
pub(crate) async fn refuse<S: Socket>(stream: S, bytes: &'static [u8]) {
    let write = async {
        let _ = stream.write_all(bytes).await;
    };
    let give_up = async {
        smol::Timer::after(FLUSH_TIMEOUT).await;
    };
    future::or(write, give_up).await;
    stream.shutdown();
}
