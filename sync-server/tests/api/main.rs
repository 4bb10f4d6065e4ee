//! API tests: the real router over a real TCP listener, with reqwest.

mod common;

mod cli;
mod enrol_auth;
mod limits;
mod photos;
mod pull;
mod push;
mod recovery;
