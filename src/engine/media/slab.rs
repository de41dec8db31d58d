//! The media of every open leg in one slab, apart from the legs themselves.
//!
//! An RTP packet is the engine's commonest input. Its stream's entry in the stream
//! table names a slot here and the stream in the slab's [`StreamStore`]; the two hold
//! all the packet needs: the leg's media state ([`LegMedia`]: one-way tracker, last
//! packet), the stream's statistics, and the few leg facts that decide what the
//! packet does (answered and off hold, ended, a media timer pending, one-way audio
//! already raised, the capture source). Both are found from the table entry alone, so
//! their memory is fetched side by side, and a packet never reads the `Leg`, which is
//! large and cold. The engine keeps these facts in step whenever the leg's state or
//! holds change, and the leg reads its media here when it needs it (its end, the media
//! rules, its record).
//!
//! Slots are reused ([`Slots`]: a free list, growth by an eighth) so that its
//! spare room stays small next to the memory of the legs it serves.

use super::leg::{LegMedia, StreamStore};
use super::slots::Slots;
use crate::engine::input::SourceId;

/// The slot of one leg's media in [`MediaSlab`].
pub type MediaSlot = u32;

/// The hot record of one leg: what an RTP packet of the leg reads and writes.
#[derive(Default)]
pub struct LegMediaSlot {
    /// The leg's id (0: a free slot).
    pub leg: u64,
    /// The capture source whose clock the leg's deadlines run on.
    pub source: SourceId,
    /// The leg is answered and not on hold: one-way flow counts, the media timer runs.
    pub talking: bool,
    /// The leg has ended: its streams no longer take packets.
    pub ended: bool,
    /// A media-timeout deadline is pending.
    pub media_timer: bool,
    /// `one_way_audio` was raised on the leg.
    pub one_way_raised: bool,
    pub media: LegMedia,
}

/// The slots of every leg's media; see the module docs.
#[derive(Default)]
pub struct MediaSlab {
    slots: Slots<LegMediaSlot>,
    streams: StreamStore,
}

impl MediaSlab {
    /// A slot for the media of a new leg `leg` (an id above 0).
    pub fn insert(&mut self, leg: u64, source: SourceId) -> MediaSlot {
        let record = LegMediaSlot {
            leg,
            source,
            ..LegMediaSlot::default()
        };
        self.slots.add(record)
    }

    pub fn get(&self, slot: MediaSlot) -> Option<&LegMediaSlot> {
        self.slots.get(slot)
    }

    pub fn get_mut(&mut self, slot: MediaSlot) -> Option<&mut LegMediaSlot> {
        self.slots.get_mut(slot)
    }

    /// The slot and the store of every leg's streams, to read or write the streams.
    pub fn with_streams(
        &mut self,
        slot: MediaSlot,
    ) -> Option<(&mut LegMediaSlot, &mut StreamStore)> {
        let s = self.slots.get_mut(slot)?;
        Some((s, &mut self.streams))
    }

    /// The store of every leg's streams.
    pub fn streams(&self) -> &StreamStore {
        &self.streams
    }

    /// Frees the slot of a leg that goes, and its streams.
    pub fn remove(&mut self, slot: MediaSlot) {
        if let Some(s) = self.slots.get_mut(slot) {
            if s.leg != 0 {
                s.media.release(&mut self.streams);
                *s = LegMediaSlot::default();
                self.slots.free(slot);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_slots_are_reused_empty() {
        let mut slab = MediaSlab::default();
        let a = slab.insert(1, SourceId(0));
        let b = slab.insert(2, SourceId(3));
        assert_ne!(a, b);
        slab.get_mut(a).unwrap().talking = true;
        slab.remove(a);
        slab.remove(a); // twice: freed once
        let c = slab.insert(3, SourceId(1));
        assert_eq!(c, a);
        let s = slab.get(c).unwrap();
        assert_eq!((s.leg, s.source, s.talking), (3, SourceId(1), false));
        let d = slab.insert(4, SourceId(0));
        assert_ne!(d, a);
        assert_ne!(d, b);
        assert_eq!(slab.get(b).unwrap().leg, 2);
    }
}
