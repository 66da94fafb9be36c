//! The integration tests, as one binary (ripgrep's layout: `autotests = false` and one
//! `[[test]]` in Cargo.toml): the crate and the harness are compiled and linked once for all
//! of them, and every test shares one pool of free ports ([`common::port_base`]). One module
//! per concern; docs/guide/testing.md ("What the tests cover") says what each holds.
//!
//! `cargo test` runs them all (Chromium and root not needed); `cargo test -- --ignored` runs
//! the browser tests; `scripts/test.sh` runs everything the suite has.

mod common;

mod adversary;
mod agreement;
mod budgets;
mod check;
mod clean_output;
mod cli;
mod codec_oracle;
mod cpython_oracle;
mod deps;
mod differential;
mod dispatch_props;
mod docs;
mod explore;
mod hardening;
mod interop;
mod layers;
mod mixed_agreement;
mod peer;
mod picture;
mod protocol;
mod rounds;
mod run_integrity;
mod ui;
