//! A counting global allocator that tags every allocation made while the thread is inside a
//! `Call` method, so the bench can tell the bytes the calls hold from the bytes the fakes hold.
//!
//! Each block carries a 16-byte header just before the pointer handed out: its size and whether
//! it was allocated inside the core. Freeing a tagged block (wherever it happens) subtracts it.
//! Blocks that leave the core in an `Output` are untagged by the probe ([`untag`]), so what is
//! left counted is what the calls keep.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, Ordering};

/// The allocator: `System` plus the header.
pub(crate) struct Counting;

const HEADER: usize = 16;

/// Bytes live in tagged blocks.
static TAGGED: AtomicI64 = AtomicI64::new(0);

thread_local! {
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as inside (or outside) the core: later allocations are tagged (or not).
pub(crate) fn set_inside(inside: bool) {
    INSIDE.with(|c| c.set(inside));
}

fn inside() -> bool {
    INSIDE.try_with(Cell::get).unwrap_or(false)
}

/// Bytes live in blocks allocated inside the core and not untagged since.
pub(crate) fn tagged_bytes() -> i64 {
    TAGGED.load(Ordering::Relaxed)
}

fn offset(layout: Layout) -> usize {
    layout.align().max(HEADER)
}

fn outer(layout: Layout) -> Option<Layout> {
    Layout::from_size_align(layout.size().checked_add(offset(layout))?, offset(layout)).ok()
}

/// # Safety
/// `user` was returned by [`Counting`].
unsafe fn header(user: *mut u8) -> (*mut usize, *mut usize) {
    // SAFETY: the header lies within the block, just before `user`, aligned to 8.
    unsafe { (user.sub(16).cast::<usize>(), user.sub(8).cast::<usize>()) }
}

/// Stops counting the block at `ptr` (a `String`'s or `Vec`'s buffer that left the core).
///
/// # Safety
/// `ptr` is the start of a live heap block from this allocator (capacity > 0).
pub(crate) unsafe fn untag(ptr: *const u8) {
    // SAFETY: the caller's contract.
    let (size, tag) = unsafe { header(ptr.cast_mut()) };
    // SAFETY: as above; the header was written by `alloc`.
    unsafe {
        if *tag != 0 {
            *tag = 0;
            TAGGED.fetch_sub(*size as i64, Ordering::Relaxed);
        }
    }
}

// SAFETY: every block is `System`'s with the header in front; the layouts given to `System`
// are recomputed identically on free.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(big) = outer(layout) else {
            return std::ptr::null_mut();
        };
        // SAFETY: `big` has a non-zero size.
        let base = unsafe { System.alloc(big) };
        if base.is_null() {
            return base;
        }
        // SAFETY: `offset` is within the block.
        let user = unsafe { base.add(offset(layout)) };
        let tagged = inside();
        // SAFETY: the header is in the block.
        unsafe {
            let (size, tag) = header(user);
            *size = layout.size();
            *tag = usize::from(tagged);
        }
        if tagged {
            TAGGED.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        user
    }

    unsafe fn dealloc(&self, user: *mut u8, layout: Layout) {
        // SAFETY: `user` came from `alloc`.
        let (size, tag) = unsafe { header(user) };
        // SAFETY: as above.
        unsafe {
            if *tag != 0 {
                TAGGED.fetch_sub(*size as i64, Ordering::Relaxed);
            }
        }
        let big = outer(layout).expect("the layout was valid when allocated");
        // SAFETY: the block was allocated by `System` with `big`.
        unsafe { System.dealloc(user.sub(offset(layout)), big) }
    }

    unsafe fn realloc(&self, user: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `user` came from `alloc`.
        let (size, tag) = unsafe { header(user) };
        // SAFETY: as above.
        let (old_size, old_tag) = unsafe { (*size, *tag != 0) };
        let Some(new_big) = new_size
            .checked_add(offset(layout))
            .filter(|n| Layout::from_size_align(*n, offset(layout)).is_ok())
        else {
            return std::ptr::null_mut();
        };
        let big = outer(layout).expect("the layout was valid when allocated");
        // SAFETY: the block is `System`'s with layout `big`; the new size is valid.
        let base = unsafe { System.realloc(user.sub(offset(layout)), big, new_big) };
        if base.is_null() {
            return base;
        }
        // SAFETY: `offset` is within the block.
        let user = unsafe { base.add(offset(layout)) };
        let tagged = inside();
        // SAFETY: the header is in the block.
        unsafe {
            let (size, tag) = header(user);
            *size = new_size;
            *tag = usize::from(tagged);
        }
        if old_tag {
            TAGGED.fetch_sub(old_size as i64, Ordering::Relaxed);
        }
        if tagged {
            TAGGED.fetch_add(new_size as i64, Ordering::Relaxed);
        }
        user
    }
}
