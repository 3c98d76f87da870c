//! Where a [`Server`](crate::Server) keeps its table of connections: [`Inline`], sized by a
//! constant and part of the server's own value (a firmware's `static`), or [`Heap`] (feature
//! `alloc`), sized when the server is made.
//!
//! The table is every per-connection part of the core: a slot for each connection (its framing
//! state, its person, its place in the deadline queues), its room memberships, the lists of
//! live and free slots, and pools with room for one per connection of what a connection holds
//! only for a while: a line buffer while a partial line of its waits for its end, an away
//! message while away, a nickname claimed from other servers while the answer is awaited. The
//! rest of the server, its own tables (rooms, topics, bans, `MONITOR` watches, the shared tag
//! buffers) and the output buffer, is fixed whatever the capacity: some 1.2 MB. For [`Inline`]
//! all of it is in the server's value; for [`Heap`] the tables are reserved on the heap when
//! the server is made, each with room for its bound, and grow with use like the connections'
//! table (the value itself is some 160 KB, most of it the output buffer).
//!
//! Either way the table only grows with use: a slot is made when a connection first needs one
//! and reused after it leaves, so its memory is written (and, under an operating system,
//! committed) up to the most connections held at once, not up to the capacity. The difference is
//! where the room for the capacity is reserved: inside the `Server` value for [`Inline`] (a
//! `Server<Inline<N>>` is as large as N slots), in one allocation at start for [`Heap`] (which the
//! operating system backs with memory only as slots are first used).
//!
//! A connection past the capacity is refused: [`Admission::Refused`](crate::Admission::Refused).
//! The capacity is at most [`MAX_CAPACITY`].

/// The largest capacity a server takes (119,304,647); a larger one asked for (or an
/// `Inline<N>` with a larger `N`) counts as this one. Membership cells are numbered with a
/// `u32`: a person's own two below 2³¹, the 18 of a second row (one per connection at most)
/// above it. At about 0.5 KB a connection (1.5 KB of room, what it may borrow from the pools
/// included) it is far more than a machine holds. The member lists check at build time that
/// their numbering reaches this far (a number here, so that this module depends on none of
/// the tables it stores).
pub const MAX_CAPACITY: usize = 119_304_647;

/// How a [`Server`](crate::Server) keeps its table of connections: [`Inline`] or [`Heap`].
///
/// Sealed: these two are the only ones.
pub trait Storage: sealed::Storage {}

/// The table inside the server's own value, for up to `N` connections: no allocation at all.
///
/// A `Server<Inline<N>>` is some 1.2 MB plus about 1.5 KB per connection of `N` (see
/// docs/ARCHITECTURE.md), so keep it in a `static` or a `Box`; it is made with
/// [`Server::new`](crate::Server::new).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Inline<const N: usize>;

impl<const N: usize> Storage for Inline<N> {}

/// The table on the heap, for a capacity chosen when the server is made with
/// [`Server::with_capacity`](crate::Server::with_capacity) (feature `alloc`).
///
/// Room for the whole capacity is allocated once, then, and never again: the table neither
/// grows nor moves later. Under an operating system that backs pages with memory only as they
/// are first written (Linux does), the memory used is then in proportion to the most
/// connections held at once; on a target without virtual memory the allocation costs the
/// whole capacity at once.
#[cfg(feature = "alloc")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Heap;

#[cfg(feature = "alloc")]
impl Storage for Heap {}

/// What the core needs of a storage: a bounded vector type. Not nameable outside the crate, so
/// [`Storage`] cannot be implemented elsewhere.
pub(crate) mod sealed {
    use core::fmt::Debug;
    use core::ops::{Deref, DerefMut};

    /// A storage: how to make its vectors.
    #[allow(unreachable_pub, reason = "sealed: public in a private module")]
    pub trait Storage: Debug + Sized {
        /// A vector of up to the capacity's items.
        type Table<T: Debug>: Table<T>;

        /// The capacity asked for, or the one of the type.
        fn capacity(asked: usize) -> usize;

        /// An empty vector with room for `capacity` items (which `capacity` gave).
        fn table<T: Debug>(capacity: usize) -> Self::Table<T>;

        /// A vector of up to `M` items whatever the capacity: one of the server's own tables
        /// (rooms, bans, topics, watches, tag buffers). Inside the server's value for
        /// [`Inline`](super::Inline); reserved on the heap when made for [`Heap`](super::Heap),
        /// so its memory is used as items come, not when the server is built.
        type Fixed<T: Debug, const M: usize>: Table<T>;

        /// An empty vector with room for `M` items.
        fn fixed<T: Debug, const M: usize>() -> Self::Fixed<T, M>;
    }

    /// A vector with a fixed room, reserved when it was made: pushing within that room never
    /// allocates or moves it. The caller keeps within the room (the roster checks its capacity
    /// before it takes a new slot), so `push` past it is a bug.
    #[allow(unreachable_pub, reason = "sealed: public in a private module")]
    pub trait Table<T>: Deref<Target = [T]> + DerefMut + Debug {
        /// Adds `item` at the end; `Err` with it back if there is no room.
        fn push(&mut self, item: T) -> Result<(), T>;
        /// Takes the last item.
        fn pop(&mut self) -> Option<T>;
        /// Takes the item at `index`, putting the last one in its place.
        fn swap_remove(&mut self, index: usize) -> T;
        /// Takes the item at `index`, moving the ones after it down: order kept.
        fn remove(&mut self, index: usize) -> T;
        /// Keeps only the items `keep` says yes to, in order.
        fn retain(&mut self, keep: impl FnMut(&T) -> bool);
        /// Whether `push` would refuse.
        fn is_full(&self) -> bool;
    }

    impl<const N: usize> Storage for super::Inline<N> {
        type Table<T: Debug> = heapless::Vec<T, N>;

        fn capacity(_asked: usize) -> usize {
            N
        }

        fn table<T: Debug>(_capacity: usize) -> Self::Table<T> {
            heapless::Vec::new()
        }

        type Fixed<T: Debug, const M: usize> = heapless::Vec<T, M>;

        fn fixed<T: Debug, const M: usize>() -> Self::Fixed<T, M> {
            heapless::Vec::new()
        }
    }

    impl<T: Debug, const N: usize> Table<T> for heapless::Vec<T, N> {
        fn push(&mut self, item: T) -> Result<(), T> {
            Self::push(self, item)
        }

        fn pop(&mut self) -> Option<T> {
            Self::pop(self)
        }

        fn swap_remove(&mut self, index: usize) -> T {
            Self::swap_remove(self, index)
        }

        fn remove(&mut self, index: usize) -> T {
            Self::remove(self, index)
        }

        fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
            Self::retain(self, keep);
        }

        fn is_full(&self) -> bool {
            self.len() == self.capacity()
        }
    }

    #[cfg(feature = "alloc")]
    impl Storage for super::Heap {
        type Table<T: Debug> = alloc::vec::Vec<T>;

        fn capacity(asked: usize) -> usize {
            asked
        }

        fn table<T: Debug>(capacity: usize) -> Self::Table<T> {
            alloc::vec::Vec::with_capacity(capacity)
        }

        type Fixed<T: Debug, const M: usize> = alloc::vec::Vec<T>;

        fn fixed<T: Debug, const M: usize>() -> Self::Fixed<T, M> {
            alloc::vec::Vec::with_capacity(M)
        }
    }

    #[cfg(feature = "alloc")]
    impl<T: Debug> Table<T> for alloc::vec::Vec<T> {
        fn push(&mut self, item: T) -> Result<(), T> {
            if Table::is_full(self) {
                // Pushing now would reallocate and move the table: refuse, as a full one.
                return Err(item);
            }
            Self::push(self, item);
            Ok(())
        }

        fn pop(&mut self) -> Option<T> {
            Self::pop(self)
        }

        fn swap_remove(&mut self, index: usize) -> T {
            Self::swap_remove(self, index)
        }

        fn remove(&mut self, index: usize) -> T {
            Self::remove(self, index)
        }

        fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
            Self::retain(self, keep);
        }

        fn is_full(&self) -> bool {
            self.len() == self.capacity()
        }
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::sealed::{Storage, Table};
    use super::{Heap, Inline};

    #[test]
    fn a_fixed_table_holds_its_bound_on_the_heap_as_inline() {
        fn fill<S: Storage>() -> usize {
            let mut table = S::fixed::<u32, 3>();
            let mut pushed = 0;
            while table.push(pushed).is_ok() {
                pushed += 1;
            }
            assert!(table.is_full());
            table.retain(|&item| item != 1);
            assert_eq!((table.remove(0), &table[..]), (0, [2].as_slice()));
            pushed as usize
        }
        assert_eq!(fill::<Inline<1>>(), 3);
        assert_eq!(
            fill::<Heap>(),
            3,
            "a full heap table refuses rather than grows"
        );
        // The heap's table is no part of the value that holds it.
        assert!(size_of::<<Heap as Storage>::Fixed<[u8; 4096], 64>>() < 64);
    }
}
