//! Query strings of the figures and export endpoints: each parameter at most
//! once, refused by name when it does not parse.

use std::collections::HashMap;

use gridcase_core::error::InvalidInput;

use crate::error::{reasons, AppError};

pub struct QueryParams(HashMap<String, String>);

impl QueryParams {
    pub fn parse(raw: Option<&str>) -> Result<QueryParams, AppError> {
        let mut map = HashMap::new();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()).into_owned() {
            if map.contains_key(&k) {
                return Err(AppError::invalid(
                    k.clone(),
                    reasons::REPEATED,
                    format!("{k}: is given more than once"),
                ));
            }
            map.insert(k, v);
        }
        Ok(QueryParams(map))
    }

    /// The value, if given and not blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    pub fn u32_or(&self, name: &'static str, default: u32) -> Result<u32, AppError> {
        self.get(name).map_or(Ok(default), |v| {
            v.parse().map_err(|_| {
                AppError::invalid(
                    name,
                    reasons::NOT_A_NUMBER,
                    format!("{name}: is not a whole number"),
                )
            })
        })
    }
}

/// An input error as the API answers it, naming the field.
pub fn invalid(e: InvalidInput) -> AppError {
    AppError::invalid(
        e.field,
        reasons::of_input(&e.reason),
        format!("{}: {}", e.field, e.reason),
    )
}
