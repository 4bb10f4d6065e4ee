//! Gridcase core: what a grid leader's terminal knows about cases.
//!
//! The pure part (ids, cases and their state machine, operations, location,
//! deadlines, grids) has no I/O so the sync server can reuse the exact rules the
//! device applied. The `device` feature adds the local SQLite store, photo intake
//! and the [`Terminal`] facade the mobile apps and the CLI use.

pub mod case;
pub mod deadline;
pub mod durability;
pub mod error;
pub mod failpoint;
pub mod grid;
pub mod ids;
pub mod location;
pub mod op;
pub mod protocol;
pub mod time;
pub mod zone;

#[cfg(feature = "device")]
pub mod photo;
#[cfg(feature = "device")]
pub mod store;
#[cfg(feature = "sync")]
pub mod sync;
#[cfg(feature = "device")]
pub mod terminal;

pub use case::{Case, CaseDraft, CaseEdit, CaseStatus, Category, Face, Rating, Verification};
pub use error::{InvalidInput, TransitionError};
pub use ids::{CaseId, OpId};
pub use location::{GeoPoint, Location, LocationSource};
pub use op::{Actor, Op, OpKind, Role};
pub use zone::Zone;

#[cfg(feature = "device")]
pub use terminal::{
    CaseChangeListener, CaseDetail, CasePhoto, GridRef, PhotoSource, Placement, Terminal,
    TerminalConfig,
};
