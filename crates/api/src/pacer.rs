//! Spreading a change's fan-out to a worker's streams over time, so that a
//! change sent to a thousand streams does not hold up the requests that
//! arrive meanwhile.
//!
//! If every stream waited on the feed's broadcast itself, one change would
//! make each worker write to all of its streams at once (about 500 socket
//! writes each with 1,000 streams on two workers). A request that came in
//! then waited twice: behind those writes in the worker's queue, and in the
//! kernel, whose loopback receive work for the burst went to `ksoftirqd`,
//! which waited milliseconds for a CPU. Here the streams of a worker wait on
//! one [`Pacer`] instead, and one small task per worker wakes them a few per
//! millisecond tick ([`MIN_BATCH`], more when there are so many streams that a
//! fan-out would take longer than [`MAX_TICKS`] ticks). A stream woken late
//! sends everything that came meanwhile in one write, so busy feeds also cost
//! fewer writes. Measured with the stream bench (1,000 streams, a change every
//! 20 ms; README): GET p99 7.5–8.2 ms with every stream woken at once, 2.8–4.7
//! ms with batches of 16 between which the worker only yielded, 0.18–0.33 ms
//! paced (0.12–0.15 ms with no stream open, in the same runs); a change
//! reached every client within 79–86 ms (p99) instead of 35 ms.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{interval, MissedTickBehavior};

/// How often the pump wakes another batch of streams.
const TICK: Duration = Duration::from_millis(1);
/// Streams woken per tick, at least: about 8,000 socket writes a second per
/// worker, few enough that the kernel keeps up with them as they come.
const MIN_BATCH: usize = 8;
/// A fan-out takes at most this many ticks (64 ms on an idle worker): with
/// more than `MIN_BATCH * MAX_TICKS` streams on a worker, batches grow so
/// that a change still reaches every client well within the feed's
/// latency target (300 ms).
const MAX_TICKS: usize = 64;

/// This worker's waiting streams, for one feed.
#[derive(Default)]
pub struct Pacer {
    /// Moves on once per new entry (or batch of them) in the feed.
    generation: Cell<u64>,
    /// Each waiting stream's waker, by the stream's key: once per stream,
    /// and gone with the stream, so clients that come and go while the feed
    /// is quiet leave nothing behind.
    waiting: RefCell<HashMap<u64, Waker>>,
    next_key: Cell<u64>,
}

/// A worker's pacer, made at its first stream. The app's factory runs once
/// per worker thread, so app data made there is the worker's own.
#[derive(Default)]
pub struct WorkerPacer(OnceCell<Rc<Pacer>>);

impl WorkerPacer {
    /// This worker's pacer, following `last`; the first call starts its task
    /// on this thread (an actix worker: call it from a handler).
    pub fn get(&self, last: impl FnOnce() -> watch::Receiver<i64>) -> Rc<Pacer> {
        self.0.get_or_init(|| Pacer::start(last())).clone()
    }
}

impl Pacer {
    /// A pacer whose task, on this thread's local set, wakes its streams
    /// whenever `last` moves, until its sender is gone.
    pub fn start(last: watch::Receiver<i64>) -> Rc<Pacer> {
        let pacer = Rc::new(Pacer::default());
        tokio::task::spawn_local(pump(pacer.clone(), last));
        pacer
    }

    /// A key for a new stream, for [`Pacer::next`] and [`Pacer::forget`].
    pub fn key(&self) -> u64 {
        let key = self.next_key.get();
        self.next_key.set(key + 1);
        key
    }

    /// The current generation: read it before looking for new entries, then
    /// [`Pacer::next`] with it, so a change in between is not missed.
    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// Wait, as the stream `key`, until the generation passes `seen`.
    pub async fn next(&self, seen: u64, key: u64) {
        poll_fn(|cx| {
            if self.generation.get() != seen {
                return Poll::Ready(());
            }
            self.waiting
                .borrow_mut()
                .entry(key)
                .or_insert_with(|| cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// The stream `key` has ended.
    pub fn forget(&self, key: u64) {
        self.waiting.borrow_mut().remove(&key);
    }

    fn advance(&self) -> Vec<Waker> {
        self.generation.set(self.generation.get() + 1);
        self.waiting.borrow_mut().drain().map(|(_, w)| w).collect()
    }
}

/// Each time the feed's last Seq moves, wake the streams that were waiting, a
/// batch per tick. The first batch goes at once (the interval's first tick,
/// and after a quiet spell, is due immediately); a stream woken earlier in a
/// fan-out that sees a newer change waits for the next fan-out, so each
/// stream is woken once per fan-out.
async fn pump(pacer: Rc<Pacer>, mut last: watch::Receiver<i64>) {
    let mut tick = interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    while last.changed().await.is_ok() {
        let woken = pacer.advance();
        for batch in woken.chunks(batch_size(woken.len())) {
            tick.tick().await;
            batch.iter().for_each(Waker::wake_by_ref);
        }
    }
    // The feed is gone (the app stopped): let every stream find that out.
    pacer.advance().iter().for_each(Waker::wake_by_ref);
}

/// Streams woken per tick when `waiting` wait.
fn batch_size(waiting: usize) -> usize {
    MIN_BATCH.max(waiting.div_ceil(MAX_TICKS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::task::Context;

    #[test]
    fn each_stream_waits_once_and_an_ended_one_leaves_nothing() {
        let pacer = Pacer::default();
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let seen = pacer.generation();
        let (a, b) = (pacer.key(), pacer.key());
        for _ in 0..3 {
            // Polled again and again (a keep-alive, say): still one waker each.
            assert!(pin!(pacer.next(seen, a)).poll(&mut cx).is_pending());
            assert!(pin!(pacer.next(seen, b)).poll(&mut cx).is_pending());
        }
        assert_eq!(pacer.waiting.borrow().len(), 2);
        pacer.forget(b);
        assert_eq!(pacer.advance().len(), 1);
        assert!(pin!(pacer.next(seen, a)).poll(&mut cx).is_ready());
        assert!(pacer.waiting.borrow().is_empty());
    }

    #[test]
    fn a_fan_out_is_spread_over_ticks_but_never_over_more_than_max_ticks() {
        assert_eq!(batch_size(1), MIN_BATCH);
        assert_eq!(batch_size(500), MIN_BATCH);
        assert_eq!(batch_size(MIN_BATCH * MAX_TICKS + 1), MIN_BATCH + 1);
        for waiting in [1_usize, 500, 5_000, 50_000] {
            assert!(waiting.div_ceil(batch_size(waiting)) <= MAX_TICKS);
        }
    }

    /// With time paused, the runtime moves the clock only when every task
    /// waits on a timer: so each batch is what one tick woke.
    #[tokio::test(start_paused = true)]
    async fn streams_are_woken_a_batch_per_tick_and_the_first_batch_at_once() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let (send, receive) = watch::channel(0);
                let pacer = Pacer::start(receive);
                let streams = 3 * MIN_BATCH;
                let start = tokio::time::Instant::now();
                let mut waits = Vec::new();
                for _ in 0..streams {
                    let pacer = pacer.clone();
                    let seen = pacer.generation();
                    let key = pacer.key();
                    waits.push(tokio::task::spawn_local(async move {
                        pacer.next(seen, key).await;
                        start.elapsed()
                    }));
                }
                tokio::task::yield_now().await; // every stream now waits
                send.send(1).unwrap();
                let mut at = Vec::new();
                for wait in waits {
                    at.push(wait.await.unwrap());
                }
                at.sort();
                let per_tick: Vec<usize> = at.chunk_by(|a, b| a == b).map(<[_]>::len).collect();
                assert_eq!(per_tick, [MIN_BATCH; 3], "woken at {at:?}");
                assert_eq!(at[0], Duration::ZERO, "the first batch goes at once");
                assert_eq!(at[streams - 1], 2 * TICK);
            })
            .await;
    }
}
