//! The slow-reader policy, apart from the sockets: what becomes of a message for a client that
//! does not read what is sent to it, and when such a client begins lagging or is dropped.
//!
//! A client that does not read degrades in steps. When its queue reaches the lag limit, and is
//! still that long once its writer has had a turn, it is *lagging*: room messages are no longer
//! queued for it but counted, until its writer has emptied the queue and it is told how many it
//! missed. Replies to its own commands are always queued. A private message that would bring
//! its queue to the queue limit is refused (its sender is told). A queue that still reaches the
//! queue limit (with replies), and is still that long once its writer has had a turn, gets the
//! client dropped, and so does a writer that could not write for the stall timeout.
//!
//! The decisions here take the queue's length and whether its writer is stuck as inputs; the
//! hub looks them up, gives the writers their turn, tells the core and logs.

use std::time::Duration;

/// How the hub treats clients that do not read what is sent to them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SlowReaders {
    /// Past this many waiting messages, room messages are skipped (and counted) for a client.
    pub(crate) lag_limit: usize,
    /// A private message that would bring a client's queue to this many is not queued (its
    /// sender is told); a client whose queue reaches it (with replies to its own commands) is
    /// disconnected.
    pub(crate) queue_limit: usize,
    /// A client whose writer cannot write anything this long is disconnected.
    pub(crate) stall_timeout: Option<Duration>,
}

/// What a message is, as far as a slow reader is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Room traffic and news: may be skipped for a lagging client, which is told how many.
    Room,
    /// A reply to the client's own doing: always queued.
    Reply,
    /// A private message: refused when the client is too far behind.
    Private,
}

/// What becomes of one message for one client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub(crate) enum Admit {
    /// Queued for its writer.
    Queue,
    /// Not queued: the client is lagging, and the message was counted.
    Skip,
    /// Not queued: the client is too far behind for a private message; its sender is to be
    /// told.
    Refuse,
}

/// A client whose queue reached a limit, looked at again once its writer has had a turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub(crate) enum Verdict {
    /// Its writer took enough (or the step was taken already): nothing to do.
    Reading,
    /// Its writer was woken but has not run yet (the executor runs a bounded number of tasks
    /// per turn): look again after the next turn.
    NotRunYet,
    /// Its writer waits for the socket to take its bytes, or has ended: the client is not
    /// reading.
    NotReading,
}

/// One client's lag: whether room messages are being skipped for it, and how many.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Lag {
    /// Room messages are skipped, until its writer has emptied the queue.
    skipping: bool,
    /// How many, since it began lagging.
    skipped: u64,
}

impl SlowReaders {
    /// Decides whether a message of `kind` is queued for a client with `waiting` messages
    /// queued, counting it in `lag` if it is skipped.
    pub(crate) fn admit(&self, lag: &mut Lag, kind: Kind, waiting: usize) -> Admit {
        match kind {
            Kind::Room if lag.skipping => {
                lag.skipped += 1;
                Admit::Skip
            }
            // Never the message that takes it to the limit: others' private messages must not
            // get a client disconnected.
            Kind::Private if waiting + 1 >= self.queue_limit => Admit::Refuse,
            _ => Admit::Queue,
        }
    }

    /// Whether a queue that has just grown to `waiting` reached the lag limit, so that the
    /// client is to be looked at with [`SlowReaders::judge_crowded`] after the writers' turn.
    /// Only the message that reaches it counts: one look per crossing.
    pub(crate) fn reaches_lag_limit(&self, waiting: usize) -> bool {
        waiting == self.lag_limit
    }

    /// Whether a queue that has just grown to `waiting` is at the queue limit, so that the
    /// client is to be looked at with [`SlowReaders::judge_full`] after the writers' turn.
    pub(crate) fn reaches_queue_limit(&self, waiting: usize) -> bool {
        waiting >= self.queue_limit
    }

    /// A client whose queue reached the lag limit, now that its writer had a turn and
    /// `waiting` messages are left: [`Verdict::NotReading`] means it begins lagging.
    pub(crate) fn judge_crowded(&self, lag: &Lag, waiting: usize, writer_stuck: bool) -> Verdict {
        if lag.skipping || waiting < self.lag_limit {
            Verdict::Reading
        } else {
            Self::judge_writer(writer_stuck)
        }
    }

    /// A client whose queue reached the queue limit, now that its writer had a turn and
    /// `waiting` messages are left: [`Verdict::NotReading`] means it is dropped.
    pub(crate) fn judge_full(&self, waiting: usize, writer_stuck: bool) -> Verdict {
        if waiting < self.queue_limit {
            Verdict::Reading
        } else {
            Self::judge_writer(writer_stuck)
        }
    }

    fn judge_writer(writer_stuck: bool) -> Verdict {
        if writer_stuck {
            Verdict::NotReading
        } else {
            Verdict::NotRunYet
        }
    }
}

impl Lag {
    /// Room messages are skipped for the client from now on.
    pub(crate) fn begin(&mut self) {
        self.skipping = true;
    }

    /// The client's writer has emptied its queue: room messages are queued again. Returns how
    /// many were skipped, if the client was lagging, for it to be told.
    pub(crate) fn catch_up(&mut self) -> Option<u64> {
        if !std::mem::take(&mut self.skipping) {
            return None;
        }
        Some(std::mem::take(&mut self.skipped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLOW: SlowReaders = SlowReaders {
        lag_limit: 3,
        queue_limit: 10,
        stall_timeout: None,
    };

    fn lagging() -> Lag {
        let mut lag = Lag::default();
        lag.begin();
        lag
    }

    #[test]
    fn what_is_queued_for_whom() {
        use Admit::{Queue, Refuse, Skip};
        // (lagging, kind, waiting, admitted)
        for (is_lagging, kind, waiting, admitted) in [
            (false, Kind::Room, 0, Queue),
            (false, Kind::Room, 9, Queue),
            (false, Kind::Room, 50, Queue), // past the limit only by replies: the drop decides
            (true, Kind::Room, 0, Skip),
            (true, Kind::Reply, 50, Queue),
            (false, Kind::Reply, 50, Queue),
            (false, Kind::Private, 8, Queue),
            (false, Kind::Private, 9, Refuse), // would make 10
            (true, Kind::Private, 2, Queue),
            (true, Kind::Private, 9, Refuse),
        ] {
            let mut lag = if is_lagging {
                lagging()
            } else {
                Lag::default()
            };
            assert_eq!(
                SLOW.admit(&mut lag, kind, waiting),
                admitted,
                "lagging {is_lagging}, {kind:?}, {waiting} waiting"
            );
        }
    }

    #[test]
    fn skipped_room_messages_are_counted_and_reported_once_on_catching_up() {
        let mut lag = Lag::default();
        assert_eq!(lag.catch_up(), None, "not lagging: nothing to report");
        lag.begin();
        for _ in 0..5 {
            let _ = SLOW.admit(&mut lag, Kind::Room, 0);
        }
        // Neither replies nor private messages are skipped, so neither is counted.
        let _ = SLOW.admit(&mut lag, Kind::Reply, 0);
        let _ = SLOW.admit(&mut lag, Kind::Private, 0);
        assert_eq!(lag.catch_up(), Some(5));
        assert_eq!(lag.catch_up(), None, "reported once");
        assert_eq!(SLOW.admit(&mut lag, Kind::Room, 0), Admit::Queue);
        lag.begin();
        assert_eq!(lag.catch_up(), Some(0), "the count starts again");
    }

    #[test]
    fn a_queue_is_looked_at_when_it_reaches_a_limit() {
        let crossings: Vec<(usize, bool, bool)> = (1..=11)
            .map(|waiting| {
                (
                    waiting,
                    SLOW.reaches_lag_limit(waiting),
                    SLOW.reaches_queue_limit(waiting),
                )
            })
            .filter(|&(_, lag, full)| lag || full)
            .collect();
        assert_eq!(
            crossings,
            [(3, true, false), (10, false, true), (11, false, true)]
        );
    }

    #[test]
    fn a_crowded_client_lags_only_if_its_writer_is_stuck_at_the_lag_limit() {
        use Verdict::{NotReading, NotRunYet, Reading};
        // (already lagging, waiting after the writers' turn, writer stuck, verdict)
        for (is_lagging, waiting, stuck, verdict) in [
            (false, 2, true, Reading), // the writer took some
            (false, 3, false, NotRunYet),
            (false, 3, true, NotReading),
            (false, 7, true, NotReading),
            (true, 7, true, Reading), // lagging already
        ] {
            let lag = if is_lagging {
                lagging()
            } else {
                Lag::default()
            };
            assert_eq!(
                SLOW.judge_crowded(&lag, waiting, stuck),
                verdict,
                "lagging {is_lagging}, {waiting} waiting, stuck {stuck}"
            );
        }
    }

    #[test]
    fn a_full_client_is_dropped_only_if_its_writer_is_stuck_at_the_queue_limit() {
        use Verdict::{NotReading, NotRunYet, Reading};
        for (waiting, stuck, verdict) in [
            (9, true, Reading),
            (10, false, NotRunYet),
            (10, true, NotReading),
            (12, true, NotReading),
        ] {
            assert_eq!(
                SLOW.judge_full(waiting, stuck),
                verdict,
                "{waiting} waiting, stuck {stuck}"
            );
        }
    }
}
