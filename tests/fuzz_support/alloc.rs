//! A counting allocator: how many heap bytes the fuzzed thread holds, and its peak.
//!
//! Why count instead of reading RSS: RSS is per process and never shrinks, so it cannot say
//! which input cost what. The counts are per thread (`cargo test` runs tests on several threads
//! at once) and kept in `const`-initialised thread locals, which need no allocation and no
//! destructor, so the allocator may touch them at any time. Only threads that asked to be
//! tracked ([`track_this_thread`]) are counted; their live bytes are also summed in [`LIVE`] for
//! the watchdog, which stops the run before a blow-up can take the machine's memory.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

pub struct Counting;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Live bytes of all tracked threads together.
pub static LIVE: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    static TRACKED: Cell<bool> = const { Cell::new(false) };
    static LIVE_HERE: Cell<isize> = const { Cell::new(0) };
    static PEAK_HERE: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    // `try_with`: a thread local may already be gone while its thread ends.
    let tracked = TRACKED.try_with(Cell::get).unwrap_or(false);
    if !tracked {
        return;
    }
    let live = LIVE_HERE.try_with(|l| {
        let v = l.get() + delta;
        l.set(v);
        v
    });
    if let Ok(live) = live {
        let _ = PEAK_HERE.try_with(|p| p.set(p.get().max(live)));
    }
    LIVE.fetch_add(delta, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to `System` unchanged; the counting around it allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        note(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Counts this thread's allocations from now on.
pub fn track_this_thread() {
    TRACKED.with(|t| t.set(true));
}

/// Starts a measurement: the peak is reset to what the thread holds now, which is returned.
pub fn start() -> isize {
    let live = LIVE_HERE.with(Cell::get);
    PEAK_HERE.with(|p| p.set(live));
    live
}

/// The most this thread held since [`start`] returned `base`, above `base`.
pub fn peak_since(base: isize) -> usize {
    (PEAK_HERE.with(Cell::get) - base).max(0) as usize
}
