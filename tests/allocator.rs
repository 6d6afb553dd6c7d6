//! The allocator settings `Application::build` applies, seen through glibc's own counters.
//! A test binary of its own: one process with one test, so no other test's allocations move
//! the process-wide counters it reads.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn connection_buffers_get_pages_of_their_own_and_small_frees_skip_the_fastbins() {
    use sse_digits::memory::{configure_allocator, ALLOCATOR_SETTINGS};

    /// Mapped blocks, and free blocks waiting in fastbins, over all arenas.
    fn counts() -> (usize, usize) {
        // SAFETY: mallinfo2 only reads glibc's statistics under its arena locks.
        let info = unsafe { libc::mallinfo2() };
        (info.hblks, info.smblks)
    }

    /// Allocates 8 KiB buffers (as actix-http does per connection), more than an arena's
    /// top chunk holds, and counts those mapped; frees them, then frees many small chunks
    /// (more than the per-thread cache holds) and counts the fastbin blocks left. The small
    /// chunks come last: freed into fastbins they are never merged, and lying between freed
    /// buffers and the top chunk they would keep the next buffers in the heap.
    fn exercise() -> (usize, usize) {
        let (mapped_before, _) = counts();
        let buffers: Vec<Vec<u8>> = (0..BUFFERS).map(|_| vec![1u8; 8192]).collect();
        let (mapped, _) = counts();
        drop(std::hint::black_box(buffers));
        let small: Vec<Box<[u8; 48]>> = (0..200).map(|_| Box::new([0u8; 48])).collect();
        drop(std::hint::black_box(small));
        (mapped - mapped_before, counts().1)
    }
    const BUFFERS: usize = 200;

    // glibc's defaults: the heap grows for the buffers, and the small frees wait in fastbins.
    let (mapped, fast) = exercise();
    assert_eq!(mapped, 0, "8 KiB buffers mapped before the settings");
    assert!(fast > 0, "no fastbin blocks before the settings");

    configure_allocator(ALLOCATOR_SETTINGS).expect("glibc accepts the settings");
    let (mapped, fast) = exercise();
    // The mapping threshold applies once the arena's top chunk is used up: the few buffers
    // it still holds come from the heap, every later one is mapped.
    assert!(
        mapped >= BUFFERS / 2,
        "{mapped} of {BUFFERS} buffers mapped"
    );
    assert_eq!(fast, 0, "small frees still wait in fastbins");
}
