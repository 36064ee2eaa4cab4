//! Each session's past exchanges, bounded per session and in sessions,
//! the least recently used session forgotten first.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

/// One answered turn, as the next turns of the session see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Exchange {
    pub(super) user: String,
    pub(super) assistant: String,
}

/// Past exchanges per session, bounded per session and in sessions, the
/// least recently used session forgotten first.
pub(super) struct Histories {
    pub(super) max_exchanges: usize,
    pub(super) max_sessions: usize,
    pub(super) state: Mutex<Sessions>,
}

#[derive(Default)]
pub(super) struct Sessions {
    pub(super) by_id: HashMap<String, Session>,
    /// Session ids by the tick of their last use, oldest first.
    pub(super) by_use: BTreeMap<u64, String>,
    pub(super) clock: u64,
}

pub(super) struct Session {
    pub(super) used: u64,
    pub(super) exchanges: VecDeque<Exchange>,
}

impl Sessions {
    /// Marks `id` as just used.
    pub(super) fn touch(&mut self, id: &str) -> Option<&mut Session> {
        let session = self.by_id.get_mut(id)?;
        self.clock += 1;
        self.by_use.remove(&session.used);
        self.by_use.insert(self.clock, id.to_owned());
        session.used = self.clock;
        Some(session)
    }
}

impl Histories {
    pub(super) fn new(max_exchanges: usize, max_sessions: usize) -> Histories {
        Histories {
            max_exchanges,
            max_sessions,
            state: Mutex::new(Sessions::default()),
        }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Sessions> {
        // The maps stay consistent even if a holder panicked: every
        // mutation is a single insert or remove.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn recall(&self, id: &str) -> Vec<Exchange> {
        self.lock()
            .touch(id)
            .map(|session| session.exchanges.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub(super) fn record(&self, id: &str, exchange: Exchange) {
        let mut sessions = self.lock();
        if sessions.touch(id).is_none() {
            if sessions.by_id.len() >= self.max_sessions
                && let Some((_, oldest)) = sessions.by_use.pop_first()
            {
                sessions.by_id.remove(&oldest);
            }
            sessions.clock += 1;
            let used = sessions.clock;
            sessions.by_use.insert(used, id.to_owned());
            sessions.by_id.insert(
                id.to_owned(),
                Session {
                    used,
                    exchanges: VecDeque::new(),
                },
            );
        }
        if let Some(session) = sessions.by_id.get_mut(id) {
            session.exchanges.push_back(exchange);
            while session.exchanges.len() > self.max_exchanges {
                session.exchanges.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(n: usize) -> Exchange {
        Exchange {
            user: format!("q{n}"),
            assistant: format!("a{n}"),
        }
    }

    #[test]
    fn a_session_keeps_only_its_latest_exchanges() {
        let history = Histories::new(2, 10);
        for n in 0..5 {
            history.record("s", exchange(n));
        }
        assert_eq!(history.recall("s"), [exchange(3), exchange(4)]);
        assert_eq!(history.recall("other"), []);
    }

    #[test]
    fn the_least_recently_used_session_is_forgotten_first() {
        let history = Histories::new(2, 2);
        history.record("a", exchange(1));
        history.record("b", exchange(2));
        // Reading "a" makes "b" the oldest.
        assert_eq!(history.recall("a"), [exchange(1)]);
        history.record("c", exchange(3));
        assert_eq!(history.recall("b"), []);
        assert_eq!(history.recall("a"), [exchange(1)]);
        assert_eq!(history.recall("c"), [exchange(3)]);
        let sessions = history.lock();
        assert_eq!(sessions.by_id.len(), 2);
        assert_eq!(sessions.by_use.len(), 2);
    }
}
