//! A fixed set of threads for the key-check path's database reads.
//!
//! Each cache miss used to go to the runtime's blocking pool behind a
//! semaphore. That pool grows a thread whenever none is idle at the moment
//! a task arrives, and a thread finishing one lookup is not idle yet when
//! the next one is queued: under a steady stream of misses an instance ran
//! 37 lookup threads for 8 connections, each with its own allocator arena.
//! A fixed set, as many as the pool has connections, keeps the threads (and
//! the memory they hold) bounded and reuses them without a hand-off per
//! lookup.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The threads; they end when this is dropped (and their queue is empty).
pub struct LookupWorkers {
    queue: Sender<Job>,
}

/// The workers are gone (only while the process shuts down).
#[derive(Debug)]
pub struct WorkersGone;

impl LookupWorkers {
    /// Start `n` (at least one) threads.
    pub fn new(n: usize) -> Self {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..n.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("keyward-lookup-{i}"))
                .spawn(move || work(&rx));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a key lookup thread");
            }
        }
        LookupWorkers { queue: tx }
    }

    /// Run `f` on one of the threads and wait for its result without
    /// blocking the caller's runtime.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, WorkersGone> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        self.queue.send(job).map_err(|_| WorkersGone)?;
        rx.await.map_err(|_| WorkersGone)
    }
}

fn work(rx: &Mutex<Receiver<Job>>) {
    loop {
        // The lock is held only while taking a job, not while running it.
        let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_on_a_fixed_set_of_named_threads() {
        let workers = Arc::new(LookupWorkers::new(3));
        let mut handles = Vec::new();
        for i in 0..200u32 {
            let w = workers.clone();
            handles.push(tokio::spawn(async move {
                w.run(move || (i * 2, std::thread::current().name().map(str::to_owned)))
                    .await
                    .unwrap()
            }));
        }
        let mut names = std::collections::HashSet::new();
        for (i, h) in handles.into_iter().enumerate() {
            let (doubled, name) = h.await.unwrap();
            assert_eq!(doubled, i as u32 * 2);
            names.insert(name.unwrap());
        }
        assert!(names.len() <= 3, "{names:?}");
        assert!(names.iter().all(|n| n.starts_with("keyward-lookup-")));
    }
}
