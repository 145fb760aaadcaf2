//! A future polled only when its own waker fired. A session's task wakes for every read
//! in either direction, and a `select!` polls each branch on every wake: the relay's other
//! direction (a read that finds nothing, with its readiness check) and the stop signal (a
//! `watch` receiver, ~170 instructions a poll, for a signal that fires once a session at
//! most). Behind a `Gate`, a poll that nothing woke is an atomic swap and a waker
//! comparison. Transparent for any future that keeps the `Future` contract (it is polled
//! again only after it woke).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

pub struct Gate<F> {
    inner: Pin<Box<F>>,
    flag: Arc<Flag>,
    /// The waker the inner future gets (it wraps `flag`); made once.
    waker: Waker,
    polled: bool,
}

/// Set by the inner future's wake-ups; passes them on to the task polling the gate.
struct Flag {
    fired: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        let task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(w) = task.as_ref() {
            w.wake_by_ref();
        }
    }
}

impl<F: Future> Gate<F> {
    pub fn new(inner: F) -> Gate<F> {
        let flag = Arc::new(Flag {
            fired: AtomicBool::new(false),
            task: Mutex::new(None),
        });
        Gate {
            inner: Box::pin(inner),
            waker: Waker::from(Arc::clone(&flag)),
            flag,
            polled: false,
        }
    }
}

impl<F: Future> Future for Gate<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        {
            let mut task = this
                .flag
                .task
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !task.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        // Cleared before the inner poll: a wake-up during it is seen at the next poll.
        if !this.flag.fired.swap(false, Ordering::AcqRel) && this.polled {
            return Poll::Pending;
        }
        this.polled = true;
        this.inner
            .as_mut()
            .poll(&mut Context::from_waker(&this.waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts its polls; ready once the watch says so.
    fn counted(
        mut rx: tokio::sync::watch::Receiver<bool>,
        polls: Arc<AtomicUsize>,
    ) -> impl Future<Output = ()> {
        let mut inner = Box::pin(async move {
            while !*rx.borrow_and_update() {
                let _ = rx.changed().await;
            }
        });
        std::future::poll_fn(move |cx| {
            polls.fetch_add(1, Ordering::Relaxed);
            inner.as_mut().poll(cx)
        })
    }

    #[tokio::test]
    async fn polls_the_inner_future_only_when_it_woke() {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let polls = Arc::new(AtomicUsize::new(0));
        let mut gate = std::pin::pin!(Gate::new(counted(rx, Arc::clone(&polls))));
        let noop = Waker::noop();
        for _ in 0..100 {
            assert!(
                gate.as_mut()
                    .poll(&mut Context::from_waker(noop))
                    .is_pending()
            );
        }
        assert_eq!(
            polls.load(Ordering::Relaxed),
            1,
            "polled once, then only on its wake"
        );
        tx.send(true).expect("the gate holds the receiver");
        tokio::time::timeout(std::time::Duration::from_secs(5), gate)
            .await
            .expect("the gate passes the wake-up on");
        assert_eq!(polls.load(Ordering::Relaxed), 2);
    }
}
