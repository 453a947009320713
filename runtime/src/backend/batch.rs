//! Group commit: the calls that arrive while one batch is being written are written
//! together in the next, one statement and one round trip for all of them. Nothing
//! waits for a batch to fill: a call that finds no batch under way starts one at once,
//! so a lone call costs what it did alone, and under load the batches grow by
//! themselves to what arrived during the last write.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

/// Gathers calls of one kind (items `T`, each answered with an `R`) into batches of at
/// most `most`, written by at most `writers` batches at once.
pub(crate) struct Batcher<T, R> {
    queue: Mutex<Queue<T, R>>,
    most: usize,
    writers: usize,
}

struct Queue<T, R> {
    waiting: Vec<(T, oneshot::Sender<R>)>,
    /// Batches being written now.
    writing: usize,
}

impl<T: Send + 'static, R: Send + 'static> Batcher<T, R> {
    /// Batches of at most `most` items (at least 1), at most `writers` (at least 1) written at once.
    pub(crate) fn new(most: usize, writers: usize) -> Self {
        Self {
            queue: Mutex::new(Queue { waiting: Vec::new(), writing: 0 }),
            most: most.max(1),
            writers: writers.max(1),
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue<T, R>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `item` to the next batch and waits for its answer. `write` writes one batch
    /// and answers each of its items, in order. `None` when the batch's writer failed
    /// without answering (it panicked).
    ///
    /// The batch is written by a task of its own: a caller that gives up waiting (a
    /// request whose client hung up) does not stop the write of the others' items.
    pub(crate) async fn submit<W, Fut>(self: &Arc<Self>, item: T, write: W) -> Option<R>
    where
        W: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<R>> + Send,
    {
        let (answer, answered) = oneshot::channel();
        let start = {
            let mut queue = self.queue();
            queue.waiting.push((item, answer));
            let start = queue.writing < self.writers;
            queue.writing += usize::from(start);
            start
        };
        if start {
            let batcher = Arc::clone(self);
            tokio::spawn(async move { batcher.write_all(write).await });
        }
        answered.await.ok()
    }

    /// Writes batches until none is waiting.
    async fn write_all<W, Fut>(self: Arc<Self>, write: W)
    where
        W: Fn(Vec<T>) -> Fut,
        Fut: Future<Output = Vec<R>>,
    {
        let writer = Writer(&self);
        loop {
            let batch: Vec<_> = {
                let mut queue = self.queue();
                if queue.waiting.is_empty() {
                    queue.writing -= 1;
                    std::mem::forget(writer);
                    return;
                }
                let take = queue.waiting.len().min(self.most);
                queue.waiting.drain(..take).collect()
            };
            let (items, answers): (Vec<T>, Vec<_>) = batch.into_iter().unzip();
            for (answer, result) in answers.into_iter().zip(write(items).await) {
                let _ = answer.send(result);
            }
        }
    }
}

/// A writer that stops without emptying the queue (its `write` panicked): it is no
/// longer counted, and the calls waiting are answered `None` rather than left waiting
/// for a writer that may never come.
struct Writer<'a, T, R>(&'a Batcher<T, R>);

impl<T, R> Drop for Writer<'_, T, R> {
    fn drop(&mut self) {
        let mut queue = self.0.queue.lock().unwrap_or_else(PoisonError::into_inner);
        queue.writing -= 1;
        queue.waiting.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_that_arrive_together_are_written_together_and_each_gets_its_answer() {
        let batcher = Arc::new(Batcher::<u32, u32>::new(64, 1));
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let calls = (0..200u32).map(|n| {
            let (batcher, sizes) = (Arc::clone(&batcher), Arc::clone(&sizes));
            tokio::spawn(async move {
                batcher
                    .submit(n, move |items: Vec<u32>| {
                        let sizes = Arc::clone(&sizes);
                        async move {
                            sizes.lock().unwrap().push(items.len());
                            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                            items.into_iter().map(|n| n * 2).collect()
                        }
                    })
                    .await
            })
        });
        let answers: Vec<_> = futures_answers(calls).await;
        assert_eq!(answers, (0..200).map(|n| Some(n * 2)).collect::<Vec<_>>());
        let sizes = sizes.lock().unwrap();
        assert!(sizes.iter().all(|&size| size <= 64), "a batch over the limit: {sizes:?}");
        assert!(sizes.len() < 200, "no call was batched with another: {sizes:?}");
    }

    #[tokio::test]
    async fn a_writer_that_panics_answers_none_and_the_next_call_is_written() {
        let batcher = Arc::new(Batcher::<u32, u32>::new(8, 1));
        let failed = batcher.submit(1, |_: Vec<u32>| async { panic!("the write failed") }).await;
        assert_eq!(failed, None);
        let written = batcher.submit(2, |items: Vec<u32>| async move { items }).await;
        assert_eq!(written, Some(2));
    }

    async fn futures_answers(calls: impl Iterator<Item = tokio::task::JoinHandle<Option<u32>>>) -> Vec<Option<u32>> {
        let mut answers = Vec::new();
        for call in calls.collect::<Vec<_>>() {
            answers.push(call.await.unwrap());
        }
        answers
    }
}
