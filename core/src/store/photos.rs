//! Photo rows: which content-addressed files belong to which case.

use std::collections::HashSet;

use rusqlite::{params, Connection, Row};

use super::{Store, StoreError};
use crate::ids::{CaseId, OpId, PhotoId};
use crate::location::GeoPoint;
use crate::op::PhotoRef;
use crate::time::Millis;

#[derive(Debug, Clone, PartialEq)]
pub struct PhotoRow {
    pub photo: PhotoRef,
    pub case_id: CaseId,
    pub op_id: OpId,
    pub added_at: Millis,
}

impl PhotoRow {
    pub(crate) fn insert(&self, tx: &Connection) -> Result<(), StoreError> {
        let p = &self.photo;
        let (lat, lon, acc) = match &p.captured_at_point {
            Some(g) => (Some(g.lat), Some(g.lon), Some(g.accuracy_m)),
            None => (None, None, None),
        };
        tx.prepare_cached(
            "INSERT INTO photos (id, case_id, op_id, sha256, bytes, width, height,
                 thumb_sha256, thumb_bytes, captured_at, lat, lon, accuracy_m, added_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?
        .execute(params![
            p.id.to_string(),
            self.case_id.to_string(),
            self.op_id.to_string(),
            p.sha256,
            p.bytes as i64,
            p.width,
            p.height,
            p.thumb_sha256,
            p.thumb_bytes as i64,
            p.captured_at,
            lat,
            lon,
            acc,
            self.added_at,
        ])?;
        Ok(())
    }

    /// Inserts the row unless a row with this id is already there.
    pub(crate) fn insert_if_new(&self, tx: &Connection) -> Result<(), StoreError> {
        let exists: bool = tx
            .prepare_cached("SELECT 1 FROM photos WHERE id = ?1")?
            .exists([self.photo.id.to_string()])?;
        if exists {
            return Ok(());
        }
        self.insert(tx)
    }

    /// The same insert the terminal does, for the benchmark's like-for-like run.
    #[doc(hidden)]
    pub fn insert_for_bench(&self, tx: &Connection) -> Result<(), StoreError> {
        self.insert(tx)
    }

    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        let lat: Option<f64> = r.get("lat")?;
        let lon: Option<f64> = r.get("lon")?;
        let acc: Option<f64> = r.get("accuracy_m")?;
        let point = match (lat, lon) {
            (Some(lat), Some(lon)) => Some(GeoPoint {
                lat,
                lon,
                accuracy_m: acc,
            }),
            _ => None,
        };
        let bad = |col: &str| {
            rusqlite::Error::InvalidColumnType(0, col.into(), rusqlite::types::Type::Text)
        };
        let id: String = r.get("id")?;
        let case_id: String = r.get("case_id")?;
        let op_id: String = r.get("op_id")?;
        Ok(PhotoRow {
            photo: PhotoRef {
                id: PhotoId::parse(&id).map_err(|_| bad("id"))?,
                sha256: r.get("sha256")?,
                bytes: r.get::<_, i64>("bytes")? as u64,
                width: r.get("width")?,
                height: r.get("height")?,
                thumb_sha256: r.get("thumb_sha256")?,
                thumb_bytes: r.get::<_, i64>("thumb_bytes")? as u64,
                captured_at: r.get("captured_at")?,
                captured_at_point: point,
            },
            case_id: CaseId::parse(&case_id).map_err(|_| bad("case_id"))?,
            op_id: OpId::parse(&op_id).map_err(|_| bad("op_id"))?,
            added_at: r.get("added_at")?,
        })
    }
}

impl Store {
    pub fn photos_of(&self, case_id: &CaseId) -> Result<Vec<PhotoRow>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT * FROM photos WHERE case_id = ?1 ORDER BY added_at, id")?;
            let rows = stmt
                .query_map([case_id.to_string()], PhotoRow::from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    /// Every file name (SHA-256) a committed photo row points at, photos and
    /// thumbnails alike: what garbage collection must keep.
    pub fn referenced_photo_files(&self) -> Result<HashSet<String>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare("SELECT sha256, thumb_sha256 FROM photos")?;
            let mut keep = HashSet::new();
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                keep.insert(r.get::<_, String>(0)?);
                keep.insert(r.get::<_, String>(1)?);
            }
            Ok(keep)
        })
    }
}
