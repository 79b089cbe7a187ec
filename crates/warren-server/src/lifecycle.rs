//! The reaper: one background task that, every tick,
//!
//! 1. writes the activity recorded in memory since the last tick to the
//!    database (one transaction, however many requests came in),
//! 2. stops running sandboxes idle for longer than their `timeout_secs`
//!    (hibernates those created with `auto_wake`),
//! 3. destroys sandboxes past their ttl (`expires_at`), or hibernates them
//!    when the E2B routes created them with `autoPause`,
//! 4. every few ticks, marks running sandboxes whose init has died as `error`.
//!
//! On shutdown it flushes the activity one last time.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::sandboxes::Sandboxes;
use crate::time::now_ms;

/// Runs the reaper until `shutdown` turns true.
pub async fn run(sandboxes: Sandboxes, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
        let begun = std::time::Instant::now();
        flush_activity(&sandboxes).await;
        stop_idle(&sandboxes).await;
        destroy_expired(&sandboxes).await;
        sandboxes.reap_dead().await;
        tracing::debug!(took = ?begun.elapsed(), "reaper tick");
    }
    flush_activity(&sandboxes).await;
}

/// Writes recorded activity to the database.
pub async fn flush_activity(sandboxes: &Sandboxes) {
    let touches = sandboxes.registry().take_activity();
    if let Err(e) = sandboxes.store().touch_sandboxes(&touches).await {
        tracing::error!(error = %e, "recording sandbox activity");
    }
}

async fn stop_idle(sandboxes: &Sandboxes) {
    let idle = match sandboxes.store().idle_sandboxes(now_ms()).await {
        Ok(idle) => idle,
        Err(e) => {
            tracing::error!(error = %e, "finding idle sandboxes");
            return;
        }
    };
    let mut tasks = JoinSet::new();
    for (id, timeout_secs) in idle {
        let Some(entry) = sandboxes.registry().get(&id) else {
            continue;
        };
        let sandboxes = sandboxes.clone();
        tasks.spawn(async move {
            // Sandboxes that wake on their next call sleep instead (E2B's
            // auto-pause): the next call finds their files where they were.
            let idle_ms = timeout_secs * 1000;
            let done = if entry.auto_wake() {
                sandboxes.hibernate_idle(entry, idle_ms).await
            } else {
                sandboxes.stop_entry(entry, Some(idle_ms)).await
            };
            if let Err(e) = done {
                tracing::warn!(%id, error = %e, "stopping an idle sandbox");
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

async fn destroy_expired(sandboxes: &Sandboxes) {
    let expired = match sandboxes.store().expired_sandboxes(now_ms()).await {
        Ok(expired) => expired,
        Err(e) => {
            tracing::error!(error = %e, "finding expired sandboxes");
            return;
        }
    };
    let mut tasks = JoinSet::new();
    for (id, pause) in expired {
        let Some(entry) = sandboxes.registry().get(&id) else {
            continue;
        };
        let sandboxes = sandboxes.clone();
        tasks.spawn(async move {
            if pause {
                tracing::info!(%id, "deadline reached: hibernating the sandbox (auto-pause)");
                if let Err(e) = sandboxes.hibernate_expired(entry).await {
                    tracing::warn!(%id, error = %e, "hibernating an expired sandbox");
                }
                return;
            }
            tracing::info!(%id, "ttl reached: destroying the sandbox");
            if let Err(e) = sandboxes.destroy(entry).await {
                tracing::warn!(%id, error = %e, "destroying an expired sandbox");
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}
