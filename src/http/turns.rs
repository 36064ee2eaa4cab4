//! One turn per caller utterance. ElevenLabs sends a custom-LLM request
//! again when the first errs or is slow (its cascade timeout; "LLM
//! Cascading", elevenlabs-docs `guides/cascade.mdx`: a custom LLM is
//! retried with the same request, at least three attempts in all). Each
//! turn runs in a task of its own and writes what it says into a
//! [`SharedTurn`]; the [`TurnBook`] finds the turn of a retried request,
//! which then follows that turn from its first word instead of starting a
//! second one, so the turn's tools run once. A turn runs to its end even
//! when every request that follows it has gone.
//!
//! The book is this replica's memory: bounded in turns and kept for
//! [`TURN_MEMORY`]. A retry that reaches another replica starts the turn
//! again there.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::Stream;
use futures::stream;
use tokio::sync::watch;
use tokio::time::Instant;

/// How long a turn stays in the book after it started: longer than any
/// turn runs (the agent deadline is at most 120 s) plus the retries
/// ElevenLabs makes (at least three attempts of at most 15 s each).
pub const TURN_MEMORY: Duration = Duration::from_secs(5 * 60);

/// Turns kept at most per replica.
pub const TURN_CAPACITY: usize = 10_000;

/// What names one caller utterance: the call, and a digest of the
/// conversation that the request carries up to that utterance.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TurnKey {
    pub session: String,
    pub conversation: [u8; 32],
}

/// How a finished turn ends, after its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The agent has spoken; the caller speaks next.
    Stop,
    /// The voice platform is to run its own tool `name` (the call leaves
    /// the agent); `arguments` is the JSON text of its arguments.
    PlatformTool {
        id: String,
        name: String,
        arguments: String,
    },
}

/// One piece of what a turn says, as a follower sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    Text(String),
    Done(Ending),
}

/// What a turn has said so far, and how it ended once it has.
#[derive(Debug, Default)]
struct Progress {
    pieces: Vec<String>,
    ending: Option<Ending>,
}

/// One running or finished turn, followed by any number of requests.
#[derive(Debug)]
pub struct SharedTurn {
    started: Instant,
    progress: Mutex<Progress>,
    /// Ticks after every change of `progress`.
    changed: watch::Sender<()>,
}

impl SharedTurn {
    pub fn new() -> Arc<SharedTurn> {
        Arc::new(SharedTurn {
            started: Instant::now(),
            progress: Mutex::new(Progress::default()),
            changed: watch::channel(()).0,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Progress> {
        // Every change is one push or one assignment: consistent even if a
        // holder panicked.
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds words the turn said. Nothing is added after the end.
    pub fn say(&self, piece: String) {
        let mut progress = self.lock();
        if progress.ending.is_some() {
            return;
        }
        progress.pieces.push(piece);
        drop(progress);
        self.changed.send_replace(());
    }

    /// Ends the turn; only the first ending counts.
    pub fn finish(&self, ending: Ending) {
        let mut progress = self.lock();
        if progress.ending.is_some() {
            return;
        }
        progress.ending = Some(ending);
        drop(progress);
        self.changed.send_replace(());
    }

    /// Everything the turn says from its first word: what it has said so
    /// far at once, then each piece as it comes, then its ending.
    pub fn follow(self: &Arc<Self>) -> impl Stream<Item = Update> + Send + 'static {
        let changes = self.changed.subscribe();
        stream::unfold(
            (self.clone(), changes, 0usize, false),
            |(turn, mut changes, next, ended)| async move {
                if ended {
                    return None;
                }
                loop {
                    // Seen before reading: a change after this wakes us.
                    changes.borrow_and_update();
                    let update = {
                        let progress = turn.lock();
                        match (progress.pieces.get(next), &progress.ending) {
                            (Some(piece), _) => Some(Update::Text(piece.clone())),
                            (None, Some(ending)) => Some(Update::Done(ending.clone())),
                            (None, None) => None,
                        }
                    };
                    match update {
                        Some(Update::Text(piece)) => {
                            return Some((Update::Text(piece), (turn, changes, next + 1, false)));
                        }
                        Some(done) => return Some((done, (turn, changes, next, true))),
                        None => {
                            // The turn holds the sender, so it never closes.
                            let _ = changes.changed().await;
                        }
                    }
                }
            },
        )
    }

    /// All the turn said and its ending, once it has ended.
    pub async fn finished(self: &Arc<Self>) -> (String, Ending) {
        let mut changes = self.changed.subscribe();
        loop {
            changes.borrow_and_update();
            {
                let progress = self.lock();
                if let Some(ending) = &progress.ending {
                    return (progress.pieces.concat(), ending.clone());
                }
            }
            let _ = changes.changed().await;
        }
    }
}

/// Whether a request starts a turn or follows one already booked.
#[derive(Debug, Clone)]
pub enum Joined {
    /// No turn had this key: the caller must run this one.
    First(Arc<SharedTurn>),
    /// A retry: the turn is running or has run.
    Again(Arc<SharedTurn>),
}

/// This replica's running and recent turns by [`TurnKey`], bounded in
/// number and in age.
#[derive(Debug)]
pub struct TurnBook {
    memory: Duration,
    capacity: usize,
    turns: Mutex<HashMap<TurnKey, Arc<SharedTurn>>>,
}

impl Default for TurnBook {
    fn default() -> Self {
        TurnBook::new(TURN_MEMORY, TURN_CAPACITY)
    }
}

impl TurnBook {
    pub fn new(memory: Duration, capacity: usize) -> TurnBook {
        TurnBook {
            memory,
            capacity: capacity.max(1),
            turns: Mutex::new(HashMap::new()),
        }
    }

    /// The turn booked under `key`, or a new one booked now.
    pub fn join(&self, key: TurnKey) -> Joined {
        let mut turns = self.turns.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(turn) = turns.get(&key)
            && turn.started.elapsed() < self.memory
        {
            return Joined::Again(turn.clone());
        }
        if turns.len() >= self.capacity {
            turns.retain(|_, turn| turn.started.elapsed() < self.memory);
        }
        if turns.len() >= self.capacity {
            // Still full: the oldest tenth goes. A turn dropped from the
            // book still runs to its end; only a retry can no longer find it.
            let mut ages: Vec<Instant> = turns.values().map(|turn| turn.started).collect();
            ages.sort_unstable();
            let cut = ages[(self.capacity / 10).min(ages.len() - 1)];
            turns.retain(|_, turn| turn.started > cut);
        }
        let turn = SharedTurn::new();
        turns.insert(key, turn.clone());
        Joined::First(turn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn key(session: &str, n: u8) -> TurnKey {
        TurnKey {
            session: session.into(),
            conversation: [n; 32],
        }
    }

    #[test]
    fn the_same_key_joins_the_same_turn_and_another_starts_its_own() {
        let book = TurnBook::default();
        let Joined::First(first) = book.join(key("conv_1", 1)) else {
            panic!("a new key starts a turn");
        };
        let Joined::Again(again) = book.join(key("conv_1", 1)) else {
            panic!("the same key follows it");
        };
        assert!(Arc::ptr_eq(&first, &again));
        assert!(matches!(book.join(key("conv_1", 2)), Joined::First(_)));
        assert!(matches!(book.join(key("conv_2", 1)), Joined::First(_)));
    }

    #[test]
    fn the_book_is_bounded_and_forgets_old_turns() {
        let book = TurnBook::new(Duration::from_secs(60), 100);
        for n in 0..1000u32 {
            let mut conversation = [0; 32];
            conversation[..4].copy_from_slice(&n.to_be_bytes());
            book.join(TurnKey {
                session: "s".into(),
                conversation,
            });
        }
        let kept = book.turns.lock().unwrap().len();
        assert!(kept <= 100, "{kept}");
        let forgetful = TurnBook::new(Duration::ZERO, 10);
        assert!(matches!(forgetful.join(key("s", 1)), Joined::First(_)));
        assert!(matches!(forgetful.join(key("s", 1)), Joined::First(_)));
    }

    #[tokio::test]
    async fn a_late_follower_hears_everything_and_an_early_one_hears_it_as_it_comes() {
        let turn = SharedTurn::new();
        let early = turn.follow();
        turn.say("Hello".into());
        let late_before_end = turn.follow();
        let writer = {
            let turn = turn.clone();
            tokio::spawn(async move {
                tokio::task::yield_now().await;
                turn.say(", Ana".into());
                turn.finish(Ending::Stop);
                // Neither words nor a second ending count after the end.
                turn.say(" again".into());
                turn.finish(Ending::PlatformTool {
                    id: "x".into(),
                    name: "end_call".into(),
                    arguments: "{}".into(),
                });
            })
        };
        let expected = vec![
            Update::Text("Hello".into()),
            Update::Text(", Ana".into()),
            Update::Done(Ending::Stop),
        ];
        assert_eq!(early.collect::<Vec<_>>().await, expected);
        assert_eq!(late_before_end.collect::<Vec<_>>().await, expected);
        writer.await.unwrap();
        assert_eq!(turn.follow().collect::<Vec<_>>().await, expected);
        assert_eq!(turn.finished().await, ("Hello, Ana".into(), Ending::Stop));
    }
}
