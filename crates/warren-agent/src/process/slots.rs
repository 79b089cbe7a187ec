//! Process slots: the `max_processes` limit, and the pids to stop at shutdown.
//!
//! A slot is taken before a spawn (so a burst of requests cannot overshoot
//! the limit) and released when its process has exited, run or managed.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::AgentError;

/// The slots of one supervisor.
#[derive(Debug)]
pub struct Slots {
    max: usize,
    state: Mutex<State>,
    /// Woken when the last slot is released.
    idle: Notify,
}

#[derive(Debug, Default)]
struct State {
    taken: usize,
    pids: HashSet<i32>,
}

/// One taken slot; released on drop.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Slots>,
    pid: Option<i32>,
}

impl Slots {
    /// At most `max` processes at once.
    pub fn new(max: usize) -> Arc<Slots> {
        Arc::new(Slots {
            max,
            state: Mutex::default(),
            idle: Notify::new(),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a slot, or fails with `TooManyProcesses` (429).
    pub fn acquire(self: &Arc<Self>) -> Result<Slot, AgentError> {
        let mut state = self.state();
        if state.taken >= self.max {
            return Err(AgentError::TooManyProcesses(self.max));
        }
        state.taken += 1;
        Ok(Slot {
            slots: self.clone(),
            pid: None,
        })
    }

    /// Pids (= process groups) of every process holding a slot.
    pub fn pids(&self) -> Vec<i32> {
        self.state().pids.iter().copied().collect()
    }

    /// Waits until no slot is taken, or `deadline`. Returns whether idle.
    pub async fn wait_idle(&self, deadline: Instant) -> bool {
        loop {
            let notified = self.idle.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.state().taken == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }
}

impl Slot {
    /// Records the pid of the process started in this slot.
    pub fn bind(&mut self, pid: i32) {
        self.pid = Some(pid);
        self.slots.state().pids.insert(pid);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.slots.state();
        state.taken -= 1;
        if let Some(pid) = self.pid {
            state.pids.remove(&pid);
        }
        if state.taken == 0 {
            self.slots.idle.notify_waiters();
        }
    }
}
