//! The Warren control plane (`warren server`).
