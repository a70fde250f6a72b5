//! Integration tests: each starts the real service on 127.0.0.1 with a fresh database and walks
//! it as a user would.

// Tests fail loudly by design: an unwrap here is an assertion.
#![allow(clippy::unwrap_used)]

mod cli;
mod decisions;
mod deployment;
mod faults;
mod flows;
mod helpers;
mod members;
mod openapi;
mod policies;
mod reload;
mod sessions;
mod startup;
mod tenancy;
mod tokens;
