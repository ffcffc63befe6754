//! Process-wide memory settings, applied once at start.

/// Arenas glibc's allocator may create. By default it gives threads that
/// allocate at the same time their own arena, up to eight per core, and
/// each keeps the memory it once held. In the ten-minute soak
/// (`scripts/bench-verify soak`) two arenas kept peak RSS at 45.7 MiB
/// instead of 65.8 MiB, with the same request rate.
pub const MALLOC_ARENAS: i32 = 2;

/// Allocations of this size and larger get their own mapping from the
/// system, returned whole when freed. glibc's default starts at 128 KiB but
/// rises to the size of each such block freed (up to 32 MiB), after which
/// the tables that grow and empty with every burst (the cache's, the
/// per-flush usage map, write batches) came from the heap and were freed
/// between the cache's long-lived records, where the pages stayed
/// resident: at 100k cached keys of 1M, 747 bytes resident per key after
/// 30 s idle with it rising, 465 with it fixed here, and the free heap kept
/// from 71 MiB down to 3 MiB.
pub const MMAP_THRESHOLD: i32 = 128 << 10;

/// Apply [`MALLOC_ARENAS`] and [`MMAP_THRESHOLD`] to glibc's allocator,
/// unless the operator chose otherwise (`MALLOC_ARENA_MAX`,
/// `MALLOC_MMAP_THRESHOLD_`, read by glibc itself). Call before any thread
/// starts.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters; it is called
        // before other threads exist, with documented parameters and
        // values in their ranges (a positive arena count, a threshold
        // below the 32 MiB maximum).
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
            }
        }
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            }
        }
    }
}

/// The allocator's heap: bytes in use by the program (blocks of their own
/// mapping included), and bytes free but still held (glibc only; `None`
/// elsewhere). Walks the arenas' free lists under their locks, so it is
/// read when metrics are scraped, not per request.
pub fn heap() -> Option<(usize, usize)> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 only reads the allocator's statistics.
        let info = unsafe { libc::mallinfo2() };
        Some((info.uordblks + info.hblkhd, info.fordblks))
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    None
}

/// Times [`give_back_free_memory`] returned free memory to the system.
pub static GIVE_BACKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Free heap, in bytes, below which [`give_back_free_memory`] never runs.
pub const GIVE_BACK_FREE: usize = 32 << 20;

/// Heap, in bytes, that must have been freed since the last give-back
/// before [`give_back_free_memory`] runs again. Not the 32 MiB it once was:
/// a give-back leaves the pages it returned counted as free, so what the
/// last flushes of a burst freed after it (24 MiB in the 1M-key benchmark)
/// stayed resident for good.
pub const GIVE_BACK_FREED: usize = 8 << 20;

/// The free heap right after the last give-back.
static FREE_AFTER_LAST: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Return the allocator's free memory to the system once much of the heap
/// is free: more than [`GIVE_BACK_FREE`], more than in use, and
/// [`GIVE_BACK_FREED`] more than after the last time.
///
/// A burst of new keys (a first check of 100k keys, say) fills maps that
/// the next flushes and prunes empty again (usage counts, the request
/// log's buffer, rate-limit buckets, the cache's growing table). glibc
/// keeps the pages they held, so without this the process stays near its
/// peak: measured after 100k keys were each checked once, then 75 s idle,
/// 181 MiB resident with 48 MiB in use, and 85 MiB after a `malloc_trim`.
/// It walks the arenas under their locks (15 to 30 ms at that size, while
/// checks wait to allocate), so it runs after a flush (every
/// `KEYWARD_FLUSH_INTERVAL`) and only when that much was freed since, not
/// on every one. Returns the free bytes it found and how long it took,
/// when it ran.
pub fn give_back_free_memory() -> Option<(usize, std::time::Duration)> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::sync::atomic::Ordering;
        // SAFETY: mallinfo2 only reads the allocator's statistics.
        let info = unsafe { libc::mallinfo2() };
        let before = FREE_AFTER_LAST.load(Ordering::Relaxed);
        if info.fordblks <= GIVE_BACK_FREE.max(before.saturating_add(GIVE_BACK_FREED))
            || info.fordblks <= info.uordblks
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
        GIVE_BACKS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        let after = unsafe { libc::mallinfo2() };
        FREE_AFTER_LAST.store(after.fordblks, Ordering::Relaxed);
        Some((info.fordblks, took))
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    None
}
