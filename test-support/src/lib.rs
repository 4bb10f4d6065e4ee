//! Services the tests run for real: a throwaway PostgreSQL cluster
//! ([`postgres`]) and what every such harness shares ([`service`]: processes
//! that die with the test binary, an unprivileged user when run as root, a
//! free port, log tails). Used by the cross-component tests (which re-export
//! both modules as `gridcase_tests::{postgres, service}`) and by the server's
//! own store and API tests.

pub mod postgres;
pub mod service;
