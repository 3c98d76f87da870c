//! [`Pool`]: values a few connections hold at a time (an away message), kept out of the slots
//! so that the many connections that hold none do not pay for their room.

use core::fmt::Debug;

use crate::storage::sealed::{Storage, Table};

/// Values lent to connections, at most one each: room for one per slot of the roster
/// (`capacity`), so putting one in never fails while the roster keeps to its capacity. Values
/// are made as first needed and their places reused after (last freed, first reused), so the
/// memory used follows the most held at once, not the connections.
#[derive(Debug)]
pub(crate) struct Pool<S: Storage, T: Debug> {
    items: S::Table<T>,
    /// Places made and not held now.
    free: S::Table<u32>,
}

impl<S: Storage, T: Debug> Pool<S, T> {
    /// An empty pool with room for `capacity` values (which the storage gave).
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            items: S::table(capacity),
            free: S::table(capacity),
        }
    }

    /// Keeps `item`; its place, or `None` when every place of the capacity is held (which a
    /// roster within its capacity, one value a slot, never sees).
    pub(crate) fn put(&mut self, item: T) -> Option<u32> {
        if let Some(at) = self.free.pop() {
            self.items[at as usize] = item;
            return Some(at);
        }
        let at = u32::try_from(self.items.len()).ok()?;
        self.items.push(item).ok()?;
        Some(at)
    }

    /// The value at `at`.
    pub(crate) fn get(&self, at: u32) -> &T {
        &self.items[at as usize]
    }

    /// The value at `at`, to change in place.
    pub(crate) fn get_mut(&mut self, at: u32) -> &mut T {
        &mut self.items[at as usize]
    }

    /// Frees place `at`.
    pub(crate) fn free(&mut self, at: u32) {
        // Cannot fail: `free` has room for every place, and `at` was held.
        let _ = self.free.push(at);
    }

    /// How many values are held now, and how many places were ever made.
    #[cfg(test)]
    pub(crate) fn counts(&self) -> (usize, usize) {
        (self.items.len() - self.free.len(), self.items.len())
    }
}
