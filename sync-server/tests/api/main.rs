//! API tests: the real router over a real TCP listener, with reqwest.

mod centre_support;
mod common;

mod centre_queues;
mod centre_roles;
mod centre_scheduler;
mod centre_workflow;
mod cli;
mod department_photo;
mod enrol_auth;
mod export;
mod figures;
mod hostile;
mod limits;
mod open311;
mod photos;
mod pull;
mod push;
mod rating_link;
mod recovery;
mod report_scope;
