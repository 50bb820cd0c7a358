//! A counting gate for inline scoring: every request that scores in-process holds one slot
//! while it decodes and runs the extractor. The extractor's sessions run one batch each at
//! a time anyway, so more concurrent scorers only add memory (each holds its decoded
//! images and the extractor's buffers, ~25-30 MiB at batch 16): with 32 clients RSS rose
//! to 1.3 GB without the gate. Waiting requests hold nothing but their upload on disk.

use std::sync::{Condvar, Mutex, PoisonError};

/// At most `capacity` holders at once.
pub struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

/// A held slot, given back when dropped.
pub struct Slot<'a>(&'a Slots);

impl Slots {
    /// A gate of `capacity` slots (at least one).
    pub fn new(capacity: usize) -> Self {
        Slots {
            free: Mutex::new(capacity.max(1)),
            freed: Condvar::new(),
        }
    }

    /// Waits for a free slot (blocking: call it on the blocking pool).
    pub fn acquire(&self) -> Slot<'_> {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(PoisonError::into_inner);
        }
        *free -= 1;
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut free = self.0.free.lock().unwrap_or_else(PoisonError::into_inner);
        *free += 1;
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn never_more_holders_than_slots() {
        let slots = Arc::new(Slots::new(2));
        let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (slots, now, peak) = (slots.clone(), now.clone(), peak.clone());
                std::thread::spawn(move || {
                    let _slot = slots.acquire();
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    now.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }
}
