//! Panics inside the fuzzed code are findings, not noise: while a thread runs a case, its
//! panics are recorded (message and place) instead of printed; other threads (the other tests
//! of `cargo test`) keep the default hook.

use std::cell::{Cell, RefCell};
use std::sync::Once;

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
    static LAST: RefCell<String> = const { RefCell::new(String::new()) };
}

fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if QUIET.with(Cell::get) {
                LAST.with(|l| *l.borrow_mut() = info.to_string());
            } else {
                default(info);
            }
        }));
    });
}

/// Runs `f` with this thread's panics recorded rather than printed.
pub fn quietly<T>(f: impl FnOnce() -> T) -> T {
    install();
    QUIET.with(|q| q.set(true));
    let out = f();
    QUIET.with(|q| q.set(false));
    out
}

/// The last panic recorded on this thread: `panicked at FILE:LINE:COL:\nMESSAGE`.
pub fn last() -> String {
    LAST.with(|l| l.borrow().clone())
}
