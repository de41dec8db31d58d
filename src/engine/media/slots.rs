//! A vector of reusable slots named by `u32` indexes: a freed slot is handed out again
//! before the vector grows, and it grows by an eighth at a time (at least
//! [`MIN_GROWTH`]) so that its spare room stays small next to what it holds. The media
//! slab (one slot per leg) and the stream store (one per RTP stream) are both this.

/// Slots added at least when the vector is full.
const MIN_GROWTH: usize = 16;

pub struct Slots<T> {
    items: Vec<T>,
    free: Vec<u32>,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots {
            items: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> Slots<T> {
    /// Puts `item` in a freed slot, else in a new one; returns its index.
    pub fn add(&mut self, item: T) -> u32 {
        if let Some(i) = self.free.pop() {
            if let Some(slot) = self.items.get_mut(i as usize) {
                *slot = item;
                return i;
            }
        }
        if self.items.len() == self.items.capacity() {
            self.items
                .reserve_exact((self.items.len() / 8).max(MIN_GROWTH));
        }
        self.items.push(item);
        // Bounded by the engine's legs (times streams per leg), far below u32::MAX.
        (self.items.len() - 1) as u32
    }

    pub fn get(&self, i: u32) -> Option<&T> {
        self.items.get(i as usize)
    }

    pub fn get_mut(&mut self, i: u32) -> Option<&mut T> {
        self.items.get_mut(i as usize)
    }

    /// Marks slot `i` free for the next [`Slots::add`]. The caller frees a slot once
    /// and empties what it holds first, as it sees fit.
    pub fn free(&mut self, i: u32) {
        if (i as usize) < self.items.len() {
            self.free.push(i);
        }
    }
}
