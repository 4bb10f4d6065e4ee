//! API tests: the real router over a real TCP listener, with reqwest.

mod common;

mod cli;
mod enrol_auth;
mod export;
mod figures;
mod limits;
mod open311;
mod photos;
mod pull;
mod push;
