//! One connection's two tasks: a reader that feeds the hub, and a writer that drains the
//! connection's output queue into the socket.

use std::cell::RefCell;
use std::io::{self, Read};
use std::net::{Shutdown, TcpStream};
use std::rc::Rc;
use std::sync::Arc;

use chat_core::{ConnectionId, DisconnectReason};
use futures_lite::AsyncWriteExt;
use smol::Async;
use smol::channel::{Receiver, Sender};

use crate::hub::Event;

/// The most bytes taken from a socket in one read.
const READ_BYTES: usize = 16 * 1024;

/// The most bytes coalesced into one `write` when several messages are waiting.
const WRITE_BATCH_BYTES: usize = 16 * 1024;

/// Bytes rendered once by the core and shared by every recipient's queue.
pub(crate) type Shared = Arc<[u8]>;

thread_local! {
    /// One read buffer for every reader on this thread. A reader borrows it only while a read
    /// runs, never across an await, so an idle connection holds no buffer at all.
    static READ_BUFFER: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_BYTES].into_boxed_slice());
}

/// Reads until the peer closes or the socket fails, sending each chunk to the hub in order,
/// then reports the disconnect. Ends early, silently, if the hub is gone.
///
/// Each read waits for a credit, which the hub gives back once it has handled the previous
/// chunk: one chunk per connection is in flight at a time, so a flooding client gets its turn
/// like everyone else instead of filling the hub's queue, and the memory held for input is
/// bounded by one chunk per connection.
pub(crate) async fn read_loop(
    id: ConnectionId,
    stream: Rc<Async<TcpStream>>,
    credits: Receiver<()>,
    hub: Sender<Event>,
) {
    let reason = loop {
        if credits.recv().await.is_err() {
            return;
        }
        let chunk = stream
            .read_with(|socket| {
                READ_BUFFER.with_borrow_mut(|buffer| {
                    let read = (&*socket).read(buffer)?;
                    Ok(buffer[..read].to_vec())
                })
            })
            .await;
        match chunk {
            Ok(bytes) if bytes.is_empty() => break (DisconnectReason::Closed, None),
            Ok(bytes) => {
                if hub.send(Event::Input(id, bytes)).await.is_err() {
                    return;
                }
            }
            Err(error) => break (DisconnectReason::Error, Some(error)),
        }
    };
    let _ = hub.send(Event::Disconnected(id, reason.0, reason.1)).await;
}

/// Writes queued messages in order, coalescing whatever is waiting into one `write`, until the
/// queue is closed and empty or the socket fails; then shuts the socket down.
pub(crate) async fn write_loop(stream: Rc<Async<TcpStream>>, queue: Receiver<Shared>) {
    let mut batch = Vec::new();
    let _: io::Result<()> = async {
        while let Ok(first) = queue.recv().await {
            match queue.try_recv() {
                // The common case, one message: write it as it is, no copy.
                Err(_) => (&*stream).write_all(&first).await?,
                Ok(second) => {
                    batch.clear();
                    batch.extend_from_slice(&first);
                    batch.extend_from_slice(&second);
                    while batch.len() < WRITE_BATCH_BYTES {
                        let Ok(more) = queue.try_recv() else { break };
                        batch.extend_from_slice(&more);
                    }
                    (&*stream).write_all(&batch).await?;
                    if batch.capacity() > 4 * WRITE_BATCH_BYTES {
                        batch = Vec::new();
                    }
                }
            }
        }
        Ok(())
    }
    .await;
    let _ = stream.get_ref().shutdown(Shutdown::Both);
}

/// Writes `bytes` (the "server full" reply) and closes, giving up after the flush timeout.
pub(crate) async fn refuse(stream: Async<TcpStream>, bytes: &'static [u8]) {
    let write = async {
        let _ = (&stream).write_all(bytes).await;
    };
    let give_up = async {
        smol::Timer::after(crate::hub::FLUSH_TIMEOUT).await;
    };
    futures_lite::future::or(write, give_up).await;
    let _ = stream.get_ref().shutdown(Shutdown::Both);
}
