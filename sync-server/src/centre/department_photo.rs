//! A department's photos of its progress and result: `POST
//! /v1/centre/cases/{id}/photos` with the picture as the body (JPEG or PNG).
//! The server makes what a terminal makes from a camera photo — at most
//! 1920 px on the long side and a 320 px thumbnail, both JPEG, without the
//! camera's metadata — keeps both files by their SHA-256, and attaches them
//! to the case as an op, which grid leaders' terminals pull like any other.

use std::io::Cursor;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use gridcase_core::ids::{CaseId, PhotoId};
use gridcase_core::op::PhotoRef;
use gridcase_core::time::now_millis;
use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat, ImageReader, Limits};

use super::actions::{self, Recorded};
use super::session::{check_csrf_header, StaffSession};
use crate::error::{reasons, AppError};
use crate::AppState;

/// The long side of the photo kept, and of its thumbnail (as on the terminal).
const PHOTO_PX: u32 = 1920;
const THUMB_PX: u32 = 320;
/// Pixels and memory a decode may use: a 50-megapixel camera is fine, a
/// decompression bomb is refused before it allocates.
const MAX_PIXELS_SIDE: u32 = 12_000;
const MAX_DECODE_BYTES: u64 = 512 * 1024 * 1024;

/// The photo and thumbnail made from an upload.
#[derive(Debug)]
pub struct MadePhoto {
    pub photo: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub thumb: Vec<u8>,
}

fn refused(reason: &'static str, message: &str) -> AppError {
    AppError::invalid("photo", reason, message.to_string())
}

/// Decodes a JPEG or PNG within limits and makes the kept photo and its
/// thumbnail. Re-encoding drops every piece of metadata the camera wrote.
pub fn make_photo(bytes: &[u8]) -> Result<MadePhoto, AppError> {
    if bytes.is_empty() {
        return Err(refused(reasons::REQUIRED, "is empty"));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| refused(reasons::NOT_A_PICTURE, "could not be read"))?;
    if !matches!(reader.format(), Some(ImageFormat::Jpeg | ImageFormat::Png)) {
        return Err(refused(
            reasons::NOT_A_PICTURE,
            "must be a JPEG or PNG picture",
        ));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_PIXELS_SIDE);
    limits.max_image_height = Some(MAX_PIXELS_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => {
            refused(reasons::PICTURE_TOO_LARGE, "is too large in pixels")
        }
        _ => refused(reasons::PICTURE_DAMAGED, "is damaged or not a picture"),
    })?;
    let photo = fit(&image, PHOTO_PX);
    let thumb = fit(&image, THUMB_PX);
    Ok(MadePhoto {
        width: photo.width(),
        height: photo.height(),
        photo: encode_jpeg(&photo, 82)?,
        thumb: encode_jpeg(&thumb, 75)?,
    })
}

fn fit(image: &DynamicImage, side: u32) -> DynamicImage {
    if image.width().max(image.height()) <= side {
        image.clone()
    } else {
        image.resize(side, side, FilterType::Triangle)
    }
}

fn encode_jpeg(image: &DynamicImage, quality: u8) -> Result<Vec<u8>, AppError> {
    let rgb = image.to_rgb8();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(&rgb)
        .map_err(|e| {
            tracing::error!(error = %e, "encoding a department photo failed");
            AppError::internal()
        })?;
    Ok(out)
}

/// `POST /v1/centre/cases/{id}/photos`: the department the case is dispatched
/// to adds a photo (same-origin, with the session's CSRF token in the header).
pub(crate) async fn upload_handler(
    State(state): State<AppState>,
    Path(id): Path<String>,
    session: StaffSession,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Recorded>, AppError> {
    check_csrf_header(&headers, &session, state.centre.public_url.as_deref())?;
    let case_id = CaseId::parse(&id).map_err(|e| AppError::input(&e))?;
    // Asked first so a refused upload leaves no files behind; asked again
    // when the op is recorded.
    let (grids, staff) = (state.grids.clone(), session.staff.clone());
    state
        .store
        .read(move |tx| {
            let (grids, staff) = (grids.clone(), staff.clone());
            Box::pin(async move {
                let map = grids.current(tx).await?;
                actions::check_may_attach_photo(tx, &map, &staff, &case_id).await
            })
        })
        .await?;
    let made = tokio::task::spawn_blocking(move || make_photo(&body))
        .await
        .map_err(|_| AppError::internal())??;
    let store = state.photos.clone();
    let (photo_sha, thumb_sha, made) = tokio::task::spawn_blocking(move || {
        let photo = store.keep(&made.photo)?;
        let thumb = store.keep(&made.thumb)?;
        Ok::<_, std::io::Error>((photo, thumb, made))
    })
    .await
    .map_err(|_| AppError::internal())?
    .map_err(|e| {
        tracing::error!(error = %e, "keeping a department photo failed");
        AppError::internal()
    })?;
    let photo = PhotoRef {
        id: PhotoId::new(),
        sha256: photo_sha,
        bytes: made.photo.len() as u64,
        width: made.width,
        height: made.height,
        thumb_sha256: thumb_sha,
        thumb_bytes: made.thumb.len() as u64,
        captured_at: None,
        captured_at_point: None,
    };
    let staff = session.staff;
    let grids = state.grids.clone();
    let recorded = state
        .store
        .write(move |tx| {
            let (grids, staff, photo) = (grids.clone(), staff.clone(), photo.clone());
            Box::pin(async move {
                let map = grids.current(tx).await?;
                actions::attach_photo(tx, &map, &staff, case_id, photo, now_millis()).await
            })
        })
        .await?;
    Ok(Json(recorded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 90]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn a_large_picture_is_fitted_and_thumbnailed() {
        let made = make_photo(&png(2400, 1200)).unwrap();
        assert_eq!((made.width, made.height), (1920, 960));
        let thumb = image::load_from_memory(&made.thumb).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (320, 160));
        assert!(made.photo.starts_with(&[0xFF, 0xD8]), "a JPEG");
    }

    #[test]
    fn what_is_not_a_picture_is_refused_by_name() {
        for bad in [&b""[..], b"not a picture", &png(10, 10)[..20]] {
            let e = make_photo(bad).unwrap_err();
            assert_eq!(e.body.field.as_deref(), Some("photo"), "{e:?}");
        }
    }
}
