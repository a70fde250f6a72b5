//! Integration tests: each starts the real service on 127.0.0.1 with a fresh database and walks
//! it as a user would.

// Tests fail loudly by design: an unwrap here is an assertion.
#![allow(clippy::unwrap_used)]

mod audit;
mod cli;
mod console;
mod csrf;
mod decisions;
mod deployment;
mod faults;
mod flow_integrity;
mod flows;
mod fuzz;
mod helpers;
mod invitations;
mod key_rotation;
mod kill_switches;
mod list_filter;
mod login_security;
mod members;
mod memory;
mod metrics;
mod migrations;
mod openapi;
mod pages;
mod policies;
mod policy_analysis;
mod policy_index;
mod policy_releases;
mod purge;
mod reads;
mod reload;
mod revocation;
mod robustness;
mod secrets_in_logs;
mod session_lifetimes;
mod sessions;
mod sharing;
mod startup;
mod tenancy;
mod tenancy_matrix;
mod token_attacks;
mod token_list;
mod tokens;
