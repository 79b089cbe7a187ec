//! Typing characters the display's keymap lacks (accents, CJK, emoji),
//! in-process over XTest.
//!
//! xdotool types such a character by binding its keysym to a spare keycode,
//! pressing the key and unbinding it at once. Clients reload their keymap
//! after each change, Chromium on a worker thread, and a key that arrives
//! before the reload is done is lost (one of `aé日本z` on a fresh display,
//! every time). Here the keysyms a text needs are bound first, all at once,
//! then clients get [`SETTLE`] to reload, then the keys are typed; and a
//! keysym stays bound after: the keycodes the keymap leaves empty (all but
//! a few kept for xdotool) hold the keysyms typed last, so typing them
//! again changes nothing. The least recently used gives way when a text
//! needs more, never one typed in the last [`LINGER`].

use std::time::{Duration, Instant};

use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::xproto::{self, ConnectionExt as _};
use x11rb::protocol::xtest::ConnectionExt as _;

use crate::AgentError;

/// Empty keycodes left to xdotool (its own scratch key for `press`).
const RESERVED: usize = 4;
/// How long clients get to reload their keymap after a change.
const SETTLE: Duration = Duration::from_millis(1000);
/// How long a keysym stays bound after it was typed, at least.
const LINGER: Duration = Duration::from_secs(1);
/// Spare keycodes assumed when estimating how long text takes (Xvfb's
/// keymap has 19 empty ones).
const ASSUMED_SLOTS: usize = 15;

/// About how much longer than its keys `text` takes for the bindings: a
/// settle and a linger per keymap's worth of distinct characters outside
/// ASCII.
pub fn binding_time(text: &str) -> Duration {
    let mut distinct: Vec<char> = text.chars().filter(|c| !c.is_ascii()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    (SETTLE + LINGER) * distinct.len().div_ceil(ASSUMED_SLOTS) as u32
}

/// The keycodes this agent bound, on one X server.
#[derive(Debug, Default)]
pub struct Bindings {
    /// The X server's managed process id (a new server starts afresh).
    server: String,
    bound: Vec<Bound>,
}

#[derive(Debug)]
struct Bound {
    keycode: u8,
    keysym: u32,
    used: Instant,
}

/// The keysym of a character: Latin-1 as itself, the rest as Unicode
/// keysyms, line breaks and tabs as their keys.
fn keysym(c: char) -> u32 {
    match c {
        '\n' | '\r' => 0xff0d,
        '\t' => 0xff09,
        ' '..='~' | '\u{a0}'..='\u{ff}' => c as u32,
        _ => 0x0100_0000 + c as u32,
    }
}

fn failed(detail: impl std::fmt::Display) -> AgentError {
    AgentError::ToolFailed {
        tool: "x11 keyboard".into(),
        detail: detail.to_string(),
    }
}

/// The keyboard mapping: keysyms of each keycode from `min`.
struct Keymap {
    min: u8,
    per: usize,
    syms: Vec<u32>,
}

impl Keymap {
    fn read(conn: &impl Connection) -> Result<Keymap, AgentError> {
        let setup = conn.setup();
        let (min, max) = (setup.min_keycode, setup.max_keycode);
        let reply = conn
            .get_keyboard_mapping(min, max - min + 1)
            .map_err(failed)?
            .reply()
            .map_err(failed)?;
        Ok(Keymap {
            min,
            per: reply.keysyms_per_keycode.max(1) as usize,
            syms: reply.keysyms,
        })
    }

    fn of(&self, keycode: u8) -> &[u32] {
        let at = (keycode - self.min) as usize * self.per;
        &self.syms[at..at + self.per]
    }

    fn keycodes(&self) -> impl Iterator<Item = u8> + '_ {
        (0..self.syms.len() / self.per).map(|i| self.min + i as u8)
    }

    /// Keycodes without any keysym.
    fn empty(&self) -> Vec<u8> {
        self.keycodes()
            .filter(|&k| self.of(k).iter().all(|&s| s == 0))
            .collect()
    }

    /// A keycode that types `sym` without modifiers.
    fn find(&self, sym: u32) -> Option<u8> {
        self.keycodes().find(|&k| self.of(k)[0] == sym)
    }

    fn set(&mut self, keycode: u8, sym: u32) {
        let at = (keycode - self.min) as usize * self.per;
        for (i, s) in self.syms[at..at + self.per].iter_mut().enumerate() {
            *s = if i < 2 { sym } else { 0 };
        }
    }
}

/// Types `text` on `display` (whose X server is the managed process
/// `server`), `delay` between keys, giving up after `limit`. Blocking: run
/// it off the runtime.
pub fn type_text(
    display: &str,
    server: &str,
    bindings: &mut Bindings,
    text: &str,
    delay: Duration,
    limit: Duration,
) -> Result<(), AgentError> {
    let deadline = Instant::now() + limit;
    if bindings.server != server {
        *bindings = Bindings {
            server: server.to_string(),
            bound: Vec::new(),
        };
    }
    let (conn, screen) = x11rb::connect(Some(display)).map_err(failed)?;
    let root = conn.setup().roots[screen].root;
    conn.extension_information(x11rb::protocol::xtest::X11_EXTENSION_NAME)
        .map_err(failed)?
        .ok_or_else(|| failed("the X server has no XTEST"))?;
    let mut keymap = Keymap::read(&conn)?;
    // Ours that someone rebound since are no longer ours.
    bindings
        .bound
        .retain(|b| keymap.of(b.keycode)[0] == b.keysym);
    let ours = |bindings: &Bindings, sym: u32| bindings.bound.iter().any(|b| b.keysym == sym);
    let mut chars = text.chars().peekable();
    while chars.peek().is_some() {
        // As much text as the keycodes this may bind can type.
        let empty = keymap.empty().len().saturating_sub(RESERVED);
        let slots = empty + bindings.bound.len();
        let mut chunk = Vec::new();
        let mut syms: Vec<u32> = Vec::new();
        while let Some(&c) = chars.peek() {
            let sym = keysym(c);
            let native = keymap.find(sym).is_some() && !ours(bindings, sym);
            if !native && !syms.contains(&sym) {
                if syms.len() == slots {
                    break;
                }
                syms.push(sym);
            }
            chunk.push(c);
            chars.next();
        }
        if chunk.is_empty() {
            return Err(failed("no spare keycode to bind a character to"));
        }
        if Instant::now() > deadline {
            return Err(AgentError::ToolTimedOut {
                tool: "x11 keyboard".into(),
                secs: limit.as_secs(),
            });
        }
        let mut bound_any = false;
        for &sym in &syms {
            if !ours(bindings, sym) {
                bind(&conn, &mut keymap, bindings, sym, &syms)?;
                bound_any = true;
            }
        }
        if bound_any {
            // Clients reload their keymap after a change; keys that come
            // before they are done are lost (Chromium's take a while).
            std::thread::sleep(SETTLE);
        }
        for c in chunk {
            let keycode = keymap.find(keysym(c)).expect("bound above");
            for (kind, pause) in [
                (xproto::KEY_PRESS_EVENT, delay / 2),
                (xproto::KEY_RELEASE_EVENT, delay - delay / 2),
            ] {
                conn.xtest_fake_input(kind, keycode, x11rb::CURRENT_TIME, root, 0, 0, 0)
                    .map_err(failed)?;
                sync(&conn)?;
                std::thread::sleep(pause);
            }
            if let Some(b) = bindings.bound.iter_mut().find(|b| b.keycode == keycode) {
                b.used = Instant::now();
            }
        }
    }
    Ok(())
}

/// Binds `sym` (on both shift levels) to an empty keycode, or to the one of
/// ours used least recently but for those of `keep` (waiting out its
/// [`LINGER`]).
fn bind(
    conn: &impl Connection,
    keymap: &mut Keymap,
    bindings: &mut Bindings,
    sym: u32,
    keep: &[u32],
) -> Result<(), AgentError> {
    let empty = keymap.empty();
    // From the top: xdotool takes its scratch key from the bottom.
    let keycode = if empty.len() > RESERVED {
        *empty.last().expect("empty keycodes")
    } else {
        let oldest = bindings
            .bound
            .iter()
            .filter(|b| !keep.contains(&b.keysym))
            .min_by_key(|b| b.used)
            .ok_or_else(|| failed("no spare keycode to bind a character to"))?;
        let since = oldest.used.elapsed();
        if since < LINGER {
            std::thread::sleep(LINGER - since);
        }
        let keycode = oldest.keycode;
        bindings.bound.retain(|b| b.keycode != keycode);
        keycode
    };
    conn.change_keyboard_mapping(1, keycode, 2, &[sym, sym])
        .map_err(failed)?;
    sync(conn)?;
    keymap.set(keycode, sym);
    bindings.bound.push(Bound {
        keycode,
        keysym: sym,
        used: Instant::now(),
    });
    Ok(())
}

/// Waits until the server has handled every request sent.
fn sync(conn: &impl Connection) -> Result<(), AgentError> {
    conn.get_input_focus()
        .map_err(failed)?
        .reply()
        .map(drop)
        .map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keysyms_of_characters() {
        assert_eq!(keysym('a'), 0x61);
        assert_eq!(keysym('é'), 0xe9);
        assert_eq!(keysym('日'), 0x0100_65e5);
        assert_eq!(keysym('\n'), 0xff0d);
        assert_eq!(keysym('😀'), 0x0101_f600);
    }

    #[test]
    fn binding_time_counts_distinct_characters_outside_ascii() {
        assert_eq!(binding_time("plain ascii"), Duration::ZERO);
        assert_eq!(binding_time("ééééé"), SETTLE + LINGER);
        let many: String = ('α'..='ω').collect();
        assert!(many.chars().count() > ASSUMED_SLOTS);
        assert_eq!(binding_time(&many), (SETTLE + LINGER) * 2);
    }
}
