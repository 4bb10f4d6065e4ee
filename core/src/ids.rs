//! Ids are UUIDv7 made on the device: unique without asking a server (the
//! terminal is often offline), and time-ordered so new cases sort last.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::InvalidInput;

macro_rules! uuid_id {
    ($name:ident, $field:literal) => {
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            pub fn as_uuid(&self) -> &Uuid {
                &self.0
            }
            /// An id a database gave back (a PostgreSQL `uuid` column).
            pub fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }
            /// Parses an id that came from outside (a UI, a file, the network).
            pub fn parse(s: &str) -> Result<Self, InvalidInput> {
                Uuid::from_str(s)
                    .map(Self)
                    .map_err(|_| InvalidInput::new($field, "is not a valid id"))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    };
}

uuid_id!(CaseId, "case_id");
uuid_id!(OpId, "op_id");
uuid_id!(PhotoId, "photo_id");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_made_later_sort_later() {
        let a = CaseId::new();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = CaseId::new();
        assert!(a < b);
        assert!(a.to_string() < b.to_string());
    }

    #[test]
    fn a_garbled_id_is_refused_by_name() {
        let err = CaseId::parse("not-a-case").unwrap_err();
        assert_eq!(err.field, "case_id");
    }
}
