//! Process-wide memory settings, applied once at start.

/// Arenas glibc's allocator may create. By default it gives threads that
/// allocate at the same time their own arena, up to eight per core, and
/// each keeps the memory it once held. In the ten-minute soak
/// (`scripts/bench-verify soak`) two arenas kept peak RSS at 45.7 MiB
/// instead of 65.8 MiB, with the same request rate.
pub const MALLOC_ARENAS: i32 = 2;

/// Limit glibc's allocator arenas to [`MALLOC_ARENAS`], unless the operator
/// chose a number with `MALLOC_ARENA_MAX`. Call before any thread starts.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes allocator parameters; it is called
        // before other threads exist, and M_ARENA_MAX is a documented
        // parameter taking a positive count.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
        }
    }
}

/// Free heap, in bytes, that [`give_back_free_memory`] waits for before it
/// returns memory to the system: freed since it last did.
pub const GIVE_BACK_ABOVE: usize = 32 << 20;

/// The free heap right after the last give-back.
static FREE_AFTER_LAST: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Return the allocator's free memory to the system once much more of the
/// heap is free than after the last time: more than [`GIVE_BACK_ABOVE`]
/// freed since, and more free than in use.
///
/// A burst of new keys (a first check of 100k keys, say) fills maps that
/// the next flushes and prunes empty again (usage counts, "last used"
/// times, the request log's buffer, rate-limit buckets). glibc keeps the
/// pages they held, interleaved with the cache's long-lived records, so
/// without this the process stays near its peak: measured after 100k keys
/// were each checked once, then 75 s idle, 181 MiB resident with 48 MiB in
/// use, and 85 MiB after a `malloc_trim`. It walks the arenas under their
/// locks (15 to 30 ms at that size, while checks wait to allocate), so it
/// runs only when that much was freed since, not on every flush. Returns
/// the free bytes it found and how long it took, when it ran.
pub fn give_back_free_memory() -> Option<(usize, std::time::Duration)> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::sync::atomic::Ordering;
        // SAFETY: mallinfo2 only reads the allocator's statistics.
        let info = unsafe { libc::mallinfo2() };
        let before = FREE_AFTER_LAST.load(Ordering::Relaxed);
        if info.fordblks <= before.saturating_add(GIVE_BACK_ABOVE) || info.fordblks <= info.uordblks
        {
            // Less free than after the last time: count from here.
            FREE_AFTER_LAST.store(before.min(info.fordblks), Ordering::Relaxed);
            return None;
        }
        let started = std::time::Instant::now();
        // SAFETY: malloc_trim releases free memory; 0 keeps no padding.
        unsafe {
            libc::malloc_trim(0);
        }
        let took = started.elapsed();
        // SAFETY: as above.
        let after = unsafe { libc::mallinfo2() };
        FREE_AFTER_LAST.store(after.fordblks, Ordering::Relaxed);
        Some((info.fordblks, took))
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    None
}
